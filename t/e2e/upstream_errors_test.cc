// What the client sees when the upstream fails: 502 (refused, reset, closed without answer,
// malformed response), 503 (no backend available: all at max_connections), 504 (no answer
// within read_timeout_ms); each with a short body, logged; and a refused connection retried on
// another backend.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

// One GET on a new connection; REQUIREs a response with `status` and a non-empty body.
HttpResponse expectStatus(int port, int status, milliseconds timeout = 10s) {
  std::string error;
  auto r = fetch(port, buildRequest("GET", "/fail"), {.timeout = timeout}, &error);
  INFO(describe(r, error));
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(r->body.length() > 0);
  return *r;
}

// The error log mentions the failing backend within a bounded wait.
void expectLogged(LbInstance& lb, const std::string& what) {
  bool logged = waitUntil([&] { return lb.errorLog().find(what) != std::string::npos; }, 3s);
  INFO("error log:\n" << lb.errorLog());
  CHECK(logged);
}

TEST_CASE("502 when the backend refuses the connection", "[errors][502]") {
  LbInstance lb;
  std::string dead = "127.0.0.1:" + std::to_string(lb.port(1));  // nothing listens there
  lb.start(singlePoolConfig({dead}, "connect_timeout_ms = 2000;"));

  auto start = Clock::now();
  expectStatus(lb.port(0), 502);
  CHECK(elapsedMs(start) < 2000);
  expectLogged(lb, dead);
  // lb stays healthy: the next request gets the same answer.
  expectStatus(lb.port(0), 502);
}

TEST_CASE("502 when the backend resets the connection", "[errors][502]") {
  FakeUpstream up("reset", upstream::reset());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "retries = 0;"));

  expectStatus(lb.port(0), 502);
  CHECK(up.requests() >= 1);
  expectLogged(lb, up.address());
}

TEST_CASE("502 when the backend closes without answering", "[errors][502]") {
  FakeUpstream up("close", upstream::closeWithoutAnswer());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "retries = 0;"));

  expectStatus(lb.port(0), 502);
}

TEST_CASE("502 when the backend sends a malformed response", "[errors][502]") {
  FakeUpstream up("garbage", upstream::malformed());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  expectStatus(lb.port(0), 502);
  expectLogged(lb, up.address());
}

TEST_CASE("502 for malformed response framing from the backend", "[errors][502]") {
  // Both Content-Length and Transfer-Encoding in a response: ambiguous, never relayed as is.
  FakeUpstream up("ambiguous",
                  upstream::raw("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                                true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  expectStatus(lb.port(0), 502);
}

TEST_CASE("502 for a malformed body that came with a valid head", "[errors][502]") {
  // One read holds both: nothing has gone to the client, which gets 502 rather than a
  // connection closed without a response.
  for (const char* body : {"zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcXX0\r\n\r\n"}) {
    FakeUpstream up("badbody", upstream::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                             "\r\n" +
                                                 std::string(body),
                                             true));
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}, "retries = 0;"));
    INFO(body);
    expectStatus(lb.port(0), 502);
    expectLogged(lb, "sent an invalid response");
    auto ok = get(lb.port(0), "/again");  // and the worker goes on
    REQUIRE(ok);
    CHECK(ok->status == 502);
  }
}

TEST_CASE("a malformed body that came with a valid head counts against its backend",
          "[errors][502]") {
  // Its head looked fine, but the response failed: passive health takes the backend out as for
  // any failure, and the requests after go to the other one.
  FakeUpstream bad("badbody", upstream::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                            "\r\nzz\r\nabc\r\n0\r\n\r\n",
                                            true));
  FakeUpstream good("good");
  LbInstance lb;
  lb.start(singlePoolConfig({bad.address(), good.address()},
                            "retries = 0; passive = { failures = 1; fail_timeout_ms = 60000; };"),
           {.workers = 1});
  int bad_answers = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = get(lb.port(0), "/r" + std::to_string(i));
    INFO(describe(r));
    REQUIRE(r);
    bad_answers += r->status == 502 ? 1 : 0;
    CHECK((r->status == 502 || r->body.data == "good"));
  }
  CHECK(bad_answers == 1);
  CHECK(bad.requests() == 1);
  expectLogged(lb, "backend " + bad.address() + " in pool");
}

TEST_CASE("502 for a response with more than 100 header fields", "[errors][502]") {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
  for (int i = 0; i < 100; ++i) {
    head += "X-F" + std::to_string(i) + ": v\r\n";
  }
  FakeUpstream up("many", upstream::raw(head + "\r\nok", true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "retries = 0;"));

  expectStatus(lb.port(0), 502);
}

