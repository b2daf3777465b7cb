// Backends failing in every way, with one healthy backend left: no client GET fails. Each
// failure is retried on the healthy backend within the same request, and passive health takes
// the failing backend out after `failures` consecutive failures, so it then gets no traffic
// until fail_timeout_ms has passed.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// Round robin over a failing and a healthy backend, every failure retried once, the failing one
// out for a long time after 2 failures.
std::string matrixPool(const std::string& bad, const FakeUpstream& good) {
  return singlePoolConfig({bad, good.address()},
                          "retries = 1; retry_on = [ 500, 502, 503, 504 ]; "
                          "connect_timeout_ms = 1000; read_timeout_ms = 400; "
                          "retry_budget = { percent = 100; min_retries = 100; }; "
                          "passive = { failures = 2; fail_timeout_ms = 60000; };");
}

// `n` GETs, half on new connections and half on one keep-alive connection; every one must be
// answered 200 by "good".
void expectAllGood(int port, int n) {
  HttpClient keep(port);
  REQUIRE(keep.connected());
  for (int i = 0; i < n; ++i) {
    std::optional<HttpResponse> r;
    std::string error;
    if (i % 2 == 0) {
      r = fetch(port, buildRequest("GET", "/item/" + std::to_string(i)), {}, &error);
    } else {
      r = keep.roundTrip(buildRequest("GET", "/item/" + std::to_string(i)));
      error = keep.error();
    }
    INFO("request " << i << ": " << describe(r, error));
    REQUIRE(r);
    REQUIRE(r->status == 200);
    REQUIRE(r->body.data == "good");
  }
}

// What passive health logs when it takes `address` out (2 failures, 60 s in matrixPool).
std::string takenOut(const std::string& address) {
  return "backend " + address + " in pool p is out for 60000 ms: 2 consecutive failures";
}

// The failing backend was taken out: the log says so, and it gets nothing more.
void expectTakenOut(LbInstance& lb, const FakeUpstream& bad) {
  INFO(lb.diagnostics());
  REQUIRE(waitUntil(
      [&] { return lb.errorLog().find(takenOut(bad.address())) != std::string::npos; }, 5s));
  const int before = bad.requests();
  expectAllGood(lb.port(0), 20);
  CHECK(bad.requests() == before);
}

TEST_CASE("failing backends: a refused connection is retried and no GET fails", "[resilience]") {
  FakeUpstream good("good");
  LbInstance lb;
  std::string bad = "127.0.0.1:" + std::to_string(lb.port(1));  // nothing listens there
  lb.start(matrixPool(bad, good));
  expectAllGood(lb.port(0), 40);
  INFO(lb.diagnostics());
  CHECK(lb.errorLog().find(takenOut(bad)) != std::string::npos);
}

TEST_CASE("failing backends: a reset in the middle of the response head is retried",
          "[resilience]") {
  FakeUpstream good("good");
  FakeUpstream bad("bad", [](Exchange& ex) {
    ex.send("HTTP/1.1 200 OK\r\nContent-Le");
    ex.resetNow();
  });
  LbInstance lb;
  lb.start(matrixPool(bad.address(), good));
  expectAllGood(lb.port(0), 40);
  expectTakenOut(lb, bad);
}

TEST_CASE("failing backends: a backend that hangs is timed out and the GET retried",
          "[resilience]") {
  FakeUpstream good("good");
  FakeUpstream bad("bad", upstream::hang());
  LbInstance lb;
  lb.start(matrixPool(bad.address(), good));
  auto start = Clock::now();
  expectAllGood(lb.port(0), 40);
  // At most 2 read timeouts per worker before passive health took it out.
  CHECK(elapsedMs(start) < 8000);
  expectTakenOut(lb, bad);
}

TEST_CASE("failing backends: a 500 is retried on another backend", "[resilience]") {
  FakeUpstream good("good");
  FakeUpstream bad("bad", upstream::fixed(500, "broken"));
  LbInstance lb;
  lb.start(matrixPool(bad.address(), good));
  expectAllGood(lb.port(0), 40);
  expectTakenOut(lb, bad);
}

TEST_CASE("failing backends: a slow backend answers within the timeout, least_time avoids it",
          "[resilience]") {
  FakeUpstream fast("fast");
  FakeUpstream slow("slow", upstream::delayed(150ms, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({slow.address(), fast.address()},
                            "algorithm = \"least_time\"; read_timeout_ms = 2000;"));
  int from_slow = 0;
  for (int i = 0; i < 60; ++i) {
    auto r = get(lb.port(0), "/x");
    INFO(describe(r));
    REQUIRE(r);
    REQUIRE(r->status == 200);
    from_slow += r->body.data == "slow" ? 1 : 0;
  }
  CHECK(from_slow <= 10);
}

TEST_CASE("failing backends: the last backend's failure reaches the client with the right status",
          "[resilience]") {
  FakeUpstream a("a", upstream::hang());
  FakeUpstream b("b", upstream::fixed(503, "busy"));
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()},
                            "retries = 1; retry_on = [ 503 ]; read_timeout_ms = 300;"));
  // Whatever the order, both are tried: a times out (504 if last), b answers 503 (passed on
  // as it is when last).
  for (int i = 0; i < 4; ++i) {
    auto r = get(lb.port(0), "/x");
    INFO(describe(r));
    REQUIRE(r);
    CHECK((r->status == 504 || (r->status == 503 && r->body.data == "busy")));
  }
  // The hanging backend's thread counts a request as it reads it, which lb's 300 ms read
  // timeout does not wait for.
  CHECK(waitUntil([&] { return a.requests() == 4; }, 3s));
  CHECK(b.requests() == 4);
}

