#include "worker/timer_queue.h"

#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace lb::worker {
namespace {

// A node that records its firing into a shared log.
struct Probe {
  TimerNode node;
  std::string name;
  std::vector<std::string>* log = nullptr;
  std::function<void(Probe*)> then;  // runs inside the callback

  Probe(std::string n, std::vector<std::string>* l) : name(std::move(n)), log(l) {
    node.data = this;
    node.on_timeout = [](TimerNode* t) {
      auto* p = static_cast<Probe*>(t->data);
      p->log->push_back(p->name);
      if (p->then) {
        p->then(p);
      }
    };
  }
};

TEST_CASE("TimerQueue expires in deadline order and only what is due", "[timer]") {
  std::vector<std::string> log;
  TimerQueue q(100);
  Probe a("a", &log), b("b", &log), c("c", &log);
  q.push(&a.node, 1000);
  q.push(&b.node, 1010);
  q.push(&c.node, 1020);
  CHECK(a.node.armed());
  CHECK(a.node.deadline == 1100);
  CHECK(c.node.deadline == 1120);
  q.expire(1099);
  CHECK(log.empty());
  q.expire(1110);
  CHECK(log == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(a.node.armed());
  CHECK_FALSE(b.node.armed());
  CHECK(c.node.armed());
  CHECK_FALSE(q.empty());
  q.expire(5000);
  CHECK(log == std::vector<std::string>{"a", "b", "c"});
  CHECK(q.empty());
}

TEST_CASE("TimerQueue removes the head, the middle and the tail", "[timer]") {
  std::vector<std::string> log;
  TimerQueue q(10);
  Probe a("a", &log), b("b", &log), c("c", &log), d("d", &log);
  for (Probe* p : {&a, &b, &c, &d}) {
    q.push(&p->node, 0);
  }
  q.remove(&b.node);  // middle
  CHECK_FALSE(b.node.armed());
  q.remove(&a.node);  // head
  q.remove(&d.node);  // tail
  q.expire(100);
  CHECK(log == std::vector<std::string>{"c"});
  CHECK(q.empty());
  // Pushed again after removal: the queue is consistent.
  q.push(&d.node, 100);
  q.push(&a.node, 100);
  q.expire(110);
  CHECK(log == std::vector<std::string>{"c", "d", "a"});
}

TEST_CASE("TimerQueue callbacks may re-arm themselves and remove others", "[timer]") {
  std::vector<std::string> log;
  TimerQueue q(10);
  Probe a("a", &log), b("b", &log), c("c", &log);
  int rearms = 0;
  uint64_t clock = 90;  // "now" as the callbacks see it
  a.then = [&](Probe* p) {
    if (++rearms < 3) {
      q.push(&p->node, clock);
    }
  };
  b.then = [&](Probe*) { q.remove(&c.node); };
  q.push(&a.node, clock);
  q.push(&b.node, clock);
  q.push(&c.node, clock);
  clock = 105;
  q.expire(clock);  // a is re-armed for 115, so it does not fire twice here
  CHECK(log == std::vector<std::string>{"a", "b"});
  CHECK(a.node.armed());
  CHECK(a.node.deadline == 115);
  CHECK_FALSE(c.node.armed());
  clock = 115;
  q.expire(clock);
  CHECK(log == std::vector<std::string>{"a", "b", "a"});
  q.push(&c.node, clock);
  clock = 1000;
  q.expire(clock);  // a fires and stops re-arming; then c
  CHECK(log == std::vector<std::string>{"a", "b", "a", "a", "c"});
  CHECK(q.empty());
}

// A loop with a Timers ticking every millisecond.
class LoopFixture {
 public:
  LoopFixture() {
    REQUIRE(uv_loop_init(&loop) == 0);
    timers.start(&loop, 1);
    // The tick is unref'd, and uv_run runs no timer on a loop without a referenced handle (a
    // worker always has its listeners and signals): this one stands in for them.
    uv_timer_init(&loop, &keep_alive_);
    uv_timer_start(
        &keep_alive_, [](uv_timer_t*) {}, 3600 * 1000, 0);
  }
  ~LoopFixture() {
    timers.stop();
    uv_close(reinterpret_cast<uv_handle_t*>(&keep_alive_), nullptr);
    for (int i = 0; i < 100 && uv_loop_close(&loop) == UV_EBUSY; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
    }
  }
  // Runs the loop until `done` or two seconds pass; the tick is unref'd, so each turn polls a
  // millisecond at most.
  bool runUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      ::poll(nullptr, 0, 1);
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    return true;
  }

  uv_loop_t loop{};
  Timers timers;

 private:
  uv_timer_t keep_alive_{};
};

TEST_CASE("Timers arm, re-arm and disarm move nodes between duration queues", "[timer]") {
  LoopFixture f;
  std::vector<std::string> log;
  Probe a("a", &log);
  uv_update_time(&f.loop);
  uint64_t now = uv_now(&f.loop);
  f.timers.arm(&a.node, 500);
  REQUIRE(a.node.armed());
  TimerQueue* q500 = a.node.queue;
  CHECK(q500->duration() == 500);
  CHECK(a.node.deadline == now + 500);
  f.timers.arm(&a.node, 700);
  REQUIRE(a.node.armed());
  CHECK(a.node.queue != q500);
  CHECK(a.node.queue->duration() == 700);
  CHECK(q500->empty());
  f.timers.arm(&a.node, 500);
  CHECK(a.node.queue == q500);  // the queue of a duration is reused
  f.timers.disarm(&a.node);
  CHECK_FALSE(a.node.armed());
  CHECK(q500->empty());
  f.timers.disarm(&a.node);  // disarming twice is harmless
  f.timers.arm(&a.node, 500);
  f.timers.arm(&a.node, 0);  // 0 disarms
  CHECK_FALSE(a.node.armed());
  CHECK(log.empty());
}

TEST_CASE("Timers fire across queues by deadline and a disarmed node never fires", "[timer]") {
  LoopFixture f;
  std::vector<std::string> log;
  Probe slow("slow", &log), fast("fast", &log), off("off", &log);
  f.timers.arm(&slow.node, 60);
  f.timers.arm(&fast.node, 5);
  f.timers.arm(&off.node, 5);
  f.timers.disarm(&off.node);
  REQUIRE(f.runUntil([&] { return log.size() == 2; }));
  CHECK(log == std::vector<std::string>{"fast", "slow"});
  CHECK_FALSE(slow.node.armed());
}

TEST_CASE("Timers: a callback re-arming itself fires again, one re-arm moves the deadline",
          "[timer]") {
  LoopFixture f;
  std::vector<std::string> log;
  Probe a("a", &log), late("late", &log), marker("marker", &log);
  int fired = 0;
  a.then = [&](Probe* p) {
    if (++fired < 3) {
      f.timers.arm(&p->node, 3);
    }
  };
  f.timers.arm(&a.node, 3);
  REQUIRE(f.runUntil([&] { return fired == 3; }));
  CHECK(log == std::vector<std::string>{"a", "a", "a"});
  CHECK_FALSE(a.node.armed());

  // Re-arming before the deadline pushes it back: `late` fires after `marker` (armed between).
  log.clear();
  uint64_t t0 = uv_now(&f.loop);
  f.timers.arm(&late.node, 40);
  REQUIRE(f.runUntil([&] { return uv_now(&f.loop) >= t0 + 10; }));
  REQUIRE(log.empty());
  f.timers.arm(&marker.node, 40);
  f.timers.arm(&late.node, 40);  // re-arm: now behind marker in the same queue
  REQUIRE(f.runUntil([&] { return log.size() == 2; }));
  CHECK(log == std::vector<std::string>{"marker", "late"});
}

}  // namespace
}  // namespace lb::worker
