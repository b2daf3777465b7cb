#pragma once

// ip_hash, as nginx does it: the hash of the client's address (PickInput::key_hash; for IPv4
// only its first three octets, see request_key.h) chooses a backend in proportion to the
// weights. A backend that cannot take the request makes the hash go round again, up to 20
// times; then the next backend in order that can is taken. Every worker and every lb instance
// with the same backends sends an address to the same backend, but adding or removing a backend
// moves most addresses (algorithm "hash" with hash_key "client" moves about 1/N).

#include <cstdint>
#include <span>
#include <vector>

#include "worker/balancer/balancer.h"

namespace lb::worker {

class IpHashBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned.
  IpHashBalancer(const config::Pool& pool, shm::Segment* segment);

 private:
  int choose(std::span<const int> exclude, const PickInput& input) override;
  void weightsChanged() override;
  // The backend a hash falls on, by weight.
  size_t backendOf(uint64_t hash) const;

  std::vector<int64_t> cumulative_;  // cumulative_[i] = weights of backends 0..i
};

}  // namespace lb::worker
