#include "worker/balancer/peak_ewma.h"

#include "worker/balancer/ewma.h"

namespace lb::worker {
namespace {

// Rounds of two draws before falling back to a scan; each lost race costs one.
constexpr int kRounds = 4;
// Draws for one candidate before giving up on it.
constexpr int kDrawsPerCandidate = 4;

}  // namespace

PeakEwmaBalancer::PeakEwmaBalancer(const config::Pool& pool, shm::Segment* segment)
    : Balancer(pool, segment), rng_(randomSeed()) {}

void PeakEwmaBalancer::recordResponse(int backend_index, uint64_t micros, uint64_t now_ms) {
  if (backend_index >= 0 && static_cast<size_t>(backend_index) < set_.size()) {
    if (shm::BackendSlot* slot = set_.slot(static_cast<size_t>(backend_index))) {
      recordResponseTime(*slot, micros, now_ms, true);
    }
  }
}

bool PeakEwmaBalancer::cheaper(int a, int b) const {
  const uint64_t now = set_.now();
  const auto ia = static_cast<size_t>(a);
  const auto ib = static_cast<size_t>(b);
  const uint64_t cost_a = loadCost(*set_.slot(ia), set_.active(ia), now);
  const uint64_t cost_b = loadCost(*set_.slot(ib), set_.active(ib), now);
  return static_cast<unsigned __int128>(cost_a) * static_cast<uint64_t>(set_.weight(ib)) <
         static_cast<unsigned __int128>(cost_b) * static_cast<uint64_t>(set_.weight(ia));
}

int PeakEwmaBalancer::draw(std::span<const int> exclude, int other) {
  const size_t n = set_.size();
  for (int i = 0; i < kDrawsPerCandidate; ++i) {
    // The second candidate is drawn from the n - 1 others: never the first one again.
    int b = static_cast<int>(rng_.below(other < 0 ? n : n - 1));
    if (other >= 0 && b >= other) {
      ++b;
    }
    if (set_.available(static_cast<size_t>(b)) && !contains(exclude, b)) {
      return b;
    }
  }
  return -1;
}

int PeakEwmaBalancer::cheapest(std::span<const int> exclude) {
  int best = -1;
  for (size_t i = 0; i < set_.size(); ++i) {
    if (set_.available(i) && !contains(exclude, static_cast<int>(i)) &&
        (best < 0 || cheaper(static_cast<int>(i), best))) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

int PeakEwmaBalancer::choose(std::span<const int> exclude, const PickInput&) {
  if (set_.size() == 0) {
    return -1;
  }
  for (int round = 0; round < kRounds; ++round) {
    const int a = draw(exclude, -1);
    const int b = a < 0 || set_.size() < 2 ? -1 : draw(exclude, a);
    if (a < 0) {
      break;
    }
    int first = a;
    int second = b;
    if (b >= 0 && cheaper(b, a)) {
      first = b;
      second = a;
    }
    if (set_.take(static_cast<size_t>(first))) {
      return first;
    }
    if (second >= 0 && set_.take(static_cast<size_t>(second))) {
      return second;
    }
  }
  // Few backends can take the request, or races keep filling them: look at every one.
  return set_.takeChosen(kRounds, [&] { return cheapest(exclude); });
}

}  // namespace lb::worker
