#include "worker/balancer/least_conn.h"

namespace lb::worker {
namespace {

// A lost race means another worker filled the chosen backend in the few instructions between
// reading its count and taking the connection; a handful of fresh choices is plenty.
constexpr int kMaxAttempts = 8;

}  // namespace

LeastConnBalancer::LeastConnBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment) {
  snapshot_.assign(set_.size(), -1);
}

int LeastConnBalancer::best(std::span<const int> exclude) {
  // Pass 1: the best score and how many backends share it. Scores compare by cross-multiplying
  // (a+1)/w_a < (b+1)/w_b  <=>  (a+1)*w_b < (b+1)*w_a, exact in 64 bits.
  int best = -1;
  int ties = 0;
  for (size_t i = 0; i < set_.size(); ++i) {
    snapshot_[i] = -1;
    if (!set_.eligible(i) || contains(exclude, static_cast<int>(i))) {
      continue;
    }
    const int64_t active = set_.active(i);
    if (set_.maxConnections(i) > 0 && active >= set_.maxConnections(i)) {
      continue;
    }
    snapshot_[i] = active;
    if (best < 0) {
      best = static_cast<int>(i);
      ties = 1;
      continue;
    }
    const int64_t lhs = (active + 1) * set_.weight(best);
    const int64_t rhs = (snapshot_[best] + 1) * set_.weight(i);
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
  uint64_t k =
      sharedPosition().fetch_add(1, std::memory_order_relaxed) % static_cast<uint64_t>(ties);
  for (size_t i = static_cast<size_t>(best); i < set_.size(); ++i) {
    if (snapshot_[i] >= 0 &&
        (snapshot_[i] + 1) * set_.weight(best) == (snapshot_[best] + 1) * set_.weight(i)) {
      if (k-- == 0) {
        return static_cast<int>(i);
      }
    }
  }
  return best;  // not reached: pass 1 counted `ties` of them from `best` on
}

int LeastConnBalancer::choose(std::span<const int> exclude, const PickInput&) {
  return set_.takeChosen(kMaxAttempts, [&] { return best(exclude); });
}

}  // namespace lb::worker
