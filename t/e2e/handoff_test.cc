// Keep-alive connections across a reload: a draining worker hands its idle client connections to
// the next generation (SCM_RIGHTS) instead of closing them, so the same TCP connection goes on
// being served by a new worker, and clients that keep sending through a series of reloads see
// no error and no closed connection. Closing "idle" connections instead races with the request
// a client is sending at that moment (nginx loses about 29 requests per reload that way).
// Without a next generation (lb -s quit) an idle connection is still closed the safe way: a
// request that races the stop is answered.

#include "e2e/harness/e2e.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace lb::e2e {
namespace {

bool allGone(const std::vector<pid_t>& pids) {
  return std::none_of(pids.begin(), pids.end(), [](pid_t p) { return processAlive(p); });
}

bool anyOf(const std::vector<pid_t>& pids, pid_t pid) {
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// The workers of the generation that serves after a reload: every child of the master that is
// not one of `old`, once `n` of them exist.
std::vector<pid_t> newWorkers(LbInstance& lb, const std::vector<pid_t>& old, size_t n) {
  std::vector<pid_t> fresh;
  waitUntil(
      [&] {
        fresh.clear();
        for (pid_t p : lb.workerPids()) {
          if (!anyOf(old, p) && processAlive(p)) {
            fresh.push_back(p);
          }
        }
        return fresh.size() >= n;
      },
      10s);
  return fresh;
}

TEST_CASE("a keep-alive connection outlives a reload and is served by the new generation",
          "[reload][handoff]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto old = lb.workerPids();
  REQUIRE(old.size() == 2);

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  int local_port = c.localPort();
  auto r = c.roundTrip(buildRequest("GET", "/before"));
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("connection") == "");

  lb.reload();
  auto fresh = newWorkers(lb, old, 2);
  REQUIRE(fresh.size() == 2);
  // Every process of the old generation is gone, the connection still open: a new worker
  // holds it.
  bool old_gone = waitUntil([&] { return allGone(old); }, 15s);
  INFO(lb.diagnostics());
  REQUIRE(old_gone);
  CHECK(c.staysOpen(100ms));
  auto owners = connectionOwners(lb.port(0), fresh);
  REQUIRE(owners.count(local_port) == 1);
  CHECK(anyOf(fresh, owners[local_port]));

  auto r2 = c.roundTrip(buildRequest("GET", "/after"));
  INFO(describe(r2, c.error()));
  REQUIRE(r2);
  CHECK(r2->status == 200);
  CHECK(r2->body.data == "A");
  CHECK(r2->header("connection") == "");
  CHECK(c.localPort() == local_port);
  CHECK(lb.errorLog().find("connections handed to the next generation") != std::string::npos);
}

TEST_CASE("reloads do not restart the keep-alive timeout of a connection handed over",
          "[reload][handoff]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "keepalive_timeout_ms = 3000;"));

  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/once"));
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto idle_from = Clock::now();
  // Reloads until past 80% of the timeout, each one handing the connection on.
  int reloads = 0;
  while (elapsedMs(idle_from) < 2400 && reloads < 200) {
    auto old = lb.workerPids();
    lb.reload();
    ++reloads;
    REQUIRE(waitUntil([&] { return allGone(old); }, 10s));
  }
  INFO(reloads << " reloads; " << lb.diagnostics());
  REQUIRE(c.waitClosed(8s));
  // Idle 3 s in all, not 3 s after the last reload (5.4 s or more).
  INFO("closed " << elapsedMs(idle_from) << " ms after the response");
  CHECK(elapsedMs(idle_from) < 4500);
  CHECK(elapsedMs(idle_from) >= 2800);
}

TEST_CASE("a connection busy when the old generation drains stays keep-alive and moves on",
          "[reload][handoff]") {
  // The backend holds the request until both old workers drain: the response then goes out
  // without Connection: close, the connection is handed over once idle, and the client's next
  // request, sent at once, is answered wherever the connection is by then.
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("A", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto old = lb.workerPids();
  REQUIRE(old.size() == 2);

  HttpClient c(lb.port(0));
  REQUIRE(c.connected());
  REQUIRE(c.send(buildRequest("GET", "/first")));
  REQUIRE(up.waitForRequests(1));
  lb.reload();
  auto draining = [&] {
    std::string log = lb.errorLog();
    size_t n = 0;
    for (size_t at = log.find("draining: idle connections go to the next generation");
         at != std::string::npos;
         at = log.find("draining: idle connections go to the next generation", at + 1)) {
      ++n;
    }
    return n == 2;
  };
  bool drained = waitUntil(draining, 10s);
  INFO(lb.diagnostics());
  REQUIRE(drained);
  // The idle old worker is gone; the busy one waits for its response.
  CHECK(waitUntil([&] { return processAlive(old[0]) != processAlive(old[1]); }, 5s));
  gate->open();
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("connection") == "");  // the connection goes on, in the next generation
  auto r2 = c.roundTrip(buildRequest("GET", "/second"));
  INFO(describe(r2, c.error()));
  REQUIRE(r2);
  CHECK(r2->status == 200);
  bool old_gone = waitUntil([&] { return allGone(old); }, 15s);
  CHECK(old_gone);
  auto r3 = c.roundTrip(buildRequest("GET", "/third"));
  INFO(describe(r3, c.error()));
  REQUIRE(r3);
  CHECK(r3->status == 200);
}

TEST_CASE("20 keep-alive clients looping through 5 reloads see no error and no closed connection",
          "[reload][handoff]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  constexpr int kClients = 20;
  constexpr int kMaxRequests = 5000;  // per client, a bound in case the reloads are slow
  std::atomic<bool> stop{false};
  std::atomic<int> after_reloads{0};  // requests answered after the last reload finished
  std::atomic<bool> reloads_done{false};
  struct Outcome {
    int requests = 0;
    std::string failure;  // the first one
  };
  std::vector<Outcome> outcomes(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Outcome& o = outcomes[i];
      HttpClient c(lb.port(0));
      if (!c.connected()) {
        o.failure = "connect failed";
        return;
      }
      while (!stop && o.requests < kMaxRequests) {
        std::string target = "/c" + std::to_string(i) + "/" + std::to_string(o.requests);
        auto r = c.roundTrip(buildRequest("GET", target));
        if (!r) {
          o.failure = "request " + std::to_string(o.requests) + ": " + c.error();
          return;
        }
        if (r->status != 200 || r->header("connection") == "close") {
          o.failure = "request " + std::to_string(o.requests) + ": " + describe(r);
          return;
        }
        ++o.requests;
        if (reloads_done) {
          ++after_reloads;
        }
      }
    });
  }
  // Clients are busy before the first reload.
  waitUntil([&] { return up.requests() >= kClients * 5; }, 10s);
  std::vector<std::string> verdicts;
  for (int n = 0; n < 5; ++n) {
    auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
    verdicts.push_back(res.describe());
    if (res.exit_code != 0) {
      break;
    }
  }
  reloads_done = true;
  // Every client goes on for a while on the last generation, then all stop.
  waitUntil([&] { return after_reloads >= kClients * 20; }, 20s);
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& v : verdicts) {
    INFO(v);
  }
  INFO(lb.diagnostics());
  CHECK(verdicts.size() == 5);
  int total = 0;
  for (int i = 0; i < kClients; ++i) {
    INFO("client " << i << ": " << outcomes[i].requests << " requests");
    CHECK(outcomes[i].failure == "");
    CHECK(outcomes[i].requests > 0);
    total += outcomes[i].requests;
  }
  INFO("requests answered: " << total << ", after the last reload: " << after_reloads);
  CHECK(total >= 300);
  CHECK(after_reloads >= kClients * 20);
  // An old worker says so as it exits, which nothing above waited for.
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("connections handed to the next generation") != std::string::npos;
      },
      10s));
}

