// Controlling a running lb with `lb -s` (and the signals behind it): quit lets an in-flight
// request finish, stop exits fast, reopen moves the access log to a new file, reload applies a
// new config. Each also checks that the master and all its workers are gone at the end.

#include "e2e/harness/e2e.h"

#include <signal.h>

namespace lb::e2e {
namespace {

TEST_CASE("lb -s quit lets an in-flight slow request finish before the master exits",
          "[process][signals]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::fixed(200, "finished")));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 20000;", "",
                            "worker_shutdown_timeout_ms = 15000;"));

  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow")));
  REQUIRE(up.waitForRequests(1));

  auto res = lb.runLbCommand({"-s", "quit", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  // lb stops accepting new connections while the request is still held.
  bool closed_listener = waitUntil([&] { return !connectTcp(lb.port(0), 100ms).valid(); }, 5s);
  CHECK(closed_listener);
  CHECK(lb.running());

  gate->open();
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "finished");

  auto exit = lb.waitExit(10s);
  INFO(lb.diagnostics());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(exit->workers_gone);
  CHECK_FALSE(fileExists(lb.file("lb.pid")));
}

TEST_CASE("lb -s quit with idle keep-alive connections exits promptly", "[process][signals]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  HttpClient idle(lb.port(0));
  auto r = idle.roundTrip(buildRequest("GET", "/"));
  REQUIRE(r);
  auto res = lb.runLbCommand({"-s", "quit", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  // The idle client connection is closed, not waited for.
  CHECK(idle.waitClosed(5s));
  auto exit = lb.waitExit(5s);
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  CHECK(exit->workers_gone);
}

TEST_CASE("lb -s stop exits fast even with a request in flight", "[process][signals]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 20000;", "",
                            "worker_shutdown_timeout_ms = 15000;"));

  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow")));
  REQUIRE(up.waitForRequests(1));
  auto start = Clock::now();
  auto res = lb.runLbCommand({"-s", "stop", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  auto exit = lb.waitExit(3s);
  INFO(lb.diagnostics());
  REQUIRE(exit);
  INFO("exited " << elapsedMs(start) << " ms after lb -s stop");
  CHECK(exit->workers_gone);
  CHECK(exit->term_signal == 0);  // it exited, it was not killed by the signal
  // The held client sees its connection end instead of hanging.
  CHECK(c.waitClosed(3s));
}

TEST_CASE("SIGTERM and SIGINT stop lb fast", "[process][signals]") {
  for (int sig : {SIGTERM, SIGINT}) {
    FakeUpstream up("A");
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}));
    lb.signal(sig);
    auto exit = lb.waitExit(3s);
    INFO("signal " << sig);
    REQUIRE(exit);
    CHECK(exit->workers_gone);
  }
}

TEST_CASE("lb -s reopen reopens the access log after it was moved", "[process][signals][logs]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  auto r = get(lb.port(0), "/before-rotation");
  REQUIRE(r);
  REQUIRE(
      waitUntil([&] { return lb.accessLog().find("/before-rotation") != std::string::npos; }, 3s));
  std::string rotated = lb.file("access.log.1");
  REQUIRE(::rename(lb.file("access.log").c_str(), rotated.c_str()) == 0);
  auto res = lb.runLbCommand({"-s", "reopen", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);

  // Every worker reopens on its own; keep asking until a line lands in the new file (both
  // workers may serve, so a bounded number of requests rather than exactly one).
  int n = 0;
  bool in_new_file = waitUntil(
      [&] {
        get(lb.port(0), "/after-rotation-" + std::to_string(n++));
        return lb.accessLog().find("/after-rotation-") != std::string::npos;
      },
      3s, 20ms);
  INFO("requests sent after reopen: " << n);
  INFO("new access.log:\n" << lb.accessLog() << "\nrotated:\n" << readFile(rotated));
  CHECK(in_new_file);
  CHECK(readFile(rotated).find("/before-rotation") != std::string::npos);
  // Within a short while every worker writes to the new file only.
  std::string marker = "/settled-";
  bool settled = waitUntil(
      [&] {
        size_t rotated_size = readFile(rotated).size();
        for (int i = 0; i < 10; ++i) {
          get(lb.port(0), marker + std::to_string(i));
        }
        return readFile(rotated).size() == rotated_size;
      },
      3s, 20ms);
  CHECK(settled);
}

TEST_CASE("lb -s reload applies a changed config", "[process][signals][reload]") {
  LbInstance lb;
  std::string config = R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    return = { status = 200; body = "@BODY@"; }; } );
  )";
  auto with_body = [&](const std::string& body) {
    std::string text = config;
    text.replace(text.find("@BODY@"), 6, body);
    return text;
  };
  lb.start(with_body("generation-1"));
  auto r = get(lb.port(0), "/");
  REQUIRE(r);
  CHECK(r->body.data == "generation-1");
  auto old_workers = lb.workerPids();

  lb.writeConfig(with_body("generation-2"));
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  bool switched = waitUntil(
      [&] {
        auto rr = get(lb.port(0), "/");
        return rr && rr->body.data == "generation-2";
      },
      5s, 20ms);
  INFO(lb.diagnostics());
  CHECK(switched);
  // The old generation goes away.
  bool old_gone = waitUntil(
      [&] {
        auto now = lb.workerPids();
        return std::none_of(old_workers.begin(), old_workers.end(), [&](pid_t p) {
          return std::find(now.begin(), now.end(), p) != now.end();
        });
      },
      10s);
  CHECK(old_gone);
  CHECK(lb.running());
}

TEST_CASE("a reload with a broken config keeps the running one", "[process][signals][reload]") {
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    return = { status = 200; body = "still-here"; }; } );
  )");
  auto workers = lb.workerPids();
  writeFile(lb.configPath(), readFile(lb.configPath()) + "\nthis is not valid;\n");
  // The refusal names the file; lb may log it at any level, including [emerg].
  lb.allowAlertsContaining(lb.configPath());

  // The master itself refuses it (SIGHUP straight to the master) ...
  lb.reload();
  bool refused =
      waitUntil([&] { return lb.errorLog().find(lb.configPath()) != std::string::npos; }, 5s);
  INFO(lb.diagnostics());
  CHECK(refused);
  for (int i = 0; i < 5; ++i) {
    auto r = get(lb.port(0), "/");
    REQUIRE(r);
    CHECK(r->body.data == "still-here");
  }
  CHECK(lb.running());
  auto now = lb.workerPids();
  std::sort(workers.begin(), workers.end());
  std::sort(now.begin(), now.end());
  CHECK(now == workers);

  // ... and lb -s reload reports the failure.
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code != 0);
  CHECK(res.err.find(lb.configPath()) != std::string::npos);
  auto r = get(lb.port(0), "/");
  REQUIRE(r);
  CHECK(r->body.data == "still-here");
}

}  // namespace
}  // namespace lb::e2e
