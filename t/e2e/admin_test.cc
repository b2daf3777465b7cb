// Run-time control of backends with the real lb: `lb backends` shows the table of the running
// instance, `lb backend POOL/ADDRESS disable | drain | enable | weight N` changes a backend in
// every worker at once through shared memory (2 workers here), and a reload keeps the changes
// of the backends the new configuration keeps.

#include "e2e/harness/e2e.h"

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace lb::e2e {
namespace {

std::string keyOf(const FakeUpstream& up) {
  return "p/" + up.address();
}

// `lb ARGS -c lb.conf`.
CommandResult lbCommand(LbInstance& lb, std::vector<std::string> args) {
  args.push_back("-c");
  args.push_back(lb.configPath());
  return lb.runLbCommand(args);
}

std::string backendsJson(LbInstance& lb) {
  auto res = lbCommand(lb, {"backends", "--json"});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  return res.out;
}

// `n` GETs, each on a new connection; which upstream answered how often ("error: ..." else).
std::map<std::string, int> spread(int port, int n) {
  std::map<std::string, int> count;
  for (int i = 0; i < n; ++i) {
    std::string error;
    auto r = fetch(port, buildRequest("GET", "/n/" + std::to_string(i)), {}, &error);
    ++count[r && r->status == 200 ? r->body.data : "error: " + describe(r, error)];
  }
  return count;
}

// Workers re-read run-time weights every 100 ms (lb(8)), not on every request: sends groups of
// `group` requests until two groups in a row get exactly `want` answers from `who` and more
// than three refresh intervals have passed since the change, so that every worker balances
// with the new weights (two lucky groups could all have met the worker that refreshed first).
// False if that does not happen in time.
bool settled(int port, const std::string& who, int group, int want, milliseconds timeout) {
  const auto changed = Clock::now();
  int in_a_row = 0;
  return waitUntil(
      [&] {
        in_a_row = spread(port, group)[who] == want ? in_a_row + 1 : 0;
        return in_a_row >= 2 && Clock::now() - changed > 300ms;
      },
      timeout, 1ms);
}

std::string show(const std::map<std::string, int>& count) {
  std::string s;
  for (const auto& [who, n] : count) {
    s += who + "=" + std::to_string(n) + " ";
  }
  return s;
}

// Clients that each send GETs on new connections, one after the other, until stopped.
class Load {
 public:
  Load(int port, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port] {
        Deadline end = deadlineIn(60s);
        while (!stop_ && Clock::now() < end) {
          std::string error;
          auto r = fetch(port, buildRequest("GET", "/load", {{"Connection", "close"}}), {}, &error);
          std::lock_guard<std::mutex> lock(mu_);
          if (r && r->status == 200) {
            ++answers_[r->body.data];
          } else if (errors_++ == 0) {
            first_error_ = describe(r, error);
          }
          ++done_;
        }
      });
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
  int done() const { return done_; }
  // Waits until `n` more requests than now have completed.
  bool advance(int n, milliseconds timeout = 10s) {
    const int target = done_ + n;
    return waitUntil([&] { return done_ >= target; }, timeout);
  }
  int errors() const { return errors_; }
  std::string firstError() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  std::map<std::string, int> answers() {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::atomic<int> errors_{0};
  std::mutex mu_;
  std::map<std::string, int> answers_;
  std::string first_error_;
  std::vector<std::thread> threads_;
};

}  // namespace

TEST_CASE("lb backends prints the running instance's table and its JSON form", "[admin]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address() + "; weight = 2", b.address()}));
  auto count = spread(lb.port(0), 30);
  INFO(show(count));
  REQUIRE(count["A"] == 20);
  REQUIRE(count["B"] == 10);

  auto table = lbCommand(lb, {"backends"});
  INFO(table.describe());
  CHECK(table.exit_code == 0);
  CHECK(table.err.empty());
  CHECK(table.out.rfind("POOL  ADDRESS", 0) == 0);
  CHECK(table.out.find("WEIGHT  EFFECTIVE  STATE    HEALTH  BREAKER  ACTIVE  REQUESTS  FAILURES") !=
        std::string::npos);
  // One line per backend, in configuration order, with the requests each one got.
  CHECK(table.out.find("\np     " + a.address() + "       2          2  enabled  up      closed") !=
        std::string::npos);
  CHECK(table.out.find("\np     " + b.address() + "       1          1  enabled  up      closed") !=
        std::string::npos);
  CHECK(table.out.find(a.address()) < table.out.find(b.address()));

  std::string json = backendsJson(lb);
  INFO(json);
  CHECK(json.rfind("{\"master_pid\": " + std::to_string(lb.pid()) + ", \"generation\": 1,", 0) ==
        0);
  CHECK(jsonField(json, a.address(), "pool") == "\"p\"");
  CHECK(jsonField(json, a.address(), "weight") == "2");
  CHECK(jsonField(json, a.address(), "state") == "\"enabled\"");
  CHECK(jsonField(json, a.address(), "requests") == std::to_string(a.requests()));
  CHECK(jsonField(json, b.address(), "requests") == std::to_string(b.requests()));
  CHECK(jsonField(json, b.address(), "failures") == "0");
  CHECK(jsonField(json, b.address(), "active") == "0");
}

TEST_CASE("lb backend disable: no request reaches it in any worker, enable brings it back",
          "[admin]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  REQUIRE(spread(lb.port(0), 10)["B"] == 5);
  HttpClient keepalive(lb.port(0));  // a client connection that lives through the changes
  REQUIRE(keepalive.roundTrip(buildRequest("GET", "/warm")));

  auto off = lbCommand(lb, {"backend", keyOf(b), "disable"});
  INFO(off.describe());
  CHECK(off.exit_code == 0);
  CHECK(off.out == "backend " + keyOf(b) +
                       ": enabled -> disabled (no new requests; 0 connections in flight)\n");
  CHECK(jsonField(backendsJson(lb), b.address(), "state") == "\"disabled\"");

  const int before = b.requests();
  auto count = spread(lb.port(0), 60);
  INFO(show(count));
  CHECK(count["A"] == 60);
  for (int i = 0; i < 20; ++i) {
    auto r = keepalive.roundTrip(buildRequest("GET", "/ka/" + std::to_string(i)));
    INFO(describe(r, keepalive.error()));
    REQUIRE(r);
    CHECK(r->body.data == "A");
  }
  CHECK(b.requests() == before);

  auto on = lbCommand(lb, {"backend", keyOf(b), "enable"});
  INFO(on.describe());
  CHECK(on.exit_code == 0);
  CHECK(on.out == "backend " + keyOf(b) + ": disabled -> enabled (takes new requests again)\n");
  auto back = spread(lb.port(0), 60);
  INFO(show(back));
  CHECK(back["B"] >= 25);
  CHECK(back["A"] + back["B"] == 60);
  CHECK(b.requests() == before + back["B"]);
}

TEST_CASE(
    "lb backend drain under load: in-flight requests finish, new ones go elsewhere, "
    "no errors",
    "[admin]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream a("A");
  FakeUpstream b("B", [gate](Exchange& ex) {
    if (ex.request().target == "/slow") {
      upstream::gated(gate, upstream::named())(ex);
    } else {
      upstream::named()(ex);
    }
  });
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));

  // A request held by B: round robin sends one of two consecutive requests there.
  std::future<std::optional<HttpResponse>> slow;
  for (int attempt = 0; attempt < 4; ++attempt) {
    slow = std::async(std::launch::async, [&] {
      return fetch(lb.port(0), buildRequest("GET", "/slow"), ReadOptions{.timeout = 30s});
    });
    if (slow.wait_for(1s) == std::future_status::timeout) {
      break;  // held: B has it
    }
  }
  REQUIRE(slow.valid());
  REQUIRE(slow.wait_for(0s) == std::future_status::timeout);
  REQUIRE(b.lastRequest());
  REQUIRE(b.lastRequest()->target == "/slow");

  Load load(lb.port(0), 3);
  REQUIRE(load.advance(30));
  auto drain = lbCommand(lb, {"backend", keyOf(b), "drain"});
  INFO(drain.describe());
  CHECK(drain.exit_code == 0);
  CHECK(drain.out.rfind("backend " + keyOf(b) + ": enabled -> draining (no new requests; ", 0) ==
        0);
  // Requests picked before the write may still be on their way: each client finishes two more.
  REQUIRE(load.advance(10));
  const int mark = b.requests();
  REQUIRE(load.advance(150));
  CHECK(b.requests() == mark);

  // Only the held request is left on B, and it finishes.
  std::string json = backendsJson(lb);
  INFO(json);
  CHECK(jsonField(json, b.address(), "state") == "\"draining\"");
  CHECK(jsonField(json, b.address(), "active") == "1");
  gate->open();
  REQUIRE(slow.wait_for(10s) == std::future_status::ready);
  auto held = slow.get();
  INFO(describe(held));
  REQUIRE(held);
  CHECK(held->status == 200);
  CHECK(held->body.data == "B");
  CHECK(waitUntil([&] { return jsonField(backendsJson(lb), b.address(), "active") == "0"; }, 5s));

  load.stop();
  INFO("first error: " << load.firstError() << "; answers: " << show(load.answers()));
  CHECK(load.errors() == 0);
  CHECK(load.answers()["A"] >= 150);
}

