#pragma once

// Peak EWMA with the power of two choices (Finagle's and Linkerd's load balancer): draw two
// distinct eligible backends at random, send the request to the one with the lower
// loadCost() / weight (ewma.h: the response-time average times the requests in flight + 1).
// The average is peak-sensitive: a response slower than it replaces it at once, so a backend
// that slows down is avoided from its first slow answer, and it decays back while unused.
// Two random candidates instead of a full scan keep a pick O(1) at any pool size and keep the
// workers, which read the same shared costs, from all herding onto the one best backend.

#include <cstdint>
#include <span>

#include "worker/balancer/balancer.h"
#include "worker/balancer/hash.h"

namespace lb::worker {

class PeakEwmaBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned.
  PeakEwmaBalancer(const config::Pool& pool, shm::Segment* segment);

  bool wantsResponseTimes() const override { return true; }
  void recordResponse(int backend_index, uint64_t micros, uint64_t now_ms) override;

  void seedForTest(uint64_t seed) { rng_.seed(seed); }

 private:
  // Up to kDraws pairs are drawn; a candidate that is excluded or ineligible is drawn again.
  // When draws keep missing (most backends unavailable), the cheapest of all available
  // backends is taken instead.
  int choose(std::span<const int> exclude, const PickInput& input) override;
  // A random backend that may take the request, or -1 after a few misses.
  int draw(std::span<const int> exclude, int other);
  int cheapest(std::span<const int> exclude);
  // cost(a) / w(a) < cost(b) / w(b).
  bool cheaper(int a, int b) const;

  Rng rng_;
};

}  // namespace lb::worker
