#include "shared/shm/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

namespace lb::shm {
namespace {

// A segment name no other test (or concurrent test process) uses, removed when done.
class ScopedName {
 public:
  explicit ScopedName(const std::string& tag)
      : name_("lb.unit." + std::to_string(::getpid()) + "." + tag) {}
  ~ScopedName() { SharedSegment::remove(name_); }
  const std::string& operator*() const { return name_; }

 private:
  std::string name_;
};

std::unique_ptr<SharedSegment> mustCreate(const std::string& name) {
  auto seg = SharedSegment::create(name);
  INFO((seg ? std::string() : seg.error().message));
  REQUIRE(seg);
  return std::move(*seg);
}

config::Pool pool(const std::string& name, const std::vector<std::string>& addresses) {
  config::Pool p;
  p.name = name;
  for (const auto& a : addresses) {
    config::Backend b;
    b.address_text = a;
    p.backends.push_back(b);
  }
  return p;
}

std::string keyAt(const BackendSlot& s) {
  return std::string(s.key, ::strnlen(s.key, kKeySize));
}

// The raw bytes of the segment as another process would see them, for corrupting a header.
Header* rawHeader(const std::string& name, int* fd, void** addr) {
  *fd = ::shm_open(("/" + name).c_str(), O_RDWR, 0);
  REQUIRE(*fd >= 0);
  *addr = ::mmap(nullptr, sizeof(Header), PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  REQUIRE(*addr != MAP_FAILED);
  return static_cast<Header*>(*addr);
}

void closeRaw(int fd, void* addr) {
  ::munmap(addr, sizeof(Header));
  ::close(fd);
}

}  // namespace

TEST_CASE("nameFor is lb., the FNV-1a hash of the pid path and the master's pid", "[shm]") {
  // Reference values of 64-bit FNV-1a.
  CHECK(SharedSegment::nameFor("", 1) == "lb.cbf29ce484222325.1");
  CHECK(SharedSegment::nameFor("a", 42) == "lb.af63dc4c8601ec8c.42");
  CHECK(SharedSegment::nameFor("foobar", 7) == "lb.85944171f73967e8.7");
  CHECK(SharedSegment::nameFor("/run/lb.pid", 9) == SharedSegment::nameFor("/run/lb.pid", 9));
  CHECK(SharedSegment::nameFor("/run/lb.pid", 9) != SharedSegment::nameFor("/run/lb.pid", 10));
  CHECK(SharedSegment::nameFor("/run/lb.pid", 9) != SharedSegment::nameFor("/run/lb2.pid", 9));
  CHECK(SharedSegment::nameFor("/run/lb.pid", 123).size() == 3 + 16 + 4);
}

TEST_CASE("removeStale removes the segments of dead masters of that instance only", "[shm]") {
  const std::string path = "/tmp/lb-stale-test-" + std::to_string(::getpid()) + ".pid";
  // A pid that surely is dead: a child that has been reaped.
  pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) {
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  const std::string stale = SharedSegment::nameFor(path, dead);
  const std::string live = SharedSegment::nameFor(path, ::getpid());
  const std::string other = SharedSegment::nameFor(path + ".other", dead);
  for (const auto& n : {stale, live, other}) {
    REQUIRE(SharedSegment::create(n));
  }
  CHECK(SharedSegment::removeStale(path) == 1);
  CHECK_FALSE(SharedSegment::attach(stale));
  CHECK(SharedSegment::attach(live));
  CHECK(SharedSegment::attach(other));  // another instance's business
  SharedSegment::remove(live);
  SharedSegment::remove(other);
}

TEST_CASE("create writes the header and zeroes the segment, attach maps the same memory", "[shm]") {
  ScopedName name("create");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  REQUIRE(s != nullptr);
  CHECK(seg->name() == *name);
  CHECK(s->header.magic == kMagic);
  CHECK(s->header.layout_version == kLayoutVersion);
  CHECK(s->header.segment_size == sizeof(Segment));
  CHECK(s->header.generation.load() == 0);
  CHECK(s->backends[kMaxBackends - 1].in_use.load() == 0);
  CHECK(s->pools[0].rr_sequence.load() == 0);

  auto other = SharedSegment::attach(*name);
  INFO((other ? std::string() : other.error().message));
  REQUIRE(other);
  REQUIRE((*other)->get() != s);  // a second, independent mapping
  s->backends[7].requests.store(42);
  CHECK((*other)->get()->backends[7].requests.load() == 42);
  (*other)->get()->header.generation.store(3);
  CHECK(s->header.generation.load() == 3);
}

TEST_CASE("create replaces a stale segment of the same name", "[shm]") {
  ScopedName name("stale");
  auto first = mustCreate(*name);
  first->get()->backends[0].requests.store(99);
  auto second = mustCreate(*name);
  CHECK(second->get()->backends[0].requests.load() == 0);
  // The old mapping stays valid for whoever still holds it, but is no longer the named one.
  CHECK(first->get()->backends[0].requests.load() == 99);
  auto attached = SharedSegment::attach(*name);
  REQUIRE(attached);
  CHECK((*attached)->get()->backends[0].requests.load() == 0);
}

TEST_CASE("attach refuses a missing segment and every header mismatch", "[shm]") {
  ScopedName name("mismatch");

  SECTION("missing") {
    auto r = SharedSegment::attach(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("cannot attach") && Catch::Contains(*name));
  }
  auto seg = mustCreate(*name);
  int fd = -1;
  void* addr = nullptr;
  Header* raw = rawHeader(*name, &fd, &addr);

  SECTION("bad magic") {
    raw->magic = 0x1122334455667788ULL;
    auto r = SharedSegment::attach(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("bad magic 0x1122334455667788") &&
                                      Catch::Contains("not an lb segment"));
  }
  SECTION("wrong layout version") {
    raw->layout_version = kLayoutVersion + 1;
    auto r = SharedSegment::attach(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message,
               Catch::Contains("layout version " + std::to_string(kLayoutVersion + 1)));
  }
  SECTION("wrong size") {
    raw->segment_size = sizeof(Segment) - 64;
    auto r = SharedSegment::attach(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message,
               Catch::Contains("size " + std::to_string(sizeof(Segment) - 64)) &&
                   Catch::Contains("expects " + std::to_string(sizeof(Segment))));
  }
  SECTION("object shorter than its header claims") {
    REQUIRE(::ftruncate(fd, 4096) == 0);
    auto r = SharedSegment::attach(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("mapped 4096"));
  }
  SECTION("intact header attaches") {
    CHECK(SharedSegment::attach(*name));
  }
  closeRaw(fd, addr);
}

TEST_CASE("attachReloadState reads the verdict of a master of another layout version", "[shm]") {
  ScopedName name("reloadstate");
  auto seg = mustCreate(*name);
  seg->get()->reload.started.store(41);
  seg->get()->reload.finished.store(41);
  int fd = -1;
  void* addr = nullptr;
  Header* raw = rawHeader(*name, &fd, &addr);

  SECTION("this lb's own version: the whole segment too") {
    auto r = SharedSegment::attachReloadState(*name);
    REQUIRE(r);
    CHECK((*r)->get() != nullptr);
    CHECK((*r)->reloadState()->started.load() == 41);
  }
  SECTION("a later version of another size: the reload state alone, at its fixed place") {
    raw->layout_version = kLayoutVersion + 1;
    raw->segment_size = sizeof(Segment) + 4096;
    REQUIRE_FALSE(SharedSegment::attach(*name));
    auto r = SharedSegment::attachReloadState(*name);
    REQUIRE(r);
    CHECK((*r)->get() == nullptr);
    CHECK((*r)->reloadState()->finished.load() == 41);
    seg->get()->reload.finished.store(42);  // the master's write is seen through it
    CHECK((*r)->reloadState()->finished.load() == 42);
  }
  SECTION("a version from before the reload state was fixed: refused") {
    raw->layout_version = kFixedReloadStateSince - 1;
    auto r = SharedSegment::attachReloadState(*name);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message,
               Catch::Contains("layout version " + std::to_string(kFixedReloadStateSince - 1)));
  }
  SECTION("not an lb segment: refused") {
    raw->magic = 1;
    CHECK_FALSE(SharedSegment::attachReloadState(*name));
  }
  closeRaw(fd, addr);
}

TEST_CASE("assignSlots gives every pool and backend a distinct slot with its key", "[shm]") {
  ScopedName name("assign");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  config::Config cfg;
  cfg.pools = {pool("api", {"10.0.0.1:80", "10.0.0.2:80"}), pool("web", {"10.0.0.1:80"})};
  auto r = seg->assignSlots(cfg);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);

