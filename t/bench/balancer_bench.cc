// Backend selection per algorithm: one pick() and its release() at 10, 100 and 1000 backends,
// against a real shared-memory segment, single-threaded (no contention on the shared counters).
// Run: build-X/t/lb_microbench [--benchmark_filter=...]. Not part of ctest.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/segment.h"
#include "worker/balancer/balancer.h"
#include "worker/balancer/ewma.h"
#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

// A pool of `n` backends (weights 1..5, so the weighted paths do real work) in a segment of
// its own, slots assigned as the master does it.
class BenchPool {
 public:
  BenchPool(config::Algorithm algorithm, int n) {
    static int counter = 0;
    name_ = "lb.bench." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    auto seg = shm::SharedSegment::create(name_);
    if (!seg) {
      std::fprintf(stderr, "cannot create the shared-memory segment\n");
      std::exit(1);
    }
    segment_ = std::move(*seg);
    config::Pool pool;
    pool.name = "bench";
    pool.algorithm = algorithm;
    for (int i = 0; i < n; ++i) {
      config::Backend b;
      b.address_text = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".1:80";
      b.weight = 1 + i % 5;
      pool.backends.push_back(b);
    }
    config_.pools.push_back(pool);
    if (!segment_->assignSlots(config_)) {
      std::fprintf(stderr, "cannot assign slots\n");
      std::exit(1);
    }
    // Measured backends with different response times, for least_time and peak_ewma.
    for (int i = 0; i < n; ++i) {
      shm::BackendSlot& s = segment_->get()->backends[config_.pools[0].backends[i].slot];
      recordResponseTime(s, 200 + static_cast<uint64_t>(i % 17) * 30, 1000, false);
    }
    balancer_ = makeBalancer(config_.pools[0], segment_->get());
  }
  ~BenchPool() {
    balancer_.reset();
    shm::SharedSegment::remove(name_);
  }
  Balancer& balancer() { return *balancer_; }

 private:
  std::string name_;
  std::unique_ptr<shm::SharedSegment> segment_;
  config::Config config_;
  BalancerPtr balancer_;
};

void pickRelease(benchmark::State& state, config::Algorithm algorithm, bool sticky) {
  BenchPool pool(algorithm, static_cast<int>(state.range(0)));
  Balancer& bal = pool.balancer();
  // Keys vary per request, as client addresses and header values do.
  std::vector<uint64_t> keys(4096);
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = hash64(std::to_string(i));
  }
  PickInput in;
  in.now_ms = 1000;
  in.has_key = true;
  size_t i = 0;
  for (auto _ : state) {
    in.key_hash = keys[i++ & 4095];
    in.sticky = sticky ? static_cast<int>(i % bal.size()) : -1;
    int b = bal.pick({}, in);
    benchmark::DoNotOptimize(b);
    bal.release(b);
  }
  state.SetItemsProcessed(state.iterations());
}

#define LB_BENCH_ALGORITHM(NAME, ALGORITHM)                  \
  void NAME(benchmark::State& state) {                       \
    pickRelease(state, config::Algorithm::ALGORITHM, false); \
  }                                                          \
  BENCHMARK(NAME)->Arg(10)->Arg(100)->Arg(1000)

LB_BENCH_ALGORITHM(round_robin, RoundRobin);
LB_BENCH_ALGORITHM(least_conn, LeastConn);
LB_BENCH_ALGORITHM(least_time, LeastTime);
LB_BENCH_ALGORITHM(peak_ewma, PeakEwma);
LB_BENCH_ALGORITHM(random, Random);
LB_BENCH_ALGORITHM(ip_hash, IpHash);
LB_BENCH_ALGORITHM(hash_maglev, Hash);

// A request whose sticky cookie names an available backend: the algorithm is not consulted.
void sticky_round_robin(benchmark::State& state) {
  pickRelease(state, config::Algorithm::RoundRobin, true);
}
BENCHMARK(sticky_round_robin)->Arg(10)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace lb::worker

BENCHMARK_MAIN();
