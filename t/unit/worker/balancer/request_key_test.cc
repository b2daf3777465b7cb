// What the proxy hands the balancer: key hashes from a parsed request head, the sticky cookie
// it carries, and the Set-Cookie lb adds.

#include "worker/balancer/request_key.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

using test::PoolFixture;

using Headers = std::vector<std::pair<std::string, std::string>>;

// A parsed request head with these headers.
class Head {
 public:
  explicit Head(const Headers& headers, const std::string& url = "/") {
    arena_.reset(buf_, sizeof(buf_));
    arena_.appendUrl(url.data(), url.size());
    for (const auto& [name, value] : headers) {
      arena_.appendName(name.data(), name.size());
      arena_.endName();
      arena_.appendValue(value.data(), value.size());
    }
  }
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;
  const http1::HeadArena& get() const { return arena_; }

 private:
  char buf_[4096];
  http1::HeadArena arena_;
};

const uint8_t kV4[4] = {192, 0, 2, 10};

ClientAddress v4() {
  return ClientAddress{AF_INET, kV4};
}

config::Pool hashPool(config::HashKey::Kind kind, const std::string& name = "") {
  config::Pool pool = PoolFixture::makePool(config::Algorithm::Hash, {1, 1, 1});
  pool.hash_key = {kind, name};
  return pool;
}

}  // namespace

TEST_CASE("findCookie reads RFC 6265 Cookie headers", "[balancer]") {
  Head h(Headers{{"Host", "x"},
                 {"Cookie", "a=1; lb_sticky=abc ;b=\"q\""},
                 {"cookie", "lb_sticky=second; c="}});
  CHECK(findCookie(h.get(), "a") == "1");
  CHECK(findCookie(h.get(), "lb_sticky") == "abc");  // the first one wins
  CHECK(findCookie(h.get(), "b") == "q");
  CHECK(findCookie(h.get(), "c").empty());
  CHECK(findCookie(h.get(), "lb").empty());
  CHECK(findCookie(h.get(), "A").empty());  // names are case-sensitive
  CHECK(findCookie(Head(Headers{}).get(), "a").empty());
}

TEST_CASE("sticky values are 16 hex digits both ways", "[balancer]") {
  char text[16];
  formatStickyValue(0x0123456789abcdefULL, text);
  CHECK(std::string_view(text, 16) == "0123456789abcdef");
  uint64_t id = 0;
  CHECK(parseStickyValue("0123456789abcdef", &id));
  CHECK(id == 0x0123456789abcdefULL);
  for (const char* bad :
       {"", "0123456789abcde", "0123456789abcdeg", "0123456789ABCDEF", "0123456789abcdef0"}) {
    CHECK_FALSE(parseStickyValue(bad, &id));
  }
}

TEST_CASE("pickInputFor hashes the configured key", "[balancer]") {
  Head h(Headers{{"X-Tenant", "acme"}, {"Cookie", "sid=42"}}, "/a?b=1");
  SECTION("client") {
    PoolFixture f(hashPool(config::HashKey::Kind::ClientAddress));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    PickInput in = pickInputFor(f.pool(), *bal, h.get(), "/a?b=1", v4(), 77);
    CHECK(in.has_key);
    CHECK(in.key_hash == clientHash(v4(), false));
    CHECK(in.now_ms == 77);
    CHECK(in.sticky == -1);
  }
  SECTION("uri") {
    PoolFixture f(hashPool(config::HashKey::Kind::Uri));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    PickInput in = pickInputFor(f.pool(), *bal, h.get(), "/a?b=1", v4(), 0);
    CHECK(in.has_key);
    CHECK(in.key_hash == hash64("/a?b=1"));
  }
  SECTION("header, matched case-insensitively, and a request without it") {
    PoolFixture f(hashPool(config::HashKey::Kind::Header, "x-tenant"));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    PickInput in = pickInputFor(f.pool(), *bal, h.get(), "/", v4(), 0);
    CHECK(in.has_key);
    CHECK(in.key_hash == hash64("acme"));
    CHECK_FALSE(pickInputFor(f.pool(), *bal, Head(Headers{}).get(), "/", v4(), 0).has_key);
  }
  SECTION("cookie") {
    PoolFixture f(hashPool(config::HashKey::Kind::Cookie, "sid"));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    PickInput in = pickInputFor(f.pool(), *bal, h.get(), "/", v4(), 0);
    CHECK(in.has_key);
    CHECK(in.key_hash == hash64("42"));
  }
  SECTION("ip_hash: the /24") {
    PoolFixture f(PoolFixture::makePool(config::Algorithm::IpHash, {1, 1}));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    PickInput in = pickInputFor(f.pool(), *bal, h.get(), "/", v4(), 0);
    CHECK(in.has_key);
    CHECK(in.key_hash == hash64(std::string_view("\xc0\x00\x02", 3)));
  }
  SECTION("round robin needs no key") {
    PoolFixture f(PoolFixture::makePool(config::Algorithm::RoundRobin, {1, 1}));
    BalancerPtr bal = makeBalancer(f.pool(), f.segment());
    CHECK_FALSE(pickInputFor(f.pool(), *bal, h.get(), "/", v4(), 0).has_key);
  }
}

