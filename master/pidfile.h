#pragma once

// The pid file: one decimal pid and a newline. The master writes it after daemonizing and
// removes it on exit; `lb -s` reads it to find the master; a new master refuses to start while
// it names a live lb process and overwrites it when stale (a master killed with SIGKILL leaves
// one behind).

#include <sys/types.h>

#include <string>

#include "shared/util/result.h"

namespace lb::master {

// Reads the pid. Errors name the file: missing, unreadable, empty or not a positive number.
Result<pid_t> readPidFile(const std::string& path);

// Writes "<pid>\n" through a temporary file and rename(2), so a reader never sees a partial
// file. Errors name the file and the failing call.
Result<void> writePidFile(const std::string& path, pid_t pid);

// Removes the file if it still names `pid` (a successor's pid file is left alone). Best effort.
void removePidFile(const std::string& path, pid_t pid);

// The command name of a process (/proc/PID/comm, at most 15 characters); "" if it is gone.
std::string processName(pid_t pid);

// True if `pid` exists (kill(pid, 0) succeeds or fails with EPERM) and is not a zombie.
bool processAlive(pid_t pid);

enum class PidFileStatus {
  Absent,   // no pid file
  Stale,    // garbled, or names a dead process, ourselves, or a process that is not `comm`
  Running,  // names a live process called `comm`
};

struct PidFileCheck {
  PidFileStatus status = PidFileStatus::Absent;
  pid_t pid = 0;       // the pid read, 0 if none could be read
  std::string reason;  // for Stale: why, for the log ("process 123 is not running")
};

// Decides whether a master may take over `path`: Running means another master owns it. `comm`
// is the expected command name, normally processName(getpid()) so that a renamed binary still
// recognises its own kind.
PidFileCheck checkPidFile(const std::string& path, const std::string& comm);

}  // namespace lb::master
