#pragma once

// Weighted least connections over the shared `active` counts: all workers together, not per
// worker, so a backend busy with one worker's requests is avoided by every other worker too.
// Like nginx and h2o, the score of a backend is (active + 1) / weight: the +1 makes an idle
// heavy backend win over an idle light one. Equal scores are broken by the pool's shared
// round-robin counter, so idle backends alternate instead of the first one taking every request.

#include <cstdint>
#include <span>
#include <vector>

#include "worker/balancer/balancer.h"

namespace lb::worker {

class LeastConnBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned (a backend whose
  // slot is out of range is never picked).
  LeastConnBalancer(const config::Pool& pool, shm::Segment* segment);

 private:
  // The lowest-scoring eligible backend that is neither excluded nor full; its connection is
  // taken with the same compare-and-swap as round robin. If another worker fills it first, the
  // choice is made again from fresh counts, a bounded number of times.
  int choose(std::span<const int> exclude, const PickInput& input) override;
  int best(std::span<const int> exclude);

  // The counts one choice was made from (-1 = not a candidate), so that the tie set counted in
  // the first pass is the one indexed in the second, whatever other workers do meanwhile.
  std::vector<int64_t> snapshot_;
};

}  // namespace lb::worker
