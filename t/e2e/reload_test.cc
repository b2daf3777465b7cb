// The reload protocol seen from outside: `lb -s reload` waits for the master's verdict and
// reports it; a new generation that cannot start is rolled back while the old one serves on;
// `lb -t --plan` shows the change without applying it; old generations are bounded; backend
// slots in shared memory survive a reload.

#include "e2e/harness/e2e.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

namespace lb::e2e {
namespace {

std::string staticConfig(const std::string& body, const std::string& top = "") {
  return top + R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    return = { status = 200; body = ")" +
         body + R"("; }; } );
  )";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("lb -s reload prints the new generation and the new config serves", "[process][reload]") {
  LbInstance lb;
  lb.start(staticConfig("one"));
  lb.writeConfig(staticConfig("two"));
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe() << lb.diagnostics());
  CHECK(res.exit_code == 0);
  CHECK(res.err == "lb: reload succeeded: generation 2 serves\n");
  // The verdict comes once every new worker is ready; the old ones stop accepting right after.
  CHECK(waitUntil(
      [&] {
        auto r = get(lb.port(0), "/");
        return r && r->body.data == "two";
      },
      2s));
  CHECK(contains(lb.errorLog(), "reload succeeded: generation 2 serves, generation 1 drains"));
}

TEST_CASE("a reload whose new workers cannot start is rolled back and reported",
          "[process][reload]") {
  LbInstance lb;
  lb.start(staticConfig("old"));
  auto workers = lb.workerPids();
  // Valid for the loader, fatal for a worker: the access log's directory does not exist.
  lb.writeConfig("access_log = { path = \"@DIR@/missing/access.log\"; };\n" + staticConfig("new"),
                 LbOptions{.access_log = false});
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe() << lb.diagnostics());
  CHECK(res.exit_code == 1);
  CHECK(contains(res.err, "lb: reload failed: worker process"));
  CHECK(contains(res.err, "before the generation was ready"));
  CHECK(contains(res.err, "lb: generation 1 goes on serving"));
  CHECK(contains(lb.errorLog(), "reload failed, rolled back"));
  for (int i = 0; i < 5; ++i) {
    auto r = get(lb.port(0), "/");
    REQUIRE(r);
    CHECK(r->body.data == "old");
  }
  // The old generation never noticed. The master answered at the first new worker's exit; the
  // other one may still be on its way out.
  std::sort(workers.begin(), workers.end());
  std::vector<pid_t> now;
  CHECK(waitUntil(
      [&] {
        now = lb.workerPids();
        std::sort(now.begin(), now.end());
        return now == workers;
      },
      5s));
  CHECK(now == workers);

  // Fixed, the next reload goes through, with a generation number never used before.
  lb.writeConfig(staticConfig("fixed"));
  res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  CHECK(res.err == "lb: reload succeeded: generation 3 serves\n");
}

TEST_CASE("a reload refused by the master records the error for lb -s reload",
          "[process][reload]") {
  LbInstance lb;
  lb.start(staticConfig("running"));
  // A port that is taken: the master finds out only when it binds, after lb -s parsed the file.
  int busy = 0;
  UniqueFd taken = listenTcp(0, 8, &busy);
  REQUIRE(taken.valid());
  lb.writeConfig(staticConfig("running") + "\n" + R"(
    # appended: a second listener on a port another program holds
  )");
  std::string text = readFile(lb.configPath());
  text.replace(text.find("listeners = ( {"), 15,
               "listeners = ( { name = \"busy\"; listen = \"127.0.0.1:" + std::to_string(busy) +
                   "\"; return = { status = 204; }; }, {");
  writeFile(lb.configPath(), text);
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe() << lb.diagnostics());
  CHECK(res.exit_code == 1);
  CHECK(contains(res.err, "lb: reload failed: listener \"busy\": bind() to 127.0.0.1:" +
                              std::to_string(busy)));
  auto r = get(lb.port(0), "/");
  REQUIRE(r);
  CHECK(r->body.data == "running");
}

