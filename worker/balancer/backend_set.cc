#include "worker/balancer/backend_set.h"

#include <algorithm>

namespace lb::worker {

bool takeConnection(shm::BackendSlot& slot, int max_connections) {
  if (max_connections <= 0) {
    slot.active.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  int32_t current = slot.active.load(std::memory_order_relaxed);
  while (current < max_connections) {
    // On failure `current` is reloaded; the loop ends when another worker filled the backend.
    if (slot.active.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void dropConnection(shm::BackendSlot& slot) {
  slot.active.fetch_sub(1, std::memory_order_relaxed);
}

bool isFull(const shm::BackendSlot& slot, int max_connections) {
  return max_connections > 0 && slot.active.load(std::memory_order_relaxed) >= max_connections;
}

BackendSet::BackendSet(const config::Pool& pool, shm::Segment* segment)
    : breaker_(&pool.circuit_breaker), slow_start_ms_(pool.slow_start_ms) {
  for (const config::Backend& b : pool.backends) {
    shm::BackendSlot* slot = nullptr;
    if (segment != nullptr && b.slot >= 0 && b.slot < static_cast<int>(shm::kMaxBackends)) {
      slot = &segment->backends[b.slot];
    }
    slots_.push_back(slot);
    max_connections_.push_back(b.max_connections);
    config_weights_.push_back(std::clamp<int64_t>(b.weight, 1, kMaxWeight));
  }
  weights_ = config_weights_;
  readWeights(monotonicMs());
}

int64_t BackendSet::active(size_t i) const {
  // A count below zero is a transient of a reused slot; it means "idle".
  return slots_[i] == nullptr
             ? 0
             : std::max<int64_t>(0, slots_[i]->active.load(std::memory_order_relaxed));
}

bool BackendSet::readWeights(uint64_t now_ms) {
  bool changed = false;
  for (size_t i = 0; i < slots_.size(); ++i) {
    uint32_t admin =
        slots_[i] == nullptr ? 0 : slots_[i]->admin_weight.load(std::memory_order_relaxed);
    int64_t w = admin > 0 ? std::min<int64_t>(admin, kMaxWeight) : config_weights_[i];
    if (slow_start_ms_ != 0 && slots_[i] != nullptr) {
      // A backend that is out already has the weight it will come back with: it may return
      // any moment, and the next refresh is up to kWeightRefreshMs away.
      const shm::BackendSlot& s = *slots_[i];
      const bool out =
          s.health.load(std::memory_order_relaxed) != static_cast<uint32_t>(shm::HealthState::Up) ||
          !passiveAvailable(s, now_ms) ||
          s.breaker_state.load(std::memory_order_relaxed) !=
              static_cast<uint32_t>(shm::BreakerState::Closed);
      const uint64_t since = out ? now_ms : slowStartSince(s, now_ms);
      w = slowStartWeight(static_cast<uint32_t>(w), since, now_ms, slow_start_ms_);
    }
    if (w != weights_[i]) {
      weights_[i] = w;
      changed = true;
    }
  }
  return changed;
}

bool BackendSet::refresh(uint64_t now_ms) {
  if (now_ms < next_refresh_ms_) {
    return false;
  }
  next_refresh_ms_ = now_ms + kWeightRefreshMs;
  return readWeights(now_ms);
}

bool BackendSet::anyEligibleFull(std::span<const int> exclude) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (eligible(i) && isFull(*slots_[i], max_connections_[i]) &&
        !contains(exclude, static_cast<int>(i))) {
      return true;
    }
  }
  return false;
}

}  // namespace lb::worker
