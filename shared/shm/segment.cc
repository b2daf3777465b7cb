#include "shared/shm/segment.h"

#include <dirent.h>
#include <signal.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace lb::shm {

namespace bip = boost::interprocess;

namespace {

// The open object and its mapping; unmapped and closed when destroyed.
struct Mapping {
  bip::shared_memory_object object;
  bip::mapped_region region;
};

enum class OpenMode { Create, Attach };

// The one place Boost.Interprocess may throw: every call into it happens inside this try block
// and comes out as a Result. Create removes a stale segment first, so a master killed with
// SIGKILL never blocks the next start.
Result<Mapping> openMapping(const std::string& name, OpenMode mode) {
  try {
    Mapping m;
    if (mode == OpenMode::Create) {
      bip::shared_memory_object::remove(name.c_str());
      // 0600 (Boost applies it with fchmod, whatever the umask): the counters, the running
      // configuration and the run-time controls are the instance owner's business only.
      m.object = bip::shared_memory_object(bip::create_only, name.c_str(), bip::read_write,
                                           bip::permissions(0600));
      m.object.truncate(static_cast<bip::offset_t>(sizeof(Segment)));
    } else {
      m.object = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write);
    }
    // read_write maps MAP_SHARED: forked workers and attached clients see the same pages.
    m.region = bip::mapped_region(m.object, bip::read_write);
    return m;
  } catch (const bip::interprocess_exception& e) {
    const char* verb = mode == OpenMode::Create ? "create" : "attach";
    return unexpected(Error{std::string("cannot ") + verb + " shared memory segment \"" + name +
                            "\": " + e.what()});
  }
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// Checks what attach must refuse, one clear message per mismatch.
Result<void> checkHeader(const std::string& name, const void* base, size_t mapped) {
  const std::string what = "shared memory segment \"" + name + "\": ";
  if (mapped < sizeof(Header)) {
    return unexpected(
        Error{what + "only " + std::to_string(mapped) + " bytes, too small for an lb header"});
  }
  const auto* header = static_cast<const Header*>(base);
  if (header->magic != kMagic) {
    return unexpected(Error{what + "bad magic 0x" + hex64(header->magic) + " (expected 0x" +
                            hex64(kMagic) + "): not an lb segment"});
  }
  if (header->layout_version != kLayoutVersion) {
    return unexpected(Error{what + "layout version " + std::to_string(header->layout_version) +
                            ", this lb uses version " + std::to_string(kLayoutVersion)});
  }
  if (header->segment_size != sizeof(Segment) || mapped < sizeof(Segment)) {
    return unexpected(Error{what + "size " + std::to_string(header->segment_size) + " (mapped " +
                            std::to_string(mapped) + "), this lb expects " +
                            std::to_string(sizeof(Segment))});
  }
  return {};
}

// Writes a key: the slot must not be in_use yet, so no reader looks at it while it changes.
void writeKey(char (&dst)[kKeySize], const std::string& key) {
  std::memset(dst, 0, kKeySize);
  std::memcpy(dst, key.data(), key.size());
}

std::string_view keyOf(const char (&key)[kKeySize]) {
  return std::string_view(key, ::strnlen(key, kKeySize));
}

void resetCounters(BackendSlot& s) {
  s.active.store(0, std::memory_order_relaxed);
  s.requests.store(0, std::memory_order_relaxed);
  s.failures.store(0, std::memory_order_relaxed);
  s.connections.store(0, std::memory_order_relaxed);
  s.bytes_sent.store(0, std::memory_order_relaxed);
  s.bytes_received.store(0, std::memory_order_relaxed);
  s.admin_state.store(static_cast<uint32_t>(AdminState::Enabled), std::memory_order_relaxed);
  s.admin_weight.store(0, std::memory_order_relaxed);
  s.health.store(static_cast<uint32_t>(HealthState::Up), std::memory_order_relaxed);
  s.health_streak.store(0, std::memory_order_relaxed);
  s.health_changed_ms.store(0, std::memory_order_relaxed);
  s.ewma_us16.store(0, std::memory_order_relaxed);
  s.ewma_stamp_ms.store(0, std::memory_order_relaxed);
  s.passive_fails.store(0, std::memory_order_relaxed);
  s.passive_until_ms.store(0, std::memory_order_relaxed);
  s.breaker_state.store(static_cast<uint32_t>(BreakerState::Closed), std::memory_order_relaxed);
  s.breaker_fails.store(0, std::memory_order_relaxed);
  s.half_open_inflight.store(0, std::memory_order_relaxed);
  s.half_open_successes.store(0, std::memory_order_relaxed);
  s.breaker_opened_ms.store(0, std::memory_order_relaxed);
  s.recovered_ms.store(0, std::memory_order_relaxed);
}

void resetCounters(PoolSlot& s) {
  s.rr_sequence.store(0, std::memory_order_relaxed);
  s.budget_window_ms.store(0, std::memory_order_relaxed);
  s.budget_requests.store(0, std::memory_order_relaxed);
  s.budget_retries.store(0, std::memory_order_relaxed);
}

// Where every wanted key of one table (pools or backends) goes, computed before any write so
// that a failure leaves the whole segment as it was and the running generation unharmed.
struct TablePlan {
  std::vector<int> slots;    // per wanted key (duplicates share a slot)
  std::vector<int> fresh;    // indices into `wanted` whose slot is new to them
  std::vector<int> release;  // in_use slots no longer named and not reused
};

// A new key prefers a slot that was never used, then a released one whose `active` count is
// zero: a draining old worker may still count on a released slot, and zeroing it under that
// worker would drive the count negative or mix its requests into the new backend's. Slots
// released by this very call are reused only as a last resort, for the same reason.
template <typename Slot, size_t N>
Result<TablePlan> planTable(const Slot (&slots)[N], const std::vector<std::string>& wanted,
                            const char* table, bool release_unnamed) {
  std::unordered_map<std::string_view, int> existing;
  for (size_t i = 0; i < N; ++i) {
    if (slots[i].in_use.load(std::memory_order_acquire) != 0) {
      existing.emplace(keyOf(slots[i].key), static_cast<int>(i));
    }
  }

  std::unordered_map<std::string_view, int> assigned;  // key -> slot, -1 = still needs one
  for (const std::string& key : wanted) {
    auto it = existing.find(key);
    assigned.emplace(key, it == existing.end() ? -1 : it->second);
  }

  std::vector<int> stale;
  for (const auto& [key, slot] : existing) {
    if (release_unnamed && !assigned.contains(key)) {
      stale.push_back(slot);
    }
  }
  std::vector<int> never_used, idle_free, busy_free;
  for (size_t i = 0; i < N; ++i) {
    if (slots[i].in_use.load(std::memory_order_acquire) != 0) {
      continue;
    }
    bool busy = false;
    if constexpr (std::is_same_v<Slot, BackendSlot>) {
      busy = slots[i].active.load(std::memory_order_relaxed) != 0;
    }
    if (busy) {
      busy_free.push_back(static_cast<int>(i));
    } else if (slots[i].key[0] == '\0') {
      never_used.push_back(static_cast<int>(i));
    } else {
      idle_free.push_back(static_cast<int>(i));
    }
  }
  size_t needed = 0;
  for (const auto& [key, slot] : assigned) {
    needed += slot < 0 ? 1 : 0;
  }
  if (needed > never_used.size() + idle_free.size() + busy_free.size() + stale.size()) {
    return unexpected(Error{std::string("shared memory ") + table +
                            " table is full: " + std::to_string(assigned.size()) +
                            " slots needed, " + std::to_string(N) + " available"});
  }

  // Candidates in order of preference, taken from the back, lowest index first in each group.
  std::vector<int> candidates;
  for (const auto* group : {&stale, &busy_free, &idle_free, &never_used}) {
    candidates.insert(candidates.end(), group->rbegin(), group->rend());
  }
  std::unordered_set<int> reused;
  TablePlan plan;
  for (size_t w = 0; w < wanted.size(); ++w) {
    int& slot = assigned.at(wanted[w]);
    if (slot < 0) {
      slot = candidates.back();
      candidates.pop_back();
      reused.insert(slot);
      plan.fresh.push_back(static_cast<int>(w));
    }
    plan.slots.push_back(slot);
  }
  for (int slot : stale) {
    if (!reused.contains(slot)) {
      plan.release.push_back(slot);
    }
  }
  return plan;
}

template <typename Slot, size_t N>
void applyTable(Slot (&slots)[N], const std::vector<std::string>& wanted, const TablePlan& plan) {
  for (int w : plan.fresh) {
    Slot& s = slots[plan.slots[w]];
    s.in_use.store(0, std::memory_order_release);
    resetCounters(s);
    writeKey(s.key, wanted[w]);
    s.in_use.store(1, std::memory_order_release);
  }
  // Released slots keep key and counters until reused, so a late decrement stays harmless.
  for (int slot : plan.release) {
    slots[slot].in_use.store(0, std::memory_order_release);
  }
}

Result<void> checkKey(const std::string& key, const std::string& what) {
  if (key.empty() || key.size() > kKeySize - 1) {
    return unexpected(Error{what + " \"" + key + "\": shared-memory key must be 1.." +
                            std::to_string(kKeySize - 1) + " bytes long, is " +
                            std::to_string(key.size())});
  }
  if (key.find('\0') != std::string::npos) {
    return unexpected(Error{what + " \"" + key + "\": shared-memory key contains a NUL byte"});
  }
  return {};
}

}  // namespace

