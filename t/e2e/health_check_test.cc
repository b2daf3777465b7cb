// Active health checks: the checker process marks a backend DOWN after `fall` failed checks and
// UP after `rise` passed ones, logs each transition with its reason, and every worker stops and
// resumes sending to it. The checker is part of a generation (Ready on reload, respawned when
// killed).

#include "e2e/harness/e2e.h"

#include <signal.h>

#include <atomic>

namespace lb::e2e {
namespace {

// Answers /health with `health` (200 or 503), everything else with the upstream's name.
Handler healthFlag(std::shared_ptr<std::atomic<int>> health) {
  return [health](Exchange& ex) {
    if (ex.request().target == "/health") {
      ex.respond(health->load(), {}, health->load() == 200 ? "ok" : "failing");
    } else {
      ex.respond(200, {}, ex.upstreamName());
    }
  };
}

std::string checkedPool(const FakeUpstream& a, const FakeUpstream& b, const std::string& check) {
  return singlePoolConfig({a.address(), b.address()}, "health_check = { " + check + " };");
}

// Requests until one is answered by `name`, or `n` requests went elsewhere.
int answersFrom(int port, const std::string& name, int n) {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    auto r = get(port, "/x");
    if (r && r->body.data == name) {
      ++count;
    }
  }
  return count;
}

TEST_CASE("an HTTP check takes a failing backend out and brings it back", "[health]") {
  auto health = std::make_shared<std::atomic<int>>(200);
  FakeUpstream a("a"), b("b", healthFlag(health));
  LbInstance lb;
  lb.start(checkedPool(a, b,
                       "type = \"http\"; path = \"/health\"; interval_ms = 100; "
                       "timeout_ms = 80; fall = 2; rise = 2;"));
  CHECK(waitUntil([&] { return answersFrom(lb.port(0), "b", 4) > 0; }, 5s));

  health->store(503);
  std::string down =
      "backend " + b.address() + " in pool p is DOWN: 2 consecutive failures (status 503)";
  INFO(lb.diagnostics());
  REQUIRE(waitUntil([&] { return lb.errorLog().find(down) != std::string::npos; }, 5s));
  CHECK(answersFrom(lb.port(0), "b", 20) == 0);

  health->store(200);
  std::string up = "backend " + b.address() + " in pool p is UP: 2 consecutive checks passed";
  REQUIRE(waitUntil([&] { return lb.errorLog().find(up) != std::string::npos; }, 5s));
  CHECK(answersFrom(lb.port(0), "b", 20) > 0);
}

TEST_CASE("a TCP check notices a backend that refuses connections", "[health]") {
  FakeUpstream a("a");
  auto b = std::make_unique<FakeUpstream>("b");
  const std::string b_address = b->address();
  LbInstance lb;
  lb.start(checkedPool(a, *b, "type = \"tcp\"; interval_ms = 100; timeout_ms = 80; fall = 2;"));
  b.reset();  // stops listening
  std::string down = "backend " + b_address + " in pool p is DOWN: 2 consecutive failures " +
                     "(connect: connection refused)";
  INFO(lb.diagnostics());
  CHECK(waitUntil([&] { return lb.errorLog().find(down) != std::string::npos; }, 5s));
  // With the dead backend out, no request needs a retry and none fails.
  for (int i = 0; i < 20; ++i) {
    auto r = get(lb.port(0), "/x");
    REQUIRE(r);
    CHECK(r->body.data == "a");
  }
}

TEST_CASE("the checker is respawned when killed and survives reloads", "[health]") {
  FakeUpstream a("a"), b("b");
  LbInstance lb;
  lb.start(checkedPool(a, b, "type = \"tcp\"; interval_ms = 200; timeout_ms = 100;"));
  // The newest "start checker process PID" line names the live checker.
  auto checkerPid = [&]() -> pid_t {
    std::string log = lb.errorLog();
    size_t at = log.rfind("start checker process ");
    if (at == std::string::npos) {
      return -1;
    }
    pid_t pid = std::atoi(log.c_str() + at + 22);
    return processAlive(pid) ? pid : -1;
  };
  pid_t first = -1;
  REQUIRE(waitUntil([&] { return (first = checkerPid()) > 0; }, 5s));
  ::kill(first, SIGKILL);
  lb.allowAlertsContaining("exited on signal 9");
  pid_t second = -1;
  CHECK(waitUntil([&] { return (second = checkerPid()) > 0 && second != first; }, 5s));
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe() << lb.diagnostics());
  CHECK(res.exit_code == 0);
  CHECK(lb.errorLog().find("checker (generation 2) ready") != std::string::npos);
}

}  // namespace
}  // namespace lb::e2e
