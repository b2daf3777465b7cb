// Master::reload: SIGHUP. Basic form for now (the next issue adds the READY handshake and roll
// back): validate the new file, take over unchanged listening sockets, open new ones, assign
// shared-memory slots, start generation N+1 and send QUIT to generation N. Every step that can
// fail comes before the first visible change, so a refused reload leaves the running
// generation exactly as it was.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "master/master.h"
#include "shared/config/load.h"
#include "shared/log/log.h"

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

bool Master::switchErrorLog(const config::Config& next) {
  const config::Config& cur = *current().config;
  if (next.error_log.path == cur.error_log.path && next.error_log.level == cur.error_log.level) {
    return true;
  }
  if (auto r = log::open(next.error_log.path, next.error_log.level); !r) {
    LB_ERROR("reload: %s; keeping the previous error log", r.error().message.c_str());
    return false;
  }
  return true;
}

void Master::reload(Clock::time_point now) {
  LB_NOTICE("received SIGHUP: reloading configuration \"%s\"", options_.config_file.c_str());
  auto loaded = config::loadConfig(options_.config_file);
  if (!loaded) {
    for (const auto& e : loaded.error()) {
      LB_ERROR("reload failed: %s", e.toString().c_str());
    }
    return;
  }
  auto next = std::make_unique<config::Config>(std::move(*loaded));
  if (next->pid != pid_path_) {
    // The pid file path also names the shared-memory segment that clients attach to.
    LB_WARN("reload: \"pid\" changed to \"%s\": a restart is needed; keeping \"%s\"",
            next->pid.c_str(), pid_path_.c_str());
    next->pid = pid_path_;
  }

  auto listeners = ListenerSet::open(*next, &current().listeners);
  if (!listeners) {
    LB_ERROR("reload failed: %s", listeners.error().message.c_str());
    return;
  }
  if (auto r = probeLogPath(next->error_log.path); !r) {
    LB_ERROR("reload failed: %s", r.error().message.c_str());
    return;
  }
  // Last fallible step: on success it has already released the old generation's unused slots.
  if (auto r = segment_->assignSlots(*next); !r) {
    LB_ERROR("reload failed: %s", r.error().message.c_str());
    return;
  }
  switchErrorLog(*next);

  const uint64_t old_generation = generation_;
  const uint64_t generation = generation_ + 1;
  const int workers = next->worker_processes;
  const size_t kept = listeners->reused();
  const size_t opened = listeners->opened();
  generations_.emplace(generation, Generation{std::move(next), std::move(*listeners)});
  generation_ = generation;
  shm::Header& header = segment_->get()->header;
  header.generation.store(generation);
  header.worker_count.store(static_cast<uint32_t>(workers));
  table_.resetBackoff();
  respawns_.clear();  // pending respawns belong to the generation being retired
  LB_NOTICE("reload: generation %llu (%zu listening sockets kept, %zu opened, %d workers)",
            static_cast<unsigned long long>(generation), kept, opened, workers);

  for (int i = 0; i < workers; ++i) {
    spawn(i, generation, now);
  }
  for (auto& slot : table_.slots()) {
    if (slot.generation > old_generation || slot.signal_sent != 0) {
      continue;
    }
    auto timeout = std::chrono::milliseconds(
        generations_.at(slot.generation).config->worker_shutdown_timeout_ms);
    signalWorker(slot, SIGQUIT, now + timeout + kDrainGrace);
  }
}

}  // namespace lb::master