  REQUIRE(cfg.pools[0].slot >= 0);
  REQUIRE(cfg.pools[1].slot >= 0);
  CHECK(cfg.pools[0].slot != cfg.pools[1].slot);
  CHECK(std::string(s->pools[cfg.pools[0].slot].key) == "api");
  CHECK(std::string(s->pools[cfg.pools[1].slot].key) == "web");
  CHECK(s->pools[cfg.pools[1].slot].in_use.load() == 1);

  std::vector<int> slots = {cfg.pools[0].backends[0].slot, cfg.pools[0].backends[1].slot,
                            cfg.pools[1].backends[0].slot};
  CHECK(keyAt(s->backends[slots[0]]) == "api/10.0.0.1:80");
  CHECK(keyAt(s->backends[slots[1]]) == "api/10.0.0.2:80");
  // The same address in two pools is two backends: separate counters, separate limits.
  CHECK(keyAt(s->backends[slots[2]]) == "web/10.0.0.1:80");
  CHECK(slots[0] != slots[1]);
  CHECK(slots[0] != slots[2]);
  int used = 0;
  for (const BackendSlot& b : s->backends) {
    used += b.in_use.load() != 0 ? 1 : 0;
  }
  CHECK(used == 3);
}

TEST_CASE("a reload keeps the slots and counters of backends it still names", "[shm]") {
  ScopedName name("reload");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  config::Config v1;
  v1.pools = {pool("api", {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}), pool("old", {"a:1"})};
  REQUIRE(seg->assignSlots(v1));
  const int kept = v1.pools[0].backends[1].slot;
  const int dropped = v1.pools[0].backends[2].slot;
  const int old_pool = v1.pools[1].slot;
  s->backends[kept].requests.store(1000);
  s->backends[kept].active.store(3);
  s->backends[dropped].requests.store(77);
  s->pools[v1.pools[0].slot].rr_sequence.store(12);

  // v2: reordered, one backend gone, one new, pool "old" gone, pool "new" added.
  config::Config v2;
  v2.pools = {pool("new", {"b:2"}), pool("api", {"10.0.0.4:80", "10.0.0.2:80", "10.0.0.1:80"})};
  auto r = seg->assignSlots(v2);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);

  CHECK(v2.pools[1].slot == v1.pools[0].slot);
  CHECK(s->pools[v2.pools[1].slot].rr_sequence.load() == 12);
  CHECK(v2.pools[1].backends[1].slot == kept);
  CHECK(v2.pools[1].backends[2].slot == v1.pools[0].backends[0].slot);
  CHECK(s->backends[kept].requests.load() == 1000);
  CHECK(s->backends[kept].active.load() == 3);

  SECTION("released slots are free but keep their counters until reused") {
    CHECK(s->backends[dropped].in_use.load() == 0);
    CHECK(s->backends[dropped].requests.load() == 77);
    CHECK(keyAt(s->backends[dropped]) == "api/10.0.0.3:80");
    CHECK(s->pools[old_pool].in_use.load() == 0);
  }
  SECTION("new keys take fresh slots, not the ones just released") {
    const int fresh = v2.pools[1].backends[0].slot;
    CHECK(fresh != dropped);
    CHECK(keyAt(s->backends[fresh]) == "api/10.0.0.4:80");
    CHECK(s->backends[fresh].in_use.load() == 1);
    CHECK(v2.pools[0].slot != old_pool);
  }
  SECTION("released slots are reused only when no never-used slot is left, counters zeroed") {
    // Six slots were ever used (four in use, two released): fill all the never-used ones.
    config::Config v3 = v2;
    std::vector<std::string> filler;
    for (uint32_t i = 0; i < kMaxBackends - 6; ++i) {
      filler.push_back("f" + std::to_string(i) + ":1");
    }
    v3.pools.push_back(pool("filler", filler));
    REQUIRE(seg->assignSlots(v3));
    CHECK(s->backends[dropped].in_use.load() == 0);
    CHECK(s->backends[dropped].requests.load() == 77);
    const int old_backend = v1.pools[1].backends[0].slot;
    CHECK(s->backends[old_backend].in_use.load() == 0);

    v3.pools.push_back(pool("late", {"z:9"}));
    auto r3 = seg->assignSlots(v3);
    INFO((r3 ? std::string() : r3.error().message));
    REQUIRE(r3);
    const int late = v3.pools.back().backends[0].slot;
    CHECK((late == dropped || late == old_backend));
    CHECK(s->backends[late].in_use.load() == 1);
    CHECK(s->backends[late].requests.load() == 0);
    CHECK(keyAt(s->backends[late]) == "late/z:9");
  }
}

