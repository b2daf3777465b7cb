#pragma once

// Smooth weighted round robin (nginx's ngx_http_upstream_get_peer), exact across workers.
//
// nginx keeps the smooth-WRR state per worker, so with N workers each one runs its own sequence
// and the global order is only right on average. lb precomputes one period of the sequence and
// lets every worker draw its position from the pool's shared `rr_sequence` counter: together
// the workers walk the one global sequence, pick by pick.

#include <cstdint>
#include <span>
#include <vector>

#include "worker/balancer/balancer.h"

namespace lb::worker {

// Upper bound of a precomputed sequence (entries are uint16_t: 2 MiB per pool at most).
inline constexpr size_t kMaxRoundRobinSequence = size_t{1} << 20;

// One period of nginx's smooth weighted round robin over `weights` (values below 1 count as 1):
// backend indices in pick order. Weights are first divided by their gcd, which leaves the order
// unchanged (5,1,1 -> a,a,b,a,c,a,a; 10,2,2 gives the same seven). The period is the sum of the
// reduced weights, unless that or its computation (sum x backends) would be too large: then
// the weights are scaled down proportionally and the ratios become approximate. Real pools stay
// exact: any sum up to 1,048,576 with up to 128 backends.
std::vector<uint16_t> smoothWeightedSequence(std::span<const int64_t> weights);
std::vector<uint16_t> smoothWeightedSequence(std::span<const int> weights);

class RoundRobinBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned (a backend whose
  // slot is out of range is never picked).
  RoundRobinBalancer(const config::Pool& pool, shm::Segment* segment);

  std::span<const uint16_t> sequenceForTest() const { return sequence_; }

 private:
  // Takes sequence[n % len] for the next shared position n; when that backend is excluded,
  // ineligible or full, tries the following positions, each backend at most once.
  int choose(std::span<const int> exclude, const PickInput& input) override;
  // The sequence follows the weights in force: rebuilt when the operator changes one.
  void weightsChanged() override;

  std::vector<uint16_t> sequence_;
  // Backends already tried in the current pick: tried_[i] == epoch_. Saves clearing per pick.
  std::vector<uint32_t> tried_;
  uint32_t epoch_ = 0;
};

}  // namespace lb::worker
