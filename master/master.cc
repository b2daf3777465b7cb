#include "master/master.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

#include "master/pidfile.h"
#include "master/signals.h"
#include "master/spawn.h"
#include "master/upgrade.h"
#include "shared/config/load.h"
#include "shared/log/log.h"
#include "shared/proc/control.h"
#include "shared/tls/server_context.h"

namespace lb::master {
namespace {

unsigned long long ull(uint64_t v) {
  return static_cast<unsigned long long>(v);
}

std::string processLabel(int index) {
  return index == kCheckerIndex ? std::string("the checker") : "worker " + std::to_string(index);
}

Result<std::pair<int, int>> openHandoffChannel() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return unexpected(Error{std::string("socketpair() for the connection handoff failed: ") +
                            std::strerror(errno)});
  }
  return std::make_pair(sv[0], sv[1]);
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
  auto loaded = tls::loadConfig(options_.config_file);
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

  exe_path_ = executablePath();
  // A binary upgrade: the old master exec'd us with its sockets. Same addresses are taken over,
  // so no connection is refused while both binaries run.
  ListenerSet inherited;
  bool upgrading = false;
  if (const char* env = std::getenv(kInheritEnv)) {
    upgrading = true;
    auto parsed = parseInherited(env);
    ::unsetenv(kInheritEnv);
    if (!parsed) {
      failStart(std::string("bad ") + kInheritEnv + ": " + parsed.error().message);
      return false;
    }
    for (const auto& message : verifyInherited(*parsed)) {
      LB_WARN("%s", message.c_str());
    }
    inherited = ListenerSet::adopt(parsed->listeners);
    handoff_rx_ = parsed->handoff_rx;
    handoff_tx_ = parsed->handoff_tx;
    LB_NOTICE("binary upgrade: inherited %zu listening socket%s from the old master",
              inherited.size(), inherited.size() == 1 ? "" : "s");
  }
  auto listeners = ListenerSet::open(*config, upgrading ? &inherited : nullptr);
  inherited = ListenerSet();  // inherited sockets the config does not name close here
  if (!listeners) {
    failStart(listeners.error().message);
    return false;
  }
  // The new master of an upgrade stays the old one's child, which watches it for the roll back.
  if (config->daemon && !options_.foreground && !upgrading) {
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
  pid_file_ = pid_path_;

  if (int n = shm::SharedSegment::removeStale(pid_path_); n > 0) {
    LB_NOTICE("removed %d shared memory segment%s left by a master that no longer runs", n,
              n == 1 ? "" : "s");
  }
  shm_name_ = shm::SharedSegment::nameFor(pid_path_, pid_);
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
  last_generation_ = 1;
  shm::Header& header = segment_->get()->header;
  header.generation.store(generation_);
  header.master_pid.store(pid_);
  header.worker_count.store(static_cast<uint32_t>(config->worker_processes));

  const int workers = config->worker_processes;
  LB_NOTICE("lb version %s, master process started: configuration \"%s\", %d worker process%s",
            LB_VERSION, options_.config_file.c_str(), workers, workers == 1 ? "" : "es");
  const bool log_on_stderr = log::fd() == STDERR_FILENO;
  if (handoff_tx_ < 0) {
    auto handoff = openHandoffChannel();
    if (!handoff) {
      failStart(handoff.error().message);
      return false;
    }
    std::tie(handoff_tx_, handoff_rx_) = *handoff;
  }
  publishConfig(*config);
  generations_.emplace(generation_, Generation{std::move(config), std::move(*listeners)});
  daemonizer_.startupDone(log_on_stderr);

  Clock::time_point now = Clock::now();
  resetUncheckedHealth(*current().config);
  tls::rotateTicketKeys(segment_->get()->tickets);  // the first key
  scheduleTicketRotation(now);
  for (int i : processIndices(*current().config)) {
    spawn(i, generation_, now);
  }
  return true;
}

// The worker indices of a generation, and kCheckerIndex when some pool has health checks.
std::vector<int> Master::processIndices(const config::Config& config) {
  std::vector<int> out;
  for (int i = 0; i < config.worker_processes; ++i) {
    out.push_back(i);
  }
  for (const config::Pool& pool : config.pools) {
    if (pool.health_check.type != config::HealthCheck::Type::None) {
      out.push_back(kCheckerIndex);
      break;
    }
  }
  return out;
}

// A backend whose pool has no health check (any more) counts as up: a Down left by an earlier
// configuration's checks would otherwise keep it out for good.
void Master::resetUncheckedHealth(const config::Config& config) {
  for (const config::Pool& pool : config.pools) {
    if (pool.health_check.type != config::HealthCheck::Type::None) {
      continue;
    }
    for (const config::Backend& backend : pool.backends) {
      shm::BackendSlot& slot = segment_->get()->backends[backend.slot];
      slot.health.store(static_cast<uint32_t>(shm::HealthState::Up));
      slot.health_changed_ms.store(0);
    }
  }
}

int Master::loop() {
  for (;;) {
    Clock::time_point now = Clock::now();
    if (stopping_ != Stopping::No && table_.live() == 0) {
      LB_NOTICE("all worker processes exited; master process exits");
      cleanUp();
      return 0;
    }
    if (stopping_ == Stopping::No && table_.live() == 0 && respawns_.empty() && !withdrawn_) {
      LB_CRIT("no worker process left to serve (every one failed fatally); master process exits");
      cleanUp();
      return 1;
    }

    timespec storage;
    std::vector<pollfd> fds;
    std::vector<pid_t> owners;
    for (const auto& slot : table_.slots()) {
      if (slot.control_fd >= 0) {
        fds.push_back(pollfd{slot.control_fd, POLLIN, 0});
        owners.push_back(slot.pid);
      }
    }
    waitForSignals(nextWakeup(now, &storage), fds.data(), fds.size());
    SignalEvents ev = takeSignalEvents();
    now = Clock::now();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents != 0) {
        if (ProcessSlot* slot = table_.find(owners[i])) {
          readControl(*slot);
        }
      }
    }

