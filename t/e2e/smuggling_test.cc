// Request smuggling and ambiguous framing: every such request is answered 400 (501 for a
// transfer coding lb does not decode), the connection closed, and nothing reaches the upstream;
// the well-formed neighbours of those cases go through. Each case is its own test so a failure
// names it.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// Sends `raw` on a new connection; expects `status` (400 unless said otherwise), the connection
// closed by lb, and no request at the upstream.
void expectRejected(const std::string& raw, std::vector<int> statuses = {400}) {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  REQUIRE(c.send(raw));
  auto r = c.read({.timeout = 5s});
  INFO("request:\n" << raw);
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(std::find(statuses.begin(), statuses.end(), r->status) != statuses.end());
  CHECK(c.waitClosed(3s));
  // lb's worker survived and still serves.
  auto ok = get(lb.port(0), "/ok");
  INFO("follow-up: " << describe(ok));
  REQUIRE(ok);
  CHECK(ok->status == 200);
  // Only the follow-up reached the upstream.
  auto seen = up.received();
  CHECK(seen.size() == 1);
  if (!seen.empty()) {
    CHECK(seen[0].target == "/ok");
  }
}

TEST_CASE("Content-Length with Transfer-Encoding is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n");
}

TEST_CASE("Transfer-Encoding with Content-Length (reversed order) is rejected",
          "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n"
      "\r\n0\r\n\r\nX");
}

TEST_CASE("two differing Content-Length headers are rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde");
}

TEST_CASE("a Content-Length list with differing values is rejected", "[framing][smuggling]") {
  expectRejected("POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 3, 5\r\n\r\nabcde");
}

TEST_CASE("a non-numeric Content-Length is rejected", "[framing][smuggling]") {
  expectRejected("POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: +5\r\n\r\nabcde");
}

TEST_CASE("a bad chunk size is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n"
      "\r\n");
}

TEST_CASE("an overflowing chunk size is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10000000000000001\r\na\r\n0\r\n\r\n");
}

TEST_CASE("a Transfer-Encoding other than chunked is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
      "0\r\n\r\n");
}

TEST_CASE("an obfuscated Transfer-Encoding is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n"
      "\r\n0\r\n\r\n");
}

TEST_CASE("obs-fold in a header is rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\r\nHost: lb.test\r\nX-Folded: a\r\n b\r\n\r\n");
}

TEST_CASE("a bare LF line ending is rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\nHost: lb.test\n\n");
}

TEST_CASE("a bare LF inside the header block is rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\r\nHost: lb.test\nX-A: 1\r\n\r\n");
}

TEST_CASE("whitespace before the colon is rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\r\nHost : lb.test\r\n\r\n");
}

TEST_CASE("whitespace before the colon of Transfer-Encoding is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n"
      "\r\n0\r\n\r\n");
}

TEST_CASE("two Host headers are rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\r\nHost: lb.test\r\nHost: other.test\r\n\r\n");
}

TEST_CASE("an HTTP/1.1 request without Host is rejected", "[framing]") {
  expectRejected("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n");
}

TEST_CASE("a request line without a version is rejected", "[framing]") {
  // An HTTP/0.9 request line: 400, or 505 HTTP Version Not Supported.
  expectRejected("GET /\r\nHost: lb.test\r\n\r\n", {400, 505});
}

TEST_CASE("a request target that is not visible ASCII is rejected", "[framing]") {
  expectRejected("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: lb.test\r\n\r\n");
  expectRejected("GET /a\x7f HTTP/1.1\r\nHost: lb.test\r\n\r\n");
}

TEST_CASE("a NUL byte in a header value is rejected", "[framing]") {
  using namespace std::string_literals;
  expectRejected("GET / HTTP/1.1\r\nHost: lb.test\r\nX-A: a\0b\r\n\r\n"s);
}

