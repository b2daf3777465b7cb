#include "worker/balancer/least_time.h"

#include <limits>

#include "worker/balancer/ewma.h"

namespace lb::worker {
namespace {

constexpr int kMaxAttempts = 8;
constexpr uint64_t kNotCandidate = std::numeric_limits<uint64_t>::max();

// cost_a / w_a against cost_b / w_b, exactly: costs reach 2^60 and weights 2^10.
int compareScores(uint64_t cost_a, int64_t w_a, uint64_t cost_b, int64_t w_b) {
  const auto lhs = static_cast<unsigned __int128>(cost_a) * static_cast<uint64_t>(w_b);
  const auto rhs = static_cast<unsigned __int128>(cost_b) * static_cast<uint64_t>(w_a);
  return lhs < rhs ? -1 : lhs > rhs ? 1 : 0;
}

}  // namespace

LeastTimeBalancer::LeastTimeBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment) {
  snapshot_.assign(set_.size(), kNotCandidate);
}

void LeastTimeBalancer::recordResponse(int backend_index, uint64_t micros, uint64_t now_ms) {
  if (backend_index >= 0 && static_cast<size_t>(backend_index) < set_.size()) {
    if (shm::BackendSlot* slot = set_.slot(static_cast<size_t>(backend_index))) {
      recordResponseTime(*slot, micros, now_ms, false);
    }
  }
}

int LeastTimeBalancer::best(std::span<const int> exclude) {
  const uint64_t now = set_.now();
  int best = -1;
  int ties = 0;
  for (size_t i = 0; i < set_.size(); ++i) {
    snapshot_[i] = kNotCandidate;
    if (!set_.eligible(i) || contains(exclude, static_cast<int>(i))) {
      continue;
    }
    const int64_t active = set_.active(i);
    if (set_.maxConnections(i) > 0 && active >= set_.maxConnections(i)) {
      continue;
    }
    snapshot_[i] = loadCost(*set_.slot(i), active, now);
    if (best < 0) {
      best = static_cast<int>(i);
      ties = 1;
      continue;
    }
    int c = compareScores(snapshot_[i], set_.weight(i), snapshot_[best], set_.weight(best));
    if (c < 0) {
      best = static_cast<int>(i);
      ties = 1;
    } else if (c == 0) {
      ++ties;
    }
  }
  if (ties <= 1) {
    return best;
  }
  uint64_t k =
      sharedPosition().fetch_add(1, std::memory_order_relaxed) % static_cast<uint64_t>(ties);
  for (size_t i = static_cast<size_t>(best); i < set_.size(); ++i) {
    if (snapshot_[i] != kNotCandidate &&
        compareScores(snapshot_[i], set_.weight(i), snapshot_[best], set_.weight(best)) == 0) {
      if (k-- == 0) {
        return static_cast<int>(i);
      }
    }
  }
  return best;
}

int LeastTimeBalancer::choose(std::span<const int> exclude, const PickInput&) {
  return set_.takeChosen(kMaxAttempts, [&] { return best(exclude); });
}

}  // namespace lb::worker
