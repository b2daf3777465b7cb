#include "worker/health/resilience.h"

#include <time.h>

#include <algorithm>

namespace lb::worker {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

shm::BreakerState stateOf(const shm::BackendSlot& s) {
  return static_cast<shm::BreakerState>(s.breaker_state.load(std::memory_order_acquire));
}

bool casState(shm::BackendSlot& s, shm::BreakerState from, shm::BreakerState to) {
  auto expected = static_cast<uint32_t>(from);
  return s.breaker_state.compare_exchange_strong(expected, static_cast<uint32_t>(to),
                                                 std::memory_order_acq_rel);
}

// Open -> HalfOpen once open_ms passed; whoever wins the swap starts the success count. Probes
// still in flight from an earlier half-open period keep their places until they report.
void maybeHalfOpen(shm::BackendSlot& s, const config::CircuitBreaker& cfg, uint64_t now_ms) {
  if (stateOf(s) == shm::BreakerState::Open &&
      now_ms >= s.breaker_opened_ms.load(kRelaxed) + cfg.open_ms &&
      casState(s, shm::BreakerState::Open, shm::BreakerState::HalfOpen)) {
    s.half_open_successes.store(0, kRelaxed);
  }
}

// Gives a probe place back, never below zero (a counter that wrapped would block probes).
void releaseProbe(shm::BackendSlot& s) {
  uint32_t n = s.half_open_inflight.load(kRelaxed);
  while (n > 0 && !s.half_open_inflight.compare_exchange_weak(n, n - 1, kRelaxed)) {
  }
}

void open(shm::BackendSlot& s, uint64_t now_ms) {
  s.breaker_opened_ms.store(now_ms, kRelaxed);
  s.breaker_fails.store(0, kRelaxed);
}

}  // namespace

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

bool passiveAvailable(const shm::BackendSlot& s, uint64_t now_ms) {
  return now_ms >= s.passive_until_ms.load(kRelaxed);
}

bool passiveRecord(shm::BackendSlot& s, const config::PassiveHealth& cfg, bool failed,
                   uint64_t now_ms) {
  if (cfg.failures == 0) {
    return false;
  }
  if (!failed) {
    if (s.passive_fails.load(kRelaxed) != 0) {
      s.passive_fails.store(0, kRelaxed);
    }
    return false;
  }
  uint32_t n = s.passive_fails.fetch_add(1, kRelaxed) + 1;
  if (n < cfg.failures) {
    return false;
  }
  // Exactly one worker sees the count reach the threshold and takes the backend out.
  uint32_t expected = n;
  if (!s.passive_fails.compare_exchange_strong(expected, 0, kRelaxed)) {
    return false;
  }
  s.passive_until_ms.store(now_ms + cfg.fail_timeout_ms, kRelaxed);
  return true;
}

