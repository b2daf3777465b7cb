// Binary upgrade (USR2, WINCH, QUIT as in nginx) under keep-alive load with zero failed
// requests, and the two ways it rolls back: a new master that cannot start, and one that dies
// after the old workers were withdrawn.

#include "e2e/harness/e2e.h"

#include <signal.h>

#include <atomic>
#include <memory>
#include <thread>

namespace lb::e2e {
namespace {

// Keep-alive clients sending GETs back to back until stopped (or a bound is reached); every
// request that does not get its 200 is an error.
class Load {
 public:
  Load(int port, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port] { run(port); });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  int ok() const { return ok_; }
  int errors() const { return errors_; }
  std::string firstError() const { return first_error_; }

 private:
  void run(int port) {
    auto c = std::make_unique<HttpClient>(port);
    Deadline end = deadlineIn(60s);
    for (int i = 0; i < 200000 && !stop_ && Clock::now() < end; ++i) {
      auto r = c->roundTrip(buildRequest("GET", "/"));
      if (r && r->status == 200) {
        ++ok_;
        // keepalive_requests ends a connection with Connection: close: a client reconnects.
        if (r->header("connection") == "close") {
          c = std::make_unique<HttpClient>(port);
        }
        continue;
      }
      if (errors_++ == 0) {
        first_error_ = describe(r, c->error());
      }
      c = std::make_unique<HttpClient>(port);  // go on with a fresh connection
    }
  }
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> errors_{0};
  std::string first_error_;
};

pid_t pidIn(const std::string& path) {
  std::string text = readFile(path);
  return text.empty() ? -1 : static_cast<pid_t>(std::atoi(text.c_str()));
}

void stopPid(pid_t pid) {
  if (pid > 0 && processAlive(pid)) {
    ::kill(pid, SIGQUIT);
    if (!waitUntil([&] { return !processAlive(pid); }, 10s)) {
      ::kill(pid, SIGKILL);
    }
  }
}

TEST_CASE("a binary upgrade under keep-alive load loses no request", "[process][upgrade]") {
  FakeUpstream a("a"), b("b");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  const pid_t old_master = lb.pid();
  auto old_workers = lb.workerPids();
  Load load(lb.port(0), 10);
  REQUIRE(waitUntil([&] { return load.ok() > 200; }, 5s));

  lb.signal(SIGUSR2);
  pid_t new_master = -1;
  bool started = waitUntil(
      [&] {
        new_master = pidIn(lb.file("lb.pid"));
        return new_master > 0 && new_master != old_master && fileExists(lb.file("lb.pid.oldbin"));
      },
      10s);
  INFO(lb.diagnostics());
  REQUIRE(started);
  CHECK(pidIn(lb.file("lb.pid.oldbin")) == old_master);
  // The new master is up when its workers are.
  REQUIRE(waitUntil([&] { return childrenOf(new_master).size() == 2; }, 10s));
  // Both masters log to the same file: two masters' generation 1, two workers each.
  REQUIRE(
      waitUntil([&] { return occurrences(lb.errorLog(), "generation 1) is ready") == 4; }, 10s));

  int before_withdraw = load.ok();
  lb.signal(SIGWINCH);
  bool withdrawn = waitUntil(
      [&] {
        auto now = childrenOf(old_master);
        return now.size() == 1 && now[0] == new_master;  // only the new master is left
      },
      15s);
  CHECK(withdrawn);
  CHECK(waitUntil([&] { return load.ok() > before_withdraw + 500; }, 10s));

  // Not lb.waitExit(): the harness would take the new master, a child of the old one, for a
  // leftover worker and kill it.
  lb.signal(SIGQUIT);
  REQUIRE(waitUntil([&] { return !processAlive(old_master); }, 10s));
  CHECK(processAlive(new_master));
  int before_quit = load.ok();
  CHECK(waitUntil([&] { return load.ok() > before_quit + 500; }, 10s));
  load.stop();
  INFO("first error: " << load.firstError());
  CHECK(load.errors() == 0);
  CHECK(pidIn(lb.file("lb.pid")) == new_master);
  CHECK_FALSE(fileExists(lb.file("lb.pid.oldbin")));

  // lb -s now talks to the new master.
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  CHECK(res.err == "lb: reload succeeded: generation 2 serves\n");
  stopPid(new_master);
  CHECK_FALSE(processAlive(new_master));
}

TEST_CASE("a new master that cannot start leaves the old one serving with its pid file",
          "[process][upgrade]") {
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@";
                    return = { status = 200; body = "old binary"; }; } );
  )");
  // The new master reads the file again; broken, it exits at once.
  writeFile(lb.configPath(), readFile(lb.configPath()) + "\nbroken;\n");
  lb.allowAlertsContaining(lb.configPath());
  lb.signal(SIGUSR2);
  bool rolled_back = waitUntil(
      [&] {
        return lb.errorLog().find("binary upgrade: new master process") != std::string::npos &&
               lb.errorLog().find("goes on serving") != std::string::npos;
      },
      10s);
  INFO(lb.diagnostics());
  CHECK(rolled_back);
  CHECK(waitUntil([&] { return pidIn(lb.file("lb.pid")) == lb.pid(); }, 5s));
  CHECK_FALSE(fileExists(lb.file("lb.pid.oldbin")));
  auto r = get(lb.port(0), "/");
  REQUIRE(r);
  CHECK(r->body.data == "old binary");
}

