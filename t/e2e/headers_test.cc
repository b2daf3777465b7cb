// Header handling at the proxy: X-Forwarded-For/-Proto/-Host set, Host preserved, and hop-by-hop
// fields (Connection and what it names, Keep-Alive, Proxy-Connection, TE, Upgrade without a
// WebSocket, the client's Transfer-Encoding framing) not forwarded — in both directions.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

TEST_CASE("X-Forwarded-* are set and Host is preserved", "[headers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto r = fetch(lb.port(0), buildRequest("GET", "/xf", {}, "", "Www.Example.test:8080"));
  INFO(describe(r));
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("upstream saw:\n" << seen->head);
  CHECK(seen->headers.all("Host") == std::vector<std::string>{"Www.Example.test:8080"});
  CHECK(seen->headers.joined("X-Forwarded-For") == "127.0.0.1");
  CHECK(seen->headers.joined("X-Forwarded-Proto") == "http");
  // Host names compare case-insensitively; the port the client used is part of it.
  CHECK(equalsIgnoreCase(seen->headers.joined("X-Forwarded-Host"), "Www.Example.test:8080"));
}

TEST_CASE("forwarded_headers = false sends no X-Forwarded-* and drops the client's", "[headers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "forwarded_headers = false;"));

  auto r = fetch(lb.port(0), buildRequest("GET", "/nf", {{"X-Forwarded-For", "203.0.113.7"}}));
  INFO(describe(r));
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("upstream saw:\n" << seen->head);
  CHECK(seen->headers.all("X-Forwarded-For").empty());
  CHECK(seen->headers.all("X-Forwarded-Proto").empty());
  CHECK(seen->headers.all("X-Forwarded-Host").empty());
  CHECK_FALSE(seen->headers.all("Host").empty());
}

TEST_CASE("X-Forwarded-For from the client gets the client address appended", "[headers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto r = fetch(lb.port(0), buildRequest("GET", "/xff", {{"X-Forwarded-For", "203.0.113.7"}}));
  INFO(describe(r));
  REQUIRE(r);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("upstream saw:\n" << seen->head);
  auto chain = splitList(seen->headers.joined("X-Forwarded-For"));
  REQUIRE_FALSE(chain.empty());
  // The address lb saw is the last hop; the client's claim may be kept before it.
  CHECK(chain.back() == "127.0.0.1");
  CHECK(chain.size() <= 2);
}

TEST_CASE("hop-by-hop request headers are not forwarded", "[headers]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  std::string request =
      "POST /hop HTTP/1.1\r\n"
      "Host: lb.test\r\n"
      "Connection: keep-alive, X-Private, Upgrade\r\n"
      "X-Private: secret\r\n"
      "Keep-Alive: timeout=5, max=100\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers, deflate\r\n"
      "Upgrade: h2c\r\n"
      "X-End-To-End: kept\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "4;name=value\r\nbody\r\n0\r\n\r\n";
  HttpClient c(lb.port(0));
  auto r = c.roundTrip(request);
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "body");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("upstream saw:\n" << seen->head);
  CHECK(seen->headers.value("X-End-To-End") == "kept");
  CHECK_FALSE(seen->headers.has("X-Private"));
  CHECK_FALSE(seen->headers.has("Keep-Alive"));
  CHECK_FALSE(seen->headers.has("Proxy-Connection"));
  CHECK_FALSE(seen->headers.has("TE"));
  CHECK_FALSE(seen->headers.has("Upgrade"));
  CHECK_FALSE(seen->headers.hasToken("Connection", "X-Private"));
  CHECK_FALSE(seen->headers.hasToken("Connection", "Upgrade"));
  // lb's own framing of the body, not the client's chunk extensions.
  CHECK(seen->head.find("name=value") == std::string::npos);
  CHECK(seen->body.data == "body");
  // The upgrade was not performed: the connection still speaks HTTP/1.1.
  r = c.roundTrip(buildRequest("GET", "/after"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("hop-by-hop response headers are not forwarded", "[headers]") {
  FakeUpstream up("raw", upstream::raw("HTTP/1.1 200 OK\r\n"
                                       "Connection: X-Upstream-Private\r\n"
                                       "X-Upstream-Private: secret\r\n"
                                       "Keep-Alive: timeout=77, max=3\r\n"
                                       "Proxy-Connection: keep-alive\r\n"
                                       "X-End-To-End: kept\r\n"
                                       "Content-Length: 2\r\n"
                                       "\r\n"
                                       "ok"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "ok");
  CHECK(r->header("X-End-To-End") == "kept");
  CHECK_FALSE(r->headers.has("X-Upstream-Private"));
  CHECK_FALSE(r->headers.hasToken("Connection", "X-Upstream-Private"));
  CHECK(r->headers.value("Keep-Alive").find("77") == std::string::npos);
  CHECK_FALSE(r->headers.has("Proxy-Connection"));
}

TEST_CASE("repeated end-to-end headers keep their order and values", "[headers]") {
  FakeUpstream up("raw", upstream::raw("HTTP/1.1 200 OK\r\n"
                                       "Set-Cookie: a=1\r\n"
                                       "Set-Cookie: b=2\r\n"
                                       "Content-Length: 0\r\n\r\n"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto r = fetch(lb.port(0), buildRequest("GET", "/", {{"X-Multi", "one"}, {"X-Multi", "two"}}));
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->headers.all("Set-Cookie") == std::vector<std::string>{"a=1", "b=2"});
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->headers.all("X-Multi") == std::vector<std::string>{"one", "two"});
}

}  // namespace
}  // namespace lb::e2e
