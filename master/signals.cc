#include "master/signals.h"

#include <poll.h>

#include <cerrno>

namespace lb::master {
namespace {

// The only state a handler writes. volatile sig_atomic_t is the one type C++ promises is safe
// to store from a handler; the master reads them with the signals blocked.
volatile sig_atomic_t g_reap = 0;
volatile sig_atomic_t g_terminate = 0;
volatile sig_atomic_t g_quit = 0;
volatile sig_atomic_t g_reload = 0;
volatile sig_atomic_t g_reopen = 0;
volatile sig_atomic_t g_upgrade = 0;
volatile sig_atomic_t g_withdraw = 0;

constexpr int kHandled[] = {SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};

void onSignal(int signo) {
  switch (signo) {
    case SIGCHLD:
      g_reap = 1;
      break;
    case SIGTERM:
    case SIGINT:
      g_terminate = 1;
      break;
    case SIGQUIT:
      g_quit = 1;
      break;
    case SIGHUP:
      g_reload = 1;
      break;
    case SIGUSR1:
      g_reopen = 1;
      break;
    case SIGUSR2:
      g_upgrade = 1;
      break;
    case SIGWINCH:
      g_withdraw = 1;
      break;
    default:
      break;
  }
}

sigset_t handledSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kHandled) {
    sigaddset(&set, s);
  }
  return set;
}

// The mask to wait with: the one the master had before it blocked the handled signals.
sigset_t g_wait_mask;

}  // namespace

bool installMasterSignals() {
  struct sigaction sa = {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: nothing in the master blocks in a syscall it would want restarted, and the
  // wait must return on every signal.
  for (int s : kHandled) {
    if (::sigaction(s, &sa, nullptr) != 0) {
      return false;
    }
  }
  struct sigaction ign = {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  if (::sigaction(SIGPIPE, &ign, nullptr) != 0) {
    return false;
  }
  sigset_t set = handledSet();
  if (::sigprocmask(SIG_BLOCK, &set, &g_wait_mask) != 0) {
    return false;
  }
  for (int s : kHandled) {
    sigdelset(&g_wait_mask, s);
  }
  return true;
}

void resetSignalsInChild() {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s : kHandled) {
    ::sigaction(s, &sa, nullptr);
  }
  // The handled signals stay blocked: a worker unblocks them once its own handlers are in
  // place (before that, USR2 or QUIT would take their default action and kill or dump it), and
  // an exec'd new master installs its handlers before it waits with them unblocked.
}

void waitForSignals(const timespec* timeout, pollfd* fds, size_t nfds) {
  if (timeout == nullptr && nfds == 0) {
    ::sigsuspend(&g_wait_mask);
    return;
  }
  // ppoll returns EINTR after a handler ran, like sigsuspend, and also wakes for the children's
  // control channels.
  if (::ppoll(fds, static_cast<nfds_t>(nfds), timeout, &g_wait_mask) <= 0) {
    for (size_t i = 0; i < nfds; ++i) {
      fds[i].revents = 0;
    }
  }
}

SignalEvents takeSignalEvents() {
  SignalEvents ev;
  ev.reap = g_reap != 0;
  ev.terminate = g_terminate != 0;
  ev.quit = g_quit != 0;
  ev.reload = g_reload != 0;
  ev.reopen = g_reopen != 0;
  ev.upgrade = g_upgrade != 0;
  ev.withdraw = g_withdraw != 0;
  g_reap = 0;
  g_terminate = 0;
  g_quit = 0;
  g_reload = 0;
  g_reopen = 0;
  g_upgrade = 0;
  g_withdraw = 0;
  return ev;
}

void setSignalFlagForTest(int signo) {
  onSignal(signo);
}

}  // namespace lb::master
