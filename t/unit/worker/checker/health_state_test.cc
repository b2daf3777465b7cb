#include "worker/checker/health_state.h"

#include <catch2/catch.hpp>

namespace lb::worker {
namespace {

using Change = HealthTracker::Change;

TEST_CASE("health: an up backend goes down after fall consecutive failures", "[checker]") {
  HealthTracker t(true, 3, 2);
  CHECK(t.record(false) == Change::None);
  CHECK(t.record(false) == Change::None);
  CHECK(t.streak() == 2);
  CHECK(t.record(false) == Change::WentDown);
  CHECK_FALSE(t.up());
  CHECK(t.streak() == 0);
  CHECK(t.record(false) == Change::None);  // already down
}

TEST_CASE("health: a pass in between starts the failure count again", "[checker]") {
  HealthTracker t(true, 3, 2);
  t.record(false);
  t.record(false);
  CHECK(t.record(true) == Change::None);
  CHECK(t.streak() == 0);
  CHECK(t.record(false) == Change::None);
  CHECK(t.record(false) == Change::None);
  CHECK(t.up());
  CHECK(t.record(false) == Change::WentDown);
}

TEST_CASE("health: a down backend comes back after rise consecutive passes", "[checker]") {
  HealthTracker t(false, 3, 2);
  CHECK(t.record(true) == Change::None);
  CHECK(t.record(false) == Change::None);  // the streak starts again
  CHECK(t.record(true) == Change::None);
  CHECK(t.record(true) == Change::WentUp);
  CHECK(t.up());
}

TEST_CASE("health: fall and rise of 1 change the state on every differing result", "[checker]") {
  HealthTracker t(true, 1, 1);
  CHECK(t.record(false) == Change::WentDown);
  CHECK(t.record(true) == Change::WentUp);
  CHECK(t.record(true) == Change::None);
}

}  // namespace
}  // namespace lb::worker
