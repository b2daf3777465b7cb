#pragma once

// The shared-memory segment's layout. Types only: this header is the contract between the
// master, every worker and `lb` clients that attach to read counters, so it includes nothing
// but standard headers and pins its sizes with static_asserts. Bump kLayoutVersion on any
// change; attach refuses a segment whose magic, version or size differ.
//
// Writers: the master writes keys and `in_use` (slot assignment); workers only add to counters
// with relaxed atomics. No locks, no pointers.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace lb::shm {

inline constexpr uint64_t kMagic = 0x314d48534c42ULL;  // "LBSHM1"
inline constexpr uint32_t kLayoutVersion = 10;
// From this layout version on, ReloadState sits right after the header and never moves: `lb -s
// reload` of one version reads the verdict of a master that another version started (a package
// upgraded before the binary upgrade), whatever else changed.
inline constexpr uint32_t kFixedReloadStateSince = 10;
inline constexpr uint32_t kMaxBackends = 4096;
inline constexpr uint32_t kMaxPools = 1024;
inline constexpr uint32_t kMaxWorkers = 256;
inline constexpr size_t kKeySize = 112;
inline constexpr size_t kReloadErrorSize = 2048 - 32;
// The running configuration as `lb -T` prints it, for `lb -t --plan` (bigger ones are cut).
inline constexpr size_t kConfigTextSize = 512 * 1024 - 16;

// Counted responses and errors per worker (for /metrics and the status page later).
enum class Counter : uint32_t {
  Status1xx,
  Status2xx,
  Status3xx,
  Status4xx,
  Status5xx,
  Error400,
  Error404,
  Error408,
  Error413,
  Error414,
  Error431,
  Error502,
  Error503,
  Error504,
  TlsHandshakes,       // completed
  TlsResumed,          // of those, resumed sessions (ticket or cache)
  TlsHandshakeFailed,  // failed or cut short by the client
  Error405,
  Error501,
  Error505,
  H2Connections,  // connections that spoke HTTP/2
  H2Streams,      // requests on them
  H2Resets,       // streams that ended with RST_STREAM, from either side
  kCount
};

// What the operator set at run time (lb -s backend ...); kept across reloads with the slot.
enum class AdminState : uint32_t {
  Enabled = 0,
  Draining = 1,  // no new requests; those in flight finish
  Disabled = 2,  // no new requests
};

// A backend's circuit breaker, one for all workers.
enum class BreakerState : uint32_t { Closed = 0, Open = 1, HalfOpen = 2 };

// What active health checks say (the checker process writes it).
enum class HealthState : uint32_t {
  Up = 0,  // also: not checked
  Down = 1,
};

// One backend, identified by "pool/address". Cache-line aligned so two workers updating two
// backends never share a line.
struct alignas(64) BackendSlot {
  std::atomic<uint32_t> in_use;       // 1 while some config names it
  std::atomic<int32_t> active;        // upstream connections in use, all workers together
  std::atomic<uint64_t> requests;     // requests sent to it
  std::atomic<uint64_t> failures;     // connect errors, resets, timeouts, bad responses
  std::atomic<uint64_t> connections;  // upstream connections opened
  std::atomic<uint64_t> bytes_sent;
  std::atomic<uint64_t> bytes_received;
  // Run-time control: AdminState, and a weight that overrides the configured one (0: none).
  std::atomic<uint32_t> admin_state;
  std::atomic<uint32_t> admin_weight;
  // Active health (HealthState), with the streak that led there and when it last changed
  // (CLOCK_MONOTONIC ms, the same clock in every process: slow start counts from it).
  std::atomic<uint32_t> health;
  std::atomic<uint32_t> health_streak;
  std::atomic<uint64_t> health_changed_ms;
  // Response time: an exponentially weighted moving average in microseconds (x 16, fixed
  // point) and when it was last updated, for least_time and peak_ewma.
  std::atomic<uint64_t> ewma_us16;
  std::atomic<uint64_t> ewma_stamp_ms;
  // Passive health: consecutive failures of real traffic; out of rotation until this time.
  std::atomic<uint32_t> passive_fails;
  std::atomic<uint32_t> breaker_state;  // BreakerState
  std::atomic<uint64_t> passive_until_ms;
  // Circuit breaker: consecutive failures while closed, probes in flight and successes while
  // half-open, and when it last opened.
  std::atomic<uint32_t> breaker_fails;
  std::atomic<uint32_t> half_open_inflight;
  std::atomic<uint32_t> half_open_successes;
  std::atomic<uint32_t> reserved;
  std::atomic<uint64_t> breaker_opened_ms;
  // When the backend last came back after being out (a health check marked it up, its breaker
  // closed); 0 = never out. Slow start ramps its weight from here (and from passive_until_ms).
  std::atomic<uint64_t> recovered_ms;
  char key[kKeySize];  // "pool/address", NUL-terminated; written by the master
};

