// Master side of a binary upgrade (nginx's sequence):
//
//   USR2   the old master renames its pid file to PID.oldbin and fork+execs the binary on disk
//          with its listening sockets (LB_INHERIT). The new master starts its own workers on
//          them; both binaries now accept.
//   WINCH  to the old master: its workers drain (USR2 to them), handing their idle keep-alive
//          connections to the new master's workers; the old master stays, for a roll back.
//   QUIT   to the old master: it exits; the upgrade is done.
//   HUP    to the old master instead: its workers come back (no config re-read), and the new
//          master can be stopped with QUIT: a roll back by hand.
//
// The new master is the old one's child, so when it dies (a bad binary, a failed start) the old
// master sees it at once: it takes its pid file back and, if its workers were withdrawn, starts
// them again. An automatic roll back.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "master/master.h"
#include "master/pidfile.h"
#include "master/signals.h"
#include "master/upgrade.h"
#include "shared/log/log.h"

namespace lb::master {

void Master::upgrade() {
  if (upgrade_pid_ != 0) {
    LB_WARN("received SIGUSR2: a binary upgrade is already under way (new master process %d)",
            static_cast<int>(upgrade_pid_));
    return;
  }
  if (pending_.generation != 0) {
    LB_WARN(
        "received SIGUSR2 while a reload is starting generation %llu: upgrade refused, try "
        "again",
        static_cast<unsigned long long>(pending_.generation));
    return;
  }
  if (exe_path_.empty()) {
    LB_ERROR("received SIGUSR2: the path of the lb binary is unknown: upgrade refused");
    return;
  }
  const std::string oldbin = pid_path_ + ".oldbin";
  if (::rename(pid_path_.c_str(), oldbin.c_str()) != 0) {
    LB_ERROR("binary upgrade refused: rename(\"%s\", \"%s\") failed: %s", pid_path_.c_str(),
             oldbin.c_str(), std::strerror(errno));
    return;
  }
  Inherited inherited;
  const ListenerSet& listeners = current().listeners;
  for (size_t i = 0; i < listeners.size(); ++i) {
    inherited.listeners.emplace_back(listeners.at(i).address(), listeners.at(i).fd());
  }
  inherited.handoff_rx = handoff_rx_;
  inherited.handoff_tx = handoff_tx_;
  const std::string env = encodeInherited(inherited);

  pid_t pid = ::fork();
  if (pid < 0) {
    LB_ERROR("binary upgrade refused: fork() failed: %s", std::strerror(errno));
    ::rename(oldbin.c_str(), pid_path_.c_str());
    return;
  }
  if (pid == 0) {
    resetSignalsInChild();
    for (const auto& [address, fd] : inherited.listeners) {
      ::fcntl(fd, F_SETFD, 0);
    }
    for (int fd : {inherited.handoff_rx, inherited.handoff_tx}) {
      if (fd >= 0) {
        ::fcntl(fd, F_SETFD, 0);
      }
    }
    ::setenv(kInheritEnv, env.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe_path_.c_str()));
    argv.push_back(const_cast<char*>("-c"));
    argv.push_back(const_cast<char*>(options_.config_file.c_str()));
    if (options_.foreground) {
      argv.push_back(const_cast<char*>("-F"));
    }
    argv.push_back(nullptr);
    ::execv(exe_path_.c_str(), argv.data());
    LB_ERROR("binary upgrade: execv(\"%s\") failed: %s", exe_path_.c_str(), std::strerror(errno));
    ::_exit(1);
  }
  pid_file_ = oldbin;
  upgrade_pid_ = pid;
  LB_NOTICE(
      "received SIGUSR2: binary upgrade: started new master process %d from \"%s\" "
      "(%zu listening sockets passed); this master's pid file is now \"%s\"",
      static_cast<int>(pid), exe_path_.c_str(), inherited.listeners.size(), oldbin.c_str());
}

void Master::withdrawWorkers(Clock::time_point now) {
  if (upgrade_pid_ == 0) {
    LB_WARN("received SIGWINCH without a binary upgrade under way: ignored (nothing would serve)");
    return;
  }
  if (pending_.generation != 0) {
    LB_WARN(
        "received SIGWINCH while a reload is starting generation %llu: ignored, send it "
        "again",
        static_cast<unsigned long long>(pending_.generation));
    return;
  }
  withdrawn_ = true;
  respawns_.clear();
  for (auto& slot : table_.slots()) {
    if (slot.signal_sent != 0) {
      continue;
    }
    auto timeout = std::chrono::milliseconds(
        generations_.at(slot.generation).config->worker_shutdown_timeout_ms);
    signalWorker(slot, SIGUSR2, now + timeout + kDrainGrace);
  }
  LB_NOTICE(
      "received SIGWINCH: worker processes drain and hand their idle connections to the "
      "new master process %d",
      static_cast<int>(upgrade_pid_));
}

void Master::restoreWorkers(Clock::time_point now) {
  withdrawn_ = false;
  const int workers = current().config->worker_processes;
  LB_NOTICE("starting %d worker process%s of generation %llu again", workers,
            workers == 1 ? "" : "es", static_cast<unsigned long long>(generation_));
  table_.resetBackoff();
  for (int i : processIndices(*current().config)) {
    spawn(i, generation_, now);
  }
}

void Master::onUpgradeExit(int status, Clock::time_point now) {
  const pid_t pid = upgrade_pid_;
  upgrade_pid_ = 0;
  std::string how =
      WIFSIGNALED(status)
          ? "on signal " + std::to_string(WTERMSIG(status))
          : "with code " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  log::write(clean ? config::LogLevel::Notice : config::LogLevel::Error,
             "binary upgrade: new master process %d exited %s; this master (%d) goes on serving",
             static_cast<int>(pid), how.c_str(), static_cast<int>(pid_));
  // A new master killed before its clean-up leaves its segment behind.
  shm::SharedSegment::remove(shm::SharedSegment::nameFor(pid_path_, pid));
  if (pid_file_ != pid_path_) {
    // Take the pid file back unless something live already owns it.
    PidFileCheck check = checkPidFile(pid_path_, comm_);
    if (check.status == PidFileStatus::Running && check.pid != pid_) {
      LB_WARN("binary upgrade: pid file \"%s\" names the live process %d; keeping \"%s\"",
              pid_path_.c_str(), static_cast<int>(check.pid), pid_file_.c_str());
    } else if (::rename(pid_file_.c_str(), pid_path_.c_str()) != 0) {
      LB_ERROR("binary upgrade: rename(\"%s\", \"%s\") failed: %s", pid_file_.c_str(),
               pid_path_.c_str(), std::strerror(errno));
    } else {
      pid_file_ = pid_path_;
    }
  }
  if (withdrawn_ && stopping_ == Stopping::No) {
    restoreWorkers(now);
  }
}

}  // namespace lb::master
