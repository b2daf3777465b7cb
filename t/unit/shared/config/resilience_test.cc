// What a pool does when its backends fail: retries, retry_on, retry_budget, passive, the
// circuit_breaker, the queue and slow_start_ms, read with their values and defaults, and refused
// with file:line errors on bad input.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "shared/config/load.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::expectError;
using test::kFixtures;
using test::loadPool;
using test::mustLoad;
using test::withPool;

const std::vector<int> k5xx = {500, 502, 503, 504};

// withPool() with a backend that has max_connections, so that a queue is meaningful.
std::string withLimitedPool(const std::string& options) {
  return "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
         "pools = ( { name = \"app\"; " +
         options +
         "\n  backends = ( { address = \"127.0.0.1:9000\"; max_connections = 10; } ); } );\n";
}

Pool loadLimitedPool(const std::string& options) {
  return mustLoad(loadConfigFromString(withLimitedPool(options), "test.conf")).pools[0];
}

TEST_CASE("without resilience directives a pool gets the documented defaults", "[config]") {
  const Pool p = loadPool("");
  CHECK(p.retries == 1);
  CHECK(p.retry_on.empty());
  CHECK(p.retry_budget.percent == 20);
  CHECK(p.retry_budget.window_ms == 10000);
  CHECK(p.retry_budget.min_retries == 10);
  CHECK(p.passive.failures == 0);  // off
  CHECK_FALSE(p.circuit_breaker.enabled);
  CHECK(p.queue.size == 0);  // off
  CHECK(p.slow_start_ms == 0);
}

TEST_CASE("each resilience directive is read with its value", "[config]") {
  Pool p = loadLimitedPool(
      "retries = 3; retry_on = [ 429, 502, 504 ];\n"
      "retry_budget = { percent = 50; window_ms = 2000; min_retries = 0; };\n"
      "passive = { failures = 2; fail_timeout_ms = 1500; statuses = [ 503, 429 ]; };\n"
      "circuit_breaker = { failures = 7; open_ms = 3000; half_open_probes = 2;\n"
      "                    half_open_successes = 3; statuses = [ 500 ]; };\n"
      "queue = { size = 20; timeout_ms = 750; };\n"
      "slow_start_ms = 30000;");
  CHECK(p.retries == 3);
  CHECK(p.retry_on == std::vector<int>{429, 502, 504});
  CHECK(p.retry_budget.percent == 50);
  CHECK(p.retry_budget.window_ms == 2000);
  CHECK(p.retry_budget.min_retries == 0);
  CHECK(p.passive.failures == 2);
  CHECK(p.passive.fail_timeout_ms == 1500);
  CHECK(p.passive.statuses == std::vector<int>{503, 429});
  CHECK(p.circuit_breaker.enabled);
  CHECK(p.circuit_breaker.failures == 7);
  CHECK(p.circuit_breaker.open_ms == 3000);
  CHECK(p.circuit_breaker.half_open_probes == 2);
  CHECK(p.circuit_breaker.half_open_successes == 3);
  CHECK(p.circuit_breaker.statuses == std::vector<int>{500});
  CHECK(p.queue.size == 20);
  CHECK(p.queue.timeout_ms == 750);
  CHECK(p.slow_start_ms == 30000);

  // The extremes of each range.
  p = loadLimitedPool(
      "retries = 7; retry_on = ( 500, 503 );\n"
      "retry_budget = { percent = 1000; window_ms = 100; min_retries = 2147483647; };\n"
      "passive = { failures = 1000; fail_timeout_ms = 1; statuses = [ 400, 599 ]; };\n"
      "circuit_breaker = { failures = 1; open_ms = 2147483647; half_open_probes = 1000;\n"
      "                    half_open_successes = 1000; statuses = [ 599 ]; };\n"
      "queue = { size = 1000000; timeout_ms = 2147483647; };\n"
      "slow_start_ms = 2147483647;");
  CHECK(p.retries == 7);
  CHECK(p.retry_on == std::vector<int>{500, 503});
  CHECK(p.retry_budget.percent == 1000);
  CHECK(p.retry_budget.window_ms == 100);
  CHECK(p.retry_budget.min_retries == 2147483647u);
  CHECK(p.passive.failures == 1000);
  CHECK(p.circuit_breaker.open_ms == 2147483647u);
  CHECK(p.queue.size == 1000000);
  CHECK(p.slow_start_ms == 2147483647u);
}

