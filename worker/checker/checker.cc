// The checker process of a generation: active health checks of every backend whose pool has a
// health_check, on one libuv loop, results written to shared memory where every worker's
// balancer reads them. A slow or hanging check never stalls a worker, and the master stays free
// of I/O. Forked by the master like a worker, it reports Ready once its checks are scheduled, and
// stops at once on QUIT, USR2 or TERM (the next generation's checker takes over from the state
// in shared memory).

#include <signal.h>
#include <time.h>

#include <memory>
#include <vector>

#include "shared/log/log.h"
#include "worker/checker/health_state.h"
#include "worker/checker/probe.h"
#include "worker/worker.h"

namespace lb::worker {
namespace {

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

class Checker {
 public:
  explicit Checker(const WorkerInit& init) : init_(init) {}
  int run();

 private:
  struct Target {
    const config::Pool* pool;
    const config::HealthCheck* check;
    shm::BackendSlot* slot;
    HealthTracker tracker;
    std::unique_ptr<Probe> probe;
  };

  static void onSignal(uv_signal_t* h, int signum);
  void onResult(Target& t, bool passed, const std::string& reason);
  void stop();

  const WorkerInit& init_;
  uv_loop_t loop_{};
  std::vector<std::unique_ptr<Target>> targets_;
  uv_signal_t signals_[6]{};
  bool stopping_ = false;
};

int Checker::run() {
  const config::Config& cfg = *init_.config;
  if (uv_loop_init(&loop_) != 0) {
    LB_ERROR("checker: cannot create the event loop");
    return kExitFatal;
  }
  ::signal(SIGPIPE, SIG_IGN);
  shm::WorkerSlot& me = init_.segment->workers[init_.slot];
  // No generation in the slot: workers spreading connections compare themselves with the
  // slots of their generation, and the checker holds no client connection.
  me.pid.store(static_cast<int32_t>(::getpid()), std::memory_order_relaxed);

  const int handled[] = {SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP};
  for (size_t i = 0; i < std::size(handled); ++i) {
    uv_signal_init(&loop_, &signals_[i]);
    signals_[i].data = this;
    uv_signal_start(&signals_[i], &Checker::onSignal, handled[i]);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  const uint64_t now = monotonicMs();
  size_t n = 0;
  for (const config::Pool& pool : cfg.pools) {
    const config::HealthCheck& check = pool.health_check;
    if (check.type == config::HealthCheck::Type::None) {
      continue;
    }
    for (size_t b = 0; b < pool.backends.size(); ++b) {
      const config::Backend& backend = pool.backends[b];
      shm::BackendSlot& slot = init_.segment->backends[backend.slot];
      // A backend seen for the first time starts as configured; one kept by a reload keeps the
      // state the previous generation's checks found.
      if (slot.health_changed_ms.load() == 0) {
        slot.health.store(static_cast<uint32_t>(check.initial_up ? shm::HealthState::Up
                                                                 : shm::HealthState::Down));
        slot.health_changed_ms.store(now);
      }
      bool up = slot.health.load() == static_cast<uint32_t>(shm::HealthState::Up);
      auto t = std::make_unique<Target>(
          Target{&pool, &check, &slot, HealthTracker(up, check.fall, check.rise), nullptr});
      Target* raw = t.get();
      t->probe = std::make_unique<Probe>(
          &loop_, check, backend, [this, raw](Probe&, bool passed, const std::string& reason) {
            onResult(*raw, passed, reason);
          });
      if (pool.tls_context != nullptr) {
        t->probe->useTls(pool.tls_context.get(), static_cast<int>(b));
      }
      // The first checks go out soon, a few milliseconds apart rather than all at once.
      t->probe->start(std::min<uint64_t>(check.interval_ms, 10 + 7 * (n++ % 64)));
      targets_.push_back(std::move(t));
    }
  }
  LB_INFO("checker (generation %llu) ready: %zu backends checked",
          static_cast<unsigned long long>(init_.generation), targets_.size());
  reportReady(init_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  me.pid.store(0, std::memory_order_relaxed);
  return 0;
}

void Checker::onResult(Target& t, bool passed, const std::string& reason) {
  HealthTracker::Change change = t.tracker.record(passed);
  t.slot->health_streak.store(t.tracker.streak(), std::memory_order_relaxed);
  const config::Backend& backend = t.probe->backend();
  if (change == HealthTracker::Change::None) {
    LB_DEBUG("backend %s in pool %s: check %s (%s)", backend.address_text.c_str(),
             t.pool->name.c_str(), passed ? "passed" : "failed", reason.c_str());
    return;
  }
  const bool up = change == HealthTracker::Change::WentUp;
  t.slot->health.store(static_cast<uint32_t>(up ? shm::HealthState::Up : shm::HealthState::Down),
                       std::memory_order_relaxed);
  const uint64_t now = monotonicMs();
  t.slot->health_changed_ms.store(now, std::memory_order_relaxed);
  if (up) {
    t.slot->recovered_ms.store(now, std::memory_order_relaxed);
    LB_NOTICE("backend %s in pool %s is UP: %u consecutive checks passed (%s)",
              backend.address_text.c_str(), t.pool->name.c_str(), t.check->rise, reason.c_str());
  } else {
    LB_WARN("backend %s in pool %s is DOWN: %u consecutive failures (%s)",
            backend.address_text.c_str(), t.pool->name.c_str(), t.check->fall, reason.c_str());
  }
}

void Checker::onSignal(uv_signal_t* h, int signum) {
  auto* c = static_cast<Checker*>(h->data);
  switch (signum) {
    case SIGUSR1:
      log::reopen();
      break;
    case SIGHUP:
      break;  // for the master
    default:
      c->stop();
      break;
  }
}

void Checker::stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  for (auto& t : targets_) {
    t->probe->stop([] {});
  }
  for (uv_signal_t& s : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
  }
}

}  // namespace

int runChecker(const WorkerInit& init) {
  Checker checker(init);
  return checker.run();
}

}  // namespace lb::worker
