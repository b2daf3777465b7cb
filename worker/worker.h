#pragma once

// A worker process's entry point, called in the child right after fork(). Creates its own libuv
// loop (libuv makes no promises across fork, so nothing of libuv exists in the master), accepts
// on the inherited listening sockets and proxies until told to stop.
//
// Signals from the master: QUIT = graceful (stop accepting, finish in-flight requests within
// worker_shutdown_timeout_ms), TERM/INT = fast stop, USR1 = reopen log files.

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
  std::vector<int> listen_fds;  // parallel to config->listeners; owned by the master too
};

// Runs the worker's loop; returns the process exit code (0 after a stop, kExitFatal when
// initialisation failed).
int runWorker(const WorkerInit& init);

}  // namespace lb::worker
