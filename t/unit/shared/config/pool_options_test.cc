// A pool's algorithm and its options: hash_key, sticky and health_check, read from good input
// with their defaults, and refused with file:line errors on bad input.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "shared/config/load.h"
#include "shared/config/schema.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::expectError;
using test::kFixtures;
using test::loadPool;
using test::mustLoad;
using test::withPool;

TEST_CASE("every algorithm is selectable by its name", "[config]") {
  const std::vector<std::pair<std::string, Algorithm>> names = {
      {"round_robin", Algorithm::RoundRobin},
      {"least_conn", Algorithm::LeastConn},
      {"least_time", Algorithm::LeastTime},
      {"peak_ewma", Algorithm::PeakEwma},
      {"random", Algorithm::Random},
      {"ip_hash", Algorithm::IpHash},
      {"hash", Algorithm::Hash}};
  for (const auto& [name, algorithm] : names) {
    INFO(name);
    CHECK(loadPool("algorithm = \"" + name + "\";").algorithm == algorithm);
    CHECK(schema::algorithmName(algorithm) == name);
  }
  CHECK(std::size(schema::kAlgorithms) == names.size());
}

TEST_CASE("hash_key takes the client, the uri, a header or a cookie", "[config]") {
  CHECK(loadPool("algorithm = \"hash\";").hash_key.kind == HashKey::Kind::ClientAddress);
  CHECK(loadPool("algorithm = \"hash\"; hash_key = \"client\";").hash_key.kind ==
        HashKey::Kind::ClientAddress);
  CHECK(loadPool("algorithm = \"hash\"; hash_key = \"uri\";").hash_key.kind == HashKey::Kind::Uri);
  HashKey header = loadPool("hash_key = \"header:X-User\"; algorithm = \"hash\";").hash_key;
  CHECK(header.kind == HashKey::Kind::Header);
  CHECK(header.name == "X-User");
  HashKey cookie = loadPool("algorithm = \"hash\"; hash_key = \"cookie:session_id\";").hash_key;
  CHECK(cookie.kind == HashKey::Kind::Cookie);
  CHECK(cookie.name == "session_id");
  CHECK(schema::hashKeyText(cookie) == "cookie:session_id");
  CHECK(schema::hashKeyText(header) == "header:X-User");
}

TEST_CASE("sticky is on when its group is there, with documented defaults", "[config]") {
  CHECK_FALSE(loadPool("").sticky.enabled);
  Sticky s = loadPool("sticky = { };").sticky;
  CHECK(s.enabled);
  CHECK(s.cookie == "lb_sticky");
  CHECK(s.max_age_s == 0);
  s = loadPool("sticky = { cookie = \"route\"; max_age_s = 600; };").sticky;
  CHECK(s.cookie == "route");
  CHECK(s.max_age_s == 600);
}

TEST_CASE("health_check is on when its group is there, with documented defaults", "[config]") {
  CHECK(loadPool("").health_check.type == HealthCheck::Type::None);
  HealthCheck h = loadPool("health_check = { };").health_check;
  const HealthCheck d;
  CHECK(h.type == HealthCheck::Type::Tcp);
  CHECK(h.line == 2);
  CHECK(h.interval_ms == d.interval_ms);
  CHECK(h.interval_ms == 5000);
  CHECK(h.timeout_ms == 2000);
  CHECK(h.fall == 3);
  CHECK(h.rise == 2);
  CHECK(h.initial_up);
  CHECK(h.jitter_ms == 0);
  h = loadPool("health_check = { type = \"http\"; };").health_check;
  CHECK(h.type == HealthCheck::Type::Http);
  CHECK(h.method == "GET");
  CHECK(h.path == "/");
  CHECK(h.host.empty());
  CHECK(h.expect.empty());
  CHECK(h.body_contains.empty());
}

TEST_CASE("the third pool of full.conf sets every pool option", "[config]") {
  Config c = mustLoad(loadConfig(kFixtures + "full.conf"));
  REQUIRE(c.pools.size() == 3);
  const Pool& p = c.pools[2];
  CHECK(p.algorithm == Algorithm::Hash);
  CHECK(p.hash_key.kind == HashKey::Kind::Header);
  CHECK(p.hash_key.name == "X-Tenant");
  CHECK(p.sticky.enabled);
  CHECK(p.sticky.cookie == "srv");
  CHECK(p.sticky.max_age_s == 3600);
  const HealthCheck& h = p.health_check;
  CHECK(h.type == HealthCheck::Type::Http);
  CHECK(h.method == "HEAD");
  CHECK(h.path == "/healthz?full=1");
  CHECK(h.host == "cache.internal");
  CHECK(h.expect == std::vector<int>{200, 204});
  CHECK(h.body_contains == "ok");
  CHECK(h.interval_ms == 1000);
  CHECK(h.timeout_ms == 300);
  CHECK(h.fall == 2);
  CHECK(h.rise == 5);
  CHECK_FALSE(h.initial_up);
  CHECK(h.jitter_ms == 100);
  CHECK(h.line == 58);
}

