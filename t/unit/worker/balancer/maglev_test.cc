// Consistent hashing with a Maglev table: the same table from the same config everywhere,
// about 1/N of the keys moved when one of N backends goes or comes, shares by weight, and keys
// of an unavailable backend sent on and brought back.

#include "worker/balancer/maglev.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "unit/worker/balancer/pool_fixture.h"
#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

using test::PoolFixture;

constexpr int kKeys = 100000;

std::vector<std::string> backendKeys(int n, int first = 1) {
  std::vector<std::string> keys;
  for (int i = first; i < first + n; ++i) {
    keys.push_back("pool/10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) +
                   ":8080");
  }
  return keys;
}

// The backend key each of kKeys request keys maps to.
std::vector<std::string> mapKeys(const std::vector<std::string>& backends,
                                 const std::vector<uint16_t>& table) {
  std::vector<std::string> out;
  out.reserve(kKeys);
  for (int k = 0; k < kKeys; ++k) {
    uint64_t h = hash64("user-" + std::to_string(k));
    out.push_back(backends[table[h % table.size()]]);
  }
  return out;
}

double movedShare(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  int moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    moved += a[i] != b[i] ? 1 : 0;
  }
  return static_cast<double>(moved) / static_cast<double>(a.size());
}

PickInput key(uint64_t k) {
  PickInput in;
  in.key_hash = hash64("user-" + std::to_string(k));
  in.has_key = true;
  return in;
}

}  // namespace

TEST_CASE("maglev: two independently built balancers have the same table", "[balancer]") {
  PoolFixture first(PoolFixture::makePool(config::Algorithm::Hash, {1, 2, 3, 1, 1}));
  PoolFixture second(PoolFixture::makePool(config::Algorithm::Hash, {1, 2, 3, 1, 1}));
  MaglevBalancer a(first.pool(), first.segment());
  MaglevBalancer b(second.pool(), second.segment());
  REQUIRE(a.tableForTest().size() == kMaglevTableSize);
  CHECK(std::equal(a.tableForTest().begin(), a.tableForTest().end(), b.tableForTest().begin(),
                   b.tableForTest().end()));
  for (uint64_t k = 0; k < 1000; ++k) {
    int x = a.pick({}, key(k));
    int y = b.pick({}, key(k));
    CHECK(x == y);
    a.release(x);
    b.release(y);
  }
  // Another pool name is another table: the key is "pool/address".
  config::Pool renamed = PoolFixture::makePool(config::Algorithm::Hash, {1, 2, 3, 1, 1});
  renamed.name = "other";
  PoolFixture third(renamed);
  MaglevBalancer c(third.pool(), third.segment());
  CHECK_FALSE(std::equal(a.tableForTest().begin(), a.tableForTest().end(), c.tableForTest().begin(),
                         c.tableForTest().end()));
}

TEST_CASE("maglev: removing or adding one of N backends moves about 1/N of the keys",
          "[balancer]") {
  for (int n : {5, 10, 37, 100}) {
    INFO(n << " backends");
    const std::vector<std::string> all = backendKeys(n);
    const std::vector<int64_t> weights(n, 1);
    const std::vector<std::string> before = mapKeys(all, buildMaglevTable(all, weights));
    // Remove one from the middle.
    std::vector<std::string> fewer = all;
    fewer.erase(fewer.begin() + n / 2);
    const std::vector<int64_t> fewer_weights(n - 1, 1);
    const std::vector<std::string> removed = mapKeys(fewer, buildMaglevTable(fewer, fewer_weights));
    const double share = movedShare(before, removed);
    CHECK(share >= 0.5 / n);  // the removed backend's keys at least
    CHECK(share < 1.5 / n);
    // Every key of a remaining backend that moved is collateral; few of them.
    int collateral = 0;
    for (int k = 0; k < kKeys; ++k) {
      collateral += before[k] != all[n / 2] && before[k] != removed[k] ? 1 : 0;
    }
    CHECK(static_cast<double>(collateral) / kKeys < 0.5 / n);
    // Add one.
    std::vector<std::string> more = all;
    more.push_back(backendKeys(1, 1000)[0]);
    const std::vector<int64_t> more_weights(n + 1, 1);
    const std::vector<std::string> added = mapKeys(more, buildMaglevTable(more, more_weights));
    CHECK(movedShare(before, added) < 1.5 / (n + 1));
    CHECK(movedShare(before, added) >= 0.5 / (n + 1));
  }
}

TEST_CASE("maglev: entries in proportion to the weights", "[balancer]") {
  const std::vector<std::string> keys = backendKeys(4);
  const std::vector<int64_t> weights = {1, 2, 3, 1000};
  const std::vector<uint16_t> table = buildMaglevTable(keys, weights, 65537);
  std::vector<int> entries(4, 0);
  for (uint16_t b : table) {
    ++entries[b];
  }
  const double total = 1006;
  for (int i = 0; i < 4; ++i) {
    INFO("backend " << i);
    CHECK(entries[i] == Approx(65537 * weights[i] / total).margin(2));
  }
  CHECK(buildMaglevTable({}, {}, 65537).empty());
}

TEST_CASE("maglev: keys of an unavailable backend go on to the next entry and come back",
          "[balancer]") {
  PoolFixture f(config::Algorithm::Hash, {1, 1, 1, 1});
  MaglevBalancer bal(f.pool(), f.segment());
  std::vector<int> home;
  for (uint64_t k = 0; k < 2000; ++k) {
    int b = bal.pick({}, key(k));
    REQUIRE(b >= 0);
    home.push_back(b);
    bal.release(b);
  }
  f.setAdmin(2, shm::AdminState::Disabled);
  const std::span<const uint16_t> table = bal.tableForTest();
  for (uint64_t k = 0; k < 2000; ++k) {
    int b = bal.pick({}, key(k));
    bal.release(b);
    if (home[k] != 2) {
      CHECK(b == home[k]);  // keys of the others stay
      continue;
    }
    // The first entry after the key's own that is not backend 2.
    size_t pos = key(k).key_hash % table.size();
    while (table[pos] == 2) {
      pos = (pos + 1) % table.size();
    }
    CHECK(b == table[pos]);
  }
  f.setAdmin(2, shm::AdminState::Enabled);
  for (uint64_t k = 0; k < 2000; ++k) {
    int b = bal.pick({}, key(k));
    bal.release(b);
    CHECK(b == home[k]);
  }
}

TEST_CASE("maglev: a retry goes to another backend, -1 when all were tried", "[balancer]") {
  PoolFixture f(config::Algorithm::Hash, {1, 1, 1});
  MaglevBalancer bal(f.pool(), f.segment());
  const int first = bal.pick({}, key(1));
  const int second = bal.pick(std::vector<int>{first}, key(1));
  CHECK(second >= 0);
  CHECK(second != first);
  const int third = bal.pick(std::vector<int>{first, second}, key(1));
  CHECK(third >= 0);
  CHECK(third != first);
  CHECK(third != second);
  CHECK(bal.pick(std::vector<int>{0, 1, 2}, key(1)) == -1);
}

TEST_CASE("maglev: requests without the key spread by the table", "[balancer]") {
  PoolFixture f(config::Algorithm::Hash, {1, 3});
  MaglevBalancer bal(f.pool(), f.segment());
  std::map<int, int> counts;
  for (int i = 0; i < 20000; ++i) {
    int b = bal.pick({}, PickInput{});
    ++counts[b];
    bal.release(b);
  }
  CHECK(counts[1] / 20000.0 == Approx(0.75).margin(0.02));
}

}  // namespace lb::worker
