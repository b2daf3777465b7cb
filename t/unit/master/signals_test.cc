#include "master/signals.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

namespace lb::master {
namespace {

// Runs `body` in a forked child (installing the master's handlers must not disturb the test
// process) and returns its exit code, or minus the signal that killed it; the child reports
// failures as distinct codes.
template <typename Body>
int inChild(Body body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);  // a hung wait ends the child instead of the whole test run
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) {
    return -WTERMSIG(status);
  }
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("signals: flags fold into one snapshot and are cleared by take", "[master]") {
  takeSignalEvents();
  setSignalFlagForTest(SIGHUP);
  setSignalFlagForTest(SIGHUP);
  setSignalFlagForTest(SIGCHLD);
  setSignalFlagForTest(SIGINT);
  SignalEvents ev = takeSignalEvents();
  CHECK(ev.reload);
  CHECK(ev.reap);
  CHECK(ev.terminate);  // INT is a fast stop like TERM
  CHECK_FALSE(ev.quit);
  CHECK_FALSE(ev.reopen);
  CHECK_FALSE(takeSignalEvents().any());

  setSignalFlagForTest(SIGQUIT);
  setSignalFlagForTest(SIGUSR1);
  setSignalFlagForTest(SIGTERM);
  ev = takeSignalEvents();
  CHECK(ev.quit);
  CHECK(ev.reopen);
  CHECK(ev.terminate);
}

TEST_CASE("signals: handled signals wait, blocked, until the master sleeps", "[master]") {
  int rc = inChild([] {
    if (!installMasterSignals()) {
      return 10;
    }
    ::raise(SIGHUP);  // blocked: stays pending, no flag yet
    ::raise(SIGUSR1);
    if (takeSignalEvents().any()) {
      return 11;
    }
    timespec ts{5, 0};
    waitForSignals(&ts);
    SignalEvents ev = takeSignalEvents();
    if (!ev.reload) {
      return 12;
    }
    // Delivery may be split over two waits; both must arrive.
    if (!ev.reopen) {
      waitForSignals(&ts);
      if (!takeSignalEvents().reopen) {
        return 13;
      }
    }
    // SIGPIPE is ignored: raising it must not kill the master.
    ::raise(SIGPIPE);
    // Nothing pending: a short timed wait returns with no event.
    timespec short_wait{0, 20 * 1000 * 1000};
    auto start = std::chrono::steady_clock::now();
    waitForSignals(&short_wait);
    if (takeSignalEvents().any()) {
      return 14;
    }
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(15)) {
      return 15;
    }
    return 0;
  });
  CHECK(rc == 0);
}

TEST_CASE("signals: a child starts with default handlers, blocked until it unblocks them",
          "[master]") {
  int rc = inChild([] {
    if (!installMasterSignals()) {
      return 10;
    }
    resetSignalsInChild();
    sigset_t mask;
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    for (int s : {SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) {
      if (!sigismember(&mask, s)) {
        return 20;
      }
      struct sigaction sa;
      sigaction(s, nullptr, &sa);
      if (sa.sa_handler != SIG_DFL) {
        return 21;
      }
    }
    ::raise(SIGTERM);  // pending while blocked ...
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // ... and the default action once unblocked
    return 22;
  });
  CHECK(rc == -SIGTERM);
}

}  // namespace lb::master