TEST_CASE("lb -s quit: a request racing the stop on an idle keep-alive connection is answered",
          "[process][signals][handoff]") {
  // With no next generation the idle connection is closed, but only after a grace window and
  // with a lingering close: the request the client sends right after the stop is not lost.
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  HttpClient c(lb.port(0));
  auto r = c.roundTrip(buildRequest("GET", "/one"));
  REQUIRE(r);
  lb.signal(SIGQUIT);
  auto r2 = c.roundTrip(buildRequest("GET", "/two"));
  INFO(describe(r2, c.error()));
  REQUIRE(r2);
  CHECK(r2->status == 200);
  // Then the connection ends, with a FIN, and lb exits.
  CHECK(c.waitClosed(5s));
  auto exit = lb.waitExit(10s);
  INFO(lb.diagnostics());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(exit->workers_gone);
}

TEST_CASE("a connection that goes idle after the next generation is gone still moves on",
          "[reload][handoff]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::fixed(200, "late"), 30s));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "",
                            "worker_shutdown_timeout_ms = 30000;"),
           LbOptions{.workers = 1});
  auto gen1 = lb.workerPids();
  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow")));
  REQUIRE(up.waitForRequests(1));

  // Generation 2 starts and, with nothing to do, is gone again after the next reload, while
  // generation 1 still works on its request.
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  REQUIRE(res.exit_code == 0);
  auto gen2 = newWorkers(lb, gen1, 1);
  res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  REQUIRE(res.exit_code == 0);
  INFO(lb.diagnostics());
  REQUIRE(waitUntil([&] { return allGone(gen2); }, 10s));
  REQUIRE_FALSE(allGone(gen1));

  gate->open();
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "late");
  CHECK(waitUntil([&] { return allGone(gen1); }, 10s));
  // Handed to generation 3, the connection serves the next request.
  up.setHandler(upstream::fixed(200, "third"));
  auto r2 = c.roundTrip(buildRequest("GET", "/next"));
  INFO(describe(r2, c.error()));
  REQUIRE(r2);
  CHECK(r2->body.data == "third");
}

}  // namespace
}  // namespace lb::e2e
