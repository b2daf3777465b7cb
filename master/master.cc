#include "master/master.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "master/pidfile.h"
#include "master/signals.h"
#include "master/spawn.h"
#include "shared/config/load.h"
#include "shared/log/log.h"

namespace lb::master {
namespace {

unsigned long long ull(uint64_t v) {
  return static_cast<unsigned long long>(v);
}

}  // namespace

int runMaster(const Options& options) {
  Master master(options);
  if (!master.start()) {
    return 1;
  }
  return master.loop();
}

void Master::failStart(const std::string& message) {
  std::fprintf(stderr, "lb: %s\n", message.c_str());
  // [crit], not [emerg]: another instance may share this log, and its start-up went fine.
  if (log::fd() != STDERR_FILENO) {
    LB_CRIT("%s", message.c_str());
  }
  daemonizer_.startupFailed();
  cleanUp();
}

bool Master::start() {
  comm_ = processName(::getpid());
  auto loaded = config::loadConfig(options_.config_file);
  if (!loaded) {
    for (const auto& e : loaded.error()) {
      std::fprintf(stderr, "lb: %s\n", e.toString().c_str());
    }
    return false;
  }
  auto config = std::make_unique<config::Config>(std::move(*loaded));
  pid_path_ = config->pid;
  log::setRole("master");
  if (auto r = log::open(config->error_log.path, config->error_log.level); !r) {
    std::fprintf(stderr, "lb: %s\n", r.error().message.c_str());
    return false;
  }

  // Checked before binding: "already running" says more than "Address already in use".
  PidFileCheck check = checkPidFile(pid_path_, comm_);
  if (check.status == PidFileStatus::Running) {
    std::fprintf(stderr, "lb: already running: pid file \"%s\" names the live master %d\n",
                 pid_path_.c_str(), static_cast<int>(check.pid));
    return false;
  }
  if (check.status == PidFileStatus::Stale) {
    LB_NOTICE("overwriting stale pid file \"%s\": %s", pid_path_.c_str(), check.reason.c_str());
  }

  auto listeners = ListenerSet::open(*config, nullptr);
  if (!listeners) {
    failStart(listeners.error().message);
    return false;
  }
  if (config->daemon && !options_.foreground) {
    if (auto r = daemonizer_.detach(); !r) {
      failStart(r.error().message);
      return false;
    }
  }
  pid_ = ::getpid();
  // Handlers go in before the pid file appears: `lb -s` may signal the moment it exists.
  if (!installMasterSignals()) {
    failStart(std::string("installing signal handlers failed: ") + std::strerror(errno));
    return false;
  }
  if (auto r = writePidFile(pid_path_, pid_); !r) {
    failStart(r.error().message);
    return false;
  }
  pid_file_written_ = true;

  shm_name_ = shm::SharedSegment::nameFor(pid_path_);
  auto segment = shm::SharedSegment::create(shm_name_);
  if (!segment) {
    failStart(segment.error().message);
    return false;
  }
  segment_ = std::move(*segment);
  if (auto r = segment_->assignSlots(*config); !r) {
    failStart(r.error().message);
    return false;
  }
  generation_ = 1;
  shm::Header& header = segment_->get()->header;
  header.generation.store(generation_);
  header.master_pid.store(pid_);
  header.worker_count.store(static_cast<uint32_t>(config->worker_processes));

  const int workers = config->worker_processes;
  LB_NOTICE("lb version %s, master process started: configuration \"%s\", %d worker process%s",
            LB_VERSION, options_.config_file.c_str(), workers, workers == 1 ? "" : "es");
  const bool log_on_stderr = log::fd() == STDERR_FILENO;
  generations_.emplace(generation_, Generation{std::move(config), std::move(*listeners)});
  daemonizer_.startupDone(log_on_stderr);

  Clock::time_point now = Clock::now();
  for (int i = 0; i < workers; ++i) {
    spawn(i, generation_, now);
  }
  return true;
}

int Master::loop() {
  for (;;) {
    Clock::time_point now = Clock::now();
    table_.promote(now);
    if (stopping_ != Stopping::No && table_.live() == 0) {
      LB_NOTICE("all worker processes exited; master process exits");
      cleanUp();
      return 0;
    }
    if (stopping_ == Stopping::No && table_.live() == 0 && respawns_.empty()) {
      LB_CRIT("no worker process left to serve (every one failed fatally); master process exits");
      cleanUp();
      return 1;
    }

    timespec storage;
    waitForSignals(nextWakeup(now, &storage));
    SignalEvents ev = takeSignalEvents();
    now = Clock::now();

    // Fixed order: know who is gone before signalling anyone, stop before reloading.
    if (ev.reap) {
      reap(now);
    }
    if (ev.terminate) {
      beginTerminate(now);
    } else if (ev.quit) {
      beginQuit(now);
    }
    if (ev.reload) {
      if (stopping_ != Stopping::No) {
        LB_NOTICE("received SIGHUP while shutting down: reload ignored");
      } else {
        reload(now);
      }
    }
    if (ev.reopen) {
      reopenLogs();
    }
    runTimers(Clock::now());
    retireGenerations();
  }
}

void Master::reap(Clock::time_point now) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) {
      continue;
    }
    if (pid <= 0) {
      return;
    }
    onChildExit(pid, status, now);
  }
}

