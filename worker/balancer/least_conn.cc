#include "worker/balancer/least_conn.h"

#include <algorithm>

#include "worker/balancer/round_robin.h"

namespace lb::worker {
namespace {

// A lost race means another worker filled the chosen backend in the few instructions between
// reading its count and taking the connection; a handful of fresh choices is plenty.
constexpr int kMaxAttempts = 8;

bool contains(std::span<const int> list, int value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

LeastConnBalancer::LeastConnBalancer(const config::Pool& pool, shm::Segment* segment) {
  for (const config::Backend& b : pool.backends) {
    shm::BackendSlot* slot = nullptr;
    if (segment != nullptr && b.slot >= 0 && b.slot < static_cast<int>(shm::kMaxBackends)) {
      slot = &segment->backends[b.slot];
    }
    slots_.push_back(slot);
    max_connections_.push_back(b.max_connections);
    weights_.push_back(std::max(b.weight, 1));
  }
  snapshot_.assign(slots_.size(), -1);
  position_ = &local_position_;
  if (segment != nullptr && pool.slot >= 0 && pool.slot < static_cast<int>(shm::kMaxPools)) {
    position_ = &segment->pools[pool.slot].rr_sequence;
  }
}

int LeastConnBalancer::choose(std::span<const int> exclude) {
  // Pass 1: the best score and how many backends share it. Scores compare by cross-multiplying
  // (a+1)/w_a < (b+1)/w_b  <=>  (a+1)*w_b < (b+1)*w_a, exact in 64 bits.
  int best = -1;
  int ties = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    snapshot_[i] = -1;
    if (slots_[i] == nullptr || contains(exclude, static_cast<int>(i))) {
      continue;
    }
    // A count below zero is a transient of a reused slot; it means "idle".
    const int64_t active = std::max<int32_t>(0, slots_[i]->active.load(std::memory_order_relaxed));
    if (max_connections_[i] > 0 && active >= max_connections_[i]) {
      continue;
    }
    snapshot_[i] = active;
    if (best < 0) {
      best = static_cast<int>(i);
      ties = 1;
      continue;
    }
    const int64_t lhs = (active + 1) * weights_[best];
    const int64_t rhs = (snapshot_[best] + 1) * weights_[i];
    if (lhs < rhs) {
      best = static_cast<int>(i);
      ties = 1;
    } else if (lhs == rhs) {
      ++ties;
    }
  }
  if (ties <= 1) {
    return best;
  }
  // Pass 2: the k-th of the tied backends, k drawn from the shared counter.
  uint64_t k = position_->fetch_add(1, std::memory_order_relaxed) % static_cast<uint64_t>(ties);
  for (size_t i = static_cast<size_t>(best); i < slots_.size(); ++i) {
    if (snapshot_[i] >= 0 &&
        (snapshot_[i] + 1) * weights_[best] == (snapshot_[best] + 1) * weights_[i]) {
      if (k-- == 0) {
        return static_cast<int>(i);
      }
    }
  }
  return best;  // not reached: pass 1 counted `ties` of them from `best` on
}

int LeastConnBalancer::pick(std::span<const int> exclude) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const int b = choose(exclude);
    if (b < 0) {
      return -1;
    }
    if (takeConnection(*slots_[b], max_connections_[b])) {
      return b;
    }
  }
  return -1;
}

void LeastConnBalancer::release(int backend_index) {
  if (backend_index >= 0 && static_cast<size_t>(backend_index) < slots_.size() &&
      slots_[backend_index] != nullptr) {
    dropConnection(*slots_[backend_index]);
  }
}

}  // namespace lb::worker
