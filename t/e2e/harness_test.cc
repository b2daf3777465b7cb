// Tests of the harness itself, without lb: the fake upstream and the raw client talk to each
// other, the log check catches what it must, commands and /proc lookups work. If these fail,
// the other e2e results mean nothing.

#include "e2e/harness/e2e.h"

#include <unistd.h>

namespace lb::e2e {
namespace {

TEST_CASE("harness: client and fake upstream speak HTTP/1.1 with keep-alive", "[harness]") {
  FakeUpstream up("A", upstream::echo());
  HttpClient c(up.port());
  REQUIRE(c.connected());
  for (int i = 0; i < 3; ++i) {
    auto r = c.roundTrip(buildRequest("POST", "/x", {}, "body" + std::to_string(i)));
    INFO(describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == "body" + std::to_string(i));
    CHECK(r->header("X-Upstream") == "A");
  }
  CHECK(up.connections() == 1);
  CHECK(up.requests() == 3);
  auto seen = up.received();
  REQUIRE(seen.size() == 3);
  CHECK(seen[2].sequence == 3);
  CHECK(seen[2].body.data == "body2");
  CHECK(up.protocolErrors().empty());
}

TEST_CASE("harness: chunked and close-delimited bodies, 100-continue", "[harness]") {
  FakeUpstream up("S", upstream::stream(300000, true));
  auto r = get(up.port(), "/");
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->chunked);
  CHECK(r->body.length() == 300000);
  CHECK(r->body.checksum() == patternChecksumHex(300000));

  up.setHandler(upstream::raw("HTTP/1.1 200 OK\r\n\r\nuntil-close", true));
  r = get(up.port(), "/");
  REQUIRE(r);
  CHECK(r->body.data == "until-close");

  up.setHandler(upstream::echo());
  HttpClient c(up.port());
  REQUIRE(
      c.send("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  auto interim = c.read();
  REQUIRE(interim);
  CHECK(interim->status == 100);
  REQUIRE(c.send("ok"));
  r = c.read();
  REQUIRE(r);
  CHECK(r->body.data == "ok");

  r = fetch(up.port(), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                           chunked("chunked-request", 4));
  REQUIRE(r);
  CHECK(r->body.data == "chunked-request");
  CHECK(r->header("X-Request-Chunked") == "1");
}

TEST_CASE("harness: the fake upstream flags malformed requests", "[harness]") {
  FakeUpstream up("strict");
  auto r = fetch(up.port(),
                 "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(up.protocolErrors().size() == 1);
  r = fetch(up.port(), "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", {.timeout = 2s});
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(up.protocolErrors().size() == 2);
  // Expected here; the destructor fails a test on any left.
  CHECK(up.takeProtocolErrors().size() == 2);
}

TEST_CASE("harness: failure behaviours of the fake upstream", "[harness]") {
  FakeUpstream up("F", upstream::reset());
  std::string error;
  auto r = fetch(up.port(), buildRequest("GET", "/"), {.timeout = 2s}, &error);
  CHECK_FALSE(r);
  up.setHandler(upstream::malformed());
  r = fetch(up.port(), buildRequest("GET", "/"), {.timeout = 2s}, &error);
  CHECK_FALSE(r);
  CHECK(error.find("malformed") != std::string::npos);
  up.setHandler(upstream::hang());
  auto start = Clock::now();
  r = fetch(up.port(), buildRequest("GET", "/"), {.timeout = 300ms}, &error);
  CHECK_FALSE(r);
  CHECK(elapsedMs(start) >= 250);
  CHECK(error.find("timeout") != std::string::npos);
  // stop() ends the hanging connection promptly.
  start = Clock::now();
  up.stop();
  CHECK(elapsedMs(start) < 2000);
}

TEST_CASE("harness: the log check catches alerts, emergencies and sanitizer reports", "[harness]") {
  LbInstance lb;
  writeFile(lb.file("error.log"),
            "2026/11/26 23:59:00 [info] [1] master: fine\n"
            "2026/11/26 23:59:00 [alert] [2] worker 0: bad thing 4242\n"
            "2026/11/26 23:59:00 [emerg] [1] master: worse\n");
  writeFile(lb.file("lb.out"),
            "==7==ERROR: AddressSanitizer: heap-use-after-free\n"
            "x.cc:1:2: runtime error: signed integer overflow\n");
  CHECK(lb.forbiddenLogLines().size() == 4);
  lb.allowAlertsContaining("4242");
  CHECK(lb.forbiddenLogLines().size() == 3);
  // Clean up so that this test's own teardown passes.
  writeFile(lb.file("error.log"), "");
  writeFile(lb.file("lb.out"), "");
  CHECK(lb.forbiddenLogLines().empty());
}

TEST_CASE("harness: placeholders and the config preamble", "[harness]") {
  LbInstance lb;
  lb.setPort(3, 4567);
  std::string text = lb.configText("x = \"@DIR@:@PORT_3@\"; y = @PORT_0@;", {.workers = 3});
  CHECK(text.find("x = \"" + lb.dir() + ":4567\";") != std::string::npos);
  CHECK(text.find("y = " + std::to_string(lb.port(0)) + ";") != std::string::npos);
  CHECK(text.find("worker_processes = 3;") != std::string::npos);
  CHECK(text.find("daemon = false;") != std::string::npos);
  CHECK(lb.port(0) != lb.port(1));
}

TEST_CASE("harness: commands, /proc lookups", "[harness]") {
  auto res = runCommand({"sh", "-c", "cat; echo err >&2; exit 3"}, 5s, "input");
  CHECK(res.exit_code == 3);
  CHECK(res.out == "input");
  CHECK(res.err == "err\n");
  auto start = Clock::now();
  res = runCommand({"sleep", "10"}, 200ms);
  CHECK(res.timed_out);
  CHECK(elapsedMs(start) < 3000);

  FakeUpstream up("A");
  HttpClient c(up.port());
  REQUIRE(c.roundTrip(buildRequest("GET", "/")));
  auto owners = connectionOwners(up.port(), {::getpid()});
  CHECK(owners.count(c.localPort()) == 1);
  CHECK(processAlive(::getpid()));
  CHECK(processStartTime(::getpid()) > 0);
}

}  // namespace
}  // namespace lb::e2e
