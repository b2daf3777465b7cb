// What a failed attempt means: for the backend (passive health and its circuit breaker), for the
// request (another backend, within the pool's retries and retry budget), and what a request does
// when every backend it may use is at max_connections (the pool's queue).

#include <algorithm>
#include <cstdio>

#include "shared/log/log.h"
#include "worker/health/resilience.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {

namespace {

bool listed(const std::vector<int>& statuses, int status) {
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

}  // namespace

void ClientConn::recordOutcome(int status, const char* reason) {
  Exchange* ex = ex_;
  if (!ex->attempt_open) {
    return;
  }
  ex->attempt_open = false;
  const bool probe = ex->probe;
  ex->probe = false;
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  const bool passive = pool.passive.failures > 0;
  if (!passive && !pool.circuit_breaker.enabled) {
    return;
  }
  shm::BackendSlot& slot = ctx_->backendSlot(ex->pool, ex->backend);
  const char* address = pool.backends[ex->backend].address_text.c_str();
  const uint64_t now = uv_now(ctx_->loop);
  char why[32];
  if (status != 0) {
    std::snprintf(why, sizeof why, "status %d", status);
    reason = why;
  }
  if (passive && passiveRecord(slot, pool.passive,
                               status == 0 || listed(pool.passive.statuses, status), now)) {
    LB_WARN("backend %s in pool %s is out for %u ms: %u consecutive failures (last: %s)", address,
            pool.name.c_str(), pool.passive.fail_timeout_ms, pool.passive.failures, reason);
  }
  const config::CircuitBreaker& cb = pool.circuit_breaker;
  if (!cb.enabled) {
    return;
  }
  const bool failed = status == 0 || listed(cb.statuses, status);
  switch (breaker::record(slot, cb, !failed, probe, now)) {
    case breaker::Transition::Opened:
      if (probe) {
        LB_WARN(
            "circuit breaker of backend %s in pool %s is OPEN for %u ms: a half-open probe "
            "failed (%s)",
            address, pool.name.c_str(), cb.open_ms, reason);
      } else {
        LB_WARN(
            "circuit breaker of backend %s in pool %s is OPEN for %u ms: %u consecutive "
            "failures (last: %s)",
            address, pool.name.c_str(), cb.open_ms, cb.failures, reason);
      }
      break;
    case breaker::Transition::Closed:
      LB_NOTICE("circuit breaker of backend %s in pool %s is CLOSED: %u half-open probes succeeded",
                address, pool.name.c_str(), cb.half_open_successes);
      break;
    case breaker::Transition::None:
      break;
  }
}

bool ClientConn::retryAllowed(bool sent) const {
  const Exchange* ex = ex_;
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  if (ex->attempts > pool.retries || ex->ntried >= static_cast<int>(pool.backends.size())) {
    return false;
  }
  // A body already streamed is gone (lb does not keep it); a request the backend may have
  // acted on is sent again only if doing so twice is harmless.
  return !sent || (!ex->req_has_body && idempotent(ex->req.method));
}

bool ClientConn::takeRetry() {
  const config::Pool& pool = *ctx_->pools[ex_->pool].pool;
  if (pool.slot < 0 || ctx_->segment == nullptr ||
      budgetTakeRetry(ctx_->segment->pools[pool.slot], pool.retry_budget, uv_now(ctx_->loop))) {
    return true;
  }
  LB_INFO("retry budget of pool \"%s\" is spent: the request is not retried", pool.name.c_str());
  return false;
}

void ClientConn::giveBack(int backend, bool probe) {
  if (probe) {
    breaker::abandon(ctx_->backendSlot(ex_->pool, backend));
  }
  PoolRuntime& pr = ctx_->pools[ex_->pool];
  pr.balancer->release(backend);
  if (pr.queue) {
    pr.queue->wake();
  }
}

void ClientConn::resetAttempt() {
  Exchange* ex = ex_;
  ex->up_head_sent = false;
  ex->body_ok = false;
  ex->up_iovcnt = 0;
  ex->up_nchunk = 0;
  ex->up_write_pending = false;
  ex->rbuf_start = ex->rbuf_end = 0;
  ex->rbuf_before = '\n';
  ex->resp_pause = Pause::None;
  ex->resp_kick = ex->look_valid = false;
  ex->skip_interim = false;
  ex->resp_refusal = nullptr;
  ex->up_bytes_in = false;
  ex->up_eof = false;
  ex->resp_head_done = false;
  ex->status = ex->upstream_status = 0;
  if (sm_.state() != ConnState::SelectingBackend) {
    sm_.transition(ConnState::SelectingBackend);
  }
}

bool ClientConn::retryOnStatus() {
  Exchange* ex = ex_;
  const int status = ex->resp.status_code;
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  if (pool.retry_on.empty() || !listed(pool.retry_on, status) || ex->resp_started ||
      ex->cl_write_pending || !retryAllowed(true)) {
    return false;
  }
  // The next backend first: with none left (or no budget) this response is what the client
  // gets, not a 502 of lb's.
  bool probe = false;
  const int next = pickBackend(&probe);
  if (next < 0) {
    return false;
  }
  if (!takeRetry()) {
    giveBack(next, probe);
    return false;
  }
  LB_INFO("upstream %s in pool \"%s\" answered %d, retrying on another backend",
          pool.backends[ex->backend].address_text.c_str(), pool.name.c_str(), status);
  ex->fail_status = status == 504 ? 504 : 502;
  recordOutcome(status, nullptr);
  // The rest of this response is not wanted: the connection cannot be reused.
  ex->up->close();
  ex->up = nullptr;
  releaseBackend();
  resetAttempt();
  startAttempt(next, probe);
  return true;
}

bool ClientConn::waitForBackend() {
  Exchange* ex = ex_;
  PoolRuntime& pr = ctx_->pools[ex->pool];
  const std::span<const int> tried(ex->tried, static_cast<size_t>(ex->ntried));
  if (!pr.queue || !pr.balancer->backends().anyEligibleFull(tried)) {
    leaveQueue();  // nothing to wait for (any more): every usable backend is out
    return false;
  }
  if (!ex->queue_link.queued) {
    enqueue();
  }
  return true;
}

void ClientConn::enqueue() {
  PoolRuntime& pr = ctx_->pools[ex_->pool];
  if (!pr.queue->push(&ex_->queue_link)) {
    LB_WARN("the queue of pool \"%s\" is full (%u requests): answering 503", pr.pool->name.c_str(),
            pr.queue->size());
    localResponse(503);
    return;
  }
  ctx_->timers.arm(&timer_, pr.pool->queue.timeout_ms);
}

void ClientConn::leaveQueue() {
  if (ex_ == nullptr || !ex_->queue_link.queued) {
    return;
  }
  ctx_->pools[ex_->pool].queue->remove(&ex_->queue_link);
  ctx_->timers.disarm(&timer_);
}

void ClientConn::retryQueued() {
  if (ex_ == nullptr || closing_ || !ex_->queue_link.queued) {
    return;
  }
  selectBackend();
}

}  // namespace lb::worker
