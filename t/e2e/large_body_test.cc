// 64 MiB in each direction, checksummed end to end, and backpressure: a peer that stops reading
// must stop lb from reading the other side, so lb never holds a whole body.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

constexpr uint64_t kBig = 64ull << 20;
constexpr size_t kBlock = 256 * 1024;

// Sends `n` pattern bytes in blocks; false if the peer stopped taking them within `timeout` per
// block.
bool sendPattern(HttpClient& c, uint64_t n, milliseconds timeout) {
  std::string block;
  for (uint64_t off = 0; off < n; off += kBlock) {
    block = pattern(off, static_cast<size_t>(std::min<uint64_t>(kBlock, n - off)));
    if (!c.send(block, timeout)) {
      return false;
    }
  }
  return true;
}

const std::string kBigBodies = R"(http = { client_max_body_size = "100m"; };)";

TEST_CASE("a 64 MiB upload reaches the upstream intact", "[proxy][large]") {
  FakeUpstream up("sink", upstream::sink());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "", kBigBodies));

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  auto start = Clock::now();
  REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " +
                 std::to_string(kBig) + "\r\n\r\n"));
  bool sent = sendPattern(c, kBig, 30s);
  INFO("sending: " << c.error());
  REQUIRE(sent);
  auto r = c.read({.timeout = 60s});
  INFO(describe(r, c.error()) << " after " << elapsedMs(start) << " ms");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == std::to_string(kBig) + " " + patternChecksumHex(kBig));
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->complete);
}

TEST_CASE("a 64 MiB download reaches the client intact", "[proxy][large]") {
  FakeUpstream up("stream", upstream::stream(kBig, false));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;"));

  HttpClient c(lb.port(0));
  auto start = Clock::now();
  auto r = c.roundTrip(buildRequest("GET", "/big"), {.timeout = 60s, .store_limit = 0});
  INFO(describe(r, c.error()) << " after " << elapsedMs(start) << " ms");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.length() == kBig);
  CHECK(r->body.checksum() == r->header("X-Body-Checksum"));
  CHECK(r->body.checksum() == patternChecksumHex(kBig));
  // The connection is still usable afterwards.
  auto again = c.roundTrip(buildRequest("HEAD", "/big"), {.head_request = true});
  INFO(describe(again, c.error()));
  REQUIRE(again);
  CHECK(again->status == 200);
}

TEST_CASE("a client that stops reading stops lb from reading the upstream",
          "[proxy][backpressure]") {
  FakeUpstream up("stream", upstream::stream(kBig, false));
  LbInstance lb;
  lb.start(
      singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "send_timeout_ms = 30000;"));

  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/big")));
  REQUIRE(up.waitForRequests(1));
  // The client reads nothing; what the upstream managed to send is bounded by socket buffers
  // (a few MiB each on loopback) plus lb's own buffers, far from the whole body.
  uint64_t sent = settle([&] { return up.bytesSent(); }, 500ms, 20s);
  INFO("upstream sent " << sent << " bytes while the client read nothing");
  CHECK(sent < kBig / 2);
  // Reading resumes the transfer, and the body is intact.
  auto r = c.read({.timeout = 60s, .store_limit = 0});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.length() == kBig);
  CHECK(r->body.checksum() == patternChecksumHex(kBig));
}

TEST_CASE("an upstream that stops reading stops lb from reading the client",
          "[proxy][backpressure]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("sink", upstream::sink());
  up.setBodyGate(gate);
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000; send_timeout_ms = 30000;", "",
                            kBigBodies));

  HttpClient c(lb.port(0));
  REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " +
                 std::to_string(kBig) + "\r\n\r\n"));
  // Push as much as lb takes: each block gets a short deadline; the client stalls when lb stops
  // reading because the upstream does.
  uint64_t pushed = 0;
  std::string block;
  while (pushed < kBig) {
    block = pattern(pushed, kBlock);
    if (!c.send(block, 1500ms)) {
      break;
    }
    pushed += kBlock;
  }
  INFO("client pushed " << pushed << " bytes while the upstream read nothing");
  CHECK(pushed < kBig / 2);
  REQUIRE(up.waitForRequests(1));
  gate->open();
  // The rest of the body goes through once the upstream reads; the block that timed out may
  // have been sent in part, so the request is finished on a fresh connection instead.
  c.close();
  HttpClient c2(lb.port(0));
  REQUIRE(c2.send("POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " +
                  std::to_string(kBig) + "\r\n\r\n"));
  REQUIRE(sendPattern(c2, kBig, 30s));
  auto r = c2.read({.timeout = 60s});
  INFO(describe(r, c2.error()));
  REQUIRE(r);
  CHECK(r->body.data == std::to_string(kBig) + " " + patternChecksumHex(kBig));
}

TEST_CASE("a client reading slowly is not taken for a backend timing out", "[proxy][large]") {
  constexpr uint64_t kSize = 4ull << 20;
  FakeUpstream up("stream", upstream::stream(kSize, false));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 300;"));
  // About two seconds at 2 MB/s: lb stops reading the backend while the client lags, which is
  // no reason for read_timeout_ms to cut the response.
  auto r = runCommand(
      {"curl", "-sS", "--limit-rate", "2M", "-o", "/dev/null", "-w",
       "%{http_code} %{size_download}", "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/slow"},
      30s);
  INFO(r.describe() << lb.errorLog());
  CHECK(r.out == "200 " + std::to_string(kSize));
  CHECK(lb.errorLog().find("timed out") == std::string::npos);
}

TEST_CASE("a body delimited by the close reaches a client reading slowly whole", "[proxy][large]") {
  // The backend's last bytes and its close arrive while lb's write to the client is in flight
  // (more than the sockets on the way hold): the close is taken only after those bytes are
  // parsed and sent.
  constexpr size_t kSize = 24u << 20;
  FakeUpstream up("raw", upstream::raw("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                                       "\r\n\r\n" +
                                           pattern(0, kSize),
                                       true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto r = runCommand(
      {"curl", "-sS", "--limit-rate", "12M", "-o", "/dev/null", "-w",
       "%{http_code} %{size_download}", "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/raw"},
      30s);
  INFO(r.describe() << lb.errorLog());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "200 " + std::to_string(kSize));
}

}  // namespace
}  // namespace lb::e2e