struct alignas(64) PoolSlot {
  std::atomic<uint32_t> in_use;
  std::atomic<uint64_t> rr_sequence;  // shared round-robin position: exact across workers
  // Retry budget: the current window's start (CLOCK_MONOTONIC ms), requests and retries in it.
  std::atomic<uint64_t> budget_window_ms;
  std::atomic<uint64_t> budget_requests;
  std::atomic<uint64_t> budget_retries;
  char key[kKeySize];  // pool name
};

// One per live worker process, given out by the master at fork and freed when it is reaped, so
// the processes of two generations never share one during a reload.
struct alignas(64) WorkerSlot {
  std::atomic<int32_t> pid;
  // 1 while the worker takes new connections; 0 while it leaves them to its siblings, is full or
  // stops. A sibling never leaves a connection to a worker that is not taking any.
  std::atomic<uint32_t> accepting;
  std::atomic<uint64_t> generation;
  std::atomic<uint64_t> accepted;
  std::atomic<int64_t> active_connections;
  std::atomic<uint64_t> requests;
  std::atomic<uint64_t> counters[static_cast<size_t>(Counter::kCount)];
  // Published every spread tick (worker/net/spread.h): the share of one CPU the worker's loop
  // used, in thousandths, and 1 when most connections it closed had served at most one request.
  std::atomic<uint32_t> load_permille;
  std::atomic<uint32_t> churning;
  // CLOCK_MONOTONIC milliseconds of that publication: a worker whose loop stopped turning must
  // not go on drawing every new connection to itself.
  std::atomic<uint64_t> load_at_ms;
};

enum class ReloadResult : uint32_t { None = 0, Pending = 1, Succeeded = 2, Failed = 3 };

// What `lb -s reload` reads back. The master bumps `started` when it takes a HUP, writes
// result, generation and error, then stores `finished` = `started` (release): a reader that
// sees finished == the number it waited for (acquire) sees that reload's verdict.
struct ReloadState {
  std::atomic<uint64_t> started;
  std::atomic<uint64_t> finished;
  std::atomic<uint32_t> result;  // ReloadResult
  uint32_t reserved;
  std::atomic<uint64_t> generation;  // serving after that reload (new on success, old if not)
  char error[kReloadErrorSize];      // NUL-terminated; "" on success
};

// The running configuration's text: a seqlock (odd `sequence` while the master writes).
struct ConfigText {
  std::atomic<uint64_t> sequence;
  std::atomic<uint32_t> length;
  uint32_t truncated;
  char text[kConfigTextSize];
};

struct Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t reserved;
  uint64_t segment_size;
  std::atomic<uint64_t> generation;  // config generation now serving
  std::atomic<int32_t> master_pid;
  std::atomic<uint32_t> worker_count;
  std::atomic<uint32_t> worker_slots_high;  // slots [0, high) may be in use
};

// TLS session-ticket keys, shared by every worker so that a ticket one worker issued resumes
// on any other. The master writes them (a seqlock: odd `sequence` while it writes) and rotates
// them; `previous` still decrypts for one period after a rotation.
struct TicketKey {
  uint8_t name[16];
  uint8_t aes_key[32];
  uint8_t hmac_key[32];
};
struct alignas(64) TicketKeys {
  std::atomic<uint64_t> sequence;
  std::atomic<uint32_t> count;  // valid keys: 0 (none yet), 1 (current), 2 (and previous)
  uint32_t reserved;
  TicketKey current;
  TicketKey previous;
};

struct Segment {
  Header header;
  alignas(64) ReloadState reload;  // at kReloadStateOffset in every layout version from 10 on
  alignas(64) WorkerSlot workers[kMaxWorkers];
  PoolSlot pools[kMaxPools];
  BackendSlot backends[kMaxBackends];
  alignas(64) ConfigText config;
  TicketKeys tickets;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<Segment>);
static_assert(sizeof(BackendSlot) == 256);
static_assert(sizeof(PoolSlot) == 192);
static_assert(sizeof(WorkerSlot) == 256);
static_assert(sizeof(Header) <= 64);
static_assert(sizeof(ReloadState) == 2048);
static_assert(sizeof(ConfigText) == 512 * 1024);
inline constexpr size_t kReloadStateOffset = 64;
static_assert(offsetof(Segment, reload) == kReloadStateOffset);
static_assert(offsetof(Segment, workers) == kReloadStateOffset + sizeof(ReloadState));
static_assert(sizeof(TicketKeys) == 192);
static_assert(offsetof(Segment, config) ==
              offsetof(Segment, workers) + kMaxWorkers * sizeof(WorkerSlot) +
                  kMaxPools * sizeof(PoolSlot) + kMaxBackends * sizeof(BackendSlot));
static_assert(sizeof(Segment) ==
              offsetof(Segment, config) + sizeof(ConfigText) + sizeof(TicketKeys));

}  // namespace lb::shm
