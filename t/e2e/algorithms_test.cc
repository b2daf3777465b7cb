// The balancing algorithms with a real lb and 2 workers: consistent hashing on a header sends a
// key to the same backend from either worker and across a reload; least_time and peak_ewma
// steer away from a slow backend; ip_hash keeps a client on one backend; random uses them all.

#include "e2e/harness/e2e.h"

#include <map>

namespace lb::e2e {
namespace {

// Which upstream answered a GET carrying `fields`, on a new connection ("error: ..." else).
std::string answer(int port, const HeaderList& fields = {}, const std::string& target = "/") {
  std::string error;
  auto r = fetch(port, buildRequest("GET", target, fields), {}, &error);
  return r && r->status == 200 ? r->body.data : "error: " + describe(r, error);
}

// The upstream of each of `users` users (header X-User: u<i>).
std::vector<std::string> byUser(int port, int users) {
  std::vector<std::string> out;
  for (int i = 0; i < users; ++i) {
    out.push_back(answer(port, {{"X-User", "u" + std::to_string(i)}}));
  }
  return out;
}

}  // namespace

TEST_CASE("hash on a header: one key, one backend, from both workers and across a reload",
          "[balancer][hash]") {
  FakeUpstream a("A"), b("B"), c("C"), d("D");
  LbInstance lb;
  const std::string config =
      singlePoolConfig({a.address(), b.address(), c.address(), d.address()},
                       "algorithm = \"hash\"; hash_key = \"header:X-User\";", "",
                       "accept_spread = \"even\";");  // both workers take part
  lb.start(config);
  const int users = 40;
  const std::vector<std::string> first = byUser(lb.port(0), users);
  std::map<std::string, int> spread;
  for (const std::string& s : first) {
    ++spread[s];
  }
  INFO("spread: A " << spread["A"] << ", B " << spread["B"] << ", C " << spread["C"] << ", D "
                    << spread["D"]);
  CHECK(spread.size() == 4);  // 40 keys land on all four (and no error)
  // Again, twice, each on a new connection: the two workers take turns accepting.
  for (int round = 0; round < 2; ++round) {
    CHECK(byUser(lb.port(0), users) == first);
  }
  // A new generation builds its own table from the same config: the same mapping.
  auto res = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(res.describe());
  REQUIRE(res.exit_code == 0);
  CHECK(byUser(lb.port(0), users) == first);
  // Requests without the key are spread, not refused.
  std::map<std::string, int> keyless;
  for (int i = 0; i < 40; ++i) {
    ++keyless[answer(lb.port(0))];
  }
  CHECK(keyless.size() >= 3);
  CHECK(keyless.count("error") == 0);
}

TEST_CASE("hash on a cookie and on the uri", "[balancer][hash]") {
  FakeUpstream a("A"), b("B"), c("C");
  for (const std::string key : {"cookie:sid", "uri"}) {
    INFO("hash_key " << key);
    LbInstance lb;
    lb.start(singlePoolConfig({a.address(), b.address(), c.address()},
                              "algorithm = \"hash\"; hash_key = \"" + key + "\";"));
    std::map<std::string, int> used;
    for (int i = 0; i < 30; ++i) {
      const std::string id = "s" + std::to_string(i);
      const std::string target = "/item/" + id + "?v=1";
      std::string x = answer(lb.port(0), {{"Cookie", "theme=dark; sid=" + id}}, target);
      // The same key again, with something else around it that is not part of the key.
      if (key == "uri") {
        CHECK(answer(lb.port(0), {{"Cookie", "sid=other"}}, target) == x);
      } else {
        CHECK(answer(lb.port(0), {{"Cookie", "sid=" + id + "; theme=light"}}, "/x") == x);
      }
      ++used[x];
    }
    CHECK(used.size() == 3);
    CHECK(used.count("error") == 0);
  }
}

TEST_CASE("least_time sends (almost) nothing to a slow backend", "[balancer][least_time]") {
  FakeUpstream slow("S", upstream::delayed(150ms, upstream::named()));
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(
      singlePoolConfig({slow.address(), a.address(), b.address()}, "algorithm = \"least_time\";"));
  std::map<std::string, int> count;
  for (int i = 0; i < 60; ++i) {
    ++count[answer(lb.port(0))];
  }
  INFO("S " << count["S"] << ", A " << count["A"] << ", B " << count["B"]);
  // One request finds out that it is slow (both workers read the same average); then it is
  // left alone until its average has decayed below the others', minutes away.
  CHECK(count["S"] >= 1);
  CHECK(count["S"] <= 2);
  CHECK(count["A"] + count["B"] == 60 - count["S"]);
  CHECK(slow.requests() == count["S"]);
}

TEST_CASE("peak_ewma sends (almost) nothing to a slow backend", "[balancer][peak_ewma]") {
  FakeUpstream slow("S", upstream::delayed(150ms, upstream::named()));
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(
      singlePoolConfig({slow.address(), a.address(), b.address()}, "algorithm = \"peak_ewma\";"));
  std::map<std::string, int> count;
  for (int i = 0; i < 60; ++i) {
    ++count[answer(lb.port(0))];
  }
  INFO("S " << count["S"] << ", A " << count["A"] << ", B " << count["B"]);
  CHECK(count["S"] <= 2);
  CHECK(count["A"] + count["B"] == 60 - count["S"]);
}

TEST_CASE("ip_hash keeps a client on one backend, and random uses every backend",
          "[balancer][ip_hash][random]") {
  FakeUpstream a("A"), b("B"), c("C");
  {
    LbInstance lb;
    lb.start(singlePoolConfig({a.address(), b.address(), c.address()}, "algorithm = \"ip_hash\";"));
    const std::string home = answer(lb.port(0));
    REQUIRE(home.size() == 1);
    for (int i = 0; i < 30; ++i) {
      CHECK(answer(lb.port(0)) == home);
    }
  }
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address(), c.address()}, "algorithm = \"random\";"));
  std::map<std::string, int> count;
  for (int i = 0; i < 90; ++i) {
    ++count[answer(lb.port(0))];
  }
  INFO("A " << count["A"] << ", B " << count["B"] << ", C " << count["C"]);
  CHECK(count.size() == 3);
  // Each share is 30 on average; below 10 has a chance of about 1e-6.
  CHECK(count["A"] >= 10);
  CHECK(count["B"] >= 10);
  CHECK(count["C"] >= 10);
}

}  // namespace lb::e2e
