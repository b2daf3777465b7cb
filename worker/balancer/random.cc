#include "worker/balancer/random.h"

#include <algorithm>

namespace lb::worker {
namespace {

// Plain draws before drawing among the available backends only (an O(n) pass).
constexpr int kDraws = 4;

}  // namespace

RandomBalancer::RandomBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment), rng_(randomSeed()) {
  weightsChanged();
}

void RandomBalancer::weightsChanged() {
  cumulative_.resize(set_.size());
  int64_t sum = 0;
  for (size_t i = 0; i < set_.size(); ++i) {
    sum += set_.weight(i);
    cumulative_[i] = sum;
  }
}

int RandomBalancer::drawAmongAvailable(std::span<const int> exclude) {
  int64_t total = 0;
  for (size_t i = 0; i < set_.size(); ++i) {
    if (set_.available(i) && !contains(exclude, static_cast<int>(i))) {
      total += set_.weight(i);
    }
  }
  if (total == 0) {
    return -1;
  }
  auto r = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(total)));
  for (size_t i = 0; i < set_.size(); ++i) {
    if (set_.available(i) && !contains(exclude, static_cast<int>(i))) {
      r -= set_.weight(i);
      if (r < 0) {
        return static_cast<int>(i);
      }
    }
  }
  return -1;  // the availability changed between the two passes
}

int RandomBalancer::choose(std::span<const int> exclude, const PickInput&) {
  if (cumulative_.empty()) {
    return -1;
  }
  const auto total = static_cast<uint64_t>(cumulative_.back());
  for (int i = 0; i < kDraws; ++i) {
    const auto r = static_cast<int64_t>(rng_.below(total));
    const auto b = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), r) -
                                       cumulative_.begin());
    if (set_.eligible(b) && !contains(exclude, static_cast<int>(b)) && set_.take(b)) {
      return static_cast<int>(b);
    }
  }
  return set_.takeChosen(kDraws, [&] { return drawAmongAvailable(exclude); });
}

}  // namespace lb::worker