    // Fixed order: know who is gone before signalling anyone, stop before reloading.
    if (ev.reap) {
      reap(now);
    }
    if (ev.terminate) {
      beginTerminate(now);
    } else if (ev.quit) {
      beginQuit(now);
    }
    checkPendingReload(now);
    if (ev.reload || (reload_queued_ && pending_.generation == 0)) {
      if (stopping_ != Stopping::No) {
        reload_queued_ = false;
        LB_NOTICE("received SIGHUP while shutting down: reload ignored");
        beginVerdict();
        finishVerdict(shm::ReloadResult::Failed, "lb is shutting down");
      } else if (withdrawn_) {
        // nginx: HUP after WINCH brings the old binary's workers back, config not re-read.
        reload_queued_ = false;
        beginVerdict();
        restoreWorkers(now);
        finishVerdict(shm::ReloadResult::Succeeded, "");
      } else if (pending_.generation != 0) {
        if (!reload_queued_) {
          LB_NOTICE("received SIGHUP while generation %llu is starting: reloading after it",
                    ull(pending_.generation));
        }
        reload_queued_ = true;
      } else {
        reload_queued_ = false;
        reload(now);
      }
    }
    if (ev.reopen) {
      reopenLogs();
    }
    if (ev.upgrade && stopping_ == Stopping::No) {
      upgrade();
    }
    if (ev.withdraw && stopping_ == Stopping::No) {
      withdrawWorkers(now);
    }
    runTimers(Clock::now());
    retireGenerations();
  }
}