TEST_CASE("lb -t --plan shows what a reload would change without applying it",
          "[process][reload][plan]") {
  FakeUpstream a("a"), b("b"), c("c");
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; pool = "app"; } );
    pools = ( { name = "app"; backends = ( { address = ")" +
           a.address() + R"("; }, { address = ")" + b.address() + R"("; } ); } );
  )");
  lb.writeConfig(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; pool = "app"; },
                  { name = "extra"; listen = "127.0.0.1:@PORT_1@"; return = { status = 204; }; } );
    pools = ( { name = "app"; algorithm = "least_conn"; health_check = { };
                backends = ( { address = ")" +
                 a.address() + R"("; weight = 5; }, { address = ")" + c.address() +
                 R"("; } ); } );
  )");
  auto res = lb.runLbCommand({"-t", "--plan", "-c", lb.configPath()});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  CHECK(contains(res.out, "plan: listeners +1 -0 =1 ~0; pools +0 -0 ~1; backends +1 -1 ~1"));
  CHECK(contains(res.out, "listener added:   extra 127.0.0.1:" + std::to_string(lb.port(1))));
  CHECK(contains(res.out, "listener kept:    web 127.0.0.1:" + std::to_string(lb.port(0))));
  CHECK(contains(res.out,
                 "pool changed:     app: algorithm \"round_robin\" -> \"least_conn\", "
                 "health_check added"));
  CHECK(contains(res.out, "backend added:    app/" + c.address()));
  CHECK(contains(res.out, "backend removed:  app/" + b.address()));
  CHECK(contains(res.out, "backend changed:  app/" + a.address() + ": weight 1 -> 5"));
  // Nothing was applied: no new listener, the same workers.
  CHECK_FALSE(connectTcp(lb.port(1), 200ms).valid());
  CHECK_FALSE(contains(lb.errorLog(), "SIGHUP"));

  LbInstance none;
  none.writeConfig(staticConfig("x"));
  auto missing = none.runLbCommand({"-t", "--plan", "-c", none.configPath()});
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.err, "cannot plan the reload: no running instance"));
}

TEST_CASE("past max_draining_generations the oldest draining generation is stopped",
          "[process][reload]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::fixed(200, "late"), 30s));
  LbInstance lb;
  const std::string top = "max_draining_generations = 2; worker_shutdown_timeout_ms = 30000;";
  const std::string body = singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "", top);
  lb.start(body, LbOptions{.workers = 1});

  // Every generation keeps one request in flight, so none can finish draining.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int gen = 1; gen <= 4; ++gen) {
    auto c = std::make_unique<HttpClient>(lb.port(0));
    REQUIRE(c->send(buildRequest("GET", "/" + std::to_string(gen))));
    REQUIRE(up.waitForRequests(gen));
    clients.push_back(std::move(c));
    auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
    INFO(res.describe() << lb.diagnostics());
    REQUIRE(res.exit_code == 0);
    // The reload succeeds once the new generation is ready; the old one learns it drains just
    // after, and until then may still take a new connection (the next client's) and serve it.
    auto drained = [&] {
      const std::string log = lb.errorLog();
      const std::string line = "draining: idle connections go to the next generation";
      int n = 0;
      for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) {
        ++n;
      }
      return n >= gen;
    };
    REQUIRE(waitUntil(drained, 10s));
  }
  // Generations 1..4 drained in turn; with at most 2 draining, 1 and 2 were stopped.
  INFO(lb.diagnostics());
  CHECK(waitUntil([&] { return lb.workerPids().size() == 3; }, 10s));
  std::string log = lb.errorLog();
  CHECK(contains(log, "generation 1 stopped: more than max_draining_generations (2)"));
  CHECK(contains(log, "generation 2 stopped: more than max_draining_generations (2)"));
  CHECK_FALSE(contains(log, "generation 3 stopped"));
  // The stopped generations' clients saw their connection closed; the others get answers.
  gate->open();
  for (int i = 0; i < 4; ++i) {
    auto r = clients[i]->read();
    if (i < 2) {
      CHECK_FALSE(r);
    } else {
      REQUIRE(r);
      CHECK(r->body.data == "late");
    }
  }
}

TEST_CASE("reloads under connection-per-request load refuse and lose no connection",
          "[process][reload]") {
  FakeUpstream a("a"), b("b");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      Deadline end = deadlineIn(60s);
      for (int n = 0; n < 100000 && !stop && Clock::now() < end; ++n) {
        std::string error;
        auto r = fetch(lb.port(0), buildRequest("GET", "/", {{"Connection", "close"}}), {}, &error);
        if (r && r->status == 200) {
          ++ok;
        } else if (failed++ == 0) {
          std::lock_guard<std::mutex> lock(mu);
          first_error = describe(r, error);
        }
      }
    });
  }
  REQUIRE(waitUntil([&] { return ok > 100; }, 5s));
  for (int i = 0; i < 10; ++i) {
    auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
    INFO(res.describe());
    CHECK(res.exit_code == 0);
    int seen = ok;
    CHECK(waitUntil([&] { return ok > seen + 50; }, 5s));
  }
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  INFO("first error: " << first_error << "; " << ok << " requests answered");
  CHECK(failed == 0);
  CHECK(lb.errorLog().find("reload succeeded: generation 11 serves") != std::string::npos);
}

