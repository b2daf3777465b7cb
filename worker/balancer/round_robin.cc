#include "worker/balancer/round_robin.h"

#include <algorithm>
#include <numeric>

namespace lb::worker {
namespace {

static_assert(shm::kMaxBackends <= 65536, "sequence entries are uint16_t backend indices");

// Bounds the one-time cost of building a sequence (one pass over the backends per entry), which
// every worker pays at start for every round-robin pool: about 0.1 s at worst.
constexpr uint64_t kMaxSequenceWork = uint64_t{1} << 27;

// Reduced weights whose sum is the period: divided by their gcd and, for pools too large to
// precompute exactly, scaled down to fit.
std::vector<int64_t> periodWeights(std::span<const int64_t> weights) {
  std::vector<int64_t> w(weights.size());
  int64_t g = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    w[i] = std::max<int64_t>(weights[i], 1);
    g = std::gcd(g, w[i]);
  }
  int64_t sum = 0;
  for (int64_t& x : w) {
    x /= g;
    sum += x;
  }
  const uint64_t limit =
      std::min<uint64_t>(kMaxRoundRobinSequence, kMaxSequenceWork / std::max<size_t>(1, w.size()));
  if (static_cast<uint64_t>(sum) > limit) {
    for (int64_t& x : w) {
      x = std::max<int64_t>(1, x * static_cast<int64_t>(limit) / sum);
    }
  }
  return w;
}

}  // namespace

std::vector<uint16_t> smoothWeightedSequence(std::span<const int64_t> weights) {
  const std::vector<int64_t> w = periodWeights(weights);
  const int64_t total = std::accumulate(w.begin(), w.end(), int64_t{0});
  std::vector<uint16_t> sequence;
  sequence.reserve(static_cast<size_t>(total));
  std::vector<int64_t> current(w.size(), 0);
  for (int64_t step = 0; step < total; ++step) {
    // nginx: every peer gains its weight, the largest current wins (the first on a tie) and
    // pays the total back. After `total` steps every current is 0 again: one full period.
    size_t best = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      current[i] += w[i];
      if (current[i] > current[best]) {
        best = i;
      }
    }
    current[best] -= total;
    sequence.push_back(static_cast<uint16_t>(best));
  }
  return sequence;
}

std::vector<uint16_t> smoothWeightedSequence(std::span<const int> weights) {
  std::vector<int64_t> wide(weights.begin(), weights.end());
  return smoothWeightedSequence(std::span<const int64_t>(wide));
}

RoundRobinBalancer::RoundRobinBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment) {
  sequence_ = smoothWeightedSequence(set_.weights());
  tried_.assign(set_.size(), 0);
}

void RoundRobinBalancer::weightsChanged() {
  sequence_ = smoothWeightedSequence(set_.weights());
}

int RoundRobinBalancer::choose(std::span<const int> exclude, const PickInput&) {
  const size_t len = sequence_.size();
  if (len == 0) {
    return -1;
  }
  if (++epoch_ == 0) {  // wrapped: stale marks could look current
    std::fill(tried_.begin(), tried_.end(), 0);
    epoch_ = 1;
  }
  size_t untried = tried_.size();
  for (int e : exclude) {
    if (e >= 0 && static_cast<size_t>(e) < tried_.size() && tried_[e] != epoch_) {
      tried_[e] = epoch_;
      --untried;
    }
  }

  // One shared position per pick, whatever happens next: the global sequence stays exact.
  size_t pos = sharedPosition().fetch_add(1, std::memory_order_relaxed) % len;
  for (size_t step = 0; step < len && untried > 0; ++step) {
    const uint16_t b = sequence_[pos];
    pos = pos + 1 == len ? 0 : pos + 1;
    if (tried_[b] == epoch_) {
      continue;
    }
    tried_[b] = epoch_;
    --untried;
    if (set_.eligible(b) && set_.take(b)) {
      return b;
    }
  }
  return -1;
}

}  // namespace lb::worker
