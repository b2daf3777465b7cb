#pragma once

// Weighted least connections over the shared `active` counts: all workers together, not per
// worker, so a backend busy with one worker's requests is avoided by every other worker too.
// Like nginx and h2o, the score of a backend is (active + 1) / weight: the +1 makes an idle
// heavy backend win over an idle light one. Equal scores are broken by the pool's shared
// round-robin counter, so idle backends alternate instead of the first one taking every request.

#include <atomic>
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

  // The lowest-scoring backend that is neither excluded nor full; its connection is taken with
  // the same compare-and-swap as round robin. If another worker fills it first, the choice is
  // made again from fresh counts, a bounded number of times. Worker loop only.
  int pick(std::span<const int> exclude) override;
  void release(int backend_index) override;

 private:
  int choose(std::span<const int> exclude);

  std::vector<shm::BackendSlot*> slots_;  // per backend; nullptr = no valid slot
  std::vector<int> max_connections_;
  std::vector<int64_t> weights_;
  std::atomic<uint64_t>* position_;          // the pool's shared rr_sequence, for ties
  std::atomic<uint64_t> local_position_{0};  // fallback when the pool has no valid slot
  // The counts one choice was made from (-1 = not a candidate), so that the tie set counted in
  // the first pass is the one indexed in the second, whatever other workers do meanwhile.
  std::vector<int64_t> snapshot_;
};

}  // namespace lb::worker