TEST_CASE("502 for Transfer-Encoding in an HTTP/1.0 response", "[errors][502]") {
  // RFC 9112 6.1: faulty framing. Read as chunked it says "abc"; read to the close it says
  // the chunk lines too: a cache behind lb and one in front of it would disagree.
  FakeUpstream up("te10", upstream::raw("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        "3\r\nabc\r\n0\r\n\r\n",
                                        true));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "retries = 0;"));

  expectStatus(lb.port(0), 502);
  expectLogged(lb, "Transfer-Encoding in an HTTP/1.0 response");
}

TEST_CASE("502 for a status code outside 100-599", "[errors][502]") {
  for (const char* line :
       {"HTTP/1.1 099 Low", "HTTP/1.1 000 Zero", "HTTP/1.1 600 High", "HTTP/1.1 999 Top"}) {
    FakeUpstream up("low", upstream::raw(std::string(line) + "\r\nContent-Length: 2\r\n\r\nok"));
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}, "retries = 0;"));
    INFO(line);
    expectStatus(lb.port(0), 502);
    expectLogged(lb, "a status code outside 100-599");
  }
}

TEST_CASE("502 for an empty header field name in a response", "[errors][502]") {
  FakeUpstream up("noname", upstream::raw("HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 2\r\n\r\nok"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "retries = 0;"));
  expectStatus(lb.port(0), 502);
  expectLogged(lb, "an empty header field name");
}

TEST_CASE("an interim response has no body, whatever its framing fields say", "[errors]") {
  // RFC 9112 6.3. Read as a body, the bytes after a 103 would go to the client raw: a backend
  // could write any response it liked into the client's connection.
  for (const char* framing : {"Content-Length: 17", "Transfer-Encoding: chunked"}) {
    FakeUpstream up("hints", upstream::raw("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n" +
                                           std::string(framing) +
                                           "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                           "\r\nok"));
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}, "retries = 0;"));
    INFO(framing);
    HttpClient c(lb.port(0));
    for (int i = 0; i < 2; ++i) {  // and the connection stays in step
      auto r = c.roundTrip(buildRequest("GET", "/hints"));
      INFO(describe(r, c.error()));
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body.data == "ok");
    }
  }
}

TEST_CASE("control bytes in a backend's reason phrase do not reach the client", "[errors]") {
  FakeUpstream up("ctl", upstream::raw(std::string("HTTP/1.1 200 O\x1b[2J\0K\r\n", 22) +
                                       "Content-Length: 2\r\n\r\nok"));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/")));
  auto r = c.read({.timeout = 5s});
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->head.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(r->body.data == "ok");
}

TEST_CASE("a refused connection is retried on another backend", "[errors][retry]") {
  FakeUpstream up("alive");
  LbInstance lb;
  std::string dead = "127.0.0.1:" + std::to_string(lb.port(1));
  lb.start(singlePoolConfig({dead, up.address()}, "retries = 1;"));

  for (int i = 0; i < 10; ++i) {
    auto r = get(lb.port(0), "/retry/" + std::to_string(i));
    INFO("request " << i << ": " << describe(r));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.data == "alive");
  }
}

