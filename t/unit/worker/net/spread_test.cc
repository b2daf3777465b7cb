#include "worker/net/spread.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "shared/shm/segment.h"

namespace lb::worker {
namespace {

// Two workers of generation 1 in a fresh segment; `ctx` is worker 0.
struct TwoWorkers {
  std::string name = "lb.unit." + std::to_string(::getpid()) + ".spread";
  std::unique_ptr<shm::SharedSegment> seg;
  config::Config config;
  WorkerContext ctx;
  shm::WorkerSlot* me = nullptr;
  shm::WorkerSlot* other = nullptr;

  TwoWorkers() {
    auto s = shm::SharedSegment::create(name);
    REQUIRE(s);
    seg = std::move(*s);
    config.worker_processes = 2;
    shm::Segment* g = seg->get();
    g->header.worker_slots_high.store(2);
    me = &g->workers[0];
    other = &g->workers[1];
    for (shm::WorkerSlot* w : {me, other}) {
      w->pid.store(w == me ? 100 : 101);
      w->generation.store(1);
      w->accepting.store(1);
      w->load_at_ms.store(uv_hrtime() / 1000000);
    }
    ctx.config = &config;
    ctx.segment = g;
    ctx.slot = me;
  }
  ~TwoWorkers() {
    seg.reset();
    shm::SharedSegment::remove(name);
  }
};

TEST_CASE("siblingHasRoom: a worker with clearly more connections leaves new ones", "[spread]") {
  TwoWorkers t;
  t.me->active_connections.store(10);
  t.other->active_connections.store(8);
  CHECK_FALSE(siblingHasRoom(t.ctx));  // within 2 + 1/8
  t.other->active_connections.store(7);
  CHECK(siblingHasRoom(t.ctx));
}

TEST_CASE("siblingHasRoom: siblings that take no connections do not count", "[spread]") {
  TwoWorkers t;
  t.me->active_connections.store(40);
  t.other->active_connections.store(0);
  REQUIRE(siblingHasRoom(t.ctx));
  SECTION("sitting out, full or stopping") {
    t.other->accepting.store(0);
    CHECK_FALSE(siblingHasRoom(t.ctx));
  }
  SECTION("another generation") {
    t.other->generation.store(2);
    CHECK_FALSE(siblingHasRoom(t.ctx));
  }
  SECTION("gone") {
    t.other->pid.store(0);
    CHECK_FALSE(siblingHasRoom(t.ctx));
  }
  SECTION("a lone worker") {
    t.config.worker_processes = 1;
    CHECK_FALSE(siblingHasRoom(t.ctx));
  }
}

TEST_CASE("spreadDecision: churning connections all go to the first accepting worker", "[spread]") {
  TwoWorkers t;
  t.me->churning.store(1);
  t.me->load_permille.store(400);
  t.other->load_permille.store(100);
  // Counts alone would have this worker leave the connection to its sibling.
  t.me->active_connections.store(40);
  t.other->active_connections.store(0);
  CHECK(spreadDecision(t.ctx) == Spread::TakeAll);
  SECTION("the sibling sits out, however few connections it holds") {
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Leave);
  }
  SECTION("a first worker that takes no connections does not lead") {
    t.me->accepting.store(0);
    t.ctx.slot = t.other;
    t.other->churning.store(1);
    CHECK(spreadDecision(t.ctx) == Spread::TakeAll);
  }
  SECTION("a first worker whose loop stopped publishing does not lead") {
    t.me->load_at_ms.store(uv_hrtime() / 1000000 - kLoadStaleMs - 50);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);  // counts: 40 against 0
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
  }
  SECTION("a first worker that ran too far ahead of its siblings does not lead") {
    t.me->active_connections.store(kPackMaxLead);
    t.other->active_connections.store(0);
    CHECK(spreadDecision(t.ctx) == Spread::TakeAll);
    t.me->active_connections.store(kPackMaxLead + 1);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);  // counts: the sibling has room
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
    t.other->active_connections.store(1);  // within the lead again: packing resumes
    CHECK(spreadDecision(t.ctx) == Spread::Leave);
    t.other->accepting.store(0);  // a sibling that takes nothing is no measure
    t.ctx.slot = t.me;
    t.me->active_connections.store(10 * kPackMaxLead);
    CHECK(spreadDecision(t.ctx) == Spread::TakeAll);
  }
  SECTION("a worker of another generation does not lead") {
    t.me->generation.store(2);
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);  // the first of its generation, not churning
  }
}