TEST_CASE("during a reload, slots an older generation uses stay until it is gone", "[shm]") {
  ScopedName name("drain");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  config::Config v1;
  v1.pools = {pool("api", {"10.0.0.1:80", "10.0.0.2:80"}), pool("old", {"a:1"})};
  REQUIRE(seg->assignSlots(v1));
  const int removed = v1.pools[0].backends[1].slot;
  const int old_pool = v1.pools[1].slot;
  s->backends[removed].active.store(2);  // the draining generation still counts on it

  config::Config v2;
  v2.pools = {pool("api", {"10.0.0.1:80", "10.0.0.3:80"})};
  REQUIRE(seg->assignSlots(v2, /*release_unnamed=*/false));
  CHECK(v2.pools[0].backends[0].slot == v1.pools[0].backends[0].slot);
  CHECK(v2.pools[0].backends[1].slot != removed);  // never handed to a new key meanwhile
  CHECK(s->backends[removed].in_use.load() == 1);
  CHECK(s->pools[old_pool].in_use.load() == 1);

  // Generation 1 still lives: nothing it names is released.
  seg->releaseUnused({&v1, &v2});
  CHECK(s->backends[removed].in_use.load() == 1);
  // Generation 1 is gone.
  seg->releaseUnused({&v2});
  CHECK(s->backends[removed].in_use.load() == 0);
  CHECK(s->pools[old_pool].in_use.load() == 0);
  CHECK(s->backends[v2.pools[0].backends[0].slot].in_use.load() == 1);
  CHECK(s->backends[v2.pools[0].backends[1].slot].in_use.load() == 1);
}

