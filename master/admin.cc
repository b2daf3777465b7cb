#include "master/admin.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>

#include "master/control.h"
#include "shared/config/load.h"
#include "worker/health/resilience.h"

namespace lb::master {
namespace {

constexpr size_t kMaxListed = 20;  // known backends named in an "unknown backend" error

std::string_view keyOf(const shm::BackendSlot& slot) {
  return std::string_view(slot.key, ::strnlen(slot.key, shm::kKeySize));
}

// Keys of the slots in use, and where they are. The master writes a key before it sets in_use
// (release), so a key read after in_use (acquire) is whole.
std::map<std::string, int> slotsInUse(const shm::Segment& segment) {
  std::map<std::string, int> out;
  for (uint32_t i = 0; i < shm::kMaxBackends; ++i) {
    const shm::BackendSlot& s = segment.backends[i];
    if (s.in_use.load(std::memory_order_acquire) != 0) {
      out.emplace(std::string(keyOf(s)), static_cast<int>(i));
    }
  }
  return out;
}

std::string backendKey(const config::Pool& pool, const config::Backend& backend) {
  return pool.name + "/" + backend.address_text;
}

int configWeight(const config::Config* running, const std::string& key) {
  if (running == nullptr) {
    return -1;
  }
  for (const config::Pool& pool : running->pools) {
    for (const config::Backend& backend : pool.backends) {
      if (backendKey(pool, backend) == key) {
        return backend.weight;
      }
    }
  }
  return -1;
}

BackendRow rowOf(const shm::BackendSlot& s, std::string pool, std::string address,
                 int config_weight, uint32_t slow_start_ms, uint64_t now_ms) {
  BackendRow r;
  r.pool = std::move(pool);
  r.address = std::move(address);
  r.config_weight = config_weight;
  r.admin_weight = s.admin_weight.load(std::memory_order_relaxed);
  r.state = static_cast<shm::AdminState>(s.admin_state.load(std::memory_order_relaxed));
  r.health = static_cast<shm::HealthState>(s.health.load(std::memory_order_relaxed));
  const uint64_t changed = s.health_changed_ms.load(std::memory_order_relaxed);
  r.health_age_ms = changed != 0 && now_ms >= changed ? now_ms - changed : 0;
  const uint64_t until = s.passive_until_ms.load(std::memory_order_relaxed);
  r.passive_failed_ms = until > now_ms ? until - now_ms : 0;
  r.breaker = static_cast<shm::BreakerState>(s.breaker_state.load(std::memory_order_relaxed));
  r.active = s.active.load(std::memory_order_relaxed);
  r.requests = s.requests.load(std::memory_order_relaxed);
  r.failures = s.failures.load(std::memory_order_relaxed);
  r.connections = s.connections.load(std::memory_order_relaxed);
  r.bytes_sent = s.bytes_sent.load(std::memory_order_relaxed);
  r.bytes_received = s.bytes_received.load(std::memory_order_relaxed);
  r.ewma_us = s.ewma_us16.load(std::memory_order_relaxed) / 16;
  const int weight = r.admin_weight != 0 ? static_cast<int>(r.admin_weight) : config_weight;
  if (slow_start_ms != 0 && weight > 0) {
    r.ramped_weight = static_cast<int>(worker::slowStartWeight(
        static_cast<uint32_t>(weight), worker::slowStartSince(s, now_ms), now_ms, slow_start_ms));
  }
  return r;
}

std::string formatEwma(uint64_t us) {
  if (us == 0) {
    return "-";
  }
  char buf[32];
  if (us < 1000) {
    std::snprintf(buf, sizeof buf, "%lluus", static_cast<unsigned long long>(us));
  } else if (us < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(us) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(us) / 1'000'000.0);
  }
  return buf;
}

std::string weightCell(int weight) {
  return weight < 0 ? "-" : std::to_string(weight);
}

std::string jsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// "the backends of pool "p" are: p/a, p/b" or "known backends: ..." (at most kMaxListed).
std::string knownBackends(const std::map<std::string, int>& slots, const std::string& key) {
  if (slots.empty()) {
    return "the running instance has no backends";
  }
  const std::string pool = key.substr(0, key.find('/'));
  std::vector<std::string> same_pool;
  for (const auto& [k, slot] : slots) {
    if (k.starts_with(pool + "/")) {
      same_pool.push_back(k);
    }
  }
  std::vector<std::string> listed = same_pool;
  std::string out = "the backends of pool \"" + pool + "\" are: ";
  if (same_pool.empty()) {
    listed.clear();
    for (const auto& [k, slot] : slots) {
      listed.push_back(k);
    }
    out = "there is no pool \"" + pool + "\"; known backends: ";
  }
  for (size_t i = 0; i < listed.size() && i < kMaxListed; ++i) {
    out += (i == 0 ? "" : ", ") + listed[i];
  }
  if (listed.size() > kMaxListed) {
    out += " and " + std::to_string(listed.size() - kMaxListed) + " more (see lb backends)";
  }
  return out;
}

std::string weightText(uint32_t admin_weight, int config_weight) {
  if (admin_weight != 0) {
    return std::to_string(admin_weight);
  }
  return config_weight < 0 ? "the configured weight"
                           : std::to_string(config_weight) + " (configured)";
}

uint64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

// What the commands share: the config for its pid path, the instance, the running config.
struct Attached {
  RunningInstance instance;
  std::optional<config::Config> running;
};

Result<Attached> attach(const Options& options, std::FILE* err) {
  auto config = config::loadConfig(options.config_file);
  if (!config) {
    std::string text;
    for (const auto& e : config.error()) {
      text += (text.empty() ? "" : "\nlb: ") + e.toString();
    }
    return unexpected(Error{text + "\nlb: configuration file " + options.config_file +
                            " has errors: cannot find the running instance"});
  }
  auto instance = attachRunning(config->pid);
  if (!instance) {
    return unexpected(instance.error());
  }
  Attached out{std::move(*instance), std::nullopt};
  // Weights come from what runs, not from the file on disk, which may have been edited since.
  auto text = readConfigText(*out.instance.segment->get());
  if (text) {
    auto running = config::loadConfigFromString(*text, "running configuration");
    if (running) {
      out.running = std::move(*running);
    } else {
      std::fprintf(err,
                   "lb: warning: the running configuration does not load (%s): "
                   "configured weights are not shown\n",
                   running.error().empty() ? "?" : running.error()[0].toString().c_str());
    }
  } else {
    std::fprintf(err, "lb: warning: %s: configured weights are not shown\n",
                 text.error().message.c_str());
  }
  return out;
}

}  // namespace

