#pragma once

// Everything one worker owns: its loop, the config it serves, buffers, timers, the balancer and
// the idle upstream connections of every pool. One per worker process, alive for the whole run of
// the loop; every connection keeps a pointer to it.

#include <cstdint>
#include <memory>
#include <vector>

#include <uv.h>

#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "worker/balancer/balancer.h"
#include "worker/buffer_pool.h"
#include "worker/proxy/request_queue.h"
#include "worker/timer_queue.h"
#include "worker/turn_queue.h"

namespace lb::worker {

class AccessLog;
class ClientConn;
class Handoff;
class UpstreamConn;
struct Exchange;
namespace http2 {
class Session;
struct Stream;
}  // namespace http2

// Idle keep-alive connections to one backend, most recently used first.
struct IdleList {
  UpstreamConn* head = nullptr;
};

struct PoolRuntime {
  const config::Pool* pool = nullptr;
  BalancerPtr balancer;
  std::vector<IdleList> idle;           // per backend
  int idle_count = 0;                   // over all backends; capped at pool->keepalive
  std::unique_ptr<RequestQueue> queue;  // null when the pool has none (queue.size 0)
};

// Client connections closed since the last spread tick (worker/net/spread.h).
struct CloseSample {
  uint32_t churned = 0;  // see countClosed() in worker/net/spread.h
  uint32_t kept = 0;
};

struct WorkerContext {
  uv_loop_t* loop = nullptr;
  const config::Config* config = nullptr;
  shm::Segment* segment = nullptr;
  shm::WorkerSlot* slot = nullptr;
  int index = 0;
  // Cached free blocks: enough for a few hundred exchanges in flight (HTTP/2 streams hold one
  // each), so a busy worker does not go to malloc per request.
  BufferPool buffers{1024};                         // kBufferSize: client input, heads
  BufferPool large_buffers{256, kLargeBufferSize};  // response reads
  Timers timers;
  TurnQueue turn;  // writes put off to the end of the loop turn
  std::vector<PoolRuntime> pools;
  AccessLog* access_log = nullptr;
  // The worker's handoff channel (worker/net/handoff.h); null when there is none (unit tests).
  Handoff* handoff = nullptr;
  // Graceful stop or drain for a reload: idle connections leave (handed off, or closed safely),
  // busy ones after their response.
  bool draining = false;
  uint32_t connections = 0;  // client connections open
  CloseSample closes;
  ClientConn* clients = nullptr;  // all of them, for a graceful or fast stop
  std::vector<Exchange*> free_exchanges;
  // TLS: connections whose OpenSSL session holds input to pump on the next loop turn
  // (tls_conn.cc), and the buffer ciphertext is read into.
  std::vector<ClientConn*> tls_kicks;
  uv_idle_t tls_idle{};
  bool tls_idle_ready = false;
  std::vector<char> tls_scratch;
  std::vector<http2::Stream*> h2_spare_streams;  // freed streams for reuse (session.cc)
  void (*on_connection_closed)(WorkerContext*) = nullptr;

  void count(shm::Counter c) {
    if (c == shm::Counter::kCount) {
      return;
    }
    slot->counters[static_cast<size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  }
  shm::BackendSlot& backendSlot(int pool, int backend) {
    return segment->backends[pools[pool].pool->backends[backend].slot];
  }
};

}  // namespace lb::worker
