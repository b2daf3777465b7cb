// Client-side limits: 413 (body over client_max_body_size), 414 (request line over the header
// size limit), 431 (header fields over it), 408 (request head not complete within
// client_header_timeout_ms, or a body stalling past client_body_timeout_ms). None of these
// requests reaches the upstream.

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

const std::string kSmallLimits =
    "client_max_body_size = \"1k\"; client_max_header_size = \"4k\"; "
    "client_header_timeout_ms = 300; client_body_timeout_ms = 300;";

// Sends `raw` on a new connection and expects `status` within `timeout`.
void expectAnswer(LbInstance& lb, const std::string& raw, int status, milliseconds timeout = 5s) {
  HttpClient c(lb.port(0));
  REQUIRE(c.send(raw));
  auto r = c.read({.timeout = timeout});
  INFO("request starts: " << raw.substr(0, 120));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(r->body.length() > 0);
}

TEST_CASE("413 when Content-Length is over client_max_body_size", "[limits][413]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  expectAnswer(lb, buildRequest("POST", "/big", {}, std::string(1025, 'x')), 413);
  // Exactly at the limit is fine.
  auto r = fetch(lb.port(0), buildRequest("POST", "/ok", {}, std::string(1024, 'y')));
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(up.requests() == 1);
}

TEST_CASE("413 when a chunked body grows over client_max_body_size", "[limits][413]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  HttpClient c(lb.port(0));
  REQUIRE(c.send("POST /big HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 chunked(std::string(3000, 'z'), 500)));
  auto r = c.read();
  INFO(describe(r, c.error()));
  // The head may have gone upstream already (bodies stream); the client must still not get a
  // 200 for a body over the limit.
  REQUIRE(r);
  CHECK(r->status == 413);
}

TEST_CASE("414 when the request line is over the header size limit", "[limits][414]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  std::string target(5001, 'u');
  target[0] = '/';
  expectAnswer(lb, buildRequest("GET", target), 414);
  CHECK(up.requests() == 0);
}

TEST_CASE("431 when the header fields are over the header size limit", "[limits][431]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  HeaderList many;
  for (int i = 0; i < 50; ++i) {
    many.emplace_back("X-Filler-" + std::to_string(i), std::string(100, 'h'));
  }
  expectAnswer(lb, buildRequest("GET", "/", many), 431);
  // One huge field too.
  expectAnswer(lb, buildRequest("GET", "/", {{"X-Huge", std::string(6000, 'h')}}), 431);
  CHECK(up.requests() == 0);
  // Just under the limit passes.
  auto r = fetch(lb.port(0), buildRequest("GET", "/", {{"X-Big", std::string(3000, 'h')}}));
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("408 when the request head does not complete in client_header_timeout_ms",
          "[limits][408]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  HttpClient c(lb.port(0));
  REQUIRE(c.send("GET /slow HTTP/1.1\r\nHost: lb.te"));
  auto start = Clock::now();
  auto r = c.read({.timeout = 5s});
  long long ms = elapsedMs(start);
  INFO(describe(r, c.error()) << " after " << ms << " ms");
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(ms >= 250);
  CHECK(c.waitClosed(3s));
  CHECK(up.requests() == 0);
}

TEST_CASE("a connection that sends nothing is closed after client_header_timeout_ms",
          "[limits][408]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  HttpClient c(lb.port(0));
  auto start = Clock::now();
  // Nothing sent: lb may answer 408 or just close; it must not keep the connection.
  CHECK(c.waitClosed(5s));
  CHECK(elapsedMs(start) >= 250);
}

TEST_CASE("a request body that stalls is cut after client_body_timeout_ms", "[limits][408]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", kSmallLimits));

  HttpClient c(lb.port(0));
  REQUIRE(c.send("POST /stall HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100\r\n\r\nonly-part"));
  auto start = Clock::now();
  // lb answers 408 (if it can still) and closes; the client must not hang.
  auto r = c.read({.timeout = 5s});
  INFO(describe(r, c.error()) << " after " << elapsedMs(start) << " ms");
  if (r) {
    CHECK(r->status == 408);
  }
  CHECK(c.waitClosed(3s));
  CHECK(elapsedMs(start) < 4000);
}

TEST_CASE("an upload that stalls past read_timeout_ms is the client's 408, not the backend's 504",
          "[limits][408]") {
  // The backend waits for the rest of the body; read_timeout_ms measures its answer, which can
  // only start once the request is all there.
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(
      singlePoolConfig({up.address()}, "read_timeout_ms = 300;", "client_body_timeout_ms = 1500;"));

  HttpClient c(lb.port(0));
  REQUIRE(c.send("POST /stall HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 100\r\n\r\npart"));
  auto start = Clock::now();
  auto r = c.read({.timeout = 5s});
  INFO(describe(r, c.error()) << " after " << elapsedMs(start) << " ms");
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(elapsedMs(start) >= 1200);
  // The backend is not blamed for the client's stall.
  CHECK(lb.errorLog().find("upstream timed out") == std::string::npos);
  auto backends = lb.runLbCommand({"backends", "--json", "-c", lb.configPath()});
  INFO(backends.out);
  CHECK(backends.out.find("\"failures\": 0") != std::string::npos);
  // A backend that takes longer than read_timeout_ms once the body is complete is still 504.
  FakeUpstream slow("slow", upstream::hang());
  LbInstance lb2;
  lb2.start(singlePoolConfig({slow.address()}, "read_timeout_ms = 300; retries = 0;"));
  auto late = fetch(lb2.port(0), buildRequest("POST", "/late", {}, "whole body"));
  INFO(describe(late));
  REQUIRE(late);
  CHECK(late->status == 504);
}

// A client that stops reading its response is cut after send_timeout_ms. A plain close leaves
// what lb had handed to the kernel on its way, then FIN; with reset_timedout_connection the
// connection is reset, and the kernel drops those bytes at once.
TEST_CASE("a client that stops reading is cut after send_timeout_ms, with an RST if configured",
          "[limits][send_timeout]") {
  for (bool reset : {false, true}) {
    FakeUpstream up("big", upstream::stream(256ull << 20, false));
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;",
                              std::string("send_timeout_ms = 400; reset_timedout_connection = ") +
                                  (reset ? "true;" : "false;")));
    HttpClient c(lb.port(0));
    REQUIRE(c.send(buildRequest("GET", "/big")));
    REQUIRE(up.waitForRequests(1));
    // The client reads nothing: the socket buffers fill, lb's write stalls, the timeout runs.
    std::string line =
        std::string("timed out reading the response, ") + (reset ? "resetting" : "closing");
    bool cut = waitUntil([&] { return lb.errorLog().find(line) != std::string::npos; }, 20s);
    INFO((reset ? "reset" : "close") << "; upstream sent " << up.bytesSent() << " bytes");
    REQUIRE(cut);
    uint64_t got = 0;
    IoStatus end =
        c.stream().readToEof(deadlineIn(20s), [&](std::string_view b) { got += b.size(); });
    INFO("client read " << got << " bytes, then " << ioStatusName(end));
    CHECK(end == (reset ? IoStatus::Reset : IoStatus::Ok));
    CHECK(got < (256ull << 20));
  }
}

