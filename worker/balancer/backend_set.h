#pragma once

// One pool's backends as every balancer sees them: their shared-memory slots, which of them may
// take a new request now, their effective weights, and the connection accounting against
// max_connections. The rules here are the same for every algorithm, so an algorithm only
// decides the order in which it offers backends.

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "worker/health/resilience.h"

namespace lb::worker {

// Takes one connection on `slot`: increments `active` unless that would pass `max_connections`
// (0 or less = unlimited). Correct under races with other workers: the count never exceeds the
// limit. Returns false when the backend is full.
bool takeConnection(shm::BackendSlot& slot, int max_connections);
// Gives back a connection taken by takeConnection().
void dropConnection(shm::BackendSlot& slot);
// True when `slot` cannot take a connection right now. A racy hint for skipping; only
// takeConnection() decides.
bool isFull(const shm::BackendSlot& slot, int max_connections);

// True when the operator, the health checks and the failure rules let `slot` take new requests:
// enabled (not draining, not disabled), not down, not out after consecutive failures (passive
// health), and its circuit breaker not open (`breaker` of its pool; `now_ms` is when the
// request is being balanced, CLOCK_MONOTONIC ms). Connections in flight are not counted here
// (see takeConnection). Relaxed loads: a change made by another process shows up within a
// request or two.
inline bool isEligible(const shm::BackendSlot& slot, const config::CircuitBreaker& breaker,
                       uint64_t now_ms) {
  return slot.admin_state.load(std::memory_order_relaxed) ==
             static_cast<uint32_t>(shm::AdminState::Enabled) &&
         slot.health.load(std::memory_order_relaxed) ==
             static_cast<uint32_t>(shm::HealthState::Up) &&
         passiveAvailable(slot, now_ms) && breaker::available(slot, breaker, now_ms);
}

// How often a balancer re-reads the weights an operator set (BackendSlot::admin_weight).
inline constexpr uint64_t kWeightRefreshMs = 100;
// The range of weights, configured or set at run time (a larger admin_weight counts as this).
inline constexpr int64_t kMaxWeight = 1000;

class BackendSet {
 public:
  // `pool` and `segment` must outlive the set; a backend whose slot is out of range (or a null
  // segment) is never eligible.
  BackendSet(const config::Pool& pool, shm::Segment* segment);

  size_t size() const { return slots_.size(); }
  shm::BackendSlot* slot(size_t i) const { return slots_[i]; }
  int maxConnections(size_t i) const { return max_connections_[i]; }
  // The weight in force: the operator's admin_weight when set, else the configured one, ramped
  // up by slow start while the backend is coming back, as of the last refresh().
  int64_t weight(size_t i) const { return weights_[i]; }
  std::span<const int64_t> weights() const { return weights_; }
  // Connections in use on backend i, all workers together (never below 0).
  int64_t active(size_t i) const;

  // The time of the request being balanced; eligible() and passive health judge by it.
  void setNow(uint64_t now_ms) { now_ms_ = now_ms; }
  uint64_t now() const { return now_ms_; }
  // Backend i may take a new request (isEligible); a racy hint, except that an ineligible
  // backend is never taken by an algorithm.
  bool eligible(size_t i) const {
    return slots_[i] != nullptr && isEligible(*slots_[i], *breaker_, now_ms_);
  }
  // Eligible and, as far as a racy read tells, not at max_connections.
  bool available(size_t i) const { return eligible(i) && !isFull(*slots_[i], max_connections_[i]); }
  // takeConnection() on backend i; false if it has no slot or is full.
  bool take(size_t i) {
    return slots_[i] != nullptr && takeConnection(*slots_[i], max_connections_[i]);
  }
  // Takes a connection on the backend `candidate()` names (-1: none can take it). Another
  // worker may take the last connection between the choice and the take, so the choice is made
  // again, up to `attempts` times. Returns the backend, or -1.
  template <typename Candidate>
  int takeChosen(int attempts, Candidate&& candidate) {
    for (int attempt = 0; attempt < attempts; ++attempt) {
      const int b = candidate();
      if (b < 0) {
        return -1;
      }
      if (take(static_cast<size_t>(b))) {
        return b;
      }
    }
    return -1;
  }
  void drop(size_t i) {
    if (i < slots_.size() && slots_[i] != nullptr) {
      dropConnection(*slots_[i]);
    }
  }

  // Re-reads every admin_weight (and the slow start of backends coming back) when
  // kWeightRefreshMs have passed since the last time (the first call always does). True if
  // some effective weight changed. No allocation.
  bool refresh(uint64_t now_ms);

  // True if some backend outside `exclude` is eligible but, as far as a racy read tells, at
  // max_connections: a request that found no backend may wait for one (the pool's queue).
  bool anyEligibleFull(std::span<const int> exclude) const;

 private:
  // Sets weights_ from the admin weights and slow start at `now_ms`; true if one changed.
  bool readWeights(uint64_t now_ms);

  std::vector<shm::BackendSlot*> slots_;  // per backend; nullptr = no valid slot
  std::vector<int> max_connections_;
  std::vector<int64_t> config_weights_;
  std::vector<int64_t> weights_;
  const config::CircuitBreaker* breaker_;
  uint32_t slow_start_ms_;
  uint64_t now_ms_ = 0;
  uint64_t next_refresh_ms_ = 0;
};

// True if `list` holds `value` (the backends a request already tried: a handful at most).
inline bool contains(std::span<const int> list, int value) {
  for (int v : list) {
    if (v == value) {
      return true;
    }
  }
  return false;
}

}  // namespace lb::worker