TEST_CASE("a bad algorithm or hash_key names what is accepted", "[config]") {
  expectError(withPool("algorithm = \"fastest\";"), 2,
              "unknown algorithm \"fastest\" in pool \"app\"; expected \"round_robin\", "
              "\"least_conn\", \"least_time\", \"peak_ewma\", \"random\", \"ip_hash\" or \"hash\"");
  expectError(withPool("algorithm = \"least_con\";"), 2,
              "unknown algorithm \"least_con\" in pool \"app\"; did you mean \"least_conn\"?");
  expectError(withPool("algorithm = \"hash\";\n  hash_key = \"header:\";"), 3,
              "\"hash_key\" must be \"client\", \"uri\", \"header:NAME\" or \"cookie:NAME\" with "
              "NAME an HTTP token, got \"header:\"");
  expectError(withPool("algorithm = \"hash\";\n  hash_key = \"cookie:a b\";"), 3,
              "\"hash_key\" must be \"client\", \"uri\", \"header:NAME\" or \"cookie:NAME\" with "
              "NAME an HTTP token, got \"cookie:a b\"");
  expectError(withPool("algorithm = \"hash\";\n  hash_key = \"path\";"), 3,
              "\"hash_key\" must be \"client\", \"uri\", \"header:NAME\" or \"cookie:NAME\" with "
              "NAME an HTTP token, got \"path\"");
  expectError(withPool("hash_key = 1; algorithm = \"hash\";"), 2,
              "\"hash_key\" must be a string, got an integer");
  expectError(withPool("algorithm = \"ip_hash\";\n  hash_key = \"uri\";"), 3,
              "\"hash_key\" in pool \"app\" needs algorithm \"hash\", not \"ip_hash\"");
  expectError(withPool("hash_key = \"uri\";"), 2,
              "\"hash_key\" in pool \"app\" needs algorithm \"hash\", not \"round_robin\"");
}

TEST_CASE("a bad sticky group is refused", "[config]") {
  expectError(withPool("sticky = true;"), 2, "\"sticky\" must be a group { ... }, got a boolean");
  expectError(withPool("sticky = { cookie = \"a=b\"; };"), 2,
              "\"cookie\" must be a cookie name (an HTTP token), got \"a=b\"");
  expectError(withPool("sticky = { cookie = \"\"; };"), 2,
              "\"cookie\" must be a cookie name (an HTTP token), got \"\"");
  expectError(withPool("sticky = { max_age_s = -1; };"), 2,
              "\"max_age_s\" must be between 0 and 2147483647, got -1");
  expectError(withPool("sticky = {\n  cookies = \"x\"; };"), 3,
              "unknown directive \"cookies\" in \"sticky\" of pool \"app\"; did you mean "
              "\"cookie\"?");
}

TEST_CASE("a bad health_check group is refused", "[config]") {
  expectError(withPool("health_check = \"http\";"), 2,
              "\"health_check\" must be a group { ... }, got a string");
  expectError(withPool("health_check = { type = \"udp\"; };"), 2,
              "unknown health check type \"udp\" in \"health_check\" of pool \"app\"; expected "
              "\"tcp\" or \"http\"");
  expectError(withPool("health_check = {\n  path = \"/health\"; };"), 3,
              "\"path\" needs type \"http\" in \"health_check\" of pool \"app\"");
  expectError(withPool("health_check = { type = \"tcp\";\n  expect = [ 200 ]; };"), 3,
              "\"expect\" needs type \"http\" in \"health_check\" of pool \"app\"");
  expectError(withPool("health_check = { type = \"http\"; path = \"health\"; };"), 2,
              "\"path\" must start with \"/\" and hold no spaces, got \"health\"");
  expectError(withPool("health_check = { type = \"http\"; method = \"G T\"; };"), 2,
              "\"method\" must be an HTTP method such as \"GET\", got \"G T\"");
  expectError(withPool("health_check = { type = \"http\"; host = \"a b\"; };"), 2,
              "\"host\" must hold no spaces or control characters, got \"a b\"");
  expectError(withPool("health_check = { type = \"http\";\n  expect = [ 200, 600 ]; };"), 3,
              "element 2 of \"expect\" must be between 100 and 599, got 600");
  expectError(withPool("health_check = { type = \"http\";\n  expect = [ 99 ]; };"), 3,
              "element 1 of \"expect\" must be between 100 and 599, got 99");
  expectError(withPool("health_check = { type = \"http\";\n  expect = [ 200, 200 ]; };"), 3,
              "status 200 is listed twice in \"expect\"");
  expectError(withPool("health_check = { type = \"http\";\n  expect = 200; };"), 3,
              "\"expect\" must be an array of statuses such as [ 200, 204 ], got an integer");
  expectError(withPool("health_check = { type = \"http\";\n  expect = [ ]; };"), 3,
              "\"expect\" must list at least one status");
  expectError(withPool("health_check = {\n  interval_ms = 1000; timeout_ms = 1000; };"), 3,
              "\"timeout_ms\" (1000) must be less than \"interval_ms\" (1000) in \"health_check\" "
              "of pool \"app\"");
  expectError(withPool("health_check = {\n  interval_ms = 1000; };"), 3,
              "\"timeout_ms\" (2000) must be less than \"interval_ms\" (1000) in \"health_check\" "
              "of pool \"app\"");
  expectError(withPool("health_check = { timeout_ms = 100;\n  jitter_ms = 5000; };"), 3,
              "\"jitter_ms\" (5000) must be less than \"interval_ms\" (5000) in \"health_check\" "
              "of pool \"app\"");
  expectError(withPool("health_check = { interval_ms = 5; timeout_ms = 1; };"), 2,
              "\"interval_ms\" must be between 10 and 2147483647, got 5");
  expectError(withPool("health_check = { fall = 0; };"), 2,
              "\"fall\" must be between 1 and 1000, got 0");
  expectError(withPool("health_check = { rise = 1001; };"), 2,
              "\"rise\" must be between 1 and 1000, got 1001");
  expectError(withPool("health_check = { initial = \"unknown\"; };"), 2,
              "\"initial\" must be \"up\" or \"down\", got \"unknown\"");
  expectError(withPool("health_check = {\n  intervall_ms = 100; };"), 3,
              "unknown directive \"intervall_ms\" in \"health_check\" of pool \"app\"; did you "
              "mean \"interval_ms\"?");
}

}  // namespace
}  // namespace lb::config
