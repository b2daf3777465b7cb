// Expect: 100-continue: the client gets an interim 100 Continue before it sends the body, then
// the final response; a body over the limit is refused without waiting for it.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

TEST_CASE("Expect: 100-continue gets 100 Continue, then the final response", "[expect]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(
      c.send("POST /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 11\r\n"
             "Expect: 100-continue\r\n\r\n"));
  // The body is held back until the interim response arrives.
  auto interim = c.read({.timeout = 5s});
  INFO(describe(interim, c.error()));
  REQUIRE(interim);
  CHECK(interim->status == 100);
  REQUIRE(c.send("hello world"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello world");
  // The connection goes on normally.
  r = c.roundTrip(buildRequest("GET", "/after"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("Expect: 100-continue with an upstream that sends no 100 itself", "[expect]") {
  // Some upstreams never send 100 Continue; the client must still get it (from lb) and the
  // request must complete.
  FakeUpstream up("echo", upstream::echo());
  up.setAutoContinue(false);
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(
      c.send("PUT /upload HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto interim = c.read({.timeout = 5s});
  INFO(describe(interim, c.error()));
  REQUIRE(interim);
  REQUIRE(interim->status == 100);
  REQUIRE(c.send("abcde"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "abcde");
}

TEST_CASE("Expect: 100-continue with a body over the limit is refused at once",
          "[expect][limits]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "client_max_body_size = \"1k\";"));

  HttpClient c(lb.port(0));
  REQUIRE(
      c.send("POST /big HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5000\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto r = c.read({.timeout = 5s});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(up.requests() == 0);
}

TEST_CASE("curl sending a 2 MiB body with Expect: 100-continue", "[expect][curl]") {
  FakeUpstream up("sink", upstream::sink());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "client_max_body_size = \"10m\";"));

  std::string path = lb.file("body.bin");
  constexpr size_t kSize = 2 * 1024 * 1024;
  writeFile(path, pattern(0, kSize));
  auto res = runCommand({"curl", "-sS", "-H", "Expect: 100-continue", "--expect100-timeout", "10",
                         "--data-binary", "@" + path, "-w", "\\n%{http_code}",
                         "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/up"},
                        30s);
  INFO(res.describe());
  REQUIRE(res.exit_code == 0);
  CHECK(res.out == std::to_string(kSize) + " " + patternChecksumHex(kSize) + "\n200");
}

}  // namespace
}  // namespace lb::e2e
