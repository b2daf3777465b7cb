#pragma once

// Weighted random: each backend is drawn with probability weight / total weight. Draws are
// made by binary search over the cumulative weights (O(log n)); a drawn backend that cannot
// take the request is drawn again (rejection keeps the distribution exact over the rest), and
// after a few misses the draw is made over the backends that can, directly.

#include <cstdint>
#include <span>
#include <vector>

#include "worker/balancer/balancer.h"
#include "worker/balancer/hash.h"

namespace lb::worker {

class RandomBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned.
  RandomBalancer(const config::Pool& pool, shm::Segment* segment);

  void seedForTest(uint64_t seed) { rng_.seed(seed); }

 private:
  int choose(std::span<const int> exclude, const PickInput& input) override;
  void weightsChanged() override;
  // A weighted draw among the backends that are available and not excluded; -1 if none.
  int drawAmongAvailable(std::span<const int> exclude);

  std::vector<int64_t> cumulative_;  // cumulative_[i] = weights of backends 0..i
  Rng rng_;
};

}  // namespace lb::worker
