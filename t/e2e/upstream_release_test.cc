// A response that is whole in lb frees its backend connection at once, however slowly the
// client reads it: the connection goes back to the pool and serves the next request. Here the
// slow reader is an HTTP/2 client that opens no flow-control window, so lb can send it nothing
// of the body; HTTP/1.1 clients go through the same code.

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

// `lb backends --json`'s count of requests the backend is busy with, as written ("0").
std::string activeOn(LbInstance& lb, const FakeUpstream& up) {
  auto res = lb.runLbCommand({"backends", "--json", "-c", lb.configPath()});
  return jsonField(res.out, up.address(), "active");
}

// A stalled HTTP/2 GET of `path`, then a second request from another client: served on the
// connection the first response left, if lb released it.
void expectReleased(FakeUpstream& up, const std::string& path, size_t body_size) {
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  H2Client slow(lb.port(0), {.initial_window_size = 0});
  REQUIRE(slow.handshake());
  int32_t id = slow.startRequest(H2Client::requestFields("GET", path));
  REQUIRE(id != 0);
  REQUIRE(slow.waitFor([&] { return slow.result(id).status != 0; }, 5s));
  CHECK(slow.result(id).body.length() == 0);  // nothing of the body could go
  REQUIRE(waitUntil([&] { return activeOn(lb, up) == "0"; }, 5s));

  auto r = fetch(lb.port(0), buildRequest("GET", "/next"));
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(up.connections() == 1);

  // The stalled response is still whole in lb.
  REQUIRE(slow.sendWindowUpdate(id, 1u << 20));
  REQUIRE(slow.waitDone(id, 5s));
  CHECK(slow.result(id).status == 200);
  CHECK(slow.result(id).body.length() == body_size);
}

TEST_CASE("a stalled reader holds no backend connection once the response is in lb",
          "[release][http2]") {
  FakeUpstream up("A", upstream::fixed(200, std::string(16000, 'b')));
  expectReleased(up, "/whole", 16000);
}

TEST_CASE("a response read in pieces while the client write waits frees its backend too",
          "[release][http2]") {
  // The head and the start of the body first, the rest a moment later: lb has handed the first
  // piece to the stalled stream when the rest arrives, and learns from it that the response is
  // complete without forwarding it.
  FakeUpstream up("A", [](Exchange& ex) {
    if (ex.request().target != "/pieces") {
      ex.respond(200, {}, "next");
      return;
    }
    ex.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" +
            std::string(0x1000, 'p') + "\r\n");
    ex.waitFor([] { return false; }, 200ms);
    ex.send("800\r\n" + std::string(0x800, 'q') + "\r\n0\r\n\r\n");
  });
  expectReleased(up, "/pieces", 0x1800);
}

}  // namespace
}  // namespace lb::e2e