struct SharedSegment::Impl {
  Mapping mapping;
};

SharedSegment::~SharedSegment() = default;

namespace {

std::string instancePrefix(const std::string& pid_path) {
  // FNV-1a, 64 bit: stable across builds and machines, unlike std::hash.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : pid_path) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return "lb." + hex64(h) + ".";
}

}  // namespace

std::string SharedSegment::nameFor(const std::string& pid_path, int pid) {
  return instancePrefix(pid_path) + std::to_string(pid);
}

int SharedSegment::removeStale(const std::string& pid_path) {
  // POSIX shared memory lives in /dev/shm on Linux (what shm_open and Boost use).
  const std::string prefix = instancePrefix(pid_path);
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) {
    return 0;
  }
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (!name.starts_with(prefix)) {
      continue;
    }
    std::string_view digits = name.substr(prefix.size());
    int pid = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) {
      continue;
    }
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      stale.emplace_back(name);
    }
  }
  ::closedir(dir);
  for (const auto& name : stale) {
    remove(name);
  }
  return static_cast<int>(stale.size());
}

Result<std::unique_ptr<SharedSegment>> SharedSegment::create(const std::string& name) {
  auto mapping = openMapping(name, OpenMode::Create);
  if (!mapping) {
    return unexpected(mapping.error());
  }
  void* base = mapping->region.get_address();
  std::memset(base, 0, sizeof(Segment));
  auto* segment = new (base) Segment();
  segment->header.layout_version = kLayoutVersion;
  segment->header.segment_size = sizeof(Segment);
  // The magic goes last: a client attaching mid-create sees "not an lb segment", never a
  // half-written header.
  std::atomic_thread_fence(std::memory_order_release);
  segment->header.magic = kMagic;

  std::unique_ptr<SharedSegment> out(new SharedSegment());
  out->impl_ = std::make_unique<Impl>(Impl{std::move(*mapping)});
  out->segment_ = segment;
  out->reload_ = &segment->reload;
  out->name_ = name;
  return out;
}