TEST_CASE("a smuggled second request after an ambiguous one never reaches the upstream",
          "[framing][smuggling]") {
  // The classic CL.TE attack: a front end honouring Content-Length would forward
  // "GET /smuggled" as the start of the next request.
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nX: y\r\n\r\n");
}

TEST_CASE("chunk data not followed by CRLF is rejected", "[framing][smuggling]") {
  // A parser that skips any two bytes after chunk data reads "\n5" as the line end and "0" as
  // the last chunk; one that takes a bare LF reads a 0x50-byte chunk that hides the GET.
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nab\n50\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: lb.test\r\n\r\n");
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhelloXX0\r\n\r\n");
}

TEST_CASE("a header name with a space is rejected", "[framing][smuggling]") {
  // A backend that trims the name would read a body lb did not.
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nContent Length: 5\r\n\r\nhello"
      "GET /smuggled HTTP/1.1\r\nHost: lb.test\r\n\r\n");
}

TEST_CASE("an empty Transfer-Encoding is rejected, with or without Content-Length",
          "[framing][smuggling]") {
  // llhttp flags no Transfer-Encoding for an empty value: a backend that sees the field at all
  // must not be left to guess whether the body is chunked.
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n");
  expectRejected("POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: \r\n\r\n");
  expectRejected(
      "POST / HTTP/1.0\r\nHost: lb.test\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n");
}

TEST_CASE("an empty header field name is rejected", "[framing][smuggling]") {
  expectRejected("GET / HTTP/1.1\r\nHost: lb.test\r\n: v\r\n\r\n");
  expectRejected("GET / HTTP/1.1\r\n:Host: other.test\r\nHost: lb.test\r\n\r\n");
}

TEST_CASE("Transfer-Encoding in an HTTP/1.0 request is rejected", "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: lb.test\r\n\r\n");
}

TEST_CASE("a transfer coding besides chunked is 501, never forwarded as chunked alone",
          "[framing][smuggling]") {
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      {501});
  expectRejected(
      "POST / HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: identity\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      {501});
}

TEST_CASE("an invalid Host is rejected", "[framing][smuggling]") {
  for (const char* host : {"a b", "user@lb.test", "lb.test/x", "lb.test:80x", "lb.test:123456",
                           "[::1", "[zz]:80", ":80", "%61dmin.test", "[fe80::1%25eth0]"}) {
    expectRejected("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n");
  }
  // The authority of an absolute-form target stands for Host, and is held to the same form.
  expectRejected("GET http://user@lb.test/ HTTP/1.1\r\nHost: lb.test\r\n\r\n");
}

