// Peak EWMA with the power of two choices: bounded imbalance under load, slow backends avoided
// from their first slow response, tried again once their average has decayed.

#include "worker/balancer/peak_ewma.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/ewma.h"

namespace lb::worker {
namespace {

using test::PoolFixture;

PickInput at(uint64_t now_ms) {
  PickInput in;
  in.now_ms = now_ms;
  return in;
}

}  // namespace

TEST_CASE("peak_ewma: two choices keep held connections within a few of even", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, std::vector<int>(10, 1));
  for (int i = 0; i < 10; ++i) {
    recordResponseTime(f.slot(i), 500, 1, false);
  }
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(11);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(bal.pick({}, at(1)) >= 0);  // held: each pick adds load
  }
  int lo = 1000;
  int hi = 0;
  for (int i = 0; i < 10; ++i) {
    lo = std::min(lo, static_cast<int>(f.active(i)));
    hi = std::max(hi, static_cast<int>(f.active(i)));
  }
  // One random choice would leave about +-3 standard deviations (+-28) around 100; two choices
  // keep the maximum within O(log log n) of the mean.
  CHECK(hi <= 104);
  CHECK(lo >= 96);
}

TEST_CASE("peak_ewma: equal backends share released picks evenly", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, std::vector<int>(5, 1));
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(5);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i) {
    int b = bal.pick({}, at(1));
    ++counts[b];
    bal.release(b);
  }
  double chi = 0;
  for (int c : counts) {
    chi += (c - 10000.0) * (c - 10000.0) / 10000.0;
  }
  CHECK(chi < 18.47);  // 4 degrees of freedom, 0.1%
}

TEST_CASE("peak_ewma: one slow response steers picks away at once", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, {1, 1, 1});
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(9);
  for (int i = 0; i < 3; ++i) {
    bal.recordResponse(i, 1000, 100);
  }
  // A single slow answer: the peak replaces the average instead of moving it by 1/16.
  bal.recordResponse(0, 50000, 100);
  CHECK(f.slot(0).ewma_us16 == 50000 * 16);
  int to_slow = 0;
  for (int i = 0; i < 3000; ++i) {
    int b = bal.pick({}, at(100));
    to_slow += b == 0 ? 1 : 0;
    bal.release(b);
  }
  CHECK(to_slow == 0);  // it loses every comparison
  // Held load: it gets requests only once the others carry 50 times its load.
  for (int i = 0; i < 200; ++i) {
    bal.pick({}, at(100));
  }
  CHECK(f.active(0) <= 4);
  CHECK(f.active(1) + f.active(2) >= 196);
}

TEST_CASE("peak_ewma: a slow backend is tried again once its average decayed", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, {1, 1});
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(2);
  bal.recordResponse(0, 100000, 1000);  // 100 ms, then no request for a minute
  bal.recordResponse(1, 1000, 61000);   // 1 ms, just now
  // 60 s are 12 half-lives: 100 ms decays below 1 ms and the slow one is the cheaper.
  CHECK(bal.pick({}, at(61000)) == 0);
  // Its next answer sets the average afresh (a minute idle counts almost alone).
  bal.recordResponse(0, 100000, 61000);
  bal.release(0);
  CHECK(bal.pick({}, at(61000)) == 1);
}

TEST_CASE("peak_ewma: an unmeasured backend gets one request until it answers", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, {1, 1});
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(4);
  bal.recordResponse(1, 5000, 10);
  CHECK(bal.pick({}, at(10)) == 0);  // idle and unmeasured: free
  CHECK(bal.pick({}, at(10)) == 1);  // in flight and unmeasured: the penalty
  CHECK(bal.pick({}, at(10)) == 1);
}

TEST_CASE("peak_ewma: exclusion, one backend, none", "[balancer]") {
  PoolFixture f(config::Algorithm::PeakEwma, {1, 1, 1});
  PeakEwmaBalancer bal(f.pool(), f.segment());
  bal.seedForTest(8);
  for (int i = 0; i < 50; ++i) {
    CHECK(bal.pick(std::vector<int>{0, 2}, at(1)) == 1);
    bal.release(1);
  }
  CHECK(bal.pick(std::vector<int>{0, 1, 2}, at(1)) == -1);
  PoolFixture one(config::Algorithm::PeakEwma, {1});
  PeakEwmaBalancer single(one.pool(), one.segment());
  CHECK(single.pick({}, at(1)) == 0);
  PoolFixture none(config::Algorithm::PeakEwma, {});
  PeakEwmaBalancer empty(none.pool(), none.segment());
  CHECK(empty.pick({}, at(1)) == -1);
}

}  // namespace lb::worker
