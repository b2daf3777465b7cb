#include "worker/balancer/maglev.h"

#include <algorithm>

#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

static_assert(shm::kMaxBackends < 65535, "entries are uint16_t backend indices");

constexpr uint16_t kEmpty = 0xffff;
// The two hashes of a backend key: where its permutation starts and how it steps.
constexpr uint64_t kOffsetSeed = 0x6d61676c6576;  // "maglev"
constexpr uint64_t kSkipSeed = 0x736b6970;        // "skip"

}  // namespace

std::vector<uint16_t> buildMaglevTable(std::span<const std::string> keys,
                                       std::span<const int64_t> weights, uint32_t size) {
  const size_t n = keys.size();
  if (n == 0 || size < 2) {
    return {};
  }
  std::vector<uint64_t> offset(n);
  std::vector<uint64_t> skip(n);
  std::vector<int64_t> weight(n);
  for (size_t i = 0; i < n; ++i) {
    offset[i] = hash64(keys[i], kOffsetSeed) % size;
    skip[i] = hash64(keys[i], kSkipSeed) % (size - 1) + 1;
    weight[i] = std::max<int64_t>(i < weights.size() ? weights[i] : 1, 1);
  }
  const int64_t heaviest = *std::max_element(weight.begin(), weight.end());
  std::vector<uint64_t> next(n, 0);
  std::vector<int64_t> credit(n, 0);
  std::vector<uint16_t> table(size, kEmpty);
  uint32_t filled = 0;
  for (;;) {
    for (size_t i = 0; i < n; ++i) {
      credit[i] += weight[i];
      while (credit[i] >= heaviest) {
        credit[i] -= heaviest;
        // The permutation visits every entry (size is prime, skip in [1, size)), and the table
        // is not full, so this ends.
        uint64_t c = 0;
        do {
          c = (offset[i] + next[i] * skip[i]) % size;
          ++next[i];
        } while (table[c] != kEmpty);
        table[c] = static_cast<uint16_t>(i);
        if (++filled == size) {
          return table;
        }
      }
    }
  }
}

MaglevBalancer::MaglevBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment) {
  for (const config::Backend& b : pool.backends) {
    keys_.push_back(backendKey(pool, b));
  }
  tried_.assign(keys_.size(), 0);
  weightsChanged();
}

void MaglevBalancer::weightsChanged() {
  table_ = buildMaglevTable(keys_, set_.weights());
}

int MaglevBalancer::choose(std::span<const int> exclude, const PickInput& input) {
  const size_t len = table_.size();
  if (len == 0) {
    return -1;
  }
  if (++epoch_ == 0) {
    std::fill(tried_.begin(), tried_.end(), 0);
    epoch_ = 1;
  }
  size_t untried = tried_.size();
  for (int e : exclude) {
    if (e >= 0 && static_cast<size_t>(e) < tried_.size() && tried_[e] != epoch_) {
      tried_[e] = epoch_;
      --untried;
    }
  }
  const uint64_t where =
      input.has_key ? input.key_hash : sharedPosition().fetch_add(1, std::memory_order_relaxed);
  size_t pos = static_cast<size_t>(where % len);
  for (size_t step = 0; step < len && untried > 0; ++step) {
    const uint16_t b = table_[pos];
    pos = pos + 1 == len ? 0 : pos + 1;
    if (tried_[b] == epoch_) {
      continue;
    }
    tried_[b] = epoch_;
    --untried;
    if (set_.eligible(b) && set_.take(b)) {
      return b;
    }
  }
  return -1;
}

}  // namespace lb::worker