TEST_CASE("failing backends: a POST is not sent twice, a GET is", "[resilience]") {
  FakeUpstream a("a", upstream::fixed(503, "busy"));
  FakeUpstream b("b", upstream::fixed(503, "busy"));
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}, "retries = 1; retry_on = [ 503 ];"),
           {.workers = 1});
  auto post = fetch(lb.port(0), buildRequest("POST", "/order", {}, "item=1"));
  INFO(describe(post));
  REQUIRE(post);
  CHECK(post->status == 503);
  CHECK(a.requests() + b.requests() == 1);
  auto r = get(lb.port(0), "/x");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(a.requests() + b.requests() == 3);
}

}  // namespace
}  // namespace lb::e2e

namespace lb::e2e {
namespace {

TEST_CASE("failing backends: a retry_on response with no backend left to try is passed on",
          "[resilience]") {
  FakeUpstream a("a", upstream::fixed(503, "busy", {{"Retry-After", "7"}}));
  LbInstance lb;
  std::string dead = "127.0.0.1:" + std::to_string(lb.port(1));  // refuses; checked down
  lb.start(singlePoolConfig({a.address(), dead},
                            "retries = 1; retry_on = [ 503 ]; health_check = { type = \"tcp\"; "
                            "initial = \"down\"; interval_ms = 100; timeout_ms = 50; };"));
  INFO(lb.diagnostics());
  REQUIRE(waitUntil(
      [&] {
        return lb.errorLog().find("backend " + a.address() + " in pool p is UP") !=
               std::string::npos;
      },
      5s));
  for (int i = 0; i < 6; ++i) {
    auto r = get(lb.port(0), "/x");
    INFO(describe(r));
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body.data == "busy");
    CHECK(r->header("Retry-After") == "7");
  }
  CHECK(a.requests() == 6);
  INFO(lb.diagnostics());
  CHECK(lb.errorLog().find("retry budget") == std::string::npos);
}

TEST_CASE("failing backends: a response head lb cannot forward is the backend's failure",
          "[resilience]") {
  // Fits the backend-side head buffer, not the rewritten head lb sends the client.
  const std::string big =
      "HTTP/1.1 200 OK\r\nX-Big: " + std::string(16360, 'x') + "\r\nContent-Length: 2\r\n\r\nok";
  FakeUpstream a("a", upstream::raw(big)), b("b", upstream::raw(big));
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()},
                            "retries = 1; circuit_breaker = { failures = 2; open_ms = 60000; };"));
  for (int i = 0; i < 4; ++i) {
    auto r = get(lb.port(0), "/x");
    INFO(describe(r));
    REQUIRE(r);
    // Each request fails on both; after two, both breakers are open: no backend is left.
    CHECK(r->status == (i < 2 ? 502 : 503));
  }
  INFO(lb.diagnostics());
  CHECK(lb.errorLog().find("circuit breaker of backend " + a.address() + " in pool p is OPEN") !=
        std::string::npos);
  CHECK(lb.errorLog().find("circuit breaker of backend " + b.address() + " in pool p is OPEN") !=
        std::string::npos);
}

TEST_CASE("failing backends: a POST on a kept-alive connection the backend drops is not resent",
          "[resilience]") {
  FakeUpstream a("a", [](Exchange& ex) {
    if (ex.request().method == "POST") {
      ex.closeAfter();  // read it, answer nothing
    } else {
      ex.respond(200, {}, "a");
    }
  });
  LbInstance lb;
  lb.start(singlePoolConfig({a.address()}, "retries = 0;"), {.workers = 1});
  HttpClient c(lb.port(0));
  auto warm = c.roundTrip(buildRequest("GET", "/warm"));
  REQUIRE(warm);
  REQUIRE(warm->status == 200);
  auto post =
      fetch(lb.port(0), "POST /order HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0\r\n\r\n");
  INFO(describe(post));
  REQUIRE(post);
  CHECK(post->status == 502);
  int posts = 0;
  for (const auto& r : a.received()) {
    posts += r.method == "POST" ? 1 : 0;
  }
  CHECK(posts == 1);
}

}  // namespace
}  // namespace lb::e2e