void Master::onChildExit(pid_t pid, int status, Clock::time_point now) {
  ProcessSlot* found = table_.find(pid);
  if (found == nullptr) {
    LB_INFO("unknown child process %d exited", static_cast<int>(pid));
    return;
  }
  const ProcessSlot slot = *found;
  table_.remove(pid);
  ExitVerdict verdict = judgeExit(slot, status, stopping_ != Stopping::No);
  log::write(verdict.level, "%s", verdict.message.c_str());
  if (!verdict.respawn || stopping_ != Stopping::No || slot.generation != generation_) {
    return;
  }
  auto delay = table_.onUnexpectedDeath(slot.index, now - slot.started);
  if (delay.count() == 0) {
    LB_NOTICE("respawning worker %d", slot.index);
    spawn(slot.index, slot.generation, now);
    return;
  }
  auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(now - slot.started);
  LB_WARN("worker %d died %lld ms after it started, again; respawning in %lld ms", slot.index,
          static_cast<long long>(lived.count()), static_cast<long long>(delay.count()));
  respawns_.push_back({slot.index, slot.generation, now + delay});
}

bool Master::spawn(int index, uint64_t generation, Clock::time_point now) {
  Generation& gen = generations_.at(generation);
  SpawnRequest request;
  request.config = gen.config.get();
  request.index = index;
  request.generation = generation;
  request.segment = segment_->get();
  request.listen_fds = gen.listeners.fds();
  for (const auto& [number, other] : generations_) {
    for (int fd : other.listeners.fds()) {
      if (!gen.listeners.contains(fd)) {
        request.close_fds.push_back(fd);
      }
    }
  }
  auto pid = spawnWorker(request);
  if (!pid) {
    auto delay = std::max<std::chrono::milliseconds>(
        table_.onUnexpectedDeath(index, Clock::duration::zero()), kBackoffInitial);
    LB_CRIT("cannot start worker %d: %s; retrying in %lld ms", index, pid.error().message.c_str(),
            static_cast<long long>(delay.count()));
    respawns_.push_back({index, generation, now + delay});
    return false;
  }
  table_.add(*pid, index, generation, now);
  LB_NOTICE("start worker process %d (worker %d, generation %llu)", static_cast<int>(*pid), index,
            ull(generation));
  return true;
}

