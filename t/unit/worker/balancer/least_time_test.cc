// Weighted least response time: the fastest backend relative to its weight, unmeasured ones
// first, ties in turn, and a slow one tried again once its average has decayed.

#include "worker/balancer/least_time.h"

#include <catch2/catch.hpp>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/ewma.h"

namespace lb::worker {
namespace {

using test::pickReleased;
using test::PoolFixture;

PickInput at(uint64_t now_ms) {
  PickInput in;
  in.now_ms = now_ms;
  return in;
}

}  // namespace

TEST_CASE("least_time: unmeasured backends first, in turn, then the fastest", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1, 1});
  LeastTimeBalancer bal(f.pool(), f.segment());
  CHECK(pickReleased(bal, 3, at(5)) == std::vector<int>{0, 1, 2});
  bal.recordResponse(0, 3000, 5);
  bal.recordResponse(1, 1000, 5);
  bal.recordResponse(2, 2000, 5);
  CHECK(pickReleased(bal, 4, at(5)) == std::vector<int>{1, 1, 1, 1});
}

TEST_CASE("least_time: the average is divided by the weight", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 4});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(0, 1000, 5);
  bal.recordResponse(1, 3000, 5);  // 3x slower, 4x heavier: the better score
  CHECK(pickReleased(bal, 3, at(5)) == std::vector<int>{1, 1, 1});
}

TEST_CASE("least_time: load counts, so held requests spread by speed", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(0, 1000, 5);
  bal.recordResponse(1, 3000, 5);
  for (int i = 0; i < 400; ++i) {
    REQUIRE(bal.pick({}, at(5)) >= 0);
  }
  // ewma x (active + 1) even: three times the requests on the three times faster one.
  CHECK(f.active(0) == Approx(300).margin(2));
  CHECK(f.active(1) == Approx(100).margin(2));
}

TEST_CASE("least_time: equal times take turns", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(0, 1000, 5);
  bal.recordResponse(1, 1000, 5);
  CHECK(pickReleased(bal, 4, at(5)) == std::vector<int>{0, 1, 0, 1});
}

TEST_CASE("least_time: one slow response moves the average by a sixteenth", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(0, 1000, 5);
  bal.recordResponse(1, 1500, 5);
  bal.recordResponse(0, 5000, 5);  // not a peak: 1000 + 4000/16 = 1250 us
  CHECK(f.slot(0).ewma_us16 == 1250 * 16);
  CHECK(pickReleased(bal, 2, at(5)) == std::vector<int>{0, 0});
}

TEST_CASE("least_time: a slow backend is tried again after its average decayed", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(0, 200000, 1000);
  bal.recordResponse(1, 1000, 1000);
  CHECK(pickReleased(bal, 1, at(1000)) == std::vector<int>{1});
  // The fast one keeps answering; the slow one decays: 200 ms < 1 ms after 8 half-lives.
  uint64_t now = 1000;
  int back = -1;
  for (int step = 1; step <= 12 && back < 0; ++step) {
    now = 1000 + static_cast<uint64_t>(step) * kEwmaHalfLifeMs;
    bal.recordResponse(1, 1000, now);
    if (pickReleased(bal, 1, at(now))[0] == 0) {
      back = step;
    }
  }
  CHECK(back >= 7);
  CHECK(back <= 9);
}

TEST_CASE("least_time: exclusion, full backends and -1", "[balancer]") {
  PoolFixture f(config::Algorithm::LeastTime, {1, 1, 1}, {0, 1, 0});
  LeastTimeBalancer bal(f.pool(), f.segment());
  bal.recordResponse(1, 10, 5);  // the fastest, but full
  f.active(1) = 1;
  CHECK(bal.pick(std::vector<int>{0}, at(5)) == 2);
  CHECK(bal.pick(std::vector<int>{0, 2}, at(5)) == -1);
}

}  // namespace lb::worker