Result<std::unique_ptr<SharedSegment>> SharedSegment::attach(const std::string& name) {
  return open(name, false);
}

Result<std::unique_ptr<SharedSegment>> SharedSegment::attachReloadState(const std::string& name) {
  return open(name, true);
}

Result<std::unique_ptr<SharedSegment>> SharedSegment::open(const std::string& name,
                                                           bool reload_state_only) {
  auto mapping = openMapping(name, OpenMode::Attach);
  if (!mapping) {
    return unexpected(mapping.error());
  }
  void* base = mapping->region.get_address();
  size_t mapped = mapping->region.get_size();
  auto checked = checkHeader(name, base, mapped);
  if (!checked) {
    // Another layout version: its reload state is still where this one's is, from
    // kFixedReloadStateSince on.
    const auto* header = static_cast<const Header*>(base);
    if (!reload_state_only || mapped < kReloadStateOffset + sizeof(ReloadState) ||
        header->magic != kMagic || header->layout_version < kFixedReloadStateSince) {
      return unexpected(checked.error());
    }
  }
  std::unique_ptr<SharedSegment> out(new SharedSegment());
  out->impl_ = std::make_unique<Impl>(Impl{std::move(*mapping)});
  out->segment_ = checked ? static_cast<Segment*>(base) : nullptr;
  out->reload_ = reinterpret_cast<ReloadState*>(static_cast<char*>(base) + kReloadStateOffset);
  out->name_ = name;
  return out;
}

