#pragma once

// Child processes and /proc inspection for the e2e harness: running a command with captured
// output and a timeout, spawning a long-lived process, and finding a process's children and the
// process that holds a given TCP connection.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "e2e/harness/wait.h"

namespace lb::e2e {

struct CommandResult {
  int exit_code = -1;  // -1 if it did not exit normally
  int term_signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string describe() const;  // exit code, stdout and stderr, for failure messages
};

// Runs argv[0] (searched in PATH) with the harness's environment, `input` on stdin; kills it
// (SIGKILL) after `timeout`. Never throws.
CommandResult runCommand(const std::vector<std::string>& argv, milliseconds timeout = 30s,
                         const std::string& input = "");

// The path of program `name` found in PATH (spawnProcess does not search it); "/usr/bin/<name>"
// when it is nowhere.
std::string findProgram(const std::string& name);

// Starts argv[0] with stdin from /dev/null and stdout+stderr appended to `output_file`, with
// default signal dispositions and an empty signal mask. Returns the pid, or -1.
pid_t spawnProcess(const std::vector<std::string>& argv, const std::string& output_file);

// The direct children of `pid` (from /proc/<pid>/task/*/children, or a /proc scan).
std::vector<pid_t> childrenOf(pid_t pid);
// True while `pid` exists and is not a zombie.
bool processAlive(pid_t pid);
// Field 22 of /proc/<pid>/stat (start time in clock ticks), 0 if gone: tells a pid apart from a
// later process that reuses the number.
unsigned long long processStartTime(pid_t pid);

// For every established IPv4 TCP connection whose local port is `server_port`, keyed by the
// remote (client) port: which of `candidates` holds that socket (by socket inode in
// /proc/<pid>/fd). Connections held by none of them are absent.
std::map<int, pid_t> connectionOwners(int server_port, const std::vector<pid_t>& candidates);

}  // namespace lb::e2e
