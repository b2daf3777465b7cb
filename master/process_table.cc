#include "master/process_table.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstring>

#include "worker/worker.h"

namespace lb::master {

const char* workerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::Starting:
      return "starting";
    case WorkerState::Ready:
      return "ready";
    case WorkerState::Draining:
      return "draining";
    case WorkerState::Exited:
      return "exited";
  }
  return "?";
}

std::chrono::milliseconds respawnDelay(int quick_deaths) {
  if (quick_deaths <= 1) {
    return std::chrono::milliseconds(0);
  }
  auto delay = kBackoffInitial;
  for (int i = 2; i < quick_deaths && delay < kBackoffMax; ++i) {
    delay *= 2;
  }
  return std::min(delay, kBackoffMax);
}

ProcessSlot& ProcessTable::add(pid_t pid, int index, uint64_t generation, Clock::time_point now) {
  ProcessSlot slot;
  slot.pid = pid;
  slot.index = index;
  slot.generation = generation;
  slot.state = WorkerState::Starting;
  slot.started = now;
  slots_.push_back(slot);
  return slots_.back();
}

ProcessSlot* ProcessTable::find(pid_t pid) {
  for (auto& s : slots_) {
    if (s.pid == pid) {
      return &s;
    }
  }
  return nullptr;
}

void ProcessTable::remove(pid_t pid) {
  std::erase_if(slots_, [pid](const ProcessSlot& s) { return s.pid == pid; });
}

bool ProcessTable::markReady(pid_t pid) {
  ProcessSlot* s = find(pid);
  if (s == nullptr || s->state != WorkerState::Starting) {
    return false;
  }
  s->state = WorkerState::Ready;
  return true;
}

size_t ProcessTable::readyInGeneration(uint64_t generation) const {
  return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [&](const ProcessSlot& s) {
    return s.generation == generation && s.state == WorkerState::Ready;
  }));
}

size_t ProcessTable::liveInGeneration(uint64_t generation) const {
  return static_cast<size_t>(std::count_if(
      slots_.begin(), slots_.end(), [&](const auto& s) { return s.generation == generation; }));
}

Clock::time_point ProcessTable::nextKillDeadline() const {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& s : slots_) {
    next = std::min(next, s.kill_at);
  }
  return next;
}

std::chrono::milliseconds ProcessTable::onUnexpectedDeath(int index, Clock::duration lived) {
  int& streak = quick_deaths_[index];
  if (lived >= kQuickDeath) {
    streak = 0;
  }
  ++streak;
  return respawnDelay(streak);
}

ExitVerdict judgeExit(const ProcessSlot& slot, int status, bool stopping) {
  ExitVerdict v;
  const bool told_to_stop = stopping || slot.signal_sent != 0;
  std::string head = slot.index == kCheckerIndex
                         ? "checker process " + std::to_string(slot.pid) + " (generation " +
                               std::to_string(slot.generation) + ")"
                         : "worker process " + std::to_string(slot.pid) + " (worker " +
                               std::to_string(slot.index) + ", generation " +
                               std::to_string(slot.generation) + ")";
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    v.message = head + " exited on signal " + std::to_string(sig);
    if (const char* name = sigabbrev_np(sig)) {
      v.message += std::string(" (SIG") + name + ")";
    }
    if (WCOREDUMP(status)) {
      v.message += " (core dumped)";
    }
    // A worker dying of the very signal the master sent it (e.g. SIGKILL after the drain
    // deadline, or TERM before it installed its handlers) is a normal end.
    v.level = told_to_stop ? config::LogLevel::Notice : config::LogLevel::Error;
    v.respawn = !told_to_stop;
    return v;
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  v.message = head + " exited with code " + std::to_string(code);
  if (code == worker::kExitFatal) {
    // A worker that cannot initialise would fail again at once: respawning only spins.
    v.level = config::LogLevel::Error;
    v.message += slot.index == kCheckerIndex
                     ? std::string(" (fatal: the checker is not respawned)")
                     : " (fatal: worker " + std::to_string(slot.index) + " is not respawned)";
    v.respawn = false;
    return v;
  }
  if (told_to_stop) {
    v.level = code == 0 ? config::LogLevel::Notice : config::LogLevel::Warn;
    v.respawn = false;
    return v;
  }
  v.level = code == 0 ? config::LogLevel::Warn : config::LogLevel::Error;
  v.respawn = true;
  return v;
}

}  // namespace lb::master
