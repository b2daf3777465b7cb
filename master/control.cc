#include "master/control.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "master/pidfile.h"
#include "master/reload_plan.h"
#include "shared/config/load.h"
#include "shared/shm/segment.h"
#include "shared/tls/server_context.h"

namespace lb::master {
namespace {

void printErrors(const config::ConfigErrors& errors, std::FILE* err) {
  for (const auto& e : errors) {
    std::fprintf(err, "lb: %s\n", e.toString().c_str());
  }
}

// The running instance's configuration text, read from its shared memory.
Result<std::string> runningConfigText(const std::string& pid_path) {
  auto running = attachRunning(pid_path);
  if (!running) {
    return unexpected(
        Error{"no running instance to compare with (" + running.error().message + ")"});
  }
  return readConfigText(*running->segment->get());
}

int printPlan(const config::Config& next, std::FILE* out, std::FILE* err) {
  auto text = runningConfigText(next.pid);
  if (!text) {
    std::fprintf(err, "lb: cannot plan the reload: %s\n", text.error().message.c_str());
    return 1;
  }
  auto running = config::loadConfigFromString(*text, "running configuration");
  if (!running) {
    std::fprintf(err, "lb: cannot plan the reload: the running configuration does not load:\n");
    printErrors(running.error(), err);
    return 1;
  }
  std::string plan = formatPlan(planReload(*running, next));
  std::fwrite(plan.data(), 1, plan.size(), out);
  std::fflush(out);
  return 0;
}

// After HUP: the master bumps reload.started when it takes the signal and sets finished to the
// same number with the verdict. Anything finished after `before` answers this request (HUPs
// that arrive while a reload is under way are folded into the next one).
int waitForVerdict(const shm::ReloadState& r, uint64_t before, pid_t master, uint32_t wait_ms,
                   std::FILE* err) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (r.finished.load(std::memory_order_acquire) <= before) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(err, "lb: reload: no verdict from the master within %u ms\n", wait_ms);
      return 1;
    }
    if (!processAlive(master)) {
      std::fprintf(err, "lb: reload: the master process %d exited\n", static_cast<int>(master));
      return 1;
    }
    ::usleep(10000);
  }
  // A reload right after ours may rewrite the verdict while it is copied: copy again then.
  const uint64_t seen = r.finished.load(std::memory_order_acquire);
  auto result = static_cast<shm::ReloadResult>(r.result.load(std::memory_order_acquire));
  unsigned long long generation = r.generation.load();
  std::string error(r.error, ::strnlen(r.error, shm::kReloadErrorSize));
  if (r.finished.load(std::memory_order_acquire) != seen) {
    std::fprintf(err, "lb: reload: another reload finished meanwhile; see the error log\n");
  }
  if (result == shm::ReloadResult::Succeeded) {
    std::fprintf(err, "lb: reload succeeded: generation %llu serves\n", generation);
    return 0;
  }
  std::fprintf(err, "lb: reload failed: %s\nlb: generation %llu goes on serving\n", error.c_str(),
               generation);
  return 1;
}

// Why attaching failed, when it is a matter of rights: who owns the segment, with which mode.
std::string permissionHint(const std::string& name) {
  const std::string path = "/dev/shm/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK | W_OK) == 0) {
    return "";
  }
  std::string owner = std::to_string(st.st_uid);
  if (const passwd* pw = ::getpwuid(st.st_uid); pw != nullptr) {
    owner += " (" + std::string(pw->pw_name) + ")";
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "; " + path + " belongs to uid " + owner + " with mode " + mode +
         ": run this as root or as that user";
}

}  // namespace

