// Weighted random: the share of each backend is its weight's, checked with a chi-square test on
// a fixed seed, also when some backends cannot take requests.

#include "worker/balancer/random.h"

#include <catch2/catch.hpp>
#include <numeric>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"

namespace lb::worker {
namespace {

using test::PoolFixture;

// Pearson's statistic of `counts` against shares proportional to `weights`.
double chiSquare(const std::vector<int>& counts, const std::vector<int>& weights) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  const double weight_sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  double chi = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    double expected = total * weights[i] / weight_sum;
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi;
}

std::vector<int> countPicks(RandomBalancer& bal, size_t backends, int picks) {
  std::vector<int> counts(backends, 0);
  for (int i = 0; i < picks; ++i) {
    int b = bal.pick({});
    REQUIRE(b >= 0);
    ++counts[b];
    bal.release(b);
  }
  return counts;
}

}  // namespace

TEST_CASE("random: shares follow the weights (chi-square, fixed seed)", "[balancer]") {
  const std::vector<int> weights = {1, 2, 3, 4};
  PoolFixture f(config::Algorithm::Random, weights);
  RandomBalancer bal(f.pool(), f.segment());
  bal.seedForTest(42);
  std::vector<int> counts = countPicks(bal, weights.size(), 100000);
  // 3 degrees of freedom: 16.27 is the 0.1% critical value.
  CHECK(chiSquare(counts, weights) < 16.27);
  // And a model that is wrong is rejected: uniform shares do not fit.
  CHECK(chiSquare(counts, {1, 1, 1, 1}) > 1000);
}

TEST_CASE("random: equal weights are uniform over ten backends", "[balancer]") {
  const std::vector<int> weights(10, 5);
  PoolFixture f(config::Algorithm::Random, weights);
  RandomBalancer bal(f.pool(), f.segment());
  bal.seedForTest(7);
  // 9 degrees of freedom: 27.88 is the 0.1% critical value.
  CHECK(chiSquare(countPicks(bal, weights.size(), 50000), weights) < 27.88);
}

TEST_CASE("random: the rest keep their relative shares when one is down", "[balancer]") {
  PoolFixture f(config::Algorithm::Random, {1, 2, 3, 4});
  f.setHealth(3, shm::HealthState::Down);  // the heaviest: most draws miss
  RandomBalancer bal(f.pool(), f.segment());
  bal.seedForTest(1);
  std::vector<int> counts = countPicks(bal, 4, 60000);
  CHECK(counts[3] == 0);
  counts.pop_back();
  CHECK(chiSquare(counts, {1, 2, 3}) < 13.82);  // 2 degrees of freedom, 0.1%
}

TEST_CASE("random: exclusion, full backends and -1", "[balancer]") {
  PoolFixture f(config::Algorithm::Random, {1, 1, 1}, {0, 1, 0});
  RandomBalancer bal(f.pool(), f.segment());
  bal.seedForTest(3);
  f.active(1) = 1;
  for (int i = 0; i < 100; ++i) {
    CHECK(bal.pick(std::vector<int>{0}) == 2);
    bal.release(2);
  }
  CHECK(bal.pick(std::vector<int>{0, 2}) == -1);
  CHECK(f.active(1) == 1);
}

}  // namespace lb::worker
