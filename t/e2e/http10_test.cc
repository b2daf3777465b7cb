// HTTP/1.0 clients: answered, the connection closed after the response unless the client asked
// for keep-alive, and never sent a chunked response (which HTTP/1.0 does not know).

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

TEST_CASE("an HTTP/1.0 request is answered and the connection closed", "[http10]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip("GET /old HTTP/1.0\r\nHost: lb.test\r\n\r\n");
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "A");
  CHECK(c.waitClosed(3s));
}

TEST_CASE("an HTTP/1.0 request without Host is answered", "[http10]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  std::string error;
  auto r = fetch(lb.port(0), "GET /nohost HTTP/1.0\r\n\r\n", {}, &error);
  INFO(describe(r, error));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "A");
}

TEST_CASE("an HTTP/1.0 client asking for keep-alive keeps its connection", "[http10][keepalive]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  for (int i = 0; i < 3; ++i) {
    auto r = c.roundTrip("GET /ka HTTP/1.0\r\nHost: lb.test\r\nConnection: keep-alive\r\n\r\n");
    INFO("request " << i << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == "A");
    // An HTTP/1.0 client needs to be told explicitly that the connection stays open.
    CHECK(r->headers.hasToken("Connection", "keep-alive"));
    CHECK(r->headers.has("Content-Length"));
  }
}

TEST_CASE("an HTTP/1.0 client never gets a chunked response", "[http10][chunked]") {
  constexpr uint64_t kSize = 100000;
  FakeUpstream up("chunky", upstream::stream(kSize, true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  for (std::string connection : {"", "Connection: keep-alive\r\n"}) {
    HttpClient c(lb.port(0));
    auto r = c.roundTrip("GET /c HTTP/1.0\r\nHost: lb.test\r\n" + connection + "\r\n");
    INFO("with '" << connection << "': " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK_FALSE(r->headers.has("Transfer-Encoding"));
    CHECK(r->body.length() == kSize);
    CHECK(r->body.checksum() == patternChecksumHex(kSize));
  }
}

TEST_CASE("curl speaking HTTP/1.0 gets the response", "[http10][curl]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto res = runCommand(
      {"curl", "-sS", "-0", "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/curl10"}, 20s);
  INFO(res.describe());
  REQUIRE(res.exit_code == 0);
  CHECK(res.out == "A");
}

}  // namespace
}  // namespace lb::e2e