TEST_CASE("a full table or an overlong key is an error that changes nothing", "[shm]") {
  ScopedName name("full");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  config::Config base;
  base.pools = {pool("api", {"10.0.0.1:80"})};
  REQUIRE(seg->assignSlots(base));
  const int api_slot = base.pools[0].slot;

  SECTION("backend table full") {
    std::vector<std::string> many;
    for (uint32_t i = 0; i < kMaxBackends; ++i) {
      many.push_back("h" + std::to_string(i) + ":1");
    }
    config::Config big = base;
    big.pools.push_back(pool("big", many));  // kMaxBackends + 1 backends in all
    auto r = seg->assignSlots(big);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("backend table is full"));
    big.pools.back().backends.pop_back();  // exactly kMaxBackends now fits
    auto fits = seg->assignSlots(big);
    INFO((fits ? std::string() : fits.error().message));
    CHECK(fits);
  }
  SECTION("pool table full") {
    config::Config big = base;
    for (uint32_t i = 0; i < kMaxPools; ++i) {
      big.pools.push_back(pool("p" + std::to_string(i), {}));
    }
    auto r = seg->assignSlots(big);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("pool table is full"));
  }
  SECTION("key too long") {
    config::Config bad = base;
    bad.pools.push_back(pool("p", {std::string(kKeySize - 2, 'x')}));  // "p/" + 110 = 112
    auto r = seg->assignSlots(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("111 bytes"));
    bad.pools.back().backends[0].address_text.pop_back();  // 111 bytes fit
    CHECK(seg->assignSlots(bad));
  }
  // Nothing of a refused config touched the table: the old key is still assigned where it was.
  CHECK(s->pools[api_slot].in_use.load() == 1);
  CHECK(std::string(s->pools[api_slot].key) == "api");
}

TEST_CASE("a failed assignSlots leaves the running assignment untouched", "[shm]") {
  ScopedName name("atomic");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  config::Config v1;
  v1.pools = {pool("api", {"a:1"})};
  REQUIRE(seg->assignSlots(v1));
  config::Config v2;
  std::vector<std::string> many(kMaxBackends + 1);
  for (size_t i = 0; i < many.size(); ++i) {
    many[i] = "h" + std::to_string(i) + ":1";
  }
  v2.pools = {pool("other", many)};
  REQUIRE_FALSE(seg->assignSlots(v2));
  CHECK(s->pools[v1.pools[0].slot].in_use.load() == 1);
  CHECK(s->backends[v1.pools[0].backends[0].slot].in_use.load() == 1);
  CHECK(v2.pools[0].slot == -1);
  int pools_used = 0;
  for (const PoolSlot& p : s->pools) {
    pools_used += p.in_use.load() != 0 ? 1 : 0;
  }
  CHECK(pools_used == 1);
}

TEST_CASE("a forked child's counter updates are seen by the parent", "[shm]") {
  ScopedName name("fork");
  auto seg = mustCreate(*name);
  Segment* s = seg->get();
  constexpr int kChildren = 2;
  constexpr int kAdds = 10000;
  pid_t pids[kChildren];
  for (int c = 0; c < kChildren; ++c) {
    pids[c] = ::fork();
    REQUIRE(pids[c] >= 0);
    if (pids[c] == 0) {
      // Child: touch the inherited mapping only, then leave without running Catch2 teardown.
      for (int i = 0; i < kAdds; ++i) {
        s->backends[5].requests.fetch_add(1, std::memory_order_relaxed);
        s->backends[5].active.fetch_add(1, std::memory_order_relaxed);
      }
      s->workers[c].pid.store(static_cast<int32_t>(::getpid()));
      ::_exit(0);
    }
  }
  for (int c = 0; c < kChildren; ++c) {
    int status = 0;
    REQUIRE(::waitpid(pids[c], &status, 0) == pids[c]);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(s->workers[c].pid.load() == pids[c]);
  }
  CHECK(s->backends[5].requests.load() == uint64_t{kChildren} * kAdds);
  CHECK(s->backends[5].active.load() == kChildren * kAdds);
}

}  // namespace lb::shm
