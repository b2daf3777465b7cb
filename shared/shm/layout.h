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
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kMaxBackends = 4096;
inline constexpr uint32_t kMaxPools = 1024;
inline constexpr uint32_t kMaxWorkers = 256;
inline constexpr size_t kKeySize = 112;

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
  kCount
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
  char key[kKeySize];  // "pool/address", NUL-terminated; written by the master
};

struct alignas(64) PoolSlot {
  std::atomic<uint32_t> in_use;
  std::atomic<uint64_t> rr_sequence;  // shared round-robin position: exact across workers
  char key[kKeySize];                 // pool name
};

struct alignas(64) WorkerSlot {
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> generation;
  std::atomic<uint64_t> accepted;
  std::atomic<int64_t> active_connections;
  std::atomic<uint64_t> requests;
  std::atomic<uint64_t> counters[static_cast<size_t>(Counter::kCount)];
};

struct Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t reserved;
  uint64_t segment_size;
  std::atomic<uint64_t> generation;  // config generation now serving
  std::atomic<int32_t> master_pid;
  std::atomic<uint32_t> worker_count;
};

struct Segment {
  Header header;
  alignas(64) WorkerSlot workers[kMaxWorkers];
  PoolSlot pools[kMaxPools];
  BackendSlot backends[kMaxBackends];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<Segment>);
static_assert(sizeof(BackendSlot) == 192);
static_assert(sizeof(PoolSlot) == 128);
static_assert(sizeof(WorkerSlot) == 192);
static_assert(offsetof(Segment, workers) == 64);
static_assert(sizeof(Segment) == 64 + kMaxWorkers * sizeof(WorkerSlot) +
                                     kMaxPools * sizeof(PoolSlot) +
                                     kMaxBackends * sizeof(BackendSlot));

}  // namespace lb::shm
