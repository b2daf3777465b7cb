#include "worker/balancer/round_robin.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <numeric>
#include <random>
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
      : test::PoolFixture(config::Algorithm::RoundRobin, std::move(weights),
                          std::move(max_connections)) {}
};

// nginx's smooth weighted round robin, written out independently of the implementation and
// without any weight reduction: `count` picks.
std::vector<int> nginxSequence(const std::vector<int>& weights, size_t count) {
  const int total = std::accumulate(weights.begin(), weights.end(), 0);
  std::vector<int> current(weights.size(), 0);
  std::vector<int> out;
  for (size_t n = 0; n < count; ++n) {
    int best = -1;
    for (size_t i = 0; i < weights.size(); ++i) {
      current[i] += weights[i];
      if (best == -1 || current[i] > current[best]) {
        best = static_cast<int>(i);
      }
    }
    current[best] -= total;
    out.push_back(best);
  }
  return out;
}

// `count` picks, each connection given back at once (no backend is ever full).
constexpr int a = 0, b = 1, c = 2;

}  // namespace

TEST_CASE("round robin: equal weights alternate", "[balancer]") {
  PoolFixture f({1, 1});
  RoundRobinBalancer rr(f.pool(), f.segment());
  CHECK(pickReleased(rr, 6) == std::vector<int>{a, b, a, b, a, b});
  CHECK(f.active(0).load() == 0);
  CHECK(f.active(1).load() == 0);
}

TEST_CASE("round robin: weights 5,1,1 give nginx's smooth sequence", "[balancer]") {
  PoolFixture f({5, 1, 1});
  RoundRobinBalancer rr(f.pool(), f.segment());
  const std::vector<int> period = {a, a, b, a, c, a, a};
  CHECK(pickReleased(rr, 7) == period);
  CHECK(pickReleased(rr, 7) == period);
}

TEST_CASE("round robin: weights 2,1 give a,b,a", "[balancer]") {
  // By hand, total 3: currents (2,1) -> a pays 3: (-1,1); (1,2) -> b: (1,-1); (3,0) -> a: (0,0).
  PoolFixture f({2, 1});
  RoundRobinBalancer rr(f.pool(), f.segment());
  CHECK(pickReleased(rr, 6) == std::vector<int>{a, b, a, a, b, a});
}

TEST_CASE("round robin: every weight set matches an independent nginx model", "[balancer]") {
  std::vector<std::vector<int>> cases = {
      {3, 2, 1}, {1, 2, 3, 4}, {7, 3}, {10, 2, 2}, {1000, 999}, {4, 4, 2}, {1}, {9, 1, 1, 1},
  };
  std::mt19937 rng(20261126);
  for (int n = 0; n < 5; ++n) {
    std::vector<int> w(2 + rng() % 11);
    for (int& x : w) {
      x = 1 + static_cast<int>(rng() % 40);
    }
    cases.push_back(w);
  }
  for (const auto& weights : cases) {
    PoolFixture f(weights);
    RoundRobinBalancer rr(f.pool(), f.segment());
    const size_t total = std::accumulate(weights.begin(), weights.end(), size_t{0});
    INFO("weights " << ::Catch::Detail::stringify(weights));
    CHECK(pickReleased(rr, 2 * total) == nginxSequence(weights, 2 * total));
  }
}

TEST_CASE("round robin: the precomputed period", "[balancer]") {
  SECTION("reduced by the gcd, order unchanged") {
    const int w[] = {10, 2, 2};
    CHECK(smoothWeightedSequence(w) == std::vector<uint16_t>{0, 0, 1, 0, 2, 0, 0});
    const int same[] = {1000, 1000, 1000};
    CHECK(smoothWeightedSequence(same) == std::vector<uint16_t>{0, 1, 2});
  }
  SECTION("each backend appears exactly weight times in a period") {
    std::vector<int> w(100);
    std::iota(w.begin(), w.end(), 1);
    auto seq = smoothWeightedSequence(w);
    REQUIRE(seq.size() == 5050);
    std::vector<int> counts(w.size(), 0);
    for (uint16_t i : seq) {
      counts[i]++;
    }
    CHECK(counts == w);
  }
  SECTION("weights below 1 count as 1, an empty pool has no sequence") {
    const int w[] = {0, -3, 2};
    CHECK(smoothWeightedSequence(w).size() == 4);
    CHECK(smoothWeightedSequence(std::vector<int>{}).empty());
  }
  SECTION("a pool too large to precompute exactly is scaled, every backend kept") {
    std::vector<int> w(shm::kMaxBackends);
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = i % 2 == 0 ? 1000 : 999;
    }
    auto seq = smoothWeightedSequence(w);
    CHECK(seq.size() <= kMaxRoundRobinSequence);
    CHECK(seq.size() >= w.size());
    std::vector<int> counts(w.size(), 0);
    for (uint16_t i : seq) {
      counts[i]++;
    }
    CHECK(*std::min_element(counts.begin(), counts.end()) >= 1);
  }
}

TEST_CASE("round robin: two workers together walk the one global sequence", "[balancer]") {
  PoolFixture f({5, 1, 1});
  RoundRobinBalancer worker0(f.pool(), f.segment());
  RoundRobinBalancer worker1(f.pool(), f.segment());
  // An uneven interleaving, as two event loops would produce.
  const int who[] = {0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1};
  std::vector<int> global;
  for (int w : who) {
    Balancer& bal = w == 0 ? static_cast<Balancer&>(worker0) : worker1;
    int picked = bal.pick({});
    global.push_back(picked);
    bal.release(picked);
  }
  CHECK(global == nginxSequence({5, 1, 1}, std::size(who)));
}