TEST_CASE("spreadDecision: counts rule when connections stay or the load needs two workers",
          "[spread]") {
  TwoWorkers t;
  t.me->active_connections.store(40);
  t.other->active_connections.store(0);
  SECTION("connections stay") {
    t.me->churning.store(0);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
  }
  SECTION("the load of all workers together reaches the limit") {
    t.me->churning.store(1);
    t.me->load_permille.store(kPackLoadPermille - 100);
    t.other->load_permille.store(100);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
    t.other->load_permille.store(99);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);  // packing again, onto the first worker
  }
  SECTION("accept_spread = \"even\": churn does not count") {
    t.config.accept_spread = config::AcceptSpread::Even;
    t.me->churning.store(1);
    CHECK(spreadDecision(t.ctx) == Spread::Leave);
    t.ctx.slot = t.other;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
  }
  SECTION("a lone worker takes a few at a time") {
    t.config.worker_processes = 1;
    CHECK(spreadDecision(t.ctx) == Spread::Take);
  }
}

TEST_CASE("countClosed: one request and gone churns; more, or HTTP/2, stays; none is not counted",
          "[spread]") {
  WorkerContext ctx;
  countClosed(&ctx, 1, false, 20);
  CHECK((ctx.closes.churned == 1 && ctx.closes.kept == 0));
  countClosed(&ctx, 1, false, kChurnWithinMs);  // idle a while after its request: it stayed
  countClosed(&ctx, 5, false, 0);
  countClosed(&ctx, 1, true, 0);  // an HTTP/2 carrier
  CHECK((ctx.closes.churned == 1 && ctx.closes.kept == 3));
  countClosed(&ctx, 0, false, 0);  // a probe or a failed handshake
  CHECK((ctx.closes.churned == 1 && ctx.closes.kept == 3));
}

// Runs `loop` until `done` or 50 ticks have passed.
template <class Done>
bool runUntil(uv_loop_t* loop, Done done) {
  uint64_t start = uv_hrtime();
  while (!done() && uv_hrtime() - start < 50 * kSpreadTickMs * 1000000) {
    uv_run(loop, UV_RUN_ONCE);
  }
  return done();
}

TEST_CASE("LoadMeter publishes the churn flag and the loop's CPU share every tick", "[spread]") {
  TwoWorkers t;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  t.ctx.loop = &loop;
  // A ref'd timer keeps the loop turning while the meter's own timer is unref'd.
  uv_timer_t keep;
  uv_timer_init(&loop, &keep);
  uv_timer_start(
      &keep, [](uv_timer_t*) {}, 1, 1);
  LoadMeter meter;
  meter.start(&t.ctx);

  t.me->load_at_ms.store(0);
  t.ctx.closes = CloseSample{kChurnMin, 2};
  REQUIRE(runUntil(&loop, [&] { return t.me->churning.load() == 1; }));
  CHECK(uv_hrtime() / 1000000 - t.me->load_at_ms.load() <= kSpreadTickMs);
  CHECK(t.ctx.closes.churned == 0);  // the sample starts over each tick
  // Fewer than three churned closes per kept one: connections stay.
  t.ctx.closes = CloseSample{kChurnMin + 1, 4};
  REQUIRE(runUntil(&loop, [&] { return t.me->churning.load() == 0; }));

  CHECK(t.me->load_permille.load() < 500);  // waiting in the poll is not load
  // A loop that keeps busy shows a CPU share (less than all of it on a shared CI machine).
  uint64_t start = uv_hrtime();
  while (t.me->load_permille.load() < 200 && uv_hrtime() - start < 20 * kSpreadTickMs * 1000000) {
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  CHECK(t.me->load_permille.load() >= 200);

  meter.stop();
  CHECK(t.me->load_permille.load() == 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&keep), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace lb::worker
