#include "master/process_table.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "worker/worker.h"

namespace lb::master {
namespace {

using std::chrono::milliseconds;
using Level = config::LogLevel;

int exitedWith(int code) {
  return W_EXITCODE(code, 0);
}
int killedBy(int sig) {
  return W_EXITCODE(0, sig);
}

// The status waitpid() really reports for a child killed by SIGKILL.
int realKilledStatus() {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::raise(SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

ProcessSlot slot(pid_t pid, int index = 0) {
  ProcessSlot s;
  s.pid = pid;
  s.index = index;
  s.generation = 1;
  return s;
}

}  // namespace

TEST_CASE("process_table: back-off doubles from 100 ms up to 5 s", "[master]") {
  CHECK(respawnDelay(0) == milliseconds(0));
  CHECK(respawnDelay(1) == milliseconds(0));  // the first death is answered at once
  CHECK(respawnDelay(2) == milliseconds(100));
  CHECK(respawnDelay(3) == milliseconds(200));
  CHECK(respawnDelay(4) == milliseconds(400));
  CHECK(respawnDelay(5) == milliseconds(800));
  CHECK(respawnDelay(6) == milliseconds(1600));
  CHECK(respawnDelay(7) == milliseconds(3200));
  CHECK(respawnDelay(8) == milliseconds(5000));
  CHECK(respawnDelay(9) == milliseconds(5000));
  CHECK(respawnDelay(1000000) == milliseconds(5000));
}

TEST_CASE("process_table: quick deaths build a streak, a long life resets it", "[master]") {
  ProcessTable table;
  const auto quick = milliseconds(200);
  const auto long_life = milliseconds(1500);
  CHECK(table.onUnexpectedDeath(0, long_life) == milliseconds(0));
  CHECK(table.onUnexpectedDeath(0, quick) == milliseconds(100));
  CHECK(table.onUnexpectedDeath(0, quick) == milliseconds(200));
  CHECK(table.onUnexpectedDeath(1, quick) == milliseconds(0));  // per worker index
  CHECK(table.onUnexpectedDeath(0, quick) == milliseconds(400));
  CHECK(table.onUnexpectedDeath(0, kQuickDeath) == milliseconds(0));  // lived long enough
  CHECK(table.onUnexpectedDeath(0, quick) == milliseconds(100));
  table.resetBackoff();
  CHECK(table.onUnexpectedDeath(0, quick) == milliseconds(0));
}

TEST_CASE("process_table: slots are added, found, marked ready and removed", "[master]") {
  ProcessTable table;
  const auto t0 = Clock::now();
  table.add(100, 0, 1, t0);
  table.add(101, 1, 1, t0);
  table.add(200, 0, 2, t0 + milliseconds(500));
  CHECK(table.live() == 3);
  CHECK(table.liveInGeneration(1) == 2);
  CHECK(table.liveInGeneration(2) == 1);
  CHECK(table.liveInGeneration(3) == 0);
  REQUIRE(table.find(101) != nullptr);
  CHECK(table.find(101)->index == 1);
  CHECK(table.find(101)->state == WorkerState::Starting);
  CHECK(table.find(999) == nullptr);

  CHECK(table.markReady(100));
  CHECK_FALSE(table.markReady(100));  // only once
  CHECK_FALSE(table.markReady(999));
  CHECK(table.find(100)->state == WorkerState::Ready);
  CHECK(table.find(200)->state == WorkerState::Starting);
  CHECK(table.readyInGeneration(1) == 1);
  CHECK(table.readyInGeneration(2) == 0);
  table.find(101)->state = WorkerState::Draining;
  CHECK_FALSE(table.markReady(101));  // a draining worker never becomes Ready again

  CHECK(table.nextKillDeadline() == Clock::time_point::max());
  table.find(200)->kill_at = t0 + milliseconds(9000);
  table.find(100)->kill_at = t0 + milliseconds(4000);
  CHECK(table.nextKillDeadline() == t0 + milliseconds(4000));

  table.remove(100);
  table.remove(12345);  // unknown: no-op
  CHECK(table.live() == 2);
  CHECK(table.find(100) == nullptr);
  CHECK(table.nextKillDeadline() == t0 + milliseconds(9000));
  CHECK(std::string(workerStateName(WorkerState::Draining)) == "draining");
}

TEST_CASE("process_table: a worker killed by someone else is an error and respawned", "[master]") {
  CHECK(realKilledStatus() == killedBy(SIGKILL));
  ExitVerdict v = judgeExit(slot(42), realKilledStatus(), false);
  CHECK(v.message == "worker process 42 (worker 0, generation 1) exited on signal 9 (SIGKILL)");
  CHECK(v.level == Level::Error);  // never alert: e2e tests kill workers on purpose
  CHECK(v.respawn);

  ExitVerdict segv = judgeExit(slot(43), killedBy(SIGSEGV) | 0x80, false);
  CHECK(segv.message ==
        "worker process 43 (worker 0, generation 1) exited on signal 11 (SIGSEGV) (core dumped)");
  CHECK(segv.level == Level::Error);
  CHECK(segv.respawn);
}

TEST_CASE("process_table: an exit the master asked for is a notice", "[master]") {
  ProcessSlot s = slot(50);
  s.signal_sent = SIGQUIT;
  ExitVerdict v = judgeExit(s, exitedWith(0), false);
  CHECK(v.message == "worker process 50 (worker 0, generation 1) exited with code 0");
  CHECK(v.level == Level::Notice);
  CHECK_FALSE(v.respawn);

  s.signal_sent = SIGKILL;  // escalation after the drain deadline
  ExitVerdict killed = judgeExit(s, killedBy(SIGKILL), false);
  CHECK(killed.level == Level::Notice);
  CHECK_FALSE(killed.respawn);

  ExitVerdict during_stop = judgeExit(slot(51), exitedWith(0), true);
  CHECK(during_stop.level == Level::Notice);
  CHECK_FALSE(during_stop.respawn);

  ProcessSlot t = slot(52);
  t.signal_sent = SIGTERM;
  ExitVerdict failed_stop = judgeExit(t, exitedWith(1), false);
  CHECK(failed_stop.level == Level::Warn);
  CHECK_FALSE(failed_stop.respawn);
}

TEST_CASE("process_table: unexpected exits are respawned, fatal ones never", "[master]") {
  ExitVerdict crash = judgeExit(slot(60), exitedWith(1), false);
  CHECK(crash.message == "worker process 60 (worker 0, generation 1) exited with code 1");
  CHECK(crash.level == Level::Error);
  CHECK(crash.respawn);

  ExitVerdict clean = judgeExit(slot(61), exitedWith(0), false);
  CHECK(clean.level == Level::Warn);
  CHECK(clean.respawn);

  ExitVerdict fatal = judgeExit(slot(62, 3), exitedWith(worker::kExitFatal), false);
  CHECK(fatal.message ==
        "worker process 62 (worker 3, generation 1) exited with code 2 (fatal: worker 3 is not "
        "respawned)");
  CHECK(fatal.level == Level::Error);
  CHECK_FALSE(fatal.respawn);
}

}  // namespace lb::master
