#pragma once

// The master's signal handling, nginx style: every handled signal stays blocked except while the
// master waits (sigsuspend/ppoll), and the handlers only set flags. All real work happens in the
// master loop after the wait returns, so no handler ever touches the log, the heap or the
// process table.
//
//   HUP  reload        QUIT  graceful stop     TERM, INT  fast stop
//   USR1 reopen logs   CHLD  reap children     PIPE       ignored
//   USR2 binary upgrade                        WINCH      withdraw the workers (upgrade)

#include <poll.h>
#include <signal.h>

#include <ctime>

namespace lb::master {

// One snapshot of what arrived since the last take(). Fields are counts folded to booleans.
struct SignalEvents {
  bool reap = false;
  bool terminate = false;
  bool quit = false;
  bool reload = false;
  bool reopen = false;
  bool upgrade = false;   // USR2: binary upgrade
  bool withdraw = false;  // WINCH: drain the workers, keep the master (during an upgrade)

  bool any() const { return reap || terminate || quit || reload || reopen || upgrade || withdraw; }
};

// Installs the handlers, ignores SIGPIPE and blocks every handled signal. Call once in the
// master before forking anything. Returns false (errno set) if a syscall failed.
bool installMasterSignals();

// Runs in a freshly forked child before anything else: restores default dispositions for the
// signals the master handles (SIGPIPE stays ignored: a worker writes to sockets). They stay
// blocked: the child unblocks them once it handles them (worker::runWorker does). Async-signal-
// safe.
void resetSignalsInChild();

// Atomically unblocks the handled signals and sleeps until one arrives, one of `fds` has an
// event (revents filled in) or `timeout` (if not null) passes. Master only.
void waitForSignals(const timespec* timeout, pollfd* fds = nullptr, size_t nfds = 0);

// Takes and clears the flags set by the handlers. Master only, with the signals blocked.
SignalEvents takeSignalEvents();

// For tests: raise the flags as if the signal had been delivered.
void setSignalFlagForTest(int signo);

}  // namespace lb::master
