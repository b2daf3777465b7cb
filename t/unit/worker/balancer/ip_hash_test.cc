// ip_hash: one address (one IPv4 /24) to one backend, the same in every balancer built from the
// same config, shares by weight, and a rehash when the backend cannot take the request.

#include "worker/balancer/ip_hash.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/hash.h"
#include "worker/balancer/request_key.h"

namespace lb::worker {
namespace {

using test::PoolFixture;

PickInput client(const char* ipv4) {
  uint8_t bytes[4];
  REQUIRE(inet_pton(AF_INET, ipv4, bytes) == 1);
  PickInput in;
  in.key_hash = clientHash(ClientAddress{AF_INET, bytes}, true);
  in.has_key = true;
  return in;
}

PickInput clientNumber(uint32_t n) {
  PickInput in;
  in.key_hash = hash64(std::to_string(n));
  in.has_key = true;
  return in;
}

}  // namespace

TEST_CASE("ip_hash: an address always goes to the same backend, in every balancer", "[balancer]") {
  PoolFixture f(config::Algorithm::IpHash, {1, 1, 1, 1});
  PoolFixture g(config::Algorithm::IpHash, {1, 1, 1, 1});
  IpHashBalancer a(f.pool(), f.segment());
  IpHashBalancer b(g.pool(), g.segment());
  for (uint32_t n = 0; n < 500; ++n) {
    int x = a.pick({}, clientNumber(n));
    REQUIRE(x >= 0);
    CHECK(a.pick({}, clientNumber(n)) == x);
    CHECK(b.pick({}, clientNumber(n)) == x);
  }
}

TEST_CASE("ip_hash: one IPv4 /24 goes to one backend", "[balancer]") {
  PoolFixture f(config::Algorithm::IpHash, std::vector<int>(8, 1));
  IpHashBalancer bal(f.pool(), f.segment());
  const int b = bal.pick({}, client("192.0.2.1"));
  for (const char* ip : {"192.0.2.2", "192.0.2.77", "192.0.2.254"}) {
    CHECK(bal.pick({}, client(ip)) == b);
  }
  // Other /24s spread over the backends.
  std::vector<int> seen(8, 0);
  for (int net = 0; net < 200; ++net) {
    std::string ip = "10.1." + std::to_string(net) + ".5";
    int x = bal.pick({}, client(ip.c_str()));
    ++seen[x];
    bal.release(x);
  }
  for (int count : seen) {
    CHECK(count > 5);
  }
}

TEST_CASE("ip_hash: shares follow the weights", "[balancer]") {
  PoolFixture f(config::Algorithm::IpHash, {1, 3});
  IpHashBalancer bal(f.pool(), f.segment());
  int heavy = 0;
  for (uint32_t n = 0; n < 40000; ++n) {
    int b = bal.pick({}, clientNumber(n));
    heavy += b == 1 ? 1 : 0;
    bal.release(b);
  }
  CHECK(heavy / 40000.0 == Approx(0.75).margin(0.02));
}

TEST_CASE("ip_hash: an unavailable backend's addresses rehash, the others stay", "[balancer]") {
  PoolFixture f(config::Algorithm::IpHash, {1, 1, 1});
  IpHashBalancer bal(f.pool(), f.segment());
  std::vector<int> home;
  for (uint32_t n = 0; n < 3000; ++n) {
    home.push_back(bal.pick({}, clientNumber(n)));
    bal.release(home.back());
  }
  f.setHealth(1, shm::HealthState::Down);
  std::vector<int> moved_to(3, 0);
  for (uint32_t n = 0; n < 3000; ++n) {
    int b = bal.pick({}, clientNumber(n));
    bal.release(b);
    if (home[n] == 1) {
      CHECK(b != 1);
      ++moved_to[b];
    } else {
      CHECK(b == home[n]);
    }
  }
  CHECK(moved_to[0] > 300);  // the rehash spreads them, not all onto one
  CHECK(moved_to[2] > 300);
  CHECK(bal.pick(std::vector<int>{0, 2}, clientNumber(1)) == -1);
}

}  // namespace lb::worker
