// The worker processes: with 2 workers and 50 concurrent client connections both workers serve
// (seen from which process holds each established connection), a burst of connections is
// shared, connections that each serve one request go to one worker while it has room, and a
// worker killed with SIGKILL is replaced within 1 s, logged, while service goes on.

#include "e2e/harness/e2e.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace lb::e2e {
namespace {

TEST_CASE("with 2 workers and 50 client connections both workers serve", "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto workers = lb.workerPids();
  REQUIRE(workers.size() == 2);

  // Open all 50 first, then use them, so that lb accepts them while all are pending.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<HttpClient>(lb.port(0)));
    REQUIRE(clients.back()->connected());
  }
  for (auto& c : clients) {
    REQUIRE(c->send(buildRequest("GET", "/")));
  }
  for (auto& c : clients) {
    auto r = c->read();
    INFO(describe(r, c->error()));
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  // Every connection has been served, and is still open: find which worker holds each.
  std::map<int, pid_t> owners = connectionOwners(lb.port(0), workers);
  std::map<pid_t, int> per_worker;
  for (auto& c : clients) {
    auto it = owners.find(c->localPort());
    per_worker[it == owners.end() ? 0 : it->second]++;
  }
  std::string shown;
  for (auto [pid, n] : per_worker) {
    shown += std::to_string(pid) + ": " + std::to_string(n) + "  ";
  }
  INFO("connections per worker pid (0 = not found): " << shown);
  CHECK(per_worker.count(0) == 0);
  CHECK(per_worker[workers[0]] >= 1);
  CHECK(per_worker[workers[1]] >= 1);
}

std::map<pid_t, uint64_t> acceptedByWorker(LbInstance& lb) {
  return lb.statusByWorker("accepted");
}

// Two clients make requests on new connections without a pause while `window` is asked, between
// two looks at `lb status`, about the connections each worker accepted, until it says yes or
// `timeout` passes. What the windows were, in `seen`.
bool churnUntil(LbInstance& lb, const std::vector<pid_t>& workers,
                const std::function<bool(uint64_t, uint64_t)>& window, milliseconds timeout,
                std::string* seen) {
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 100000 && !stop.load(); ++i) {
        auto r = get(lb.port(0), "/");
        failed += r && r->status == 200 ? 0 : 1;
      }
    });
  }
  auto before = acceptedByWorker(lb);
  bool done = waitUntil(
      [&] {
        auto after = acceptedByWorker(lb);
        uint64_t first = after[workers[0]] - before[workers[0]];
        uint64_t second = after[workers[1]] - before[workers[1]];
        before = after;
        if (seen->size() < 400) {
          *seen += std::to_string(first) + "/" + std::to_string(second) + " ";
        }
        return window(first, second);
      },
      timeout, 50ms);
  stop = true;
  for (auto& th : clients) {
    th.join();
  }
  CHECK(failed.load() == 0);
  return done;
}

TEST_CASE("a burst of 200 connections opened at once is shared by 2 workers",
          "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  REQUIRE(lb.workerPids().size() == 2);
  // Both accept by now: a worker still starting up rightly leaves the burst to the other.
  REQUIRE(
      waitUntil([&] { return occurrences(lb.errorLog(), "generation 1) is ready") == 2; }, 10s));

  // Non-blocking connects: the kernel queues all 200 before either worker has woken.
  std::vector<UniqueFd> fds;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(lb.port(0)));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 200; ++i) {
    fds.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(fds.back().get() >= 0);
    int rc = ::connect(fds.back().get(), reinterpret_cast<sockaddr*>(&to), sizeof to);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
  }
  std::map<pid_t, uint64_t> held;
  bool all = waitUntil(
      [&] {
        held = lb.statusByWorker("connections");
        uint64_t sum = 0;
        for (auto [pid, n] : held) {
          sum += n;
        }
        return sum >= 200;
      },
      10s);
  std::string shown;
  for (auto [pid, n] : held) {
    shown += std::to_string(pid) + ": " + std::to_string(n) + "  ";
  }
  INFO("connections per worker: " << shown);
  REQUIRE(all);
  REQUIRE(held.size() == 2);
  for (auto [pid, n] : held) {
    CHECK(n >= 60);
  }
}

TEST_CASE("with 2 workers, connections that each serve one request go to one worker",
          "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto workers = lb.workerPids();
  REQUIRE(workers.size() == 2);
  // Counts would spread them; once the workers have seen them churn (loads are published every
  // 0.1 s), one worker accepts every connection of a window.
  std::string seen;
  bool packed = churnUntil(
      lb, workers,
      [](uint64_t first, uint64_t second) {
        return (first == 0 || second == 0) && first + second >= 20;
      },
      20s, &seen);
  INFO("accepted by each worker between two looks: " << seen);
  INFO(lb.diagnostics());
  CHECK(packed);
}