int BackendRow::effectiveWeight() const {
  if (ramped_weight >= 0) {
    return ramped_weight;
  }
  return admin_weight != 0 ? static_cast<int>(admin_weight) : config_weight;
}

const char* adminStateName(shm::AdminState state) {
  switch (state) {
    case shm::AdminState::Enabled:
      return "enabled";
    case shm::AdminState::Draining:
      return "draining";
    case shm::AdminState::Disabled:
      return "disabled";
  }
  return "unknown";
}

const char* healthStateName(shm::HealthState health) {
  switch (health) {
    case shm::HealthState::Up:
      return "up";
    case shm::HealthState::Down:
      return "down";
  }
  return "unknown";
}

const char* breakerStateName(shm::BreakerState breaker) {
  switch (breaker) {
    case shm::BreakerState::Closed:
      return "closed";
    case shm::BreakerState::Open:
      return "open";
    case shm::BreakerState::HalfOpen:
      return "half-open";
  }
  return "unknown";
}

std::vector<BackendRow> backendRows(const shm::Segment& segment, const config::Config* running,
                                    uint64_t now_ms) {
  std::map<std::string, int> slots = slotsInUse(segment);
  std::vector<BackendRow> rows;
  if (running != nullptr) {
    for (const config::Pool& pool : running->pools) {
      for (const config::Backend& backend : pool.backends) {
        auto it = slots.find(backendKey(pool, backend));
        if (it == slots.end()) {
          continue;
        }
        rows.push_back(rowOf(segment.backends[it->second], pool.name, backend.address_text,
                             backend.weight, pool.slow_start_ms, now_ms));
        slots.erase(it);
      }
    }
  }
  // Slots only an older generation still uses (or every slot, without a configuration).
  for (const auto& [key, slot] : slots) {
    const size_t slash = key.find('/');
    std::string pool = key.substr(0, slash);
    std::string address = slash == std::string::npos ? "" : key.substr(slash + 1);
    rows.push_back(
        rowOf(segment.backends[slot], std::move(pool), std::move(address), -1, 0, now_ms));
  }
  return rows;
}