void SharedSegment::remove(const std::string& name) {
  // Never throws: it reports failure (e.g. already removed) through its return value.
  bip::shared_memory_object::remove(name.c_str());
}

Result<void> SharedSegment::assignSlots(config::Config& config, bool release_unnamed) {
  std::vector<std::string> pool_keys;
  std::vector<std::string> backend_keys;
  for (const config::Pool& pool : config.pools) {
    auto ok = checkKey(pool.name, "pool");
    if (!ok) {
      return ok;
    }
    pool_keys.push_back(pool.name);
    for (const config::Backend& backend : pool.backends) {
      std::string key = pool.name + "/" + backend.address_text;
      ok = checkKey(key, "pool \"" + pool.name + "\" backend");
      if (!ok) {
        return ok;
      }
      backend_keys.push_back(std::move(key));
    }
  }

  // Both tables are planned before either is written.
  auto pools = planTable(segment_->pools, pool_keys, "pool", release_unnamed);
  if (!pools) {
    return unexpected(pools.error());
  }
  auto backends = planTable(segment_->backends, backend_keys, "backend", release_unnamed);
  if (!backends) {
    return unexpected(backends.error());
  }
  applyTable(segment_->pools, pool_keys, *pools);
  applyTable(segment_->backends, backend_keys, *backends);

  size_t next = 0;
  for (size_t p = 0; p < config.pools.size(); ++p) {
    config::Pool& pool = config.pools[p];
    pool.slot = pools->slots[p];
    for (config::Backend& backend : pool.backends) {
      backend.slot = backends->slots[next++];
    }
  }
  return {};
}

namespace {

template <typename Slot, size_t N>
void releaseUnnamed(Slot (&slots)[N], const std::unordered_set<std::string>& named) {
  for (size_t i = 0; i < N; ++i) {
    if (slots[i].in_use.load(std::memory_order_acquire) != 0 &&
        !named.contains(std::string(keyOf(slots[i].key)))) {
      slots[i].in_use.store(0, std::memory_order_release);
    }
  }
}

}  // namespace

void SharedSegment::releaseUnused(const std::vector<const config::Config*>& live) {
  std::unordered_set<std::string> pools;
  std::unordered_set<std::string> backends;
  for (const config::Config* config : live) {
    for (const config::Pool& pool : config->pools) {
      pools.insert(pool.name);
      for (const config::Backend& backend : pool.backends) {
        backends.insert(pool.name + "/" + backend.address_text);
      }
    }
  }
  releaseUnnamed(segment_->pools, pools);
  releaseUnnamed(segment_->backends, backends);
}

}  // namespace lb::shm