namespace breaker {

bool available(const shm::BackendSlot& s, const config::CircuitBreaker& cfg, uint64_t now_ms) {
  if (!cfg.enabled) {
    return true;
  }
  switch (stateOf(s)) {
    case shm::BreakerState::Closed:
      return true;
    case shm::BreakerState::Open:
      return now_ms >= s.breaker_opened_ms.load(kRelaxed) + cfg.open_ms;
    case shm::BreakerState::HalfOpen:
      return s.half_open_inflight.load(kRelaxed) < cfg.half_open_probes;
  }
  return true;
}

Admit admit(shm::BackendSlot& s, const config::CircuitBreaker& cfg, uint64_t now_ms) {
  if (!cfg.enabled) {
    return Admit::Yes;
  }
  maybeHalfOpen(s, cfg, now_ms);
  switch (stateOf(s)) {
    case shm::BreakerState::Closed:
      return Admit::Yes;
    case shm::BreakerState::Open:
      return Admit::No;
    case shm::BreakerState::HalfOpen:
      if (s.half_open_inflight.fetch_add(1, kRelaxed) < cfg.half_open_probes) {
        return Admit::Probe;
      }
      releaseProbe(s);
      return Admit::No;
  }
  return Admit::Yes;
}

Transition record(shm::BackendSlot& s, const config::CircuitBreaker& cfg, bool success, bool probe,
                  uint64_t now_ms) {
  if (!cfg.enabled) {
    return Transition::None;
  }
  if (probe) {
    releaseProbe(s);
    if (!success) {
      open(s, now_ms);
      return casState(s, shm::BreakerState::HalfOpen, shm::BreakerState::Open) ? Transition::Opened
                                                                               : Transition::None;
    }
    if (s.half_open_successes.fetch_add(1, kRelaxed) + 1 >= cfg.half_open_successes &&
        casState(s, shm::BreakerState::HalfOpen, shm::BreakerState::Closed)) {
      s.breaker_fails.store(0, kRelaxed);
      s.recovered_ms.store(now_ms, kRelaxed);
      return Transition::Closed;
    }
    return Transition::None;
  }
  if (stateOf(s) != shm::BreakerState::Closed) {
    return Transition::None;  // sent before it opened: the breaker already knows
  }
  if (success) {
    if (s.breaker_fails.load(kRelaxed) != 0) {
      s.breaker_fails.store(0, kRelaxed);
    }
    return Transition::None;
  }
  if (s.breaker_fails.fetch_add(1, kRelaxed) + 1 < cfg.failures) {
    return Transition::None;
  }
  if (!casState(s, shm::BreakerState::Closed, shm::BreakerState::Open)) {
    return Transition::None;  // another worker opened it first
  }
  open(s, now_ms);
  return Transition::Opened;
}

void abandon(shm::BackendSlot& s) {
  releaseProbe(s);
}

}  // namespace breaker

namespace {

void rollWindow(shm::PoolSlot& p, const config::RetryBudget& cfg, uint64_t now_ms) {
  uint64_t start = p.budget_window_ms.load(kRelaxed);
  if (now_ms - start < cfg.window_ms) {
    return;
  }
  if (p.budget_window_ms.compare_exchange_strong(start, now_ms, kRelaxed)) {
    p.budget_requests.store(0, kRelaxed);
    p.budget_retries.store(0, kRelaxed);
  }
}

}  // namespace

void budgetCountRequest(shm::PoolSlot& p, const config::RetryBudget& cfg, uint64_t now_ms) {
  rollWindow(p, cfg, now_ms);
  p.budget_requests.fetch_add(1, kRelaxed);
}

bool budgetTakeRetry(shm::PoolSlot& p, const config::RetryBudget& cfg, uint64_t now_ms) {
  rollWindow(p, cfg, now_ms);
  uint64_t allowed = cfg.min_retries + p.budget_requests.load(kRelaxed) * cfg.percent / 100;
  if (p.budget_retries.fetch_add(1, kRelaxed) < allowed) {
    return true;
  }
  p.budget_retries.fetch_sub(1, kRelaxed);
  return false;
}

uint32_t slowStartWeight(uint32_t weight, uint64_t since_ms, uint64_t now_ms,
                         uint32_t slow_start_ms) {
  if (slow_start_ms == 0 || since_ms == 0 || now_ms >= since_ms + slow_start_ms) {
    return weight;
  }
  uint64_t elapsed = now_ms > since_ms ? now_ms - since_ms : 0;
  uint64_t floor = std::max<uint64_t>(1, weight / 10);
  uint64_t w = floor + (weight - floor) * elapsed / slow_start_ms;
  return static_cast<uint32_t>(std::clamp<uint64_t>(w, 1, weight));
}

uint64_t slowStartSince(const shm::BackendSlot& s, uint64_t now_ms) {
  uint64_t since = s.recovered_ms.load(kRelaxed);
  uint64_t passive_end = s.passive_until_ms.load(kRelaxed);
  return passive_end <= now_ms ? std::max(since, passive_end) : since;
}

}  // namespace lb::worker