std::string formatBackendTable(const std::vector<BackendRow>& rows) {
  const std::vector<std::string> header = {"POOL",     "ADDRESS",  "WEIGHT",  "EFFECTIVE",
                                           "STATE",    "HEALTH",   "BREAKER", "ACTIVE",
                                           "REQUESTS", "FAILURES", "EWMA"};
  // Numbers are right-aligned, words left-aligned.
  const std::vector<bool> right = {false, false, true, true, false, false,
                                   false, true,  true, true, true};
  std::vector<std::vector<std::string>> cells = {header};
  for (const BackendRow& r : rows) {
    // Passive health holds an up backend out for a while: say so where health is read.
    const char* health = r.health == shm::HealthState::Up && r.passive_failed_ms > 0
                             ? "failed"
                             : healthStateName(r.health);
    cells.push_back(
        {r.pool, r.address, weightCell(r.config_weight), weightCell(r.effectiveWeight()),
         adminStateName(r.state), health, breakerStateName(r.breaker), std::to_string(r.active),
         std::to_string(r.requests), std::to_string(r.failures), formatEwma(r.ewma_us)});
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) {
      width[c] = std::max(width[c], line[c].size());
    }
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      const std::string pad(width[c] - line[c].size(), ' ');
      text += c == 0 ? "" : "  ";
      text += right[c] ? pad + line[c] : line[c] + pad;
    }
    while (!text.empty() && text.back() == ' ') {
      text.pop_back();
    }
    out += text + "\n";
  }
  return out;
}

std::string formatBackendJson(const std::vector<BackendRow>& rows, int master_pid,
                              uint64_t generation) {
  std::string out = "{\"master_pid\": " + std::to_string(master_pid) +
                    ", \"generation\": " + std::to_string(generation) + ", \"backends\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const BackendRow& r = rows[i];
    auto number = [](const char* name, auto value) {
      return std::string(", \"") + name + "\": " + std::to_string(value);
    };
    out += i == 0 ? "\n" : ",\n";
    out += "  {\"pool\": " + jsonString(r.pool) + ", \"address\": " + jsonString(r.address);
    out += ", \"in_config\": " + std::string(r.config_weight >= 0 ? "true" : "false");
    out += r.config_weight >= 0 ? number("weight", r.config_weight) : ", \"weight\": null";
    out += number("admin_weight", r.admin_weight);
    out += r.effectiveWeight() >= 0 ? number("effective_weight", r.effectiveWeight())
                                    : ", \"effective_weight\": null";
    out += ", \"state\": " + jsonString(adminStateName(r.state));
    out += ", \"health\": " + jsonString(healthStateName(r.health));
    out += number("health_age_ms", r.health_age_ms);
    out += number("passive_failed_ms", r.passive_failed_ms);
    out += ", \"breaker\": " + jsonString(breakerStateName(r.breaker));
    out += number("active", r.active) + number("requests", r.requests);
    out += number("failures", r.failures) + number("connections", r.connections);
    out += number("bytes_sent", r.bytes_sent) + number("bytes_received", r.bytes_received);
    out += number("ewma_us", r.ewma_us) + "}";
  }
  out += rows.empty() ? "]}\n" : "\n]}\n";
  return out;
}

