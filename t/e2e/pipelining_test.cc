// HTTP/1.1 pipelining: requests written back to back in one write are all answered, in order,
// even when an earlier one is slower than a later one.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// Answers with the request target as body; "/slow..." targets after a delay.
Handler targetEcho() {
  return [](Exchange& ex) {
    if (ex.request().target.starts_with("/slow")) {
      Deadline end = deadlineIn(300ms);
      ex.waitFor([&] { return Clock::now() >= end; }, 2s);
    }
    ex.respond(200, {}, ex.request().target + ":" + ex.request().body.data);
  };
}

TEST_CASE("three pipelined requests get three responses in order", "[pipelining]") {
  FakeUpstream up("A", targetEcho());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/one") + buildRequest("GET", "/two") +
                 buildRequest("GET", "/three")));
  for (std::string expected : {"/one:", "/two:", "/three:"}) {
    auto r = c.read();
    INFO("expecting " << expected << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == expected);
  }
  CHECK(up.requests() == 3);
}

TEST_CASE("pipelined responses keep their order when the first is slow", "[pipelining]") {
  FakeUpstream up("A", targetEcho());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow-first") + buildRequest("POST", "/post", {}, "data") +
                 buildRequest("HEAD", "/head") + buildRequest("GET", "/last")));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "/slow-first:");
  r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "/post:data");
  r = c.read({.head_request = true});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("Content-Length") == std::to_string(std::string("/head:").size()));
  r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "/last:");
}

TEST_CASE("a pipelined request split across writes at every few bytes is parsed", "[pipelining]") {
  FakeUpstream up("A", targetEcho());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  std::string all =
      buildRequest("POST", "/a", {{"X-Long-Header", std::string(300, 'x')}}, "12345") +
      buildRequest("GET", "/b");
  for (size_t off = 0; off < all.size(); off += 7) {
    // TCP_NODELAY is on, so each fragment leaves as its own segment.
    REQUIRE(c.send(all.substr(off, 7)));
  }
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "/a:12345");
  r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "/b:");
}

}  // namespace
}  // namespace lb::e2e
