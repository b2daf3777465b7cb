#pragma once

// The short-lived invocations of lb that do not start a master: `lb -t`, `lb -T` and
// `lb -s SIGNAL`. Each prints its outcome ("lb: ..." on stderr) and returns the exit code.
// Also how such an invocation finds the running instance's shared memory (admin.h uses it).

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>

#include "master/cli.h"
#include "shared/shm/segment.h"
#include "shared/util/result.h"

namespace lb::master {

// The master named by a pid file, attached to through its shared-memory segment.
struct RunningInstance {
  pid_t pid = 0;
  std::unique_ptr<shm::SharedSegment> segment;
};

// Reads the pid file at `pid_path`, checks that the process lives and attaches to its segment
// (read-write: Boost.Interprocess opens it O_RDWR, so this needs the rights of the segment's
// owner, or root). Errors are one line, e.g. "pid file \"/run/lb.pid\" does not exist (is lb
// running?)"; a refused attach says who owns the segment and with which mode.
Result<RunningInstance> attachRunning(const std::string& pid_path);

// The running configuration's text as the master published it (a seqlock, read until stable).
// Fails when the master has not published it or it was cut because it is too large.
Result<std::string> readConfigText(const shm::Segment& segment);

// -t / -T: loads and validates options.config_file. On success prints
// "lb: configuration file FILE test is successful" to `err` and, with `dump`, the effective
// configuration to `out`; returns 0. With options.plan, also prints to `out` what reloading the
// running instance (found by the file's pid path) to this file would change, or returns 1 when
// there is no running instance to compare with. Otherwise prints each error as "lb: file:line:
// message" to `err` and returns 1.
int testConfig(const Options& options, bool dump, std::FILE* out, std::FILE* err);

// -s: loads the config for its pid file path, reads the pid, checks that it names a live
// process with this program's command name and sends the signal (stop=TERM, quit=QUIT,
// reopen=USR1, reload=HUP). Returns 0 once the signal is sent, 1 with a message on `err`
// otherwise (config errors, missing or garbled pid file, dead or foreign pid). A reload waits
// for the master's verdict (up to the new file's reload_timeout_ms + 5 s), prints it and
// returns 1 if the reload failed.
int signalMaster(const Options& options, std::FILE* err);

}  // namespace lb::master
