#include "worker/balancer/balancer.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "worker/balancer/hash.h"
#include "worker/balancer/ip_hash.h"
#include "worker/balancer/least_conn.h"
#include "worker/balancer/least_time.h"
#include "worker/balancer/maglev.h"
#include "worker/balancer/peak_ewma.h"
#include "worker/balancer/random.h"
#include "worker/balancer/round_robin.h"

namespace lb::worker {
namespace {

// Sticky ids hash with their own seed, so an id is not also a Maglev permutation input.
constexpr uint64_t kStickySeed = 0x5717c4;

}  // namespace

std::string backendKey(const config::Pool& pool, const config::Backend& backend) {
  return pool.name + "/" + backend.address_text;
}

uint64_t randomSeed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(seed))) {
    return seed;
  }
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return mix64(static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 30) ^
               (static_cast<uint64_t>(::getpid()) << 48));
}

Balancer::Balancer(const config::Pool& pool, shm::Segment* segment) : set_(pool, segment) {
  for (size_t i = 0; i < pool.backends.size(); ++i) {
    uint64_t id = hash64(backendKey(pool, pool.backends[i]), kStickySeed);
    sticky_ids_.push_back(id);
    by_id_.emplace_back(id, static_cast<int>(i));
  }
  std::sort(by_id_.begin(), by_id_.end());
  position_ = &local_position_;
  if (segment != nullptr && pool.slot >= 0 && pool.slot < static_cast<int>(shm::kMaxPools)) {
    position_ = &segment->pools[pool.slot].rr_sequence;
  }
}

int Balancer::stickyBackend(uint64_t id) const {
  auto it = std::lower_bound(by_id_.begin(), by_id_.end(), std::pair<uint64_t, int>(id, -1));
  return it != by_id_.end() && it->first == id ? it->second : -1;
}

int Balancer::pick(std::span<const int> exclude, const PickInput& input) {
  set_.setNow(input.now_ms);
  if (set_.refresh(input.now_ms)) {
    weightsChanged();
  }
  const int sticky = input.sticky;
  if (sticky >= 0 && static_cast<size_t>(sticky) < set_.size() && !contains(exclude, sticky) &&
      set_.eligible(static_cast<size_t>(sticky)) && set_.take(static_cast<size_t>(sticky))) {
    return sticky;
  }
  return choose(exclude, input);
}

BalancerPtr makeBalancer(const config::Pool& pool, shm::Segment* segment) {
  switch (pool.algorithm) {
    case config::Algorithm::LeastConn:
      return std::make_unique<LeastConnBalancer>(pool, segment);
    case config::Algorithm::LeastTime:
      return std::make_unique<LeastTimeBalancer>(pool, segment);
    case config::Algorithm::PeakEwma:
      return std::make_unique<PeakEwmaBalancer>(pool, segment);
    case config::Algorithm::Random:
      return std::make_unique<RandomBalancer>(pool, segment);
    case config::Algorithm::IpHash:
      return std::make_unique<IpHashBalancer>(pool, segment);
    case config::Algorithm::Hash:
      return std::make_unique<MaglevBalancer>(pool, segment);
    case config::Algorithm::RoundRobin:
      break;
  }
  return std::make_unique<RoundRobinBalancer>(pool, segment);
}

}  // namespace lb::worker
