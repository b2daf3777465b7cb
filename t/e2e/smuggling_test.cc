// Request smuggling and ambiguous framing: every such request is answered 400, the connection
// closed, and nothing reaches the upstream. Each case is its own test so a failure names it.

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

}  // namespace
}  // namespace lb::e2e
