#include "worker/balancer/ewma.h"

#include <algorithm>

namespace lb::worker {
namespace {

// The least share of the difference one sample moves the average by (x 1024): 1/16.
constexpr uint32_t kMinAlpha1024 = 64;
// Requests in flight beyond this count as this many: keeps costs within 64 bits.
constexpr int64_t kMaxActive = int64_t{1} << 20;

}  // namespace

uint32_t decayFactor1024(uint64_t elapsed_ms) {
  const uint64_t halves = elapsed_ms / kEwmaHalfLifeMs;
  if (halves >= 11) {
    return 0;  // below 1/1024
  }
  const uint64_t rest = elapsed_ms % kEwmaHalfLifeMs;
  // Between two whole half-lives, 2^-f is approximated by 1 - f/2 (at most 6% high).
  const uint64_t within = 1024 - 512 * rest / kEwmaHalfLifeMs;
  return static_cast<uint32_t>(within >> halves);
}

void recordResponseTime(shm::BackendSlot& slot, uint64_t micros, uint64_t now_ms, bool peak) {
  const int64_t sample = static_cast<int64_t>(std::min(micros, kMaxSampleUs) * 16);
  const uint64_t stamp = slot.ewma_stamp_ms.load(std::memory_order_relaxed);
  uint64_t alpha = 1024;
  if (stamp != 0) {
    const uint64_t idle = now_ms > stamp ? now_ms - stamp : 0;
    alpha = std::max<uint64_t>(1024 - decayFactor1024(idle), kMinAlpha1024);
  }
  uint64_t old = slot.ewma_us16.load(std::memory_order_relaxed);
  for (;;) {
    int64_t next = sample;
    if (stamp != 0 && !(peak && sample > static_cast<int64_t>(old))) {
      const int64_t current = static_cast<int64_t>(old);
      next = current + (sample - current) * static_cast<int64_t>(alpha) / 1024;
    }
    // On failure `old` is reloaded: another worker's sample went in first, this one goes on top.
    if (slot.ewma_us16.compare_exchange_weak(old, static_cast<uint64_t>(next),
                                             std::memory_order_relaxed)) {
      break;
    }
  }
  slot.ewma_stamp_ms.store(std::max<uint64_t>(now_ms, 1), std::memory_order_relaxed);
}

uint64_t decayedEwma(const shm::BackendSlot& slot, uint64_t now_ms) {
  const uint64_t stamp = slot.ewma_stamp_ms.load(std::memory_order_relaxed);
  if (stamp == 0) {
    return 0;
  }
  const uint64_t value = slot.ewma_us16.load(std::memory_order_relaxed);
  const uint64_t idle = now_ms > stamp ? now_ms - stamp : 0;
  return value * decayFactor1024(idle) / 1024;
}

uint64_t loadCost(const shm::BackendSlot& slot, int64_t active, uint64_t now_ms) {
  const auto requests = static_cast<uint64_t>(std::clamp<int64_t>(active, 0, kMaxActive));
  if (!isMeasured(slot)) {
    return kUnmeasuredPenalty * requests;
  }
  return std::max<uint64_t>(decayedEwma(slot, now_ms), 1) * (requests + 1);
}

}  // namespace lb::worker
