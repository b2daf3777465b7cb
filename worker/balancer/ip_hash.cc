#include "worker/balancer/ip_hash.h"

#include <algorithm>

#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

// nginx's ngx_http_upstream_get_ip_hash_peer gives up rehashing after 20 tries.
constexpr int kRehashes = 20;

}  // namespace

IpHashBalancer::IpHashBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment) {
  weightsChanged();
}

void IpHashBalancer::weightsChanged() {
  cumulative_.resize(set_.size());
  int64_t sum = 0;
  for (size_t i = 0; i < set_.size(); ++i) {
    sum += set_.weight(i);
    cumulative_[i] = sum;
  }
}

size_t IpHashBalancer::backendOf(uint64_t hash) const {
  const auto r = static_cast<int64_t>(boundedBy(hash, static_cast<uint64_t>(cumulative_.back())));
  return static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), r) -
                             cumulative_.begin());
}

int IpHashBalancer::choose(std::span<const int> exclude, const PickInput& input) {
  if (cumulative_.empty()) {
    return -1;
  }
  uint64_t hash = input.key_hash;
  size_t b = backendOf(hash);
  for (int i = 0; i < kRehashes; ++i) {
    if (set_.eligible(b) && !contains(exclude, static_cast<int>(b)) && set_.take(b)) {
      return static_cast<int>(b);
    }
    hash = mix64(hash + static_cast<uint64_t>(i) + 1);
    b = backendOf(hash);
  }
  // The next available backend after the last one drawn, each once.
  for (size_t step = 0; step < set_.size(); ++step) {
    const size_t i = (b + step) % set_.size();
    if (set_.eligible(i) && !contains(exclude, static_cast<int>(i)) && set_.take(i)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace lb::worker
