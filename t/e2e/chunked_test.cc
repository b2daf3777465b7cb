// Chunked transfer coding in both directions: a chunked request body reaches the upstream as the
// same bytes (re-framed by lb, never with two framings), and a chunked response reaches the
// client intact with the connection still usable.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// Chunks of irregular sizes, some with chunk extensions, as real clients send them.
std::string irregularChunks(const std::string& data) {
  std::string out;
  size_t sizes[] = {1, 7, 4096, 3, 65536, 100, 12345};
  size_t off = 0;
  for (size_t i = 0; off < data.size(); ++i) {
    size_t n = std::min(sizes[i % std::size(sizes)], data.size() - off);
    char line[64];
    std::snprintf(line, sizeof line, i % 3 == 0 ? "%zX;ext=%zu\r\n" : "%zx\r\n", n, i);
    out += line;
    out.append(data, off, n);
    out += "\r\n";
    off += n;
  }
  return out + "0\r\n\r\n";
}

TEST_CASE("a chunked request body reaches the upstream intact", "[proxy][chunked]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "client_max_body_size = \"10m\";"));

  std::string body = pattern(0, 3 * 1024 * 1024 + 17);
  HttpClient c(lb.port(0));
  REQUIRE(c.send("POST /chunked HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"));
  REQUIRE(c.send(irregularChunks(body), 30s));
  auto r = c.read({.timeout = 30s});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.length() == body.size());
  CHECK(r->body.checksum() == checksumHex(body));

  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("upstream saw:\n" << seen->head);
  CHECK(seen->complete);
  CHECK(seen->body.checksum() == checksumHex(body));
  // Exactly one framing: either lb re-chunks, or it knows the length; never both, never the
  // client's chunk extensions.
  CHECK(seen->headers.has("Transfer-Encoding") != seen->headers.has("Content-Length"));
  if (seen->headers.has("Transfer-Encoding")) {
    CHECK(toLower(seen->headers.joined("Transfer-Encoding")) == "chunked");
  }

  // The connection is in sync afterwards: a second, small chunked request.
  r = c.roundTrip(
      "POST /again HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello world");
}

TEST_CASE("a chunked request's trailer fields reach the upstream", "[proxy][chunked]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto r = fetch(lb.port(0),
                 "POST /t HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n"
                 "Trailer: X-Trail\r\n\r\n3\r\nabc\r\n0\r\nX-Trail: 1\r\n"
                 "Connection: close\r\n\r\n");
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "abc");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->trailers.value("X-Trail") == "1");
  CHECK_FALSE(seen->trailers.has("Connection"));  // hop-by-hop, never a trailer to forward
}

TEST_CASE("a chunked response's trailer fields reach the client", "[proxy][chunked]") {
  FakeUpstream up("trailers", upstream::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                            "Trailer: Grpc-Status\r\n\r\n5\r\nhello\r\n"
                                            "0\r\nGrpc-Status: 0\r\nGrpc-Message: ok\r\n\r\n"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/t"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "hello");
  CHECK(r->trailers.value("Grpc-Status") == "0");
  CHECK(r->trailers.value("Grpc-Message") == "ok");
}

TEST_CASE("a chunked response reaches the client intact", "[proxy][chunked]") {
  constexpr uint64_t kSize = 5 * 1024 * 1024 + 3;
  FakeUpstream up("stream", upstream::stream(kSize, true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  for (int i = 0; i < 2; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/chunked"), {.timeout = 30s});
    INFO("request " << i << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.length() == kSize);
    CHECK(r->body.checksum() == patternChecksumHex(kSize));
    CHECK_FALSE((r->headers.has("Transfer-Encoding") && r->headers.has("Content-Length")));
  }
}

TEST_CASE("an empty chunked response is relayed", "[proxy][chunked]") {
  FakeUpstream up("empty", upstream::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                         "\r\n0\r\n\r\n"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  for (int i = 0; i < 2; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/"));
    INFO(describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.length() == 0);
  }
}

}  // namespace
}  // namespace lb::e2e
