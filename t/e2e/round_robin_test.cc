// Round robin across workers: the sequence lives in shared memory, so with 2 workers and a new
// connection per request the distribution is exact (100/100/100 over 3 backends; 2:1 for
// weights 2 and 1), and it is smooth (no backend gets a burst).

#include "e2e/harness/e2e.h"

#include <map>

namespace lb::e2e {
namespace {

// Sends `n` GETs, each on a new connection, and returns which upstream answered each.
std::vector<std::string> sequence(int port, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string error;
    auto r = fetch(port, buildRequest("GET", "/rr/" + std::to_string(i)), {}, &error);
    out.push_back(r && r->status == 200 ? r->body.data : "error: " + describe(r, error));
  }
  return out;
}

std::string show(const std::vector<std::string>& seq, size_t n = 30) {
  std::string s;
  for (size_t i = 0; i < std::min(n, seq.size()); ++i) {
    s += seq[i] + " ";
  }
  return s;
}

TEST_CASE("round robin over 3 backends with 2 workers is exact", "[balancer][round_robin]") {
  FakeUpstream a("A"), b("B"), c("C");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address(), c.address()}));

  auto seq = sequence(lb.port(0), 300);
  INFO("first answers: " << show(seq));
  std::map<std::string, int> count;
  for (const auto& s : seq) {
    ++count[s];
  }
  CHECK(count["A"] == 100);
  CHECK(count["B"] == 100);
  CHECK(count["C"] == 100);
  CHECK(count.size() == 3);
  // Strict rotation: every 3 consecutive answers come from 3 different backends.
  int bad_windows = 0;
  for (size_t i = 0; i + 2 < seq.size(); ++i) {
    bad_windows += (seq[i] == seq[i + 1] || seq[i] == seq[i + 2] || seq[i + 1] == seq[i + 2]);
  }
  CHECK(bad_windows == 0);
  CHECK(a.requests() == 100);
  CHECK(b.requests() == 100);
  CHECK(c.requests() == 100);
}

TEST_CASE("weighted round robin 2:1 with 2 workers is exact and smooth",
          "[balancer][round_robin]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address() + "; weight = 2", b.address() + "; weight = 1"}));

  auto seq = sequence(lb.port(0), 300);
  INFO("first answers: " << show(seq));
  CHECK(std::count(seq.begin(), seq.end(), "A") == 200);
  CHECK(std::count(seq.begin(), seq.end(), "B") == 100);
  // Smooth weighted round robin (A B A A B A ...): any 3 consecutive answers hold exactly one B.
  int bad_windows = 0;
  for (size_t i = 0; i + 2 < seq.size(); ++i) {
    bad_windows += std::count(seq.begin() + i, seq.begin() + i + 3, "B") != 1;
  }
  CHECK(bad_windows == 0);
}

TEST_CASE("round robin over keep-alive client connections spreads requests too",
          "[balancer][round_robin]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));

  HttpClient c(lb.port(0));
  std::map<std::string, int> count;
  for (int i = 0; i < 100; ++i) {
    auto r = c.roundTrip(buildRequest("GET", "/"));
    INFO(describe(r, c.error()));
    REQUIRE(r);
    ++count[r->body.data];
  }
  CHECK(count["A"] == 50);
  CHECK(count["B"] == 50);
}

}  // namespace
}  // namespace lb::e2e