TEST_CASE("a new master that dies after WINCH brings the old workers back", "[process][upgrade]") {
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@";
                    return = { status = 200; body = "served"; }; } );
  )");
  const pid_t old_master = lb.pid();
  lb.signal(SIGUSR2);
  pid_t new_master = -1;
  REQUIRE(waitUntil(
      [&] {
        new_master = pidIn(lb.file("lb.pid"));
        return new_master > 0 && new_master != old_master && childrenOf(new_master).size() == 2;
      },
      10s));
  lb.signal(SIGWINCH);
  REQUIRE(waitUntil([&] { return childrenOf(old_master).size() == 1; }, 15s));
  // The new binary crashes: its workers follow it (parent-death signal).
  ::kill(new_master, SIGKILL);
  lb.allowAlertsContaining("exited on signal 9");
  bool back = waitUntil([&] { return lb.workerPids().size() == 2; }, 10s);
  INFO(lb.diagnostics());
  CHECK(back);
  CHECK(waitUntil([&] { return pidIn(lb.file("lb.pid")) == old_master; }, 5s));
  CHECK(waitUntil(
      [&] {
        auto r = get(lb.port(0), "/");
        return r && r->body.data == "served";
      },
      5s));
}

// USR2, wait for the new master's workers; returns the new master's pid.
pid_t startUpgrade(LbInstance& lb) {
  const pid_t old_master = lb.pid();
  lb.signal(SIGUSR2);
  pid_t new_master = -1;
  bool up = waitUntil(
      [&] {
        new_master = pidIn(lb.file("lb.pid"));
        return new_master > 0 && new_master != old_master && childrenOf(new_master).size() == 2;
      },
      10s);
  INFO(lb.diagnostics());
  REQUIRE(up);
  return new_master;
}

TEST_CASE("upgrade, reload of the new master, then WINCH: idle connections move over",
          "[process][upgrade]") {
  FakeUpstream a("a");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address()}));
  const pid_t old_master = lb.pid();
  HttpClient c(lb.port(0));
  REQUIRE(c.roundTrip(buildRequest("GET", "/")));
  pid_t new_master = startUpgrade(lb);
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  REQUIRE(res.exit_code == 0);
  lb.signal(SIGWINCH);
  REQUIRE(waitUntil([&] { return childrenOf(old_master).size() == 1; }, 15s));
  auto r = c.roundTrip(buildRequest("GET", "/after"));
  INFO(describe(r, c.error()) << lb.diagnostics());
  REQUIRE(r);
  CHECK(r->status == 200);
  lb.signal(SIGQUIT);
  REQUIRE(waitUntil([&] { return !processAlive(old_master); }, 10s));
  auto r2 = c.roundTrip(buildRequest("GET", "/later"));
  REQUIRE(r2);
  CHECK(r2->status == 200);
  c.close();  // an idle client would hold the graceful stop for up to drain_window_ms
  stopPid(new_master);
}

TEST_CASE("a roll back after WINCH keeps a busy connection and serves it on",
          "[process][upgrade]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::fixed(200, "first"), 30s));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "",
                            "worker_shutdown_timeout_ms = 30000;"));
  const pid_t old_master = lb.pid();
  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow")));
  REQUIRE(up.waitForRequests(1));
  pid_t new_master = startUpgrade(lb);
  lb.signal(SIGWINCH);
  REQUIRE(waitUntil([&] { return lb.errorLog().find("SIGWINCH") != std::string::npos; }, 5s));
  ::kill(new_master, SIGKILL);
  lb.allowAlertsContaining("exited on signal 9");
  INFO(lb.diagnostics());
  REQUIRE(waitUntil(
      [&] { return lb.errorLog().find("of generation 1 again") != std::string::npos; }, 10s));
  gate->open();
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->body.data == "first");
  // The draining worker passed the connection on; a restored worker serves it.
  up.setHandler(upstream::fixed(200, "second"));
  auto r2 = c.roundTrip(buildRequest("GET", "/next"));
  INFO(describe(r2, c.error()));
  REQUIRE(r2);
  CHECK(r2->body.data == "second");
  CHECK(pidIn(lb.file("lb.pid")) == old_master);
}

}  // namespace
}  // namespace lb::e2e
