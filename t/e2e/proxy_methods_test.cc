// GET, POST and PUT through lb: request line, headers and bodies reach the upstream unchanged
// and the upstream's status, headers and body come back; the access log records the request,
// an abandoned one too.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// The access log line with `request` in it, once it is written (lines are flushed within a
// second); empty if none comes within 5 s.
std::string accessLine(LbInstance& lb, const std::string& request) {
  std::string line;
  waitUntil(
      [&] {
        for (const auto& l : lb.accessLogLines()) {
          if (l.find(request) != std::string::npos) {
            line = l;
            return true;
          }
        }
        return false;
      },
      5s);
  return line;
}

TEST_CASE("GET is proxied and the upstream's response relayed", "[proxy]") {
  FakeUpstream up("A", upstream::fixed(201, "created-body", {{"X-Custom", "yes"}}));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  std::string error;
  auto r = fetch(lb.port(0), buildRequest("GET", "/hello/world?x=1&y=%20z", {{"X-Test", "t1"}}), {},
                 &error);
  INFO(describe(r, error));
  REQUIRE(r);
  CHECK(r->status == 201);
  CHECK(r->body.data == "created-body");
  CHECK(r->header("X-Custom") == "yes");
  CHECK(r->header("X-Upstream") == "A");

  REQUIRE(up.requests() == 1);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->method == "GET");
  CHECK(seen->target == "/hello/world?x=1&y=%20z");
  CHECK(seen->headers.value("X-Test") == "t1");
  CHECK(seen->headers.value("Host") == "lb.test");
  CHECK(seen->body.length() == 0);
  CHECK_FALSE(seen->headers.has("Transfer-Encoding"));

  // One access log line per request, with the request line, status and upstream address.
  std::string line = accessLine(lb, "GET /hello/world?x=1&y=%20z HTTP/1.1");
  INFO("access log:\n" << lb.accessLog());
  REQUIRE_FALSE(line.empty());
  CHECK(line.find("127.0.0.1") != std::string::npos);
  CHECK(line.find(" 201 ") != std::string::npos);
  CHECK(line.find(up.address()) != std::string::npos);
}

TEST_CASE("a request the client abandons is logged 499 and counted", "[proxy][logs]") {
  FakeUpstream up("hang", upstream::hang());
  LbInstance lb;
  // Streamed, the request reaches the backend before its body is complete.
  lb.start(singlePoolConfig({up.address()}, "", "request_buffering = false;"), {.workers = 1});
  {
    HttpClient c(lb.port(0));
    REQUIRE(c.send("POST /abandoned HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100\r\n\r\nab"));
    REQUIRE(waitUntil([&] { return up.requests() == 1; }, 5s));
  }  // the client closes in the middle of its body
  std::string line = accessLine(lb, "POST /abandoned HTTP/1.1");
  INFO("access log:\n" << lb.accessLog());
  REQUIRE_FALSE(line.empty());
  CHECK(line.find(" 499 ") != std::string::npos);
  CHECK(line.find(up.address()) != std::string::npos);
  CHECK(lb.statusTotal("4xx") == 1);
}

TEST_CASE("POST and PUT bodies reach the upstream intact and come back", "[proxy]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  std::string body = pattern(0, 100000);
  auto r =
      c.roundTrip(buildRequest("POST", "/form", {{"Content-Type", "application/x-test"}}, body));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.length() == body.size());
  CHECK(r->body.data == body);
  CHECK(r->header("X-Body-Checksum") == checksumHex(body));

  std::string put_body = "{\"key\": \"value\"}";
  r = c.roundTrip(buildRequest("PUT", "/items/7", {}, put_body));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == put_body);

  // An empty POST: Content-Length: 0 must reach the upstream (or no body framing at all).
  r = c.roundTrip(buildRequest("POST", "/empty", {}, ""));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.length() == 0);

  auto seen = up.received();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/form");
  CHECK(seen[0].headers.value("Content-Type") == "application/x-test");
  CHECK(seen[0].body.checksum() == checksumHex(body));
  CHECK(seen[1].method == "PUT");
  CHECK(seen[1].target == "/items/7");
  CHECK(seen[1].body.data == put_body);
  CHECK(seen[2].method == "POST");
  CHECK(seen[2].body.length() == 0);
}

TEST_CASE("other methods (DELETE, OPTIONS, PATCH) are proxied", "[proxy]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  for (std::string method : {"DELETE", "OPTIONS", "PATCH"}) {
    std::string body = method == "PATCH" ? "patch-body" : "";
    auto r = c.roundTrip(buildRequest(method, "/m", {}, body));
    INFO(method << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == body);
    auto seen = up.lastRequest();
    REQUIRE(seen);
    CHECK(seen->method == method);
  }
}

}  // namespace
}  // namespace lb::e2e
