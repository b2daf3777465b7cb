#include "worker/health/resilience.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <new>

namespace lb::worker {
namespace {

// A zeroed slot in memory shared with forked children, as the real segment is.
template <typename T>
class SharedObject {
 public:
  SharedObject() {
    mem_ = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem_ != MAP_FAILED);
    obj_ = new (mem_) T();
  }
  ~SharedObject() { ::munmap(mem_, sizeof(T)); }
  T& operator*() { return *obj_; }
  T* operator->() { return obj_; }

 private:
  void* mem_;
  T* obj_;
};

config::CircuitBreaker breakerConfig() {
  config::CircuitBreaker c;
  c.enabled = true;
  c.failures = 3;
  c.open_ms = 1000;
  c.half_open_probes = 1;
  c.half_open_successes = 2;
  return c;
}

using breaker::Admit;
using breaker::Transition;

TEST_CASE("breaker: opens after consecutive failures, half-opens after open_ms, closes",
          "[resilience]") {
  SharedObject<shm::BackendSlot> s;
  auto cfg = breakerConfig();
  CHECK(breaker::admit(*s, cfg, 0) == Admit::Yes);
  CHECK(breaker::record(*s, cfg, false, false, 10) == Transition::None);
  CHECK(breaker::record(*s, cfg, true, false, 11) == Transition::None);  // streak broken
  CHECK(breaker::record(*s, cfg, false, false, 12) == Transition::None);
  CHECK(breaker::record(*s, cfg, false, false, 13) == Transition::None);
  CHECK(breaker::record(*s, cfg, false, false, 14) == Transition::Opened);
  CHECK_FALSE(breaker::available(*s, cfg, 500));
  CHECK(breaker::admit(*s, cfg, 500) == Admit::No);
  // After open_ms one probe at a time.
  CHECK(breaker::available(*s, cfg, 1014));
  CHECK(breaker::admit(*s, cfg, 1014) == Admit::Probe);
  CHECK(breaker::admit(*s, cfg, 1015) == Admit::No);
  CHECK_FALSE(breaker::available(*s, cfg, 1015));
  CHECK(breaker::record(*s, cfg, true, true, 1020) == Transition::None);  // 1 of 2
  CHECK(breaker::admit(*s, cfg, 1021) == Admit::Probe);
  CHECK(breaker::record(*s, cfg, true, true, 1030) == Transition::Closed);
  CHECK(breaker::admit(*s, cfg, 1031) == Admit::Yes);
}

TEST_CASE("breaker: a failed probe opens it again for open_ms", "[resilience]") {
  SharedObject<shm::BackendSlot> s;
  auto cfg = breakerConfig();
  for (int i = 0; i < 3; ++i) {
    breaker::record(*s, cfg, false, false, 0);
  }
  REQUIRE(breaker::admit(*s, cfg, 1000) == Admit::Probe);
  CHECK(breaker::record(*s, cfg, false, true, 1100) == Transition::Opened);
  CHECK(breaker::admit(*s, cfg, 2000) == Admit::No);
  CHECK(breaker::admit(*s, cfg, 2100) == Admit::Probe);
}

TEST_CASE("breaker: disabled admits everything and records nothing", "[resilience]") {
  SharedObject<shm::BackendSlot> s;
  config::CircuitBreaker cfg;  // enabled = false
  for (int i = 0; i < 100; ++i) {
    CHECK(breaker::record(*s, cfg, false, false, 0) == Transition::None);
  }
  CHECK(breaker::admit(*s, cfg, 0) == Admit::Yes);
}

TEST_CASE("breaker: one state for all processes, and exactly one of them opens it",
          "[resilience]") {
  SharedObject<shm::BackendSlot> s;
  auto cfg = breakerConfig();
  cfg.failures = 200;
  SharedObject<std::atomic<int>> opened;
  pid_t kids[2];
  for (pid_t& k : kids) {
    k = ::fork();
    REQUIRE(k >= 0);
    if (k == 0) {
      for (int i = 0; i < 150; ++i) {
        if (breaker::record(*s, cfg, false, false, 5) == Transition::Opened) {
          opened->fetch_add(1);
        }
      }
      ::_exit(0);
    }
  }
  for (pid_t k : kids) {
    int status = 0;
    REQUIRE(::waitpid(k, &status, 0) == k);
  }
  CHECK(opened->load() == 1);
  // The parent, another "worker", sees it open.
  CHECK(breaker::admit(*s, cfg, 6) == Admit::No);
}

TEST_CASE("passive: consecutive failures take a backend out for fail_timeout_ms", "[resilience]") {
  SharedObject<shm::BackendSlot> s;
  config::PassiveHealth cfg;
  cfg.failures = 2;
  cfg.fail_timeout_ms = 500;
  CHECK_FALSE(passiveRecord(*s, cfg, true, 100));
  CHECK_FALSE(passiveRecord(*s, cfg, false, 101));  // a success breaks the streak
  CHECK_FALSE(passiveRecord(*s, cfg, true, 102));
  CHECK(passiveRecord(*s, cfg, true, 103));
  CHECK_FALSE(passiveAvailable(*s, 400));
  CHECK(passiveAvailable(*s, 603));
  config::PassiveHealth off;  // failures = 0
  SharedObject<shm::BackendSlot> t;
  for (int i = 0; i < 10; ++i) {
    CHECK_FALSE(passiveRecord(*t, off, true, 0));
  }
  CHECK(passiveAvailable(*t, 0));
}

TEST_CASE("retry budget: min_retries plus percent of requests per window", "[resilience]") {
  SharedObject<shm::PoolSlot> p;
  config::RetryBudget cfg;
  cfg.percent = 10;
  cfg.window_ms = 1000;
  cfg.min_retries = 2;
  for (int i = 0; i < 50; ++i) {
    budgetCountRequest(*p, cfg, 10);
  }
  int granted = 0;
  for (int i = 0; i < 100; ++i) {
    granted += budgetTakeRetry(*p, cfg, 20) ? 1 : 0;
  }
  CHECK(granted == 2 + 5);
  // A new window starts afresh.
  CHECK(budgetTakeRetry(*p, cfg, 1500));
  CHECK(budgetTakeRetry(*p, cfg, 1500));
  CHECK_FALSE(budgetTakeRetry(*p, cfg, 1500));
}

TEST_CASE("slow start ramps a returning backend's weight", "[resilience]") {
  CHECK(slowStartWeight(100, 1000, 1000, 0) == 100);       // off
  CHECK(slowStartWeight(100, 0, 5000, 10000) == 100);      // never came back
  CHECK(slowStartWeight(100, 1000, 1000, 10000) == 10);    // starts at a tenth
  CHECK(slowStartWeight(100, 1000, 6000, 10000) == 55);    // half way
  CHECK(slowStartWeight(100, 1000, 11000, 10000) == 100);  // over
  CHECK(slowStartWeight(1, 1000, 1000, 10000) == 1);       // never 0
}

}  // namespace
}  // namespace lb::worker