TEST_CASE("a reload that removes a listener refuses connections on it at once",
          "[process][reload]") {
  LbInstance lb;
  const std::string kept = R"(
    { name = "web"; listen = "127.0.0.1:@PORT_0@"; return = { status = 200; body = "web"; }; })";
  lb.start("listeners = (" + kept + R"(,
    { name = "old"; listen = "127.0.0.1:@PORT_1@"; return = { status = 200; body = "old"; }; } );
  )");
  HttpClient idle(lb.port(1));  // an idle keep-alive connection on the listener to go
  auto r = idle.roundTrip(buildRequest("GET", "/"));
  REQUIRE(r);
  lb.writeConfig("listeners = (" + kept + R"(,
    { name = "new"; listen = "127.0.0.1:@PORT_2@"; return = { status = 200; body = "new"; }; } );
  )");
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe() << lb.diagnostics());
  REQUIRE(res.exit_code == 0);
  CHECK(waitUntil([&] { return !connectTcp(lb.port(1), 200ms).valid(); }, 2s));
  auto n = get(lb.port(2), "/");
  REQUIRE(n);
  CHECK(n->body.data == "new");
  // The idle connection on the removed listener is closed without a reset.
  CHECK(idle.waitClosed(10s));
  CHECK(idle.error().find("reset") == std::string::npos);
}

TEST_CASE("lb -s reload during a graceful stop gets its answer at once", "[process][reload]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("slow", upstream::gated(gate, upstream::fixed(200, "done"), 30s));
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "read_timeout_ms = 30000;", "",
                            "worker_shutdown_timeout_ms = 30000;"));
  HttpClient c(lb.port(0));
  REQUIRE(c.send(buildRequest("GET", "/slow")));
  REQUIRE(up.waitForRequests(1));
  lb.signal(SIGQUIT);
  REQUIRE(waitUntil([&] { return contains(lb.errorLog(), "graceful shutdown"); }, 5s));
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()}, 5s);
  INFO(res.describe());
  CHECK_FALSE(res.timed_out);
  CHECK(res.exit_code == 1);
  CHECK(contains(res.err, "lb: reload failed: lb is shutting down"));
  gate->open();
  auto r = c.read();
  REQUIRE(r);
  CHECK(r->body.data == "done");
}

TEST_CASE("50 reloads under load: downloads checksum, slow requests finish, nothing fails",
          "[process][reload][slow]") {
  constexpr uint64_t kDownload = 30u << 20;
  FakeUpstream big("big", upstream::stream(kDownload, false));
  FakeUpstream slow("slow", upstream::delayed(1500ms, upstream::fixed(200, "slow")));
  FakeUpstream quick("quick");
  LbInstance lb;
  lb.start(R"(
    worker_shutdown_timeout_ms = 60000;
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; routes = "r"; } );
    routes = ( { name = "r"; rules = ( { path_prefix = "/big"; pool = "big"; },
                                       { path_prefix = "/slow"; pool = "slow"; },
                                       { pool = "quick"; } ); } );
    pools = ( )" +
           poolBlock("big", {big.address()}, "read_timeout_ms = 60000;") + ", " +
           poolBlock("slow", {slow.address()}) + ", " + poolBlock("quick", {quick.address()}) +
           R"( );
  )");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, downloads{0};
  std::mutex mu;
  std::string first_error;
  auto fail = [&](const std::string& what) {
    if (failed++ == 0) {
      std::lock_guard<std::mutex> lock(mu);
      first_error = what;
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&, i] {
      auto c = std::make_unique<HttpClient>(lb.port(0));
      Deadline end = deadlineIn(120s);
      for (int n = 0; !stop && Clock::now() < end; ++n) {
        std::string target = i == 0 ? "/big" : i == 1 ? "/slow" : "/q";
        ReadOptions opts;
        opts.timeout = 30s;
        opts.store_limit = 0;
        auto r = c->roundTrip(buildRequest("GET", target), opts);
        if (!r || r->status != 200) {
          fail(target + ": " + describe(r, c->error()));
          c = std::make_unique<HttpClient>(lb.port(0));
          continue;
        }
        if (i == 0) {
          if (r->body.length() != kDownload || r->body.checksum() != r->header("x-body-checksum")) {
            fail("download of " + std::to_string(r->body.length()) + " bytes, checksum " +
                 r->body.checksum() + " instead of " + r->header("x-body-checksum"));
          }
          ++downloads;
        }
        ++ok;
        // keepalive_requests (10000) ends a connection with Connection: close, as it should.
        if (r->header("connection") == "close") {
          c = std::make_unique<HttpClient>(lb.port(0));
        }
      }
    });
  }
  REQUIRE(waitUntil([&] { return ok > 20; }, 10s));
  for (int i = 0; i < 50; ++i) {
    auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
    INFO(res.describe() << lb.diagnostics());
    REQUIRE(res.exit_code == 0);
  }
  int after = ok;
  CHECK(waitUntil([&] { return ok > after + 20 && downloads >= 3; }, 30s));
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  INFO("first error: " << first_error << "; " << ok << " answered, " << downloads << " downloads");
  CHECK(failed == 0);
  CHECK(contains(lb.errorLog(), "generation 51 serves"));
}

}  // namespace
}  // namespace lb::e2e