TEST_CASE("an HTTP/2 client that stops reading is reset after send_timeout_ms if configured",
          "[limits][send_timeout][http2]") {
  FakeUpstream up("big", upstream::stream(256ull << 20, false));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;",
                            "send_timeout_ms = 400; reset_timedout_connection = true;"));
  // Windows wide open, so that only TCP stops lb's writes once the client stops reading.
  H2Client c(lb.port(0), {.initial_window_size = 0x7fffffff, .connection_window = 0x7fffffff});
  REQUIRE(c.handshake());
  c.startRequest(H2Client::requestFields("GET", "/big"));
  REQUIRE(up.waitForRequests(1));
  bool cut = waitUntil(
      [&] { return lb.errorLog().find("took nothing for 400 ms, resetting") != std::string::npos; },
      20s);
  INFO("upstream sent " << up.bytesSent() << " bytes");
  REQUIRE(cut);
  IoStatus end = c.socket().readToEof(deadlineIn(20s), [](std::string_view) {});
  CHECK(end == IoStatus::Reset);
}

TEST_CASE("large limits on one listener do not apply to another", "[limits]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(R"(
    http = { client_max_body_size = "1k"; };
    listeners = (
      { name = "small"; listen = "127.0.0.1:@PORT_0@"; protocol = "http"; pool = "p"; },
      { name = "large"; listen = "127.0.0.1:@PORT_1@"; protocol = "http"; pool = "p";
        client_max_body_size = "1m"; }
    );
    pools = ( )" +
           poolBlock("p", {up.address()}) + R"( );
  )");

  std::string body(4096, 'b');
  auto small = fetch(lb.port(0), buildRequest("POST", "/", {}, body));
  auto large = fetch(lb.port(1), buildRequest("POST", "/", {}, body));
  INFO(describe(small));
  INFO(describe(large));
  REQUIRE(small);
  REQUIRE(large);
  CHECK(small->status == 413);
  CHECK(large->status == 200);
  CHECK(large->body.data == body);
}

}  // namespace
}  // namespace lb::e2e