TEST_CASE("round robin: worker processes share the position exactly", "[balancer]") {
  PoolFixture f({5, 1, 1});
  constexpr int kPerChild = 700;
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // A worker: its own balancer over the inherited mapping.
      RoundRobinBalancer rr(f.pool(), f.segment());
      for (int i = 0; i < kPerChild; ++i) {
        int picked = rr.pick({});
        if (picked < 0) {
          ::_exit(1);
        }
        f.requests(picked).fetch_add(1);
        rr.release(picked);
      }
      ::_exit(0);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  // 1400 positions handed out once each: exactly 200 periods of a,a,b,a,c,a,a.
  CHECK(f.requests(0).load() == 1000);
  CHECK(f.requests(1).load() == 200);
  CHECK(f.requests(2).load() == 200);
  CHECK(f.segment()->pools[f.pool().slot].rr_sequence.load() == 1400);
}

TEST_CASE("round robin: excluded backends are skipped", "[balancer]") {
  PoolFixture f({5, 1, 1});
  RoundRobinBalancer rr(f.pool(), f.segment());
  const int not_a[] = {a};
  std::vector<int> got;
  for (int i = 0; i < 7; ++i) {
    got.push_back(rr.pick(not_a));
    rr.release(got.back());
  }
  // Positions a,a,b,a,c,a,a; each excluded a moves on to the next non-a position.
  CHECK(got == std::vector<int>{b, b, b, c, c, b, b});

  const int all[] = {a, b, c};
  CHECK(rr.pick(all) == -1);
  const int junk[] = {-1, 7, a, b};
  CHECK(rr.pick(junk) == c);
  rr.release(c);
  for (int i = 0; i < 3; ++i) {
    CHECK(f.active(i).load() == 0);
  }
}

TEST_CASE("round robin: a full backend is skipped and -1 when all are full", "[balancer]") {
  SECTION("skip") {
    PoolFixture f({1, 1}, {1, 0});
    RoundRobinBalancer rr(f.pool(), f.segment());
    CHECK(rr.pick({}) == a);  // held
    CHECK(rr.pick({}) == b);
    CHECK(rr.pick({}) == b);  // position of a, but a is at its limit
    CHECK(rr.pick({}) == b);
    CHECK(f.active(0).load() == 1);
    CHECK(f.active(1).load() == 3);
    rr.release(a);
    CHECK(f.active(0).load() == 0);
    CHECK(rr.pick({}) == a);
  }
  SECTION("all full") {
    PoolFixture f({3, 1}, {2, 1});
    RoundRobinBalancer rr(f.pool(), f.segment());
    std::vector<int> got;
    for (int i = 0; i < 3; ++i) {
      got.push_back(rr.pick({}));
    }
    CHECK(got == std::vector<int>{a, a, b});
    CHECK(rr.pick({}) == -1);
    CHECK(rr.pick({}) == -1);
    CHECK(f.active(0).load() == 2);
    CHECK(f.active(1).load() == 1);
    rr.release(b);
    CHECK(rr.pick({}) == b);
    CHECK(rr.pick({}) == -1);
  }
  SECTION("limits count every worker's connections") {
    PoolFixture f({1, 1}, {1, 1});
    RoundRobinBalancer w0(f.pool(), f.segment());
    RoundRobinBalancer w1(f.pool(), f.segment());
    CHECK(w0.pick({}) == a);
    CHECK(w1.pick({}) == b);
    CHECK(w0.pick({}) == -1);
    CHECK(w1.pick({}) == -1);
    w0.release(a);  // a connection given back by either worker frees the slot for all
    CHECK(w1.pick({}) == a);
  }
  SECTION("unlimited never fills") {
    PoolFixture f({1});
    RoundRobinBalancer rr(f.pool(), f.segment());
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(rr.pick({}) == a);
    }
    CHECK(f.active(0).load() == 1000);
  }
}

TEST_CASE("round robin: max_connections holds under concurrent workers", "[balancer]") {
  PoolFixture f({2, 1}, {3, 2});
  const int limits[] = {3, 2};
  pid_t pids[2];
  for (pid_t& pid : pids) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      RoundRobinBalancer rr(f.pool(), f.segment());
      std::vector<int> held;
      int violations = 0;
      startTogether(f.segment()->workers[0].accepted, 2);
      for (int i = 0; i < 200000; ++i) {
        int picked = rr.pick({});
        if (picked >= 0) {
          violations += f.active(picked).load() > limits[picked] ? 1 : 0;
          held.push_back(picked);
        }
        if (held.size() >= 3 || picked < 0) {
          for (int h : held) {
            rr.release(h);
          }
          held.clear();
        }
      }
      for (int h : held) {
        rr.release(h);
      }
      ::_exit(violations == 0 ? 0 : 1);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(f.active(0).load() == 0);
  CHECK(f.active(1).load() == 0);
}

TEST_CASE("round robin: empty pool and out-of-range release", "[balancer]") {
  PoolFixture f(std::vector<int>{});
  RoundRobinBalancer rr(f.pool(), f.segment());
  CHECK(rr.pick({}) == -1);
  rr.release(-1);
  rr.release(3);
}

TEST_CASE("makeBalancer builds round robin for algorithm round_robin", "[balancer]") {
  PoolFixture f({5, 1, 1});
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  REQUIRE(bal);
  CHECK(dynamic_cast<RoundRobinBalancer*>(bal.get()) != nullptr);
  CHECK(pickReleased(*bal, 7) == std::vector<int>{a, a, b, a, c, a, a});
}

}  // namespace lb::worker