TEST_CASE("an empty group turns passive, the breaker and the queue on with defaults", "[config]") {
  Pool p = loadLimitedPool("passive = { }; circuit_breaker = { }; queue = { };");
  CHECK(p.passive.failures == 3);
  CHECK(p.passive.fail_timeout_ms == 10000);
  CHECK(p.passive.statuses == k5xx);
  CHECK(p.circuit_breaker.enabled);
  CHECK(p.circuit_breaker.failures == 5);
  CHECK(p.circuit_breaker.open_ms == 10000);
  CHECK(p.circuit_breaker.half_open_probes == 1);
  CHECK(p.circuit_breaker.half_open_successes == 1);
  CHECK(p.circuit_breaker.statuses == k5xx);
  CHECK(p.queue.size == 100);
  CHECK(p.queue.timeout_ms == 5000);

  p = loadPool("retry_budget = { }; retry_on = [ ];");
  CHECK(p.retry_budget.percent == 20);
  CHECK(p.retry_budget.window_ms == 10000);
  CHECK(p.retry_budget.min_retries == 10);
  CHECK(p.retry_on.empty());

  // Empty status lists: only connect failures, resets, timeouts and bad responses count.
  p = loadPool("passive = { statuses = [ ]; }; circuit_breaker = { statuses = [ ]; };");
  CHECK(p.passive.failures == 3);
  CHECK(p.passive.statuses.empty());
  CHECK(p.circuit_breaker.enabled);
  CHECK(p.circuit_breaker.statuses.empty());
}

TEST_CASE("retry directives out of range or of the wrong type are refused", "[config]") {
  expectError(withPool("retries = 8;"), 2, "\"retries\" must be between 0 and 7, got 8");
  expectError(withPool("retry_on =\n  [ 502, 501 ];"), 3,
              "element 2 of \"retry_on\" must be 429, 500, 502, 503 or 504, got 501");
  expectError(withPool("retry_on = [ 404 ];"), 2,
              "element 1 of \"retry_on\" must be 429, 500, 502, 503 or 504, got 404");
  expectError(withPool("retry_on = [ 99 ];"), 2,
              "element 1 of \"retry_on\" must be between 100 and 599, got 99");
  expectError(withPool("retry_on = [ 502, 503,\n  502 ];"), 3,
              "status 502 is listed twice in \"retry_on\"");
  expectError(withPool("retry_on = 502;"), 2,
              "\"retry_on\" must be an array of statuses such as [ 502, 503 ], got an integer");
  expectError(withPool("retry_on = [ \"502\" ];"), 2,
              "element 1 of \"retry_on\" must be an integer, got a string");
  expectError(withPool("retry_budget = 20;"), 2,
              "\"retry_budget\" must be a group { ... }, got an integer");
  expectError(withPool("retry_budget = {\n  percent = 1001; };"), 3,
              "\"percent\" must be between 0 and 1000, got 1001");
  expectError(withPool("retry_budget = { percent = -1; };"), 2,
              "\"percent\" must be between 0 and 1000, got -1");
  expectError(withPool("retry_budget = { window_ms = 99; };"), 2,
              "\"window_ms\" must be between 100 and 2147483647, got 99");
  expectError(withPool("retry_budget = { window_ms = \"10s\"; };"), 2,
              "\"window_ms\" must be an integer, got a string");
  expectError(withPool("retry_budget = { min_retries = -1; };"), 2,
              "\"min_retries\" must be between 0 and 2147483647, got -1");
}

