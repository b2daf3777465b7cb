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

}  // namespace
}  // namespace lb::worker
