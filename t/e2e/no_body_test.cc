// Responses without a body: HEAD (with the Content-Length of the GET), 204 and 304 (also one
// that carries a Content-Length, which RFC 9110 allows). lb must send no body bytes and must not
// wait for any from the upstream; the next request on the connection proves the framing held.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

void expectNextRequestWorks(HttpClient& c) {
  auto next = c.roundTrip(buildRequest("GET", "/next"), {.timeout = 5s});
  INFO("follow-up request: " << describe(next, c.error()));
  REQUIRE(next);
  CHECK(next->status == 200);
}

Handler byPath() {
  return [](Exchange& ex) {
    const std::string& t = ex.request().target;
    if (t == "/204") {
      ex.respond(204, {{"X-Kind", "no-content"}}, "");
    } else if (t == "/304") {
      ex.respond(304, {{"ETag", "\"v1\""}}, "");
    } else if (t == "/304-with-length") {
      // Content-Length of the representation, no body bytes follow.
      ex.send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n");
    } else if (t == "/head-chunked") {
      ex.send(ex.request().method == "HEAD"
                  ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    } else {
      ex.respond(200, {}, "0123456789");
    }
  };
}

TEST_CASE("HEAD gets the headers with the GET's Content-Length and no body", "[nobody]") {
  FakeUpstream up("A", byPath());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("HEAD", "/resource"), {.head_request = true});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("Content-Length") == "10");
  CHECK(c.stream().buffer().empty());
  expectNextRequestWorks(c);
  auto seen = up.received();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].method == "HEAD");
}

TEST_CASE("HEAD of a chunked resource has no body", "[nobody][chunked]") {
  FakeUpstream up("A", byPath());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("HEAD", "/head-chunked"), {.head_request = true});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  expectNextRequestWorks(c);
}

TEST_CASE("204 No Content is relayed without a body", "[nobody]") {
  FakeUpstream up("A", byPath());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/204"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->header("X-Kind") == "no-content");
  CHECK_FALSE(r->headers.has("Transfer-Encoding"));
  CHECK(c.stream().buffer().empty());
  expectNextRequestWorks(c);
}

TEST_CASE("304 Not Modified is relayed without a body", "[nobody]") {
  FakeUpstream up("A", byPath());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/304", {{"If-None-Match", "\"v1\""}}));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 304);
  CHECK(r->header("ETag") == "\"v1\"");
  CHECK(c.stream().buffer().empty());
  expectNextRequestWorks(c);
}

TEST_CASE("304 with a Content-Length is relayed without waiting for a body", "[nobody]") {
  FakeUpstream up("A", byPath());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 3000;"));

  HttpClient c(lb.port(0));
  auto start = Clock::now();
  auto r = c.roundTrip(buildRequest("GET", "/304-with-length"), {.timeout = 5s});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 304);
  CHECK(elapsedMs(start) < 2000);
  CHECK(c.stream().buffer().empty());
  expectNextRequestWorks(c);
}

}  // namespace
}  // namespace lb::e2e
