#include "worker/turn_queue.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

namespace lb::worker {
namespace {

struct Work {
  TurnNode node;
  std::string name;
  std::vector<std::string>* log;
  std::function<void()> then;  // runs inside the callback

  Work(std::string n, std::vector<std::string>* l) : name(std::move(n)), log(l) {
    node.data = this;
    node.run = [](TurnNode* t) {
      auto* w = static_cast<Work*>(t->data);
      w->log->push_back(w->name);
      if (w->then) {
        w->then();
      }
    };
  }
};

struct Loop {
  uv_loop_t loop{};
  TurnQueue turn;
  Loop() {
    REQUIRE(uv_loop_init(&loop) == 0);
    turn.init(&loop);
  }
  // Runs the loop until nothing is left to do, stopped after 2 s at the latest; the seconds
  // it took. Work the queue left waiting for I/O that never comes shows as the 2 s.
  double run() {
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(
        &guard, [](uv_timer_t* h) { uv_stop(h->loop); }, 2000, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&guard));
    uint64_t start = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    double s = static_cast<double>(uv_hrtime() - start) / 1e9;
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return s;
  }
  ~Loop() {
    turn.close();
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

// Calls `fn` from a timer callback (outside the poll phase) on the next turn.
void fromTimer(uv_loop_t* loop, uv_timer_t* t, std::function<void()>* fn) {
  uv_timer_init(loop, t);
  t->data = fn;
  uv_timer_start(
      t, [](uv_timer_t* h) { (*static_cast<std::function<void()>*>(h->data))(); }, 0, 0);
}

TEST_CASE("TurnQueue runs work once, in order, with what it queues, before the loop waits",
          "[turn]") {
  Loop l;
  std::vector<std::string> log;
  Work a("a", &log), b("b", &log), c("c", &log);
  a.then = [&] {
    l.turn.push(&c.node);
    l.turn.push(&b.node);  // already queued: no second run
  };
  uv_timer_t t;
  std::function<void()> fn = [&] {
    l.turn.push(&a.node);
    l.turn.push(&b.node);
    l.turn.push(&a.node);
    CHECK(log.empty());  // nothing runs inside the callback that queues it
  };
  fromTimer(&l.loop, &t, &fn);
  CHECK(l.run() < 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  CHECK(log == std::vector<std::string>{"a", "b", "c"});
  CHECK(l.turn.empty());
  CHECK_FALSE(a.node.queued);
  // The queue's handles are stopped once it is empty: they keep no loop alive.
  CHECK(uv_run(&l.loop, UV_RUN_NOWAIT) == 0);
}

TEST_CASE("TurnQueue cancel drops work, also from inside the queue's run", "[turn]") {
  Loop l;
  std::vector<std::string> log;
  Work a("a", &log), b("b", &log), c("c", &log), d("d", &log);
  a.then = [&] { l.turn.cancel(&c.node); };
  uv_timer_t t;
  std::function<void()> fn = [&] {
    l.turn.push(&a.node);
    l.turn.push(&b.node);
    l.turn.push(&c.node);
    l.turn.push(&d.node);
    l.turn.cancel(&b.node);
    l.turn.cancel(&b.node);  // twice is harmless
  };
  fromTimer(&l.loop, &t, &fn);
  CHECK(l.run() < 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  CHECK(log == std::vector<std::string>{"a", "d"});
  CHECK(l.turn.empty());
}

TEST_CASE("TurnQueue runs what I/O callbacks queue after all of the turn's I/O", "[turn]") {
  Loop l;
  std::vector<std::string> log;
  int sv[2][2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv[0]) == 0);
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv[1]) == 0);
  Work w0("write0", &log), w1("write1", &log);
  struct Reader {
    uv_poll_t poll;
    std::string name;
    std::vector<std::string>* log;
    TurnQueue* turn;
    Work* work;
  };
  Reader r[2] = {{{}, "read0", &log, &l.turn, &w0}, {{}, "read1", &log, &l.turn, &w1}};
  for (int i = 0; i < 2; ++i) {
    REQUIRE(::write(sv[i][1], "x", 1) == 1);
    uv_poll_init(&l.loop, &r[i].poll, sv[i][0]);
    r[i].poll.data = &r[i];
    uv_poll_start(&r[i].poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* rd = static_cast<Reader*>(p->data);
      rd->log->push_back(rd->name);
      rd->turn->push(&rd->work->node);
      uv_poll_stop(p);
    });
  }
  uv_run(&l.loop, UV_RUN_ONCE);
  REQUIRE(log.size() == 4);
  // Both reads come first (in whichever order epoll gave them), then both writes.
  CHECK(log[0].rfind("read", 0) == 0);
  CHECK(log[1].rfind("read", 0) == 0);
  CHECK(log[2].rfind("write", 0) == 0);
  CHECK(log[3].rfind("write", 0) == 0);
  for (int i = 0; i < 2; ++i) {
    uv_close(reinterpret_cast<uv_handle_t*>(&r[i].poll), nullptr);
  }
  uv_run(&l.loop, UV_RUN_NOWAIT);
  for (auto& p : sv) {
    ::close(p[0]);
    ::close(p[1]);
  }
}

}  // namespace
}  // namespace lb::worker
