// Keep-alive on both sides: many requests over one client connection use one client connection
// and few upstream connections (the per-worker upstream pool), a real client (curl) reuses its
// connection, and the client-side keepalive_requests / keepalive_timeout_ms limits apply.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

TEST_CASE("200 requests over one client connection reuse upstream connections", "[keepalive]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "keepalive = 4;"));

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/ka/" + std::to_string(i)));
    if (!r || r->status != 200 || r->body.data != "A" ||
        r->headers.hasToken("Connection", "close")) {
      INFO("request " << i << ": " << describe(r, c.error()));
      FAIL_CHECK("request failed or lb closed the connection");
      break;
    }
    ++ok;
  }
  CHECK(ok == 200);
  // The client side: every response came over the one connection, and it is still open.
  CHECK(c.staysOpen(100ms));
  // The upstream side: lb kept its upstream connections (at most workers * keepalive).
  INFO("upstream TCP connections: " << up.connections() << ", requests: " << up.requests());
  CHECK(up.requests() == 200);
  CHECK(up.connections() <= 2 * 4);
  // Requests on a reused connection were counted by the fake upstream.
  auto seen = up.received();
  REQUIRE(seen.size() == 200);
  CHECK(seen.back().sequence > 1);
}

TEST_CASE("new client connections share the upstream keep-alive pool", "[keepalive]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "keepalive = 8;"));

  for (int i = 0; i < 60; ++i) {
    auto r = get(lb.port(0), "/n/" + std::to_string(i));
    INFO("request " << i << ": " << describe(r));
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  INFO("upstream TCP connections: " << up.connections());
  CHECK(up.requests() == 60);
  CHECK(up.connections() <= 2 * 8);
}

TEST_CASE("curl fetching several URLs uses one connection", "[keepalive][curl]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  std::string url = "http://127.0.0.1:" + std::to_string(lb.port(0));
  auto res =
      runCommand({"curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w",
                  "%{http_code} %{num_connects}\\n", url + "/1", url + "/2", url + "/3"},
                 20s);
  INFO(res.describe());
  REQUIRE(res.exit_code == 0);
  // curl prints one line per transfer; num_connects is 1 for the first and 0 when it reused.
  CHECK(res.out == "200 1\n200 0\n200 0\n");
  CHECK(up.requests() == 3);
}

TEST_CASE("keepalive_requests closes the client connection after that many requests",
          "[keepalive]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "keepalive_requests = 3;"));

  HttpClient c(lb.port(0));
  for (int i = 1; i <= 3; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/"));
    INFO("request " << i << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.hasToken("Connection", "close") == (i == 3));
  }
  CHECK(c.waitClosed(3s));
}

TEST_CASE("an idle client connection is closed after keepalive_timeout_ms", "[keepalive]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "keepalive_timeout_ms = 300;"));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  auto idle_since = Clock::now();
  CHECK(c.waitClosed(5s));
  INFO("closed after " << elapsedMs(idle_since) << " ms idle");
  CHECK(elapsedMs(idle_since) >= 250);
}

TEST_CASE("an upstream that closes its keep-alive connection is handled transparently",
          "[keepalive]") {
  // The upstream answers with Connection: close every time; lb must not reuse that connection.
  FakeUpstream up("A", [](Exchange& ex) {
    ex.closeAfter();
    ex.respond(200, {}, "A");
  });
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  for (int i = 0; i < 20; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/"));
    INFO("request " << i << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == "A");
  }
  CHECK(up.connections() == 20);
}

}  // namespace
}  // namespace lb::e2e
