// Master::reload: SIGHUP (nginx's sequence with HAProxy's READY rule).
//
//   1. Load and validate the new file; plan the change against the running one and log it.
//   2. Take over unchanged listening sockets, open new ones, give pools and backends their
//      shared-memory slots (kept for names that stay).
//   3. Fork generation N+1. Each process says Ready over its control channel once it accepts.
//   4. All Ready: generation N drains (USR2: it hands its idle connections to N+1 and finishes
//      what is in flight), the verdict "succeeded" goes to shared memory. A process of N+1 that
//      dies or is not Ready within reload_timeout_ms: N+1 is stopped, N never noticed, the
//      verdict is "failed" with the reason.
//
// Every fallible step before the fork leaves the running generation exactly as it was.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "master/master.h"
#include "master/reload_plan.h"
#include "shared/config/load.h"
#include "shared/log/log.h"
#include "shared/tls/server_context.h"

namespace lb::master {
namespace {

// Can the error log named by `path` be opened? Checked before anything changes, so that a bad
// path refuses the reload instead of leaving it half applied.
Result<void> probeLogPath(const std::string& path) {
  if (path == "stderr") {
    return {};
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return unexpected(
        Error{"cannot open error log \"" + path + "\": " + std::string(std::strerror(errno))});
  }
  ::close(fd);
  return {};
}

}  // namespace

bool Master::switchErrorLog(const config::Config& from, const config::Config& to) {
  if (to.error_log.path == from.error_log.path && to.error_log.level == from.error_log.level) {
    return false;
  }
  if (auto r = log::open(to.error_log.path, to.error_log.level); !r) {
    LB_ERROR("reload: %s; keeping the previous error log", r.error().message.c_str());
    return false;
  }
  return true;
}

void Master::beginVerdict() {
  shm::ReloadState& r = segment_->get()->reload;
  r.result.store(static_cast<uint32_t>(shm::ReloadResult::Pending));
  r.started.fetch_add(1);
}

void Master::finishVerdict(shm::ReloadResult result, const std::string& error) {
  shm::ReloadState& r = segment_->get()->reload;
  size_t n = std::min(error.size(), shm::kReloadErrorSize - 1);
  std::memcpy(r.error, error.data(), n);
  r.error[n] = '\0';
  r.generation.store(generation_);
  r.result.store(static_cast<uint32_t>(result));
  r.finished.store(r.started.load(), std::memory_order_release);
}

void Master::reload(Clock::time_point now) {
  LB_NOTICE("received SIGHUP: reloading configuration \"%s\"", options_.config_file.c_str());
  beginVerdict();
  auto refuse = [&](const std::string& why) {
    LB_ERROR("reload failed: %s", why.c_str());
    finishVerdict(shm::ReloadResult::Failed, why);
  };
  auto loaded = tls::loadConfig(options_.config_file);
  if (!loaded) {
    std::string all;
    for (const auto& e : loaded.error()) {
      LB_ERROR("reload failed: %s", e.toString().c_str());
      all += (all.empty() ? "" : "\n") + e.toString();
    }
    finishVerdict(shm::ReloadResult::Failed, all);
    return;
  }
  auto next = std::make_unique<config::Config>(std::move(*loaded));
  if (next->pid != pid_path_) {
    // The pid file path also names the shared-memory segment that clients attach to.
    LB_WARN("reload: \"pid\" changed to \"%s\": a restart is needed; keeping \"%s\"",
            next->pid.c_str(), pid_path_.c_str());
    next->pid = pid_path_;
  }
  ReloadPlan plan = planReload(*current().config, *next);
  LB_NOTICE("reload plan: %s", summarizePlan(plan).c_str());
  if (log::enabled(config::LogLevel::Info)) {
    std::string full = formatPlan(plan);
    size_t start = full.find('\n');
    while (start != std::string::npos && start + 1 < full.size()) {
      size_t end = full.find('\n', start + 1);
      LB_INFO("reload plan:%s", full.substr(start + 1, end - start - 1).c_str());
      start = end;
    }
  }

  auto listeners = ListenerSet::open(*next, &current().listeners);
  if (!listeners) {
    refuse(listeners.error().message);
    return;
  }
  if (auto r = probeLogPath(next->error_log.path); !r) {
    refuse(r.error().message);
    return;
  }
  // Last fallible step. Slots of names only older generations use stay theirs until those
  // generations are gone (releaseUnusedSlots).
  if (auto r = segment_->assignSlots(*next, /*release_unnamed=*/false); !r) {
    refuse(r.error().message);
    return;
  }
  const bool switched = switchErrorLog(*current().config, *next);

  // Numbers are never reused, not even those of refused generations: logs stay unambiguous.
  const uint64_t generation = ++last_generation_;
  const int workers = next->worker_processes;
  const size_t kept = listeners->reused();
  const size_t opened = listeners->opened();
  generations_.emplace(generation, Generation{std::move(next), std::move(*listeners)});
  pending_.generation = generation;
  pending_.previous = generation_;
  pending_.deadline =
      now + std::chrono::milliseconds(generations_.at(generation).config->reload_timeout_ms);
  pending_.error_log_switched = switched;
  LB_NOTICE(
      "reload: starting generation %llu (%zu listening sockets kept, %zu opened, %d "
      "workers)",
      static_cast<unsigned long long>(generation), kept, opened, workers);
  for (int i : processIndices(*generations_.at(generation).config)) {
    if (!spawn(i, generation, now)) {
      rollBack(
          "cannot start " +
              (i == kCheckerIndex ? std::string("the checker") : "worker " + std::to_string(i)) +
              " of generation " + std::to_string(generation),
          now);
      return;
    }
  }
  checkPendingReload(now);
}

void Master::checkPendingReload(Clock::time_point now) {
  if (pending_.generation == 0) {
    return;
  }
  const Generation& gen = generations_.at(pending_.generation);
  const size_t want = processIndices(*gen.config).size();
  if (table_.readyInGeneration(pending_.generation) >= want) {
    commitReload(now);
    return;
  }
  if (now >= pending_.deadline) {
    rollBack("generation " + std::to_string(pending_.generation) + ": " +
                 std::to_string(table_.readyInGeneration(pending_.generation)) + " of " +
                 std::to_string(want) + " worker processes ready after reload_timeout_ms (" +
                 std::to_string(gen.config->reload_timeout_ms) + " ms)",
             now);
  }
}

void Master::commitReload(Clock::time_point now) {
  const uint64_t generation = pending_.generation;
  const uint64_t old_generation = generation_;
  pending_ = PendingReload{};
  generation_ = generation;
  const config::Config& cfg = *current().config;
  shm::Header& header = segment_->get()->header;
  header.generation.store(generation);
  header.worker_count.store(static_cast<uint32_t>(cfg.worker_processes));
  publishConfig(cfg);
  resetUncheckedHealth(cfg);
  scheduleTicketRotation(now);
  // Sockets the new configuration dropped close now: the old workers close their copies as
  // they start draining, and a socket nobody accepts on would complete handshakes only to
  // reset them later. Connections already accepted are not affected.
  for (auto& [number, gen] : generations_) {
    if (number != generation) {
      gen.listeners.retainOnly(current().listeners);
    }
  }
  table_.resetBackoff();
  respawns_.clear();  // pending respawns belong to the generation being retired
  // USR2: hand idle keep-alive connections to the new generation (through the old one's
  // handoff pair, which the new workers read) and finish what is in flight.
  for (auto& slot : table_.slots()) {
    if (slot.generation > old_generation || slot.signal_sent != 0) {
      continue;
    }
    auto timeout = std::chrono::milliseconds(
        generations_.at(slot.generation).config->worker_shutdown_timeout_ms);
    signalWorker(slot, SIGUSR2, now + timeout + kDrainGrace);
  }
  LB_NOTICE("reload succeeded: generation %llu serves, generation %llu drains",
            static_cast<unsigned long long>(generation),
            static_cast<unsigned long long>(old_generation));
  finishVerdict(shm::ReloadResult::Succeeded, "");
  limitDrainingGenerations(now);
}

void Master::rollBack(const std::string& reason, Clock::time_point now) {
  const uint64_t generation = pending_.generation;
  const bool switched = pending_.error_log_switched;
  pending_ = PendingReload{};
  // QUIT, not TERM: workers that did start already accept, and connections they took finish
  // (a hung one is killed at the deadline).
  for (auto& slot : table_.slots()) {
    if (slot.generation == generation && slot.signal_sent == 0) {
      auto timeout =
          std::chrono::milliseconds(generations_.at(generation).config->worker_shutdown_timeout_ms);
      signalWorker(slot, SIGQUIT, now + timeout + kDrainGrace);
    }
  }
  if (switched) {
    const config::Config& cur = *current().config;
    if (auto r = log::open(cur.error_log.path, cur.error_log.level); !r) {
      LB_ERROR("rollback: %s", r.error().message.c_str());
    }
  }
  LB_ERROR("reload failed, rolled back: %s; generation %llu goes on serving", reason.c_str(),
           static_cast<unsigned long long>(generation_));
  finishVerdict(shm::ReloadResult::Failed, reason);
}

// Past max_draining_generations the oldest draining generations are stopped at once: a burst of
// reloads while long downloads run must not pile up old workers without bound.
void Master::limitDrainingGenerations(Clock::time_point now) {
  const uint32_t limit = current().config->max_draining_generations;
  std::vector<uint64_t> draining;
  for (const auto& [number, gen] : generations_) {
    if (number != generation_ && number != pending_.generation &&
        table_.liveInGeneration(number) > 0) {
      draining.push_back(number);
    }
  }
  for (size_t i = 0; i + limit < draining.size(); ++i) {
    LB_WARN("generation %llu stopped: more than max_draining_generations (%u) are draining",
            static_cast<unsigned long long>(draining[i]), limit);
    for (auto& slot : table_.slots()) {
      if (slot.generation == draining[i] && slot.signal_sent != SIGTERM &&
          slot.signal_sent != SIGKILL) {
        signalWorker(slot, SIGTERM, now + kTerminateGrace);
      }
    }
  }
}

void Master::releaseUnusedSlots() {
  std::vector<const config::Config*> live;
  for (const auto& [number, gen] : generations_) {
    live.push_back(gen.config.get());
  }
  segment_->releaseUnused(live);
}

}  // namespace lb::master