// Messages from one child; EOF or an error closes the master's end (the exit is seen by reap).
void Master::readControl(ProcessSlot& slot) {
  for (;;) {
    proc::ControlMessage msg;
    ssize_t n = ::recv(slot.control_fd, &msg, sizeof(msg), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    }
    if (n <= 0) {
      ::close(slot.control_fd);
      slot.control_fd = -1;
      return;
    }
    if (n != static_cast<ssize_t>(sizeof(msg)) || msg.type != proc::ControlType::Ready ||
        msg.pid != slot.pid || msg.generation != slot.generation) {
      LB_ERROR("worker process %d sent a malformed control message (%zd bytes)",
               static_cast<int>(slot.pid), n);
      continue;
    }
    if (table_.markReady(slot.pid)) {
      LB_INFO("worker process %d (worker %d, generation %llu) is ready", static_cast<int>(slot.pid),
              slot.index, ull(slot.generation));
    }
  }
}

int Master::takeShmSlot() {
  if (shm_slots_used_.empty()) {
    shm_slots_used_.assign(shm::kMaxWorkers, false);
  }
  for (size_t i = 0; i < shm_slots_used_.size(); ++i) {
    if (!shm_slots_used_[i]) {
      shm_slots_used_[i] = true;
      auto& high = segment_->get()->header.worker_slots_high;
      if (high.load() < i + 1) {
        high.store(static_cast<uint32_t>(i + 1));
      }
      return static_cast<int>(i);
    }
  }
  return -1;
}

// A worker killed without cleaning up leaves its pid and connection count behind: both would
// mislead the acceptors' balancing. Its counters stay (totals).
void Master::releaseShmSlot(int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= shm_slots_used_.size()) {
    return;
  }
  shm::WorkerSlot& w = segment_->get()->workers[slot];
  w.pid.store(0);
  w.accepting.store(0);
  w.active_connections.store(0);
  w.generation.store(0);
  w.load_permille.store(0);
  w.churning.store(0);
  w.load_at_ms.store(0);
  shm_slots_used_[slot] = false;
}