TEST_CASE("passive and circuit_breaker values out of range are refused", "[config]") {
  expectError(withPool("passive = true;"), 2, "\"passive\" must be a group { ... }, got a boolean");
  expectError(withPool("passive = { failures = 0; };"), 2,
              "\"failures\" must be between 1 and 1000, got 0");
  expectError(withPool("passive = {\n  failures = 1001; };"), 3,
              "\"failures\" must be between 1 and 1000, got 1001");
  expectError(withPool("passive = { fail_timeout_ms = 0; };"), 2,
              "\"fail_timeout_ms\" must be between 1 and 2147483647, got 0");
  expectError(withPool("passive = { statuses = [ 500, 399 ]; };"), 2,
              "element 2 of \"statuses\" must be between 400 and 599, got 399");
  expectError(withPool("passive = { statuses = [ 600 ]; };"), 2,
              "element 1 of \"statuses\" must be between 400 and 599, got 600");
  expectError(withPool("passive = { statuses = [ 500,\n  500 ]; };"), 3,
              "status 500 is listed twice in \"statuses\"");
  expectError(withPool("passive = { statuses = 500; };"), 2,
              "\"statuses\" must be an array of statuses such as [ 500, 503 ], got an integer");

  expectError(withPool("circuit_breaker = ( );"), 2,
              "\"circuit_breaker\" must be a group { ... }, got a list");
  expectError(withPool("circuit_breaker = { failures = 0; };"), 2,
              "\"failures\" must be between 1 and 1000, got 0");
  expectError(withPool("circuit_breaker = { failures = 1001; };"), 2,
              "\"failures\" must be between 1 and 1000, got 1001");
  expectError(withPool("circuit_breaker = { open_ms = 0; };"), 2,
              "\"open_ms\" must be between 1 and 2147483647, got 0");
  expectError(withPool("circuit_breaker = { half_open_probes = 0; };"), 2,
              "\"half_open_probes\" must be between 1 and 1000, got 0");
  expectError(withPool("circuit_breaker = { half_open_probes = 1001; };"), 2,
              "\"half_open_probes\" must be between 1 and 1000, got 1001");
  expectError(withPool("circuit_breaker = { half_open_successes = 0; };"), 2,
              "\"half_open_successes\" must be between 1 and 1000, got 0");
  expectError(withPool("circuit_breaker = { half_open_successes = 1001; };"), 2,
              "\"half_open_successes\" must be between 1 and 1000, got 1001");
  expectError(withPool("circuit_breaker = {\n  statuses = [ 502, 200 ]; };"), 3,
              "element 2 of \"statuses\" must be between 400 and 599, got 200");
  expectError(withPool("circuit_breaker = { statuses = [ 503, 503 ]; };"), 2,
              "status 503 is listed twice in \"statuses\"");
}

TEST_CASE("queue and slow_start_ms values out of range are refused", "[config]") {
  expectError(withLimitedPool("queue = 100;"), 2,
              "\"queue\" must be a group { ... }, got an integer");
  expectError(withLimitedPool("queue = { size = 0; };"), 2,
              "\"size\" must be between 1 and 1000000, got 0");
  expectError(withLimitedPool("queue = {\n  size = 1000001; };"), 3,
              "\"size\" must be between 1 and 1000000, got 1000001");
  expectError(withLimitedPool("queue = { timeout_ms = 0; };"), 2,
              "\"timeout_ms\" must be between 1 and 2147483647, got 0");
  expectError(withPool("slow_start_ms = -1;"), 2,
              "\"slow_start_ms\" must be between 0 and 2147483647, got -1");
  expectError(withPool("slow_start_ms = true;"), 2,
              "\"slow_start_ms\" must be an integer, got a boolean");
}

TEST_CASE("a queue no request could wait in is an error", "[config]") {
  expectError(withPool("\n  queue = { size = 10; };"), 3,
              "\"queue\" in pool \"app\" has no effect: no backend has \"max_connections\"");
  // max_connections = 0 is no limit either.
  expectError(
      "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
      "pools = ( { name = \"app\"; queue = { };\n"
      "  backends = ( { address = \"127.0.0.1:9000\"; max_connections = 0; },\n"
      "               { address = \"127.0.0.1:9001\"; } ); } );\n",
      2, "\"queue\" in pool \"app\" has no effect: no backend has \"max_connections\"");
  // One limited backend is enough: requests wait for it when the others are ineligible.
  Pool p = mustLoad(loadConfigFromString(
                        "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
                        "pools = ( { name = \"app\"; queue = { };\n"
                        "  backends = ( { address = \"127.0.0.1:9000\"; },\n"
                        "               { address = \"127.0.0.1:9001\"; max_connections = 1; } ); "
                        "} );\n",
                        "test.conf"))
               .pools[0];
  CHECK(p.queue.size == 100);
}

