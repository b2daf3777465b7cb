#pragma once

// The master process (nginx ngx_master_process_cycle): start-up, then one loop that sleeps in
// sigsuspend/ppoll with every handled signal blocked outside the wait, and acts on the flags the
// handlers set in a fixed order: reap, stop, quit, reload, reopen, timers. It never touches a
// request: it supervises workers, owns the listening sockets and the shared-memory segment.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "master/cli.h"
#include "master/daemon.h"
#include "master/listener_set.h"
#include "master/process_table.h"
#include "shared/config/model.h"
#include "shared/shm/segment.h"

namespace lb::master {

// Starts the master for `options` (action Run) and returns the process exit code: 1 if start-up
// failed (the reason is on stderr), 0 after a stop or quit. With daemonizing, the calling
// process does not return (it exits with the daemon's start-up verdict).
int runMaster(const Options& options);

class Master {
 public:
  explicit Master(const Options& options) : options_(options) {}
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  // Start-up: config, log, pid file check, sockets, daemon, signals, pid file, shm, workers.
  // Returns false after printing the reason to stderr (and the log).
  bool start();
  // The loop; returns the exit code.
  int loop();

 private:
  // Everything one configuration generation needs while any of its workers lives.
  struct Generation {
    std::unique_ptr<config::Config> config;
    ListenerSet listeners;
  };

  // A reload whose new generation has been forked and is not yet Ready everywhere.
  struct PendingReload {
    uint64_t generation = 0;  // 0: none
    uint64_t previous = 0;    // the generation serving before it
    Clock::time_point deadline;
    bool error_log_switched = false;
  };

  struct PendingRespawn {
    int index = 0;
    uint64_t generation = 0;
    Clock::time_point due;
  };

  enum class Stopping { No, Quit, Terminate };

  // master.cc
  void readControl(ProcessSlot& slot);
  void reap(Clock::time_point now);
  void onChildExit(pid_t pid, int status, Clock::time_point now);
  void beginTerminate(Clock::time_point now);
  void beginQuit(Clock::time_point now);
  void reopenLogs();
  void runTimers(Clock::time_point now);
  // TLS session-ticket keys (shm::TicketKeys) are rotated by runTimers() every
  // ticket_key_rotation_s of the serving configuration (the shortest of its TLS listeners);
  // this sets when next, never later than already set.
  void scheduleTicketRotation(Clock::time_point now);
  void retireGenerations();
  bool spawn(int index, uint64_t generation, Clock::time_point now);
  void signalWorker(ProcessSlot& slot, int signo, Clock::time_point kill_at);
  const timespec* nextWakeup(Clock::time_point now, timespec* storage) const;
  void cleanUp();
  void failStart(const std::string& message);
  int takeShmSlot();
  static std::vector<int> processIndices(const config::Config& config);
  void resetUncheckedHealth(const config::Config& config);
  void releaseShmSlot(int slot);
  void publishConfig(const config::Config& config);

  // reload.cc
  void reload(Clock::time_point now);
  bool switchErrorLog(const config::Config& from, const config::Config& to);
  void checkPendingReload(Clock::time_point now);
  void commitReload(Clock::time_point now);
  void rollBack(const std::string& reason, Clock::time_point now);
  void limitDrainingGenerations(Clock::time_point now);
  void beginVerdict();
  void finishVerdict(shm::ReloadResult result, const std::string& error);
  void releaseUnusedSlots();

  // upgrade_master.cc
  void upgrade();
  void withdrawWorkers(Clock::time_point now);
  void restoreWorkers(Clock::time_point now);
  void onUpgradeExit(int status, Clock::time_point now);

  Generation& current() { return generations_.at(generation_); }

  Options options_;
  Daemonizer daemonizer_;
  std::map<uint64_t, Generation> generations_;
  uint64_t generation_ = 0;       // serving
  uint64_t last_generation_ = 0;  // the highest number handed out
  ProcessTable table_;
  std::vector<PendingRespawn> respawns_;
  PendingReload pending_;
  bool reload_queued_ = false;  // a HUP arrived while a reload was pending
  std::vector<bool> shm_slots_used_;
  std::string exe_path_;   // the binary to exec on USR2, resolved at start
  std::string pid_file_;   // where our pid file is now (pid_path_, or .oldbin)
  pid_t upgrade_pid_ = 0;  // the new master of a binary upgrade, while it lives
  Clock::time_point next_ticket_rotation_ = Clock::time_point::max();
  bool withdrawn_ = false;  // WINCH: workers drained on purpose, none respawned
  // The handoff channel (a SOCK_SEQPACKET pair) for the master's whole life, inherited across a
  // binary upgrade: draining workers send idle client connections on tx, serving workers of
  // any generation receive on rx. One channel, so a connection that goes idle late in a long
  // drain still finds a reader, however many reloads came since.
  int handoff_tx_ = -1;
  int handoff_rx_ = -1;
  std::unique_ptr<shm::SharedSegment> segment_;
  std::string pid_path_;
  std::string shm_name_;
  pid_t pid_ = 0;
  bool pid_file_written_ = false;
  Stopping stopping_ = Stopping::No;
  std::string comm_;
};

}  // namespace lb::master