TEST_CASE("503 when the only backend is at max_connections", "[errors][503]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("A", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address() + "; max_connections = 1"}));

  HttpClient held(lb.port(0));
  REQUIRE(held.send(buildRequest("GET", "/held")));
  REQUIRE(up.waitForRequests(1));
  // The one allowed connection is busy (counted across both workers).
  for (int i = 0; i < 4; ++i) {
    expectStatus(lb.port(0), 503);
  }
  CHECK(up.requests() == 1);
  gate->open();
  auto r = held.read();
  INFO(describe(r, held.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  // The slot is given back (not leaked). lb may release it a moment after the client got its
  // response, so poll instead of expecting the very next request to pass.
  std::optional<HttpResponse> again;
  bool freed = waitUntil(
      [&] {
        again = get(lb.port(0), "/again");
        return again && again->status == 200;
      },
      3s);
  INFO(describe(again));
  CHECK(freed);
}

TEST_CASE("504 when the backend does not answer within read_timeout_ms", "[errors][504]") {
  FakeUpstream up("hang", upstream::hang());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 300; retries = 0;"));

  auto start = Clock::now();
  expectStatus(lb.port(0), 504, 10s);
  long long ms = elapsedMs(start);
  INFO("504 after " << ms << " ms");
  CHECK(ms >= 250);
  CHECK(ms < 5000);
  expectLogged(lb, up.address());
  // lb closed the upstream connection it gave up on.
  CHECK(waitUntil([&] { return up.activeConnections() == 0; }, 3s));
}

TEST_CASE("504 when the backend stalls in the middle of the body is not a hang", "[errors][504]") {
  // Headers and part of the body arrive, then nothing: the client must not wait forever; the
  // status line is gone already, so lb can only cut the connection.
  FakeUpstream up("stall", [](Exchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    ex.waitFor([] { return false; }, 60s);
    ex.closeAfter();
  });
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 300;"));

  HttpClient c(lb.port(0));
  auto start = Clock::now();
  REQUIRE(c.send(buildRequest("GET", "/stall")));
  auto r = c.read({.timeout = 10s});
  INFO(describe(r, c.error()) << " after " << elapsedMs(start) << " ms");
  // Either the truncated response is cut off (read fails on close) — never a complete one.
  CHECK_FALSE(r);
  CHECK(c.waitClosed(5s));
  CHECK(elapsedMs(start) < 5000);
}

TEST_CASE("http2: an early answer stands when the backend then stops taking the upload",
          "[errors][http2]") {
  // The backend answers 413 as soon as it has the head and reads no more. The client opens no
  // window for the answer's body, so the 413 waits in lb while lb goes on sending the upload
  // until the backend's send_timeout_ms ends that connection: no failure of the request, whose
  // answer is already there. The client gets the 413 once it opens the window.
  int port = 0;
  UniqueFd listener = listenTcp(0, 8, &port);
  REQUIRE(listener.valid());
  std::atomic<bool> finished{false};
  std::atomic<bool> answered{false};
  std::thread backend([&] {
    pollfd pfd{listener.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1) {
      return;
    }
    Stream s(UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)));
    std::string head;
    if (s.readUntil("\r\n\r\n", 64 * 1024, deadlineIn(10s), &head) != IoStatus::Ok) {
      return;
    }
    const char kAnswer[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!";
    answered = s.sendAll(kAnswer, deadlineIn(5s)) == IoStatus::Ok;
    waitUntil([&] { return finished.load(); }, 30s);  // holds the connection, reading nothing
  });
  struct Release {  // lets the backend go even when a REQUIRE ends the test early
    std::atomic<bool>& finished;
    std::thread& backend;
    ~Release() {
      finished = true;
      backend.join();
    }
  } release{finished, backend};
  LbInstance lb;
  lb.start(
      singlePoolConfig({"127.0.0.1:" + std::to_string(port)}, "retries = 0; send_timeout_ms = 300;",
                       "", "http = { client_max_body_size = \"64m\"; };"),
      {.workers = 1});
  INFO(lb.diagnostics());
  H2Client c(lb.port(0), {.initial_window_size = 0});
  REQUIRE(c.connected());
  const size_t length = 64u << 20;
  int32_t id = c.startRequest(
      H2Client::requestFields("PUT", "/up", {{"content-length", std::to_string(length)}}), {},
      false);
  REQUIRE(id != 0);
  // lb takes DATA while the backend's socket has room, then opens no more window: the piece
  // that does not go within 500 ms marks the stall.
  const std::string piece(256 * 1024, 'b');
  size_t sent = 0;
  while (sent < length && c.sendData(id, piece, false, 500ms)) {
    sent += piece.size();
  }
  REQUIRE(sent < length);
  CHECK(answered.load());
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("broke off after a complete response") != std::string::npos;
      },
      5s));
  CHECK(c.result(id).status == 413);
  CHECK_FALSE(c.result(id).reset.has_value());
  REQUIRE(c.sendWindowUpdate(id, 65535));
  CHECK(c.waitDone(id, 5s));
  CHECK(c.result(id).status == 413);
  CHECK(c.result(id).body.data == "too big!");
  CHECK_FALSE(c.result(id).reset.has_value());
}

}  // namespace
TEST_CASE("a backend that resets an open tunnel: the client's connection closes, and it is logged",
          "[errors][tunnel]") {
  // The reset waits until the client has the 101: a reset that overtakes unread bytes reads as
  // an ordinary end of stream.
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("tunnel", [gate](Exchange& ex) {
    ex.send("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n");
    ex.waitFor([&] { return gate->isOpen(); }, 10s);
    ex.resetNow();
  });
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  auto r = c.roundTrip(buildRequest("GET", "/t", {{"Connection", "Upgrade"}, {"Upgrade", "test"}}));
  INFO(c.error());
  REQUIRE(r);
  CHECK(r->status == 101);
  gate->open();
  CHECK(c.waitClosed(5s));
  expectLogged(lb,
               "upstream " + up.address() +
                   " in pool \"p\" broke off after the tunnel opened: connection reset by peer");
}

}  // namespace lb::e2e