TEST_CASE("while connections churn onto one worker, long-lived ones reach the other past a lead",
          "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "", "worker_connections = 2000;"));
  auto workers = lb.workerPids();
  REQUIRE(workers.size() == 2);
  // Once one worker takes every churning connection, 400 clients connect and stay: the first
  // worker may run at most 256 connections ahead of the other, so the other gets the rest.
  constexpr int kHeld = 400;
  std::vector<std::unique_ptr<HttpClient>> held;
  std::string seen;
  std::map<pid_t, uint64_t> conns;
  bool spread = churnUntil(
      lb, workers,
      [&](uint64_t first, uint64_t second) {
        if (held.empty()) {
          if (!((first == 0 || second == 0) && first + second >= 20)) {
            return false;  // not packed yet
          }
          for (int i = 0; i < kHeld; ++i) {
            auto c = std::make_unique<HttpClient>(lb.port(0));
            auto r = c->roundTrip(buildRequest("GET", "/held"));
            if (!r || r->status != 200) {
              FAIL("held connection " << i << ": " << describe(r, c->error()));
            }
            held.push_back(std::move(c));
          }
        }
        conns = lb.statusByWorker("connections");
        return std::min(conns[workers[0]], conns[workers[1]]) >= 40;
      },
      30s, &seen);
  INFO("accepted by each worker between two looks: " << seen);
  INFO("connections held: " << conns[workers[0]] << " and " << conns[workers[1]]);
  INFO(lb.diagnostics());
  CHECK(held.size() == kHeld);
  CHECK(spread);
}

TEST_CASE("accept_spread = \"even\" spreads connections that each serve one request",
          "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "", "accept_spread = \"even\";"));
  auto workers = lb.workerPids();
  REQUIRE(workers.size() == 2);
  // Ten windows of 20 connections or more in a row, each served by both workers (the rule of
  // "auto" would give each to one worker within a few).
  std::string seen;
  int spread = 0;
  bool ten = churnUntil(
      lb, workers,
      [&](uint64_t first, uint64_t second) {
        if (first + second >= 20) {
          spread = first > 0 && second > 0 ? spread + 1 : 0;
        }
        return spread >= 10;
      },
      20s, &seen);
  INFO("accepted by each worker between two looks: " << seen);
  INFO(lb.diagnostics());
  CHECK(ten);
}

TEST_CASE("a worker killed with SIGKILL is replaced within 1 s and service continues",
          "[process][workers]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto before = lb.workerPids();
  REQUIRE(before.size() == 2);
  pid_t victim = before[0];
  // lb may well log the death of a worker loudly; that line is expected here.
  lb.allowAlertsContaining(std::to_string(victim));

  REQUIRE(::kill(victim, SIGKILL) == 0);
  auto killed_at = Clock::now();
  std::vector<pid_t> now;
  bool replaced = waitUntil(
      [&] {
        now = lb.workerPids();
        return now.size() == 2 && std::find(now.begin(), now.end(), victim) == now.end();
      },
      1000ms, 5ms);
  INFO("workers before: " << before[0] << " " << before[1] << "; replaced after "
                          << elapsedMs(killed_at) << " ms");
  INFO(lb.diagnostics());
  CHECK(replaced);
  // The survivor is untouched.
  CHECK(std::find(now.begin(), now.end(), before[1]) != now.end());

  // Service continues: requests on new connections (reaching either worker) all succeed.
  for (int i = 0; i < 20; ++i) {
    auto r = get(lb.port(0), "/after-kill/" + std::to_string(i));
    INFO("request " << i << ": " << describe(r));
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  // The master logged the event, naming the dead worker.
  bool logged = waitUntil(
      [&] { return lb.errorLog().find(std::to_string(victim)) != std::string::npos; }, 2s);
  INFO(lb.errorLog());
  CHECK(logged);
}

TEST_CASE("killing every worker repeatedly still leaves lb serving", "[process][workers]") {
  // A restart back-off is fine, as long as it stays within a few seconds for workers that had
  // been serving.
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));

  for (int round = 0; round < 3; ++round) {
    auto workers = lb.workerPids();
    REQUIRE(workers.size() == 2);
    for (pid_t w : workers) {
      lb.allowAlertsContaining(std::to_string(w));
      ::kill(w, SIGKILL);
    }
    bool replaced = waitUntil(
        [&] {
          auto now = lb.workerPids();
          return now.size() == 2 && std::none_of(now.begin(), now.end(), [&](pid_t p) {
                   return std::find(workers.begin(), workers.end(), p) != workers.end();
                 });
        },
        5s, 5ms);
    INFO("round " << round);
    INFO(lb.diagnostics());
    REQUIRE(replaced);
    auto r = get(lb.port(0), "/");
    INFO(describe(r));
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  CHECK(lb.running());
}

}  // namespace
}  // namespace lb::e2e