Result<AdminChange> applyAdminCommand(shm::Segment& segment, const AdminCommand& command,
                                      const config::Config* running) {
  const std::map<std::string, int> slots = slotsInUse(segment);
  auto it = slots.find(command.backend);
  if (it == slots.end()) {
    return unexpected(Error{"unknown backend \"" + command.backend +
                            "\": " + knownBackends(slots, command.backend)});
  }
  shm::BackendSlot& s = segment.backends[it->second];
  AdminChange c;
  c.backend = command.backend;
  c.op = command.op;
  c.config_weight = configWeight(running, command.backend);
  c.active = s.active.load(std::memory_order_relaxed);
  c.health = static_cast<shm::HealthState>(s.health.load(std::memory_order_relaxed));
  if (command.op == AdminOp::Weight) {
    c.new_weight = static_cast<uint32_t>(command.weight);
    c.old_weight = s.admin_weight.exchange(c.new_weight, std::memory_order_acq_rel);
    c.old_state = c.new_state =
        static_cast<shm::AdminState>(s.admin_state.load(std::memory_order_relaxed));
  } else {
    c.new_state = command.op == AdminOp::Drain     ? shm::AdminState::Draining
                  : command.op == AdminOp::Disable ? shm::AdminState::Disabled
                                                   : shm::AdminState::Enabled;
    c.old_state = static_cast<shm::AdminState>(
        s.admin_state.exchange(static_cast<uint32_t>(c.new_state), std::memory_order_acq_rel));
    c.old_weight = c.new_weight = s.admin_weight.load(std::memory_order_relaxed);
  }
  // A reload may have released the slot and given it to another backend meanwhile: that one
  // must start as the master made it (enabled, configured weight), so our value goes again.
  if (s.in_use.load(std::memory_order_acquire) == 0 || keyOf(s) != command.backend) {
    if (command.op == AdminOp::Weight) {
      uint32_t expected = c.new_weight;
      s.admin_weight.compare_exchange_strong(expected, 0);
    } else {
      uint32_t expected = static_cast<uint32_t>(c.new_state);
      s.admin_state.compare_exchange_strong(expected,
                                            static_cast<uint32_t>(shm::AdminState::Enabled));
    }
    return unexpected(Error{"backend \"" + command.backend +
                            "\" was removed by a reload while it was changed; nothing changed"});
  }
  return c;
}

std::string describeChange(const AdminChange& c) {
  std::string out = "backend " + c.backend + ": ";
  if (c.op == AdminOp::Weight) {
    if (c.old_weight == c.new_weight) {
      out += "weight is already " + weightText(c.new_weight, c.config_weight);
    } else {
      out += "weight " + weightText(c.old_weight, c.config_weight) + " -> " +
             weightText(c.new_weight, c.config_weight);
    }
    if (c.new_state != shm::AdminState::Enabled) {
      out += std::string(" (it stays ") + adminStateName(c.new_state) + ")";
    }
    return out;
  }
  if (c.old_state == c.new_state) {
    return out + "already " + adminStateName(c.new_state);
  }
  out += std::string(adminStateName(c.old_state)) + " -> " + adminStateName(c.new_state);
  const std::string in_flight =
      std::to_string(c.active) + " connection" + (c.active == 1 ? "" : "s") + " in flight";
  switch (c.new_state) {
    case shm::AdminState::Draining:
      return out + " (no new requests; " + in_flight + " finish)";
    case shm::AdminState::Disabled:
      return out + " (no new requests; " + in_flight + ")";
    case shm::AdminState::Enabled:
      return out + (c.health == shm::HealthState::Down
                        ? " (health checks say it is down: it takes requests once they pass)"
                        : " (takes new requests again)");
  }
  return out;
}

int showBackends(const Options& options, std::FILE* out, std::FILE* err) {
  auto attached = attach(options, err);
  if (!attached) {
    std::fprintf(err, "lb: %s\n", attached.error().message.c_str());
    return 1;
  }
  const shm::Segment& segment = *attached->instance.segment->get();
  const config::Config* running = attached->running ? &*attached->running : nullptr;
  std::vector<BackendRow> rows = backendRows(segment, running, monotonicMs());
  std::string text = options.json ? formatBackendJson(rows, attached->instance.pid,
                                                      segment.header.generation.load())
                                  : formatBackendTable(rows);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  return 0;
}

int controlBackend(const Options& options, std::FILE* out, std::FILE* err) {
  auto attached = attach(options, err);
  if (!attached) {
    std::fprintf(err, "lb: %s\n", attached.error().message.c_str());
    return 1;
  }
  shm::Segment& segment = *attached->instance.segment->get();
  const config::Config* running = attached->running ? &*attached->running : nullptr;
  auto change = applyAdminCommand(segment, options.admin, running);
  if (!change) {
    std::fprintf(err, "lb: %s\n", change.error().message.c_str());
    return 1;
  }
  std::string line = describeChange(*change) + "\n";
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
  return 0;
}

}  // namespace lb::master