TEST_CASE("lb backend weight changes the round-robin distribution, default restores it",
          "[admin]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  auto even = spread(lb.port(0), 200);
  INFO(show(even));
  REQUIRE(even["A"] == 100);

  auto heavy = lbCommand(lb, {"backend", keyOf(a), "weight", "3"});
  INFO(heavy.describe());
  CHECK(heavy.exit_code == 0);
  CHECK(heavy.out == "backend " + keyOf(a) + ": weight 1 (configured) -> 3\n");
  std::string json = backendsJson(lb);
  CHECK(jsonField(json, a.address(), "weight") == "1");
  CHECK(jsonField(json, a.address(), "admin_weight") == "3");
  CHECK(jsonField(json, a.address(), "effective_weight") == "3");

  REQUIRE(settled(lb.port(0), "A", 8, 6, 5s));
  auto skewed = spread(lb.port(0), 400);
  INFO(show(skewed));
  CHECK(skewed["A"] >= 290);  // 3:1 is 300 / 100
  CHECK(skewed["A"] <= 310);
  CHECK(skewed["A"] + skewed["B"] == 400);

  auto back = lbCommand(lb, {"backend", keyOf(a), "weight", "default"});
  INFO(back.describe());
  CHECK(back.out == "backend " + keyOf(a) + ": weight 3 -> 1 (configured)\n");
  REQUIRE(settled(lb.port(0), "A", 8, 4, 5s));
  auto again = spread(lb.port(0), 200);
  INFO(show(again));
  CHECK(again["A"] >= 95);
  CHECK(again["A"] <= 105);
  CHECK(again["A"] + again["B"] == 200);
}

