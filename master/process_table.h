#pragma once

// The master's table of children (nginx ngx_processes[], HAProxy mworker_proc): one slot per
// live worker with its generation and state, the respawn back-off per worker index, and the
// verdict on a child's exit (what to log, at which level, whether to respawn). No syscalls here:
// the master loop does the kill/fork/waitpid, so all of this is unit-testable.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/config/model.h"

namespace lb::master {

using Clock = std::chrono::steady_clock;

enum class WorkerState {
  Starting,  // forked, has not reported Ready over its control channel yet
  Ready,     // accepting on every listener (it said so)
  Draining,  // the master sent it QUIT or TERM; it must not be respawned
  Exited,    // reaped; the slot is removed right after
};

const char* workerStateName(WorkerState state);

// ProcessSlot::index of a generation's checker process.
inline constexpr int kCheckerIndex = -1;

struct ProcessSlot {
  pid_t pid = 0;
  int index = 0;  // 0 .. worker_processes-1 of its generation, or kCheckerIndex
  uint64_t generation = 0;
  WorkerState state = WorkerState::Starting;
  Clock::time_point started;
  int signal_sent = 0;  // the last stop signal the master sent (SIGQUIT/SIGTERM/SIGKILL), or 0
  Clock::time_point kill_at = Clock::time_point::max();  // SIGKILL if still alive then
  int shm_slot = -1;                                     // its shm::WorkerSlot
  int control_fd = -1;  // the master's end of its control channel; the master closes it
};

// A worker that lives less than this after its start counts as crashing at start-up (back-off),
// and one that lives longer counts as serving (Ready).
inline constexpr std::chrono::milliseconds kQuickDeath{1000};
inline constexpr std::chrono::milliseconds kBackoffInitial{100};
inline constexpr std::chrono::milliseconds kBackoffMax{5000};
// A fast stop gives workers this long to close their connections before SIGKILL.
inline constexpr std::chrono::seconds kTerminateGrace{3};
// A graceful stop (or an old generation's drain) may outlive worker_shutdown_timeout_ms by this
// much before SIGKILL: the worker enforces its own timeout; this only catches a stuck one.
inline constexpr std::chrono::seconds kDrainGrace{5};

// The delay before respawning a worker whose `quick_deaths`-th consecutive death came within
// kQuickDeath of its start. The first death is answered at once (0); later ones wait 100 ms,
// 200 ms, 400 ms, ... up to 5 s.
std::chrono::milliseconds respawnDelay(int quick_deaths);

class ProcessTable {
 public:
  // Records a freshly forked worker in state Starting.
  ProcessSlot& add(pid_t pid, int index, uint64_t generation, Clock::time_point now);
  // The live slot for `pid`, or null.
  ProcessSlot* find(pid_t pid);
  // Removes the slot for `pid` (after it was reaped). No-op for an unknown pid.
  void remove(pid_t pid);

  // The worker said Ready. Returns false for an unknown pid or one that is no longer Starting.
  bool markReady(pid_t pid);
  // How many workers of `generation` are Ready.
  size_t readyInGeneration(uint64_t generation) const;

  size_t live() const { return slots_.size(); }
  size_t liveInGeneration(uint64_t generation) const;
  std::vector<ProcessSlot>& slots() { return slots_; }
  const std::vector<ProcessSlot>& slots() const { return slots_; }
  // The earliest kill_at of any slot (time_point::max() if none).
  Clock::time_point nextKillDeadline() const;

  // Back-off bookkeeping per worker index of the current generation. Returns the delay before
  // the respawn: a worker that lived kQuickDeath or longer resets its streak.
  std::chrono::milliseconds onUnexpectedDeath(int index, Clock::duration lived);
  // A new generation starts every index with a clean record.
  void resetBackoff() { quick_deaths_.clear(); }

 private:
  std::vector<ProcessSlot> slots_;
  std::map<int, int> quick_deaths_;
};

// What the master does about a reaped child.
struct ExitVerdict {
  config::LogLevel level = config::LogLevel::Notice;
  std::string message;   // "worker process 123 exited with code 0", "... on signal 9"
  bool respawn = false;  // replace it (subject to back-off)
};

// Judges one exit. `status` is the waitpid() status; `stopping` is true while the master itself
// is shutting down. A worker the master had told to stop (signal_sent != 0) or any worker during
// shutdown exits normally: [notice]. Otherwise it is unexpected and respawned: a signal or a
// non-zero code is an [error], a clean exit a [warn]; worker::kExitFatal (2) is an [error] and
// is never respawned. Never [alert]: a worker killed by an operator is routine for a supervisor.
ExitVerdict judgeExit(const ProcessSlot& slot, int status, bool stopping);

}  // namespace lb::master