// The running configuration, as `lb -T` would print it, for `lb -t --plan`.
void Master::publishConfig(const config::Config& config) {
  std::string text = config::dumpConfig(config);
  shm::ConfigText& c = segment_->get()->config;
  size_t n = std::min(text.size(), shm::kConfigTextSize);
  c.sequence.fetch_add(1, std::memory_order_acq_rel);  // odd: being written
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(c.text, text.data(), n);
  c.length.store(static_cast<uint32_t>(n), std::memory_order_relaxed);
  c.truncated = n < text.size() ? 1 : 0;
  c.sequence.fetch_add(1, std::memory_order_release);
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
  if (pid == upgrade_pid_) {
    onUpgradeExit(status, now);
    return;
  }
  ProcessSlot* found = table_.find(pid);
  if (found == nullptr) {
    LB_INFO("unknown child process %d exited", static_cast<int>(pid));
    return;
  }
  const ProcessSlot slot = *found;
  table_.remove(pid);
  if (slot.control_fd >= 0) {
    ::close(slot.control_fd);
  }
  releaseShmSlot(slot.shm_slot);
  ExitVerdict verdict = judgeExit(slot, status, stopping_ != Stopping::No);
  if (slot.generation == pending_.generation && slot.signal_sent == 0) {
    // Not replaced: a new generation that loses a process before it is ready is refused whole.
    log::write(config::LogLevel::Error, "%s", verdict.message.c_str());
    rollBack(verdict.message + " before the generation was ready", now);
    return;
  }
  log::write(verdict.level, "%s", verdict.message.c_str());
  if (!verdict.respawn || stopping_ != Stopping::No || slot.generation != generation_) {
    return;
  }
  auto delay = table_.onUnexpectedDeath(slot.index, now - slot.started);
  if (delay.count() == 0) {
    LB_NOTICE("respawning %s", processLabel(slot.index).c_str());
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
  request.handoff_out_fd = handoff_tx_;
  request.handoff_in_fd = handoff_rx_;
  for (const auto& [number, other] : generations_) {
    for (int fd : other.listeners.fds()) {
      if (!gen.listeners.contains(fd)) {
        request.close_fds.push_back(fd);
      }
    }
  }
  for (const auto& other : table_.slots()) {
    if (other.control_fd >= 0) {
      request.close_fds.push_back(other.control_fd);
    }
  }
  request.checker = index == kCheckerIndex;
  request.shm_slot = takeShmSlot();
  if (request.shm_slot < 0) {
    LB_CRIT("cannot start worker %d: all %u shared-memory worker slots are in use", index,
            shm::kMaxWorkers);
    return false;
  }
  auto pid = spawnWorker(request);
  if (!pid) {
    releaseShmSlot(request.shm_slot);
    auto delay = std::max<std::chrono::milliseconds>(
        table_.onUnexpectedDeath(index, Clock::duration::zero()), kBackoffInitial);
    LB_CRIT("cannot start worker %d: %s; retrying in %lld ms", index, pid.error().message.c_str(),
            static_cast<long long>(delay.count()));
    respawns_.push_back({index, generation, now + delay});
    return false;
  }
  ProcessSlot& slot = table_.add(pid->pid, index, generation, now);
  slot.shm_slot = request.shm_slot;
  slot.control_fd = pid->control_fd;
  if (index == kCheckerIndex) {
    LB_NOTICE("start checker process %d (generation %llu)", static_cast<int>(pid->pid),
              ull(generation));
  } else {
    LB_NOTICE("start worker process %d (worker %d, generation %llu)", static_cast<int>(pid->pid),
              index, ull(generation));
  }
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
  if (pending_.generation != 0) {
    finishVerdict(shm::ReloadResult::Failed, "lb is shutting down");
    pending_ = PendingReload{};
  }
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
  if (pending_.generation != 0) {
    finishVerdict(shm::ReloadResult::Failed, "lb is shutting down");
    pending_ = PendingReload{};
  }
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
      LB_NOTICE("respawning %s", processLabel(r.index).c_str());
      spawn(r.index, r.generation, now);
    }
  }
  if (now >= next_ticket_rotation_) {
    tls::rotateTicketKeys(segment_->get()->tickets);
    LB_INFO("TLS session-ticket keys rotated");
    next_ticket_rotation_ = Clock::time_point::max();
    scheduleTicketRotation(now);
  }
}

void Master::scheduleTicketRotation(Clock::time_point now) {
  for (const config::Listener& l : current().config->listeners) {
    if (l.tls.enabled() && l.tls.session_tickets) {
      // A reload never postpones a rotation that is due sooner.
      next_ticket_rotation_ =
          std::min(next_ticket_rotation_, now + std::chrono::seconds(l.tls.ticket_key_rotation_s));
    }
  }
}

void Master::retireGenerations() {
  bool retired = false;
  for (auto it = generations_.begin(); it != generations_.end();) {
    if (it->first != generation_ && it->first != pending_.generation &&
        table_.liveInGeneration(it->first) == 0) {
      LB_INFO("generation %llu retired: its last worker process exited", ull(it->first));
      it = generations_.erase(it);  // closes the sockets no newer generation took over
      retired = true;
    } else {
      ++it;
    }
  }
  if (retired) {
    releaseUnusedSlots();
  }
}

const timespec* Master::nextWakeup(Clock::time_point now, timespec* storage) const {
  Clock::time_point next = table_.nextKillDeadline();
  if (pending_.generation != 0) {
    next = std::min(next, pending_.deadline);
  }
  for (const auto& r : respawns_) {
    next = std::min(next, r.due);
  }
  next = std::min(next, next_ticket_rotation_);
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
    removePidFile(pid_file_, pid_);
    pid_file_written_ = false;
  }
  for (int* fd : {&handoff_tx_, &handoff_rx_}) {
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
  }
  if (segment_) {
    shm::SharedSegment::remove(shm_name_);
  }
}

}  // namespace lb::master
