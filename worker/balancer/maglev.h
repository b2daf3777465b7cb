#pragma once

// Consistent hashing with a Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4), for algorithm "hash".
//
// Every backend has a permutation of the table's entries, given by an offset and a skip that
// are two hashes of its key "pool/address"; the backends take turns claiming their next
// preferred free entry until the table is full. A request's key hash indexes the table.
//  - The table depends only on the backends' keys and weights, in config order: every worker and
//    every lb instance with the same config builds the same one, so a key goes to the same
//    backend everywhere.
//  - Adding or removing one of N backends changes little more than the 1/N of the entries
//    that must change: the refill cascades a little, more so the more backends share the
//    table. With kMaglevTableSize, about 1.0/N move for 10 backends, 1.25/N for 100, 2.7/N
//    for 500 and 6/N for 1000, the price of Maglev's even shares. The size is fixed, whatever the
//    number of backends: a size that grew with the pool would move every key when it changed.
//  - Weights: in each round the heaviest backend claims one entry and the others a share in
//    proportion to their weight (carried over between rounds), so each holds entries in
//    proportion to its weight.
// A backend that is ineligible, excluded or full keeps its entries (its keys come back when it
// does); a key that falls on one goes on to the next entries of the table until one holds a
// backend that can take it.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "worker/balancer/balancer.h"

namespace lb::worker {

// A prime, as the paper requires; 512 KiB per pool and worker, built in about 10 ms.
inline constexpr uint32_t kMaglevTableSize = 262139;

// The table for backends with these keys and weights (values below 1 count as 1): entry ->
// index into `keys`. Empty when there are no keys. Deterministic; allocates.
std::vector<uint16_t> buildMaglevTable(std::span<const std::string> keys,
                                       std::span<const int64_t> weights,
                                       uint32_t size = kMaglevTableSize);

class MaglevBalancer final : public Balancer {
 public:
  // `pool` and `segment` must outlive the balancer; slots must be assigned.
  MaglevBalancer(const config::Pool& pool, shm::Segment* segment);

  std::span<const uint16_t> tableForTest() const { return table_; }

 private:
  // The entry of input.key_hash, or, for a request without a key, the next entry of the
  // pool's shared counter; then the following entries, each backend tried at most once.
  int choose(std::span<const int> exclude, const PickInput& input) override;
  // A weight the operator set changes each backend's share: the table is rebuilt.
  void weightsChanged() override;

  std::vector<std::string> keys_;
  std::vector<uint16_t> table_;
  std::vector<uint32_t> tried_;  // as in RoundRobinBalancer
  uint32_t epoch_ = 0;
};

}  // namespace lb::worker
