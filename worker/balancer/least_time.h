#pragma once

// Weighted least response time: the backend whose recent responses came fastest, relative to
// its weight. The score is loadCost() / weight (ewma.h): the response-time average kept in shared
// memory, decayed while the backend gets no requests, times (active + 1) so that under
// concurrency the fastest backend does not take every request at once. Unmeasured backends are
// tried first. Equal scores take turns through the pool's shared counter, as in least_conn.

#include <cstdint>
#include <span>
#include <vector>

#include "worker/balancer/balancer.h"

namespace lb::worker {

class LeastTimeBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned.
  LeastTimeBalancer(const config::Pool& pool, shm::Segment* segment);

  bool wantsResponseTimes() const override { return true; }
  // Plain EWMA (no peak): one slow response among fast ones moves the average by 1/16.
  void recordResponse(int backend_index, uint64_t micros, uint64_t now_ms) override;

 private:
  // The lowest score among eligible, not excluded, not full backends; retried a bounded number
  // of times when another worker fills the chosen one first.
  int choose(std::span<const int> exclude, const PickInput& input) override;
  int best(std::span<const int> exclude);

  // The costs one choice was made from (kNotCandidate = skipped), as in least_conn.
  std::vector<uint64_t> snapshot_;
};

}  // namespace lb::worker