TEST_CASE("a request target must be origin-form, http(s) absolute-form or * for OPTIONS",
          "[framing]") {
  // An http URI's host is never empty (RFC 9110 4.2.1): not routed by the Host field instead.
  expectRejected("GET http:///x HTTP/1.1\r\nHost: lb.test\r\n\r\n");
  expectRejected("GET foo://lb.test/x HTTP/1.1\r\nHost: lb.test\r\n\r\n");
  expectRejected("GET * HTTP/1.1\r\nHost: lb.test\r\n\r\n");

  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  // What the backend is asked for: an absolute-form target without a path asks for "/"
  // (RFC 9112 3.2.1).
  const std::pair<const char*, const char*> targets[] = {{"/x?y", "/x?y"},
                                                         {"http://lb.test/x", "/x"},
                                                         {"HTTPS://lb.test:8443/x", "/x"},
                                                         {"http://lb.test", "/"},
                                                         {"http://lb.test?q=1", "/?q=1"}};
  for (auto [target, sent] : targets) {
    HttpClient c(lb.port(0));
    REQUIRE(c.send("GET " + std::string(target) + " HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
    auto r = c.read({.timeout = 5s});
    INFO(target << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    auto seen = up.lastRequest();
    REQUIRE(seen);
    CHECK(seen->target == sent);
  }
  HttpClient c(lb.port(0));
  REQUIRE(c.send("OPTIONS * HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
  auto r = c.read({.timeout = 5s});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->target == "*");
}

TEST_CASE("valid Host forms are forwarded as sent", "[framing]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  for (const char* host : {"lb.test", "lb.test:8080", "127.0.0.1:80", "[::1]:8080",
                           "xn--bcher-kva.example", "a_b.example", "lb.test:"}) {
    auto r = fetch(lb.port(0), buildRequest("GET", "/", {}, "", host));
    INFO(host << ": " << describe(r));
    REQUIRE(r);
    CHECK(r->status == 200);
    auto seen = up.received();
    REQUIRE_FALSE(seen.empty());
    CHECK(seen.back().headers.value("Host") == host);
  }
}

TEST_CASE("empty header values and a Host with trailing whitespace go through", "[framing]") {
  FakeUpstream up("A", upstream::raw("HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  auto r = c.roundTrip("GET / HTTP/1.1\r\nHost: lb.test \t\r\nX-Empty:\r\nX-Blank: \r\n\r\n");
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->headers.has("X-Empty"));
  auto seen = up.received();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].headers.has("X-Empty"));
  CHECK(seen[0].headers.has("X-Blank"));
  CHECK(seen[0].headers.value("X-Forwarded-Host") == "lb.test");
}

TEST_CASE("Connection: host does not take Host away from the backend", "[framing]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto r = fetch(lb.port(0), buildRequest("GET", "/", {{"Connection", "host"}}));
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
  auto seen = up.received();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].headers.value("Host") == "lb.test");
}

TEST_CASE("a request pipelined after an upgrade lb did not make is answered", "[framing]") {
  // lb speaks h2c itself and never forwards it: the first request goes out without Upgrade and
  // the connection stays HTTP/1.1 (RFC 9110 7.8), so the second request is the next one.
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  REQUIRE(
      c.send("GET /first HTTP/1.1\r\nHost: lb.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
             "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
             "GET /second HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
  for (const char* target : {"/first", "/second"}) {
    auto r = c.read({.timeout = 5s});
    INFO(target << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  auto seen = up.received();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].target == "/first");
  CHECK_FALSE(seen[0].headers.has("Upgrade"));
  CHECK(seen[1].target == "/second");
}

TEST_CASE("an HTTP version other than 1.0 and 1.1 is 505, a malformed one 400", "[framing]") {
  expectRejected("GET / HTTP/1.2\r\nHost: lb.test\r\n\r\n", {505});
  expectRejected("GET / HTTP/3.0\r\nHost: lb.test\r\n\r\n", {505});
  expectRejected("GET / HTTP/1.x\r\nHost: lb.test\r\n\r\n", {400});
}

TEST_CASE("a method lb cannot parse is 501 when it is a token, 400 when it is not", "[framing]") {
  // Methods are case-sensitive tokens (RFC 9110 9.1): "get" is not GET.
  expectRejected("FOOBAR / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  expectRejected("get / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  expectRejected("GETS / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  expectRejected("GE / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  // Methods llhttp knows for RTSP only.
  expectRejected("PLAY / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  expectRejected("DESCRIBE / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {501});
  expectRejected("G(T / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {400});
  expectRejected(" GET / HTTP/1.1\r\nHost: lb.test\r\n\r\n", {400});
  expectRejected("GET\t/ HTTP/1.1\r\nHost: lb.test\r\n\r\n", {400});

  // Counted once, by status and by class.
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  REQUIRE(c.send("FOOBAR / HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
  auto r = c.read({.timeout = 5s});
  REQUIRE(r);
  CHECK(r->status == 501);
  CHECK(waitUntil([&] { return lb.statusTotal("5xx") == 1; }, 3s));
  CHECK(lb.statusTotal("501") == 1);
  CHECK(lb.statusTotal("5xx") == 1);
}

}  // namespace
}  // namespace lb::e2e
