#pragma once

// Turning the master into a daemon without losing its start-up errors. The original process
// waits until the daemon reports that start-up finished (pid file written, workers forked) and
// exits 0, or exits 1 if the daemon failed first. So `lb` returns only when it is really
// running, as systemd's Type=forking and init scripts expect, and errors after the fork still
// reach the terminal: the daemon keeps stderr until startupDone().

#include "shared/util/result.h"

namespace lb::master {

class Daemonizer {
 public:
  // fork(); the parent never returns (it exits with the daemon's start-up verdict). In the
  // child: setsid(), stdin and stdout to /dev/null. Fails (nothing forked) if a syscall fails.
  Result<void> detach();

  // Tells the waiting parent that start-up succeeded and, unless `keep_stderr` (the error log
  // is stderr), points stderr at /dev/null. A no-op when detach() was never called.
  void startupDone(bool keep_stderr);

  // Tells the waiting parent that start-up failed (it exits 1). Also a no-op without detach().
  void startupFailed();

 private:
  int notify_fd_ = -1;  // write end of the pipe the parent reads
};

// Points `fd` at /dev/null. Returns false if /dev/null cannot be opened.
bool redirectToDevNull(int fd);

}  // namespace lb::master