Result<RunningInstance> attachRunning(const std::string& pid_path) {
  if (::access(pid_path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return unexpected(Error{"pid file \"" + pid_path + "\" does not exist (is lb running?)"});
  }
  auto pid = readPidFile(pid_path);
  if (!pid) {
    return unexpected(pid.error());
  }
  if (!processAlive(*pid)) {
    return unexpected(Error{"no process with pid " + std::to_string(*pid) + " (stale pid file \"" +
                            pid_path + "\")"});
  }
  const std::string name = shm::SharedSegment::nameFor(pid_path, *pid);
  auto segment = shm::SharedSegment::attach(name);
  if (!segment) {
    return unexpected(Error{segment.error().message + permissionHint(name)});
  }
  return RunningInstance{*pid, std::move(*segment)};
}

Result<std::string> readConfigText(const shm::Segment& segment) {
  const shm::ConfigText& c = segment.config;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint64_t before = c.sequence.load(std::memory_order_acquire);
    if (before % 2 == 1) {
      ::usleep(1000);
      continue;
    }
    uint32_t n = std::min<uint32_t>(c.length.load(std::memory_order_relaxed),
                                    static_cast<uint32_t>(shm::kConfigTextSize));
    std::string text(c.text, n);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (c.sequence.load(std::memory_order_relaxed) == before) {
      if (n == 0) {
        return unexpected(Error{"the running instance has not published its configuration"});
      }
      if (c.truncated != 0) {
        return unexpected(Error{"the running configuration is too large to read back"});
      }
      return text;
    }
  }
  return unexpected(Error{"the running configuration kept changing while being read"});
}

int testConfig(const Options& options, bool dump, std::FILE* out, std::FILE* err) {
  // Certificates, keys and cipher strings are checked as a reload would check them.
  auto config = tls::loadConfig(options.config_file);
  if (!config) {
    printErrors(config.error(), err);
    std::fprintf(err, "lb: configuration file %s test failed\n", options.config_file.c_str());
    return 1;
  }
  std::fprintf(err, "lb: configuration file %s test is successful\n", options.config_file.c_str());
  std::fflush(err);
  if (options.plan) {
    return printPlan(*config, out, err);
  }
  if (dump) {
    std::string text = config::dumpConfig(*config);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
  }
  return 0;
}

int signalMaster(const Options& options, std::FILE* err) {
  const char* name = controlSignalName(options.signal);
  auto config = config::loadConfig(options.config_file);
  if (!config) {
    printErrors(config.error(), err);
    std::fprintf(err, "lb: signal \"%s\" not sent: configuration file %s has errors\n", name,
                 options.config_file.c_str());
    return 1;
  }
  const std::string& path = config->pid;
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: pid file \"%s\" does not exist (is lb running?)\n",
                 name, path.c_str());
    return 1;
  }
  auto pid = readPidFile(path);
  if (!pid) {
    std::fprintf(err, "lb: signal \"%s\" not sent: %s\n", name, pid.error().message.c_str());
    return 1;
  }
  if (!processAlive(*pid)) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: no process with pid %d (stale pid file \"%s\")\n",
                 name, static_cast<int>(*pid), path.c_str());
    return 1;
  }
  // A pid reused by an unrelated program after lb died must not receive our signal.
  std::string theirs = processName(*pid);
  std::string ours = processName(::getpid());
  if (!theirs.empty() && theirs != ours) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: pid %d in \"%s\" is \"%s\", not an lb master "
                 "(stale pid file)\n",
                 name, static_cast<int>(*pid), path.c_str(), theirs.c_str());
    return 1;
  }
  int signo = controlSignalNumber(options.signal);
  // For reload, the verdict counter is read before the signal goes, so the answer cannot be
  // missed however fast the master is.
  std::unique_ptr<shm::SharedSegment> segment;
  uint64_t before = 0;
  std::string unreadable;
  if (options.signal == ControlSignal::Reload) {
    auto attached = shm::SharedSegment::attachReloadState(shm::SharedSegment::nameFor(path, *pid));
    if (attached) {
      segment = std::move(*attached);
      before = segment->reloadState()->started.load(std::memory_order_acquire);
    } else {
      unreadable = attached.error().message;
    }
  }
  if (::kill(*pid, signo) != 0) {
    std::fprintf(err, "lb: signal \"%s\" not sent: kill(%d, SIG%s) failed: %s\n", name,
                 static_cast<int>(*pid), sigabbrev_np(signo), std::strerror(errno));
    return 1;
  }
  if (segment) {
    return waitForVerdict(*segment->reloadState(), before, *pid, config->reload_timeout_ms + 5000,
                          err);
  }
  if (!unreadable.empty()) {
    // The signal went, but whether the master took the new configuration is unknown: a script
    // that goes on as if it had must not.
    std::fprintf(err,
                 "lb: reload: signal sent to master %d, but its verdict cannot be read (%s); "
                 "its error log says whether the reload succeeded\n",
                 static_cast<int>(*pid), unreadable.c_str());
    return 1;
  }
  return 0;
}

}  // namespace lb::master