void Master::signalWorker(ProcessSlot& slot, int signo, Clock::time_point kill_at) {
  if (::kill(slot.pid, signo) != 0 && errno != ESRCH) {
    LB_ERROR("kill(%d, %d) failed: %s", static_cast<int>(slot.pid), signo, std::strerror(errno));
  }
  slot.signal_sent = signo;
  slot.state = WorkerState::Draining;
  slot.kill_at = std::min(slot.kill_at, kill_at);
}

void Master::beginTerminate(Clock::time_point now) {
  if (stopping_ == Stopping::Terminate) {
    return;
  }
  LB_NOTICE("received SIGTERM or SIGINT: fast shutdown");
  stopping_ = Stopping::Terminate;
  respawns_.clear();
  for (auto& slot : table_.slots()) {
    signalWorker(slot, SIGTERM, now + kTerminateGrace);
  }
  for (auto& [number, gen] : generations_) {
    gen.listeners = ListenerSet();
  }
}

void Master::beginQuit(Clock::time_point now) {
  if (stopping_ != Stopping::No) {
    return;
  }
  LB_NOTICE("received SIGQUIT: graceful shutdown");
  stopping_ = Stopping::Quit;
  respawns_.clear();
  for (auto& slot : table_.slots()) {
    if (slot.signal_sent != 0) {
      continue;  // an old generation already draining keeps its own deadline
    }
    auto timeout = std::chrono::milliseconds(
        generations_.at(slot.generation).config->worker_shutdown_timeout_ms);
    signalWorker(slot, SIGQUIT, now + timeout + kDrainGrace);
  }
  // The workers close their copies too, so new connections are refused from here on (nginx).
  for (auto& [number, gen] : generations_) {
    gen.listeners = ListenerSet();
  }
}

void Master::reopenLogs() {
  LB_NOTICE("received SIGUSR1: reopening logs");
  log::reopen();
  for (const auto& slot : table_.slots()) {
    ::kill(slot.pid, SIGUSR1);
  }
}

void Master::runTimers(Clock::time_point now) {
  for (auto& slot : table_.slots()) {
    if (slot.kill_at <= now && slot.signal_sent != SIGKILL) {
      LB_WARN("worker process %d did not exit in time; sending SIGKILL",
              static_cast<int>(slot.pid));
      ::kill(slot.pid, SIGKILL);
      slot.signal_sent = SIGKILL;
      slot.kill_at = Clock::time_point::max();
    }
  }
  std::vector<PendingRespawn> due;
  std::erase_if(respawns_, [&](const PendingRespawn& r) {
    if (r.due > now) {
      return false;
    }
    due.push_back(r);
    return true;
  });
  for (const auto& r : due) {
    if (stopping_ == Stopping::No && r.generation == generation_) {
      LB_NOTICE("respawning worker %d", r.index);
      spawn(r.index, r.generation, now);
    }
  }
}

void Master::retireGenerations() {
  for (auto it = generations_.begin(); it != generations_.end();) {
    if (it->first != generation_ && table_.liveInGeneration(it->first) == 0) {
      LB_INFO("generation %llu retired: its last worker process exited", ull(it->first));
      it = generations_.erase(it);  // closes the sockets no newer generation took over
    } else {
      ++it;
    }
  }
}

const timespec* Master::nextWakeup(Clock::time_point now, timespec* storage) const {
  Clock::time_point next = table_.nextKillDeadline();
  for (const auto& r : respawns_) {
    next = std::min(next, r.due);
  }
  if (next == Clock::time_point::max()) {
    return nullptr;
  }
  auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(next - now);
  if (wait.count() < 0) {
    wait = std::chrono::nanoseconds(0);
  }
  storage->tv_sec = static_cast<time_t>(wait.count() / 1000000000);
  storage->tv_nsec = static_cast<long>(wait.count() % 1000000000);
  return storage;
}

void Master::cleanUp() {
  if (pid_file_written_) {
    removePidFile(pid_path_, pid_);
    pid_file_written_ = false;
  }
  if (segment_) {
    shm::SharedSegment::remove(shm_name_);
  }
}

}  // namespace lb::master
