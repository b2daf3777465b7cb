// The rules every algorithm shares (backend_set.h, balancer.h): draining, disabled, down and
// full backends are skipped; an operator's weight replaces the configured one; a sticky
// backend wins while it is available.

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/balancer.h"
#include "worker/balancer/ewma.h"
#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

using config::Algorithm;
using shm::AdminState;
using shm::HealthState;
using test::PoolFixture;

constexpr Algorithm kAll[] = {Algorithm::RoundRobin, Algorithm::LeastConn, Algorithm::LeastTime,
                              Algorithm::PeakEwma,   Algorithm::Random,    Algorithm::IpHash,
                              Algorithm::Hash};

std::string nameOf(Algorithm a) {
  static const char* kNames[] = {"round_robin", "least_conn", "least_time", "peak_ewma",
                                 "random",      "ip_hash",    "hash"};
  return kNames[static_cast<int>(a)];
}

// A request with key number `k`: what ip_hash and hash look at.
PickInput request(uint64_t k, uint64_t now_ms = 0) {
  PickInput in;
  in.key_hash = hash64(std::to_string(k));
  in.has_key = true;
  in.now_ms = now_ms;
  return in;
}

// How many of `count` picks, each released at once, went to each backend.
std::map<int, int> tally(Balancer& bal, int count, uint64_t now_ms = 0) {
  std::map<int, int> out;
  for (int k = 0; k < count; ++k) {
    int b = bal.pick({}, request(static_cast<uint64_t>(k), now_ms));
    ++out[b];
    if (b >= 0) {
      bal.release(b);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("every algorithm skips draining, disabled, down and full backends", "[balancer]") {
  for (Algorithm algorithm : kAll) {
    INFO(nameOf(algorithm));
    PoolFixture f(algorithm, {1, 1, 1, 1, 1}, {0, 0, 0, 0, 1});
    f.setAdmin(0, AdminState::Draining);
    f.setAdmin(1, AdminState::Disabled);
    f.setHealth(2, HealthState::Down);
    f.active(4) = 1;  // at its max_connections
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    CHECK(tally(*bal, 300) == std::map<int, int>{{3, 300}});

    // Only 3 is left; excluded (a retry), nothing is.
    CHECK(bal->pick(std::vector<int>{3}, request(1)) == -1);
    f.setHealth(3, HealthState::Down);
    CHECK(bal->pick({}, request(1)) == -1);

    // Back in service: picked again, at once.
    f.setAdmin(0, AdminState::Enabled);
    f.setHealth(2, HealthState::Up);
    std::map<int, int> after = tally(*bal, 300);
    CHECK(after.size() == 2);
    CHECK(after[0] > 0);
    CHECK(after[2] > 0);
    CHECK(f.active(0) == 0);
    CHECK(f.active(2) == 0);
    CHECK(f.active(4) == 1);
  }
}

TEST_CASE("every algorithm skips a passive-failed backend and one whose breaker is open",
          "[balancer]") {
  for (Algorithm algorithm : kAll) {
    INFO(nameOf(algorithm));
    config::Pool pool = PoolFixture::makePool(algorithm, {1, 1, 1});
    pool.circuit_breaker.enabled = true;
    pool.circuit_breaker.open_ms = 1000;
    pool.circuit_breaker.half_open_probes = 1;
    PoolFixture f(std::move(pool));
    const uint64_t now = 50000;
    f.slot(0).passive_until_ms = now + 500;  // out for 500 ms more
    f.slot(1).breaker_state = static_cast<uint32_t>(shm::BreakerState::Open);
    f.slot(1).breaker_opened_ms = now - 100;
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    CHECK(tally(*bal, 200, now) == std::map<int, int>{{2, 200}});
    CHECK(bal->pick(std::vector<int>{2}, request(1, now)) == -1);

    // The passive period over, the breaker past open_ms (a half-open probe may go): both back.
    std::map<int, int> later = tally(*bal, 300, now + 1000);
    CHECK(later[0] > 0);
    CHECK(later[1] > 0);
    // Half-open with its one probe place taken: skipped again.
    f.slot(1).breaker_state = static_cast<uint32_t>(shm::BreakerState::HalfOpen);
    f.slot(1).half_open_inflight = 1;
    CHECK(tally(*bal, 100, now + 1000).count(1) == 0);
  }
}

TEST_CASE("anyEligibleFull tells a request that may wait from one that may not", "[balancer]") {
  PoolFixture f(Algorithm::LeastConn, {1, 1}, {1, 1});
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  CHECK_FALSE(bal->backends().anyEligibleFull({}));
  f.active(0) = 1;
  CHECK(bal->backends().anyEligibleFull({}));
  CHECK_FALSE(bal->backends().anyEligibleFull(std::vector<int>{0}));
  f.setHealth(0, HealthState::Down);
  CHECK_FALSE(bal->backends().anyEligibleFull({}));
}

TEST_CASE("slow start ramps the weight of a backend that came back", "[balancer]") {
  config::Pool pool = PoolFixture::makePool(Algorithm::RoundRobin, {10, 10, 10});
  pool.slow_start_ms = 1000;
  PoolFixture f(std::move(pool));
  const uint64_t t0 = 100000;
  f.slot(0).recovered_ms = t0;            // a health check marked it up at t0
  f.slot(1).passive_until_ms = t0 + 500;  // its passive fail timeout ends at t0 + 500
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  PickInput in;
  in.now_ms = t0;
  bal->release(bal->pick({}, in));
  CHECK(bal->backends().weight(0) == 1);  // a tenth of 10
  CHECK(bal->backends().weight(2) == 10);
  in.now_ms = t0 + 500;
  bal->release(bal->pick({}, in));
  CHECK(bal->backends().weight(0) == 5);  // 1 + 9 * 0.5, rounded down
  CHECK(bal->backends().weight(1) == 1);  // came back just now
  in.now_ms = t0 + 1500;
  bal->release(bal->pick({}, in));
  CHECK(bal->backends().weight(0) == 10);
  CHECK(bal->backends().weight(1) == 10);
  CHECK(bal->backends().weight(2) == 10);
  // While out, a backend already has the weight it comes back with.
  f.setHealth(2, HealthState::Down);
  in.now_ms = t0 + 2000;
  bal->release(bal->pick({}, in));
  CHECK(bal->backends().weight(2) == 1);
}

TEST_CASE("every algorithm honours the operator's weight", "[balancer]") {
  for (Algorithm algorithm : kAll) {
    INFO(nameOf(algorithm));
    PoolFixture f(algorithm, {1, 1});
    if (algorithm == Algorithm::LeastTime || algorithm == Algorithm::PeakEwma) {
      // Equally fast backends: their load and weight decide.
      recordResponseTime(f.slot(0), 1000, 1, false);
      recordResponseTime(f.slot(1), 1000, 1, false);
    }
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    // Set after the balancer was built: seen at the next refresh, kWeightRefreshMs later.
    bal->release(bal->pick({}, request(0, 1000)));
    f.slot(0).admin_weight = 3;
    const bool stateful = algorithm == Algorithm::LeastConn || algorithm == Algorithm::LeastTime ||
                          algorithm == Algorithm::PeakEwma;
    const int count = stateful ? 400 : 40000;
    // The load-based algorithms balance held connections; the others the picks.
    std::map<int, int> picks;
    for (int k = 0; k < count; ++k) {
      int b = bal->pick({}, request(static_cast<uint64_t>(k), 1000 + kWeightRefreshMs));
      REQUIRE(b >= 0);
      ++picks[b];
      if (!stateful) {
        bal->release(b);
      }
    }
    double share = static_cast<double>(picks[0]) / count;
    CHECK(share == Approx(0.75).margin(stateful ? 0.01 : 0.02));
  }
}

TEST_CASE("round robin follows a changed weight exactly after the refresh", "[balancer]") {
  PoolFixture f(Algorithm::RoundRobin, {1, 1});
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  PickInput at0;
  CHECK(test::pickReleased(*bal, 4, at0) == std::vector<int>{0, 1, 0, 1});
  f.slot(1).admin_weight = 2;
  PickInput soon;
  soon.now_ms = kWeightRefreshMs - 1;
  CHECK(test::pickReleased(*bal, 2, soon) == std::vector<int>{0, 1});  // not yet
  PickInput later;
  later.now_ms = kWeightRefreshMs;
  // Weights 1,2: the period is b, a, b; the shared position (6) is at its start.
  CHECK(test::pickReleased(*bal, 6, later) == std::vector<int>{1, 0, 1, 1, 0, 1});
  f.slot(1).admin_weight = 5000;  // capped at 1000
  CHECK(bal->backends().weight(1) == 2);
  later.now_ms = 2 * kWeightRefreshMs;
  bal->pick({}, later);
  CHECK(bal->backends().weight(1) == 1000);
}

TEST_CASE("a weight set before the balancer is built is used from the start", "[balancer]") {
  PoolFixture f(Algorithm::RoundRobin, {1, 1});
  f.slot(0).admin_weight = 2;
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  CHECK(bal->backends().weight(0) == 2);
  CHECK(test::pickReleased(*bal, 3) == std::vector<int>{0, 1, 0});
}

TEST_CASE("every algorithm sends a sticky request to its backend while it can", "[balancer]") {
  for (Algorithm algorithm : kAll) {
    INFO(nameOf(algorithm));
    PoolFixture f(algorithm, {1, 1, 1}, {0, 0, 1});
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    for (int k = 0; k < 50; ++k) {
      PickInput in = request(static_cast<uint64_t>(k));
      in.sticky = 1;
      REQUIRE(bal->pick({}, in) == 1);
      bal->release(1);
    }
    // Unavailable, excluded or full: the algorithm decides, never the sticky backend.
    PickInput in = request(7);
    in.sticky = 1;
    f.setAdmin(1, AdminState::Disabled);
    int b = bal->pick({}, in);
    CHECK((b == 0 || b == 2));
    bal->release(b);
    f.setAdmin(1, AdminState::Enabled);
    b = bal->pick(std::vector<int>{1}, in);
    CHECK((b == 0 || b == 2));
    bal->release(b);
    in.sticky = 2;
    f.active(2) = 1;
    CHECK(bal->pick({}, in) != 2);
    // An id of no backend, or an index out of range, is no sticky backend.
    in.sticky = 3;
    CHECK(bal->pick({}, in) >= 0);
  }
}

TEST_CASE("sticky ids hide the address and name the backend in every balancer", "[balancer]") {
  PoolFixture f(Algorithm::RoundRobin, {1, 1, 1});
  BalancerPtr one = makeBalancer(f.pool(), f.segment());
  PoolFixture g(Algorithm::Random, {1, 1, 1});
  BalancerPtr other = makeBalancer(g.pool(), g.segment());
  for (int i = 0; i < 3; ++i) {
    CHECK(one->stickyId(i) == other->stickyId(i));  // same "pool/address"
    CHECK(one->stickyBackend(one->stickyId(i)) == i);
  }
  CHECK(one->stickyId(0) != one->stickyId(1));
  CHECK(one->stickyId(0) == hash64("pool/10.0.0.1:80", 0x5717c4));
  CHECK(one->stickyBackend(12345) == -1);
}

TEST_CASE("ewma: decay, first sample, smoothing and peaks", "[balancer]") {
  CHECK(decayFactor1024(0) == 1024);
  CHECK(decayFactor1024(kEwmaHalfLifeMs) == 512);
  CHECK(decayFactor1024(2 * kEwmaHalfLifeMs) == 256);
  CHECK(decayFactor1024(kEwmaHalfLifeMs / 2) == 768);
  CHECK(decayFactor1024(100 * kEwmaHalfLifeMs) == 0);

  PoolFixture f(Algorithm::LeastTime, {1});
  shm::BackendSlot& s = f.slot(0);
  CHECK_FALSE(isMeasured(s));
  CHECK(loadCost(s, 0, 10) == 0);
  CHECK(loadCost(s, 2, 10) == 2 * kUnmeasuredPenalty);
  recordResponseTime(s, 1000, 10, false);  // the first sample is the average
  CHECK(isMeasured(s));
  CHECK(s.ewma_us16 == 16000);
  recordResponseTime(s, 2000, 10, false);  // no time passed: 1/16 of the way
  CHECK(s.ewma_us16 == 17000);
  recordResponseTime(s, 1000, 10 + kEwmaHalfLifeMs, false);  // a half-life: half of the way
  CHECK(s.ewma_us16 == 16500);
  recordResponseTime(s, 50000, 10 + kEwmaHalfLifeMs, true);  // a peak replaces the average
  CHECK(s.ewma_us16 == 800000);
  CHECK(decayedEwma(s, 10 + 2 * kEwmaHalfLifeMs) == 400000);
  CHECK(loadCost(s, 1, 10 + kEwmaHalfLifeMs) == 2 * 800000);
  recordResponseTime(s, 1000, 10 + kEwmaHalfLifeMs, true);  // below: smoothed, even with peak
  CHECK(s.ewma_us16 == 800000 - (800000 - 16000) / 16);
}

}  // namespace lb::worker
