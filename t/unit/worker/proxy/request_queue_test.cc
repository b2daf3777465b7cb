// The request queue's list and its wake-up: order kept, removal from anywhere, capacity.

#include "worker/proxy/request_queue.h"

#include <catch2/catch.hpp>

namespace lb::worker {
namespace {

TEST_CASE("request queue: capacity, removal from any place, close", "[queue]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    RequestQueue q(&loop, 3);
    QueueLink a, b, c, d;
    CHECK(q.push(&a));
    CHECK(q.push(&b));
    CHECK_FALSE(q.push(&b));  // already queued
    CHECK(q.push(&c));
    CHECK(q.full());
    CHECK_FALSE(q.push(&d));
    CHECK_FALSE(d.queued);
    q.remove(&b);  // from the middle
    CHECK_FALSE(b.queued);
    CHECK(a.next == &c);
    CHECK(c.prev == &a);
    CHECK(q.size() == 2);
    q.remove(&b);  // not queued: nothing happens
    CHECK(q.size() == 2);
    q.remove(&a);  // the head
    q.remove(&c);  // the last one
    CHECK(q.size() == 0);
    CHECK(q.push(&d));
    q.remove(&d);
    q.close();
    CHECK_FALSE(q.push(&a));  // closed: the loop is ending
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace lb::worker
