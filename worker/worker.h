#pragma once

// A worker process's entry point, called in the child right after fork(). Creates its own libuv
// loop (libuv makes no promises across fork, so nothing of libuv exists in the master), accepts
// on the inherited listening sockets and proxies until told to stop.
//
// Signals from the master: QUIT = graceful stop (stop accepting, finish in-flight requests within
// worker_shutdown_timeout_ms), USR2 = drain for a reload (as QUIT, but idle keep-alive client
// connections go to the next generation over the handoff channel instead of being closed),
// TERM/INT = fast stop, USR1 = reopen log files.

#include <cstdint>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/layout.h"

namespace lb::worker {

// Exit code of a worker that cannot initialise: the master must not respawn it.
inline constexpr int kExitFatal = 2;

struct WorkerInit {
  const config::Config* config = nullptr;
  int index = 0;  // 0 .. worker_processes-1
  uint64_t generation = 1;
  shm::Segment* segment = nullptr;
  int slot = 0;                 // this process's shm::WorkerSlot, given by the master
  std::vector<int> listen_fds;  // parallel to config->listeners; owned by the master too
  // SOCK_SEQPACKET to the master (shared/proc/control.h): Ready goes here. -1: none (tests).
  int control_fd = -1;
  // SOCK_SEQPACKET pair per generation: this generation's idle connections leave through
  // handoff_out_fd when it drains for a reload; handoff_in_fd receives the previous
  // generation's. -1 when there is none.
  int handoff_out_fd = -1;
  int handoff_in_fd = -1;
};

// Runs the worker's loop; returns the process exit code (0 after a stop, kExitFatal when
// initialisation failed).
int runWorker(const WorkerInit& init);

// Runs the checker process of a generation (active health checks, worker/checker/); same
// contract as runWorker. `init.index` is -1, listen_fds are not used.
int runChecker(const WorkerInit& init);

// Tells the master over init.control_fd that this process is ready (shared/proc/control.h).
void reportReady(const WorkerInit& init);

}  // namespace lb::worker