TEST_CASE("client hashes: whole addresses, IPv6, and nothing for other families", "[balancer]") {
  uint8_t v6[16];
  REQUIRE(inet_pton(AF_INET6, "2001:db8::1", v6) == 1);
  CHECK(clientHash(ClientAddress{AF_INET6, v6}, true) ==
        hash64(std::string_view(reinterpret_cast<const char*>(v6), 16)));
  CHECK(clientHash(v4(), false) == hash64(std::string_view("\xc0\x00\x02\x0a", 4)));
  CHECK(clientHash(ClientAddress{AF_UNIX, kV4}, false) == hash64(""));
}

TEST_CASE("the sticky cookie: read on the way in, set on the way out", "[balancer]") {
  config::Pool pool = PoolFixture::makePool(config::Algorithm::RoundRobin, {1, 1, 1});
  pool.sticky.enabled = true;
  pool.sticky.cookie = "route";
  PoolFixture f(pool);
  BalancerPtr bal = makeBalancer(f.pool(), f.segment());
  char value[16];
  formatStickyValue(bal->stickyId(2), value);
  const std::string cookie = "route=" + std::string(value, 16);

  Head with(Headers{{"Cookie", "x=1; " + cookie}});
  CHECK(pickInputFor(f.pool(), *bal, with.get(), "/", v4(), 0).sticky == 2);
  CHECK_FALSE(needsStickyCookie(f.pool(), *bal, with.get(), 2));
  CHECK(needsStickyCookie(f.pool(), *bal, with.get(), 0));  // it went elsewhere: a new one
  Head without(Headers{{"Cookie", "x=1"}});
  CHECK(pickInputFor(f.pool(), *bal, without.get(), "/", v4(), 0).sticky == -1);
  CHECK(needsStickyCookie(f.pool(), *bal, without.get(), 1));
  Head unknown(Headers{{"Cookie", "route=0000000000000000"}});
  CHECK(pickInputFor(f.pool(), *bal, unknown.get(), "/", v4(), 0).sticky == -1);

  char buf[256];
  http1::Appender out(buf, sizeof(buf));
  appendStickyCookie(out, f.pool().sticky, *bal, 2);
  CHECK(std::string(buf, out.size()) == "Set-Cookie: " + cookie + "; Path=/; HttpOnly\r\n");
  config::Sticky aged = f.pool().sticky;
  aged.max_age_s = 60;
  http1::Appender again(buf, sizeof(buf));
  appendStickyCookie(again, aged, *bal, 2);
  CHECK(std::string(buf, again.size()) ==
        "Set-Cookie: " + cookie + "; Path=/; HttpOnly; Max-Age=60\r\n");
  // The value does not show the address.
  CHECK(cookie.find("10.0.0.3") == std::string::npos);

  config::Pool plain = PoolFixture::makePool(config::Algorithm::RoundRobin, {1});
  PoolFixture g(plain);
  BalancerPtr other = makeBalancer(g.pool(), g.segment());
  CHECK_FALSE(needsStickyCookie(g.pool(), *other, without.get(), 0));
  CHECK(pickInputFor(g.pool(), *other, with.get(), "/", v4(), 0).sticky == -1);
}

}  // namespace lb::worker