TEST_CASE("slow_start_ms is refused with algorithm hash only", "[config]") {
  expectError(withPool("algorithm = \"hash\";\n  slow_start_ms = 1000;"), 3,
              "\"slow_start_ms\" in pool \"app\" cannot be used with algorithm \"hash\": a ramping "
              "weight would move keys between backends");
  CHECK(loadPool("algorithm = \"hash\"; slow_start_ms = 0;").slow_start_ms == 0);
  // ip_hash maps clients by weight (ip_hash.cc), so a ramp means something there.
  CHECK(loadPool("algorithm = \"ip_hash\"; slow_start_ms = 1000;").slow_start_ms == 1000);
  for (const char* algorithm : {"round_robin", "least_conn", "least_time", "peak_ewma", "random"}) {
    INFO(algorithm);
    CHECK(loadPool("algorithm = \"" + std::string(algorithm) + "\"; slow_start_ms = 500;")
              .slow_start_ms == 500);
  }
}

TEST_CASE("a misspelt key in a resilience group suggests the right one", "[config]") {
  expectError(withPool("retry_budget = {\n  precent = 10; };"), 3,
              "unknown directive \"precent\" in \"retry_budget\" of pool \"app\"; did you mean "
              "\"percent\"?");
  expectError(withPool("passive = {\n  fail_timout_ms = 10; };"), 3,
              "unknown directive \"fail_timout_ms\" in \"passive\" of pool \"app\"; did you mean "
              "\"fail_timeout_ms\"?");
  expectError(withPool("circuit_breaker = {\n  half_open_probe = 2; };"), 3,
              "unknown directive \"half_open_probe\" in \"circuit_breaker\" of pool \"app\"; did "
              "you mean \"half_open_probes\"?");
  expectError(withLimitedPool("queue = {\n  sise = 2; };"), 3,
              "unknown directive \"sise\" in \"queue\" of pool \"app\"; did you mean \"size\"?");
  expectError(withLimitedPool("queue = {\n  backlog = 2; };"), 3,
              "unknown directive \"backlog\" in \"queue\" of pool \"app\"");
  expectError(withPool("\n  retry_ont = [ 502 ];"), 3,
              "unknown directive \"retry_ont\" in pool \"app\"; did you mean \"retry_on\"?");
  expectError(withPool("\n  slowstart_ms = 10;"), 3,
              "unknown directive \"slowstart_ms\" in pool \"app\"; did you mean "
              "\"slow_start_ms\"?");
  expectError(withPool("\n  circuit_braker = { };"), 3,
              "unknown directive \"circuit_braker\" in pool \"app\"; did you mean "
              "\"circuit_breaker\"?");
}

TEST_CASE("every error in the resilience groups is reported, with its line", "[config]") {
  auto r = loadConfigFromString(withPool("retry_on = [ 501 ];\n"
                                         "passive = { failures = 0; };\n"
                                         "circuit_breaker = { open_ms = 0; };\n"
                                         "queue = { };"),
                                "test.conf");
  REQUIRE_FALSE(r.has_value());
  INFO(test::allErrors(r.error()));
  REQUIRE(r.error().size() == 4);
  CHECK(r.error()[0].line == 2);
  CHECK(r.error()[1].line == 3);
  CHECK(r.error()[2].line == 4);
  CHECK(r.error()[3].line == 5);
  CHECK(r.error()[3].message ==
        "\"queue\" in pool \"app\" has no effect: no backend has \"max_connections\"");
}

TEST_CASE("the api pool of full.conf sets every resilience directive", "[config]") {
  const Config c = mustLoad(loadConfig(kFixtures + "full.conf"));
  const Pool& p = c.pools[1];
  CHECK(p.retries == 2);
  CHECK(p.retry_on == std::vector<int>{502, 503, 504});
  CHECK(p.retry_budget.percent == 25);
  CHECK(p.retry_budget.window_ms == 5000);
  CHECK(p.retry_budget.min_retries == 3);
  CHECK(p.passive.failures == 4);
  CHECK(p.passive.fail_timeout_ms == 2000);
  CHECK(p.passive.statuses == std::vector<int>{502, 503});
  CHECK(p.circuit_breaker.enabled);
  CHECK(p.circuit_breaker.failures == 6);
  CHECK(p.circuit_breaker.open_ms == 4000);
  CHECK(p.circuit_breaker.half_open_probes == 2);
  CHECK(p.circuit_breaker.half_open_successes == 2);
  CHECK(p.circuit_breaker.statuses.empty());
  CHECK(p.queue.size == 50);
  CHECK(p.queue.timeout_ms == 800);
  CHECK(p.slow_start_ms == 15000);
}

}  // namespace
}  // namespace lb::config
