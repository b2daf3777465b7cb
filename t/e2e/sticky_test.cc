// Sticky sessions by an inserted cookie, with a real lb and 2 workers: the first response names
// its backend in an opaque cookie, requests carrying it stay there (where round robin would
// rotate), and when that backend is gone the request goes elsewhere and gets a new cookie.

#include "e2e/harness/e2e.h"

#include <map>

namespace lb::e2e {
namespace {

struct Answer {
  std::string upstream;    // "error: ..." when there was no 200
  std::string set_cookie;  // "" when none
};

Answer visit(int port, const std::string& cookie = "") {
  HeaderList fields;
  if (!cookie.empty()) {
    fields.emplace_back("Cookie", cookie);
  }
  std::string error;
  auto r = fetch(port, buildRequest("GET", "/", fields), {}, &error);
  if (!r || r->status != 200) {
    return {"error: " + describe(r, error), ""};
  }
  return {r->body.data, r->header("Set-Cookie")};
}

// "srv=0123456789abcdef" from "srv=0123456789abcdef; Path=/; ...".
std::string cookiePair(const std::string& set_cookie) {
  return set_cookie.substr(0, set_cookie.find(';'));
}

}  // namespace

TEST_CASE("a sticky cookie keeps a client on its backend", "[balancer][sticky]") {
  FakeUpstream a("A"), b("B"), c("C");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address(), c.address()},
                            "sticky = { cookie = \"srv\"; max_age_s = 60; };"));
  Answer first = visit(lb.port(0));
  INFO("first: " << first.upstream << " " << first.set_cookie);
  REQUIRE(first.upstream.size() == 1);
  // srv=<16 hex digits>; Path=/; HttpOnly; Max-Age=60, and nothing of the address.
  const std::string pair = cookiePair(first.set_cookie);
  REQUIRE(pair.size() == 4 + 16);
  CHECK(pair.substr(0, 4) == "srv=");
  CHECK(first.set_cookie == pair + "; Path=/; HttpOnly; Max-Age=60");
  CHECK(first.set_cookie.find("127.0.0.1") == std::string::npos);
  CHECK(first.set_cookie.find(std::to_string(a.port())) == std::string::npos);

  // Round robin would rotate over three; the cookie wins, from either worker, and the
  // responses set no new cookie.
  for (int i = 0; i < 12; ++i) {
    Answer again = visit(lb.port(0), "lang=en; " + pair);
    CHECK(again.upstream == first.upstream);
    CHECK(again.set_cookie.empty());
  }
  // Each backend has its own cookie, the same whichever worker sets it.
  std::map<std::string, std::string> cookie_of;
  for (int i = 0; i < 9; ++i) {
    Answer fresh = visit(lb.port(0));
    REQUIRE(!fresh.set_cookie.empty());
    auto [it, inserted] = cookie_of.emplace(fresh.upstream, cookiePair(fresh.set_cookie));
    CHECK(it->second == cookiePair(fresh.set_cookie));
  }
  CHECK(cookie_of.size() == 3);
  CHECK(cookie_of[first.upstream] == pair);
  // A cookie that names no backend: the algorithm chooses and a valid cookie replaces it.
  Answer forged = visit(lb.port(0), "srv=0000000000000000");
  CHECK(forged.upstream.size() == 1);
  CHECK(cookiePair(forged.set_cookie) == cookie_of[forged.upstream]);
}

TEST_CASE("a sticky request whose backend is gone goes elsewhere and gets a new cookie",
          "[balancer][sticky]") {
  FakeUpstream a("A"), b("B");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}, "sticky = { }; retries = 1;"));
  Answer first = visit(lb.port(0));
  REQUIRE(first.upstream.size() == 1);
  const std::string pair = cookiePair(first.set_cookie);
  CHECK(pair.substr(0, 10) == "lb_sticky=");
  CHECK(first.set_cookie == pair + "; Path=/; HttpOnly");  // a session cookie by default

  FakeUpstream& home = first.upstream == "A" ? a : b;
  const std::string other = first.upstream == "A" ? "B" : "A";
  home.stop();  // connections to it are refused now
  Answer moved = visit(lb.port(0), pair);
  INFO("moved: " << moved.upstream << " " << moved.set_cookie);
  CHECK(moved.upstream == other);
  const std::string new_pair = cookiePair(moved.set_cookie);
  CHECK(new_pair.substr(0, 10) == "lb_sticky=");
  CHECK(new_pair != pair);
  // The new cookie holds.
  for (int i = 0; i < 6; ++i) {
    Answer again = visit(lb.port(0), new_pair);
    CHECK(again.upstream == other);
    CHECK(again.set_cookie.empty());
  }
}

}  // namespace lb::e2e
