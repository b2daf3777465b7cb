#include "worker/balancer/least_conn.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "shared/shm/segment.h"
#include "unit/worker/balancer/pool_fixture.h"

namespace lb::worker {
namespace {

using test::pickReleased;
using test::startTogether;

// PoolFixture with this file's algorithm.
class PoolFixture : public test::PoolFixture {
 public:
  explicit PoolFixture(std::vector<int> weights, std::vector<int> max_connections = {})
      : test::PoolFixture(config::Algorithm::LeastConn, std::move(weights),
                          std::move(max_connections)) {}
};

constexpr int a = 0, b = 1, c = 2;

}  // namespace

TEST_CASE("least_conn: picks the backend with the fewest active connections", "[balancer]") {
  PoolFixture f({1, 1, 1});
  LeastConnBalancer lc(f.pool(), f.segment());
  // Connections held by other workers, as the shared counts show them.
  f.active(a).store(3);
  f.active(b).store(1);
  f.active(c).store(2);
  CHECK(lc.pick({}) == b);
  CHECK(f.active(b).load() == 2);
  f.active(c).store(5);
  CHECK(lc.pick({}) == b);
  CHECK(lc.pick({}) == a);  // 3 and 3: a tie, broken by the shared counter (position 0)
  CHECK(f.active(a).load() == 4);
  CHECK(f.active(b).load() == 3);
  lc.release(b);
  CHECK(f.active(b).load() == 2);
  CHECK(lc.pick({}) == b);
}

TEST_CASE("least_conn: every pick has the least (active+1)/weight", "[balancer]") {
  const std::vector<int> weights = {3, 1, 2};
  PoolFixture f(weights);
  LeastConnBalancer lc(f.pool(), f.segment());
  for (int n = 0; n < 60; ++n) {
    std::vector<double> score;
    for (size_t i = 0; i < weights.size(); ++i) {
      score.push_back((f.active(static_cast<int>(i)).load() + 1.0) / weights[i]);
    }
    const double least = *std::min_element(score.begin(), score.end());
    int picked = lc.pick({});  // held: the counts grow
    REQUIRE(picked >= 0);
    INFO("pick " << n << ": " << picked);
    CHECK(score[picked] == least);
  }
  // Held connections end up in proportion to the weights: 30, 10, 20 give or take a tie.
  CHECK(f.active(a).load() >= 29);
  CHECK(f.active(a).load() <= 31);
  CHECK(f.active(b).load() >= 9);
  CHECK(f.active(b).load() <= 11);
  CHECK(f.active(c).load() >= 19);
  CHECK(f.active(c).load() <= 21);
  CHECK(f.active(a).load() + f.active(b).load() + f.active(c).load() == 60);
}

TEST_CASE("least_conn: an idle heavy backend beats an idle light one", "[balancer]") {
  PoolFixture f({1, 4});
  LeastConnBalancer lc(f.pool(), f.segment());
  CHECK(lc.pick({}) == b);  // 1/4 < 1/1
  CHECK(lc.pick({}) == b);  // 2/4 < 1/1
  CHECK(lc.pick({}) == b);  // 3/4 < 1/1
}

TEST_CASE("least_conn: equal scores alternate", "[balancer]") {
  SECTION("idle, equal weights") {
    PoolFixture f({1, 1, 1});
    LeastConnBalancer lc(f.pool(), f.segment());
    CHECK(pickReleased(lc, 7) == std::vector<int>{a, b, c, a, b, c, a});
  }
  SECTION("equal scores from different weights and counts") {
    PoolFixture f({2, 1, 1});
    LeastConnBalancer lc(f.pool(), f.segment());
    f.active(a).store(1);  // 2/2
    f.active(c).store(1);  // 2/1, out of the tie
    CHECK(pickReleased(lc, 4) == std::vector<int>{a, b, a, b});
  }
  SECTION("two workers alternate through the shared counter") {
    PoolFixture f({1, 1});
    LeastConnBalancer w0(f.pool(), f.segment());
    LeastConnBalancer w1(f.pool(), f.segment());
    std::vector<int> got;
    for (int i = 0; i < 3; ++i) {
      got.push_back(w0.pick({}));
      w0.release(got.back());
      got.push_back(w1.pick({}));
      w1.release(got.back());
    }
    CHECK(got == std::vector<int>{a, b, a, b, a, b});
  }
}

TEST_CASE("least_conn: another worker's connections steer picks away", "[balancer]") {
  PoolFixture f({1, 1});
  LeastConnBalancer w0(f.pool(), f.segment());
  LeastConnBalancer w1(f.pool(), f.segment());
  const int first = w0.pick({});  // held by worker 0
  REQUIRE(first >= 0);
  const int other = 1 - first;
  for (int i = 0; i < 5; ++i) {
    int picked = w1.pick({});
    CHECK(picked == other);
    w1.release(picked);
  }
  w0.release(first);
  CHECK(f.active(a).load() == 0);
  CHECK(f.active(b).load() == 0);
}

TEST_CASE("least_conn: exclusion, full backends and -1", "[balancer]") {
  SECTION("excluded") {
    PoolFixture f({1, 1, 1});
    LeastConnBalancer lc(f.pool(), f.segment());
    f.active(a).store(2);
    f.active(c).store(1);
    const int not_b[] = {b};
    CHECK(lc.pick(not_b) == c);
    const int none[] = {a, b, c};
    CHECK(lc.pick(none) == -1);
    const int junk[] = {-1, 9, b, c};
    CHECK(lc.pick(junk) == a);
  }
  SECTION("a full backend is skipped even when least busy") {
    PoolFixture f({1, 1}, {1, 0});
    LeastConnBalancer lc(f.pool(), f.segment());
    f.active(b).store(5);
    CHECK(lc.pick({}) == a);
    CHECK(lc.pick({}) == b);  // a at its limit of 1
    CHECK(f.active(a).load() == 1);
    CHECK(f.active(b).load() == 6);
  }
  SECTION("all full") {
    PoolFixture f({1, 1}, {1, 2});
    LeastConnBalancer lc(f.pool(), f.segment());
    int held = 0;
    while (lc.pick({}) >= 0) {
      REQUIRE(++held <= 3);
    }
    CHECK(held == 3);
    CHECK(f.active(a).load() == 1);
    CHECK(f.active(b).load() == 2);
    CHECK(lc.pick({}) == -1);
    lc.release(a);
    CHECK(lc.pick({}) == a);
  }
  SECTION("empty pool") {
    PoolFixture f(std::vector<int>{});
    LeastConnBalancer lc(f.pool(), f.segment());
    CHECK(lc.pick({}) == -1);
    lc.release(0);
  }
}

TEST_CASE("least_conn: max_connections holds under concurrent workers", "[balancer]") {
  PoolFixture f({1, 2, 1}, {2, 3, 1});
  const int limits[] = {2, 3, 1};
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      LeastConnBalancer lc(f.pool(), f.segment());
      std::vector<int> held;
      int violations = 0;
      int picks = 0;
      startTogether(f.segment()->workers[0].accepted, 2);
      for (int i = 0; i < 200000; ++i) {
        int picked = lc.pick({});
        if (picked >= 0) {
          ++picks;
          violations += f.active(picked).load() > limits[picked] ? 1 : 0;
          held.push_back(picked);
        }
        if (held.size() >= 4 || picked < 0) {
          for (int h : held) {
            lc.release(h);
          }
          held.clear();
        }
      }
      for (int h : held) {
        lc.release(h);
      }
      ::_exit(violations == 0 && picks > 0 ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  for (int i = 0; i < 3; ++i) {
    CHECK(f.active(i).load() == 0);
  }
}

TEST_CASE("makeBalancer builds least_conn for algorithm least_conn", "[balancer]") {
  PoolFixture f({1, 1});
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  REQUIRE(bal);
  CHECK(dynamic_cast<LeastConnBalancer*>(bal.get()) != nullptr);
  f.active(a).store(1);
  CHECK(bal->pick({}) == b);
}

}  // namespace lb::worker
