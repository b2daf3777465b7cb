#pragma once

// Spreading new connections over the workers of a generation. Every worker is woken for a new
// connection (a listening socket, the handoff channel) and the first to take it wins; a worker
// that already holds clearly more connections than a sibling sits out briefly instead, so a
// burst cannot land on whichever worker happens to wake first. The counts are the workers'
// shared-memory slots, so the rule is the same in every worker.
//
// Counts predict load only for connections that stay. Connections that serve one request and
// close (connection-per-request clients) come and go faster than counts can say anything, and
// spreading them costs: every worker then sleeps and wakes for each one. So while connections
// churn and the generation's load fits one worker with room to spare, the first worker that
// accepts takes them all and the others sit out (as the kernel, in effect, does for nginx's
// exclusive wake-ups). Once the load grows past that, or connections stay, counts rule again.

#include <uv.h>

#include <cstdint>

#include "worker/context.h"

namespace lb::worker {

// How long a worker that leaves a connection to a sibling waits before it looks again: long
// enough not to spin on a socket that stays readable until the sibling takes it, short enough
// that nothing waits long even if every worker sat out at once.
inline constexpr uint64_t kLeaveToSiblingMs = 5;

// How often a worker publishes its load and whether its connections churn.
inline constexpr uint64_t kSpreadTickMs = 100;

// One worker takes every churning connection while the workers of the generation together use
// less than this share of one CPU (in thousandths): room for the load to grow for a tick or two.
inline constexpr uint32_t kPackLoadPermille = 900;

// The first worker takes every churning connection only while it holds at most this many client
// connections more than the accepting sibling with the fewest. Long-lived connections that arrive
// among the churning ones stay where they landed; this bounds how many pile up on one worker.
inline constexpr int64_t kPackMaxLead = 256;

// A tick's closed connections churn when at least this many served one request and they are at
// least three quarters of those that served any.
inline constexpr uint32_t kChurnMin = 8;

// A connection churned when it served one request and closed within this long of it.
inline constexpr uint64_t kChurnWithinMs = 1000;

// A first worker whose load was published longer ago than this (its loop is stuck, stopped or
// dead but not reaped yet) takes nothing by itself: counts rule.
inline constexpr uint64_t kLoadStaleMs = 3 * kSpreadTickMs;

// True when another live worker of this generation that takes connections now has clearly fewer
// client connections than this one (more than 2 plus an eighth of its count fewer). Siblings
// that are full or stop do not count. One that sits out does: it is back within
// kLeaveToSiblingMs, and the worker that took a burst meanwhile must not take the rest of it
// too. Two workers may then sit out at once; a new connection waits at most that long.
bool siblingHasRoom(const WorkerContext& ctx);

// Counts a closed client connection in ctx->closes: churned when it served one request and
// closed within kChurnWithinMs of it, kept when it served more or carried HTTP/2 (or a long
// tunnel); one that served none (a probe, a failed handshake, a scan) says nothing about the
// traffic.
void countClosed(WorkerContext* ctx, uint32_t requests, bool http2, uint64_t ms_since_request);

enum class Spread : uint8_t {
  Take,     // accept a few, leaving the rest of a burst to the siblings
  TakeAll,  // this worker takes every churning connection: accept all that are queued
  Leave,    // sit out kLeaveToSiblingMs
};

// What the acceptor does with a listener that became readable.
Spread spreadDecision(const WorkerContext& ctx);

// Publishes this worker's load and churn flag (from WorkerContext::closes) to its slot every
// kSpreadTickMs.
class LoadMeter {
 public:
  void start(WorkerContext* ctx);
  void stop();

 private:
  static void onTick(uv_timer_t* t);
  uint64_t threadCpuNs() const;

  WorkerContext* ctx_ = nullptr;
  uv_timer_t timer_{};
  bool running_ = false;
  uint64_t last_wall_ns_ = 0;
  uint64_t last_cpu_ns_ = 0;
};

}  // namespace lb::worker