TEST_CASE("a reload keeps the changes of kept backends, a removed backend's are gone",
          "[admin][reload]") {
  FakeUpstream a("A"), b("B"), c("C");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  REQUIRE(lbCommand(lb, {"backend", keyOf(a), "weight", "4"}).exit_code == 0);
  REQUIRE(lbCommand(lb, {"backend", keyOf(b), "disable"}).exit_code == 0);

  // Generation 2 adds C and keeps A and B: their slots, and so their changes, stay.
  lb.writeConfig(singlePoolConfig({a.address(), b.address(), c.address()}));
  auto reload = lbCommand(lb, {"-s", "reload"});
  INFO(reload.describe());
  REQUIRE(reload.exit_code == 0);
  std::string json = backendsJson(lb);
  INFO(json);
  CHECK(jsonField(json, b.address(), "state") == "\"disabled\"");
  CHECK(jsonField(json, a.address(), "effective_weight") == "4");
  CHECK(jsonField(json, c.address(), "state") == "\"enabled\"");
  const int b_before = b.requests();
  auto count = spread(lb.port(0), 100);
  INFO(show(count));
  // B is out; A and C share its turns 4:1, give or take how an algorithm hands B's turns on.
  CHECK(count["A"] >= 75);
  CHECK(count["C"] >= 15);
  CHECK(count["A"] + count["C"] == 100);
  CHECK(b.requests() == b_before);

  // Generation 3 drops B. Once generation 2 has exited, B's slot is released with its state.
  lb.writeConfig(singlePoolConfig({a.address(), c.address()}));
  REQUIRE(lbCommand(lb, {"-s", "reload"}).exit_code == 0);
  CHECK(waitUntil([&] { return jsonField(backendsJson(lb), b.address(), "state").empty(); }, 20s));
  auto gone = lbCommand(lb, {"backend", keyOf(b), "enable"});
  CHECK(gone.exit_code == 1);
  CHECK(gone.err == "lb: unknown backend \"" + keyOf(b) + "\": the backends of pool \"p\" are: " +
                        std::min(keyOf(a), keyOf(c)) + ", " + std::max(keyOf(a), keyOf(c)) + "\n");

  // Generation 4 adds B again: it starts enabled, with its configured weight.
  lb.writeConfig(singlePoolConfig({a.address(), b.address(), c.address()}));
  REQUIRE(lbCommand(lb, {"-s", "reload"}).exit_code == 0);
  json = backendsJson(lb);
  INFO(json);
  CHECK(jsonField(json, b.address(), "state") == "\"enabled\"");
  CHECK(jsonField(json, b.address(), "admin_weight") == "0");
  CHECK(jsonField(json, a.address(), "effective_weight") == "4");
  auto after = spread(lb.port(0), 60);
  INFO(show(after));
  CHECK(after["A"] == 40);  // 4:1:1
  CHECK(after["B"] == 10);
  CHECK(after["C"] == 10);
}

TEST_CASE("lb backend errors: unknown backend, bad weight, lb not running", "[admin]") {
  FakeUpstream a("A");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address()}));

  auto unknown = lbCommand(lb, {"backend", "p/127.0.0.1:1", "drain"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.empty());
  CHECK(unknown.err == "lb: unknown backend \"p/127.0.0.1:1\": the backends of pool \"p\" are: " +
                           keyOf(a) + "\n");
  auto no_pool = lbCommand(lb, {"backend", "q/" + a.address(), "drain"});
  CHECK(no_pool.exit_code == 1);
  CHECK(no_pool.err.find("there is no pool \"q\"; known backends: " + keyOf(a)) !=
        std::string::npos);

  auto bad = lbCommand(lb, {"backend", keyOf(a), "weight", "1001"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.rfind("lb: invalid weight \"1001\" (expected 1..1000, or default or 0 for the "
                      "configured weight)\n",
                      0) == 0);
  CHECK(jsonField(backendsJson(lb), a.address(), "admin_weight") == "0");

  lb.stop();
  auto stopped = lbCommand(lb, {"backends"});
  CHECK(stopped.exit_code == 1);
  CHECK(stopped.err ==
        "lb: pid file \"" + lb.file("lb.pid") + "\" does not exist (is lb running?)\n");
}

}  // namespace lb::e2e
