#pragma once

// Forking one worker process. The child inherits the master's memory (the config of its
// generation, the shared-memory mapping, the listening sockets), drops what it must not hold and
// enters worker::runWorker(), never returning into the master's code.

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "shared/util/result.h"

namespace lb::master {

struct SpawnRequest {
  const config::Config* config = nullptr;  // the generation's config; stays valid in the child
  int index = 0;
  uint64_t generation = 0;
  shm::Segment* segment = nullptr;
  int shm_slot = 0;         // the child's shm::WorkerSlot
  bool checker = false;     // the generation's checker process instead of a worker
  int handoff_out_fd = -1;  // see worker::WorkerInit
  int handoff_in_fd = -1;
  std::vector<int> listen_fds;  // parallel to config->listeners
  // Descriptors the child closes at once: listening sockets of other generations, so that a
  // socket removed by a reload really closes when its last old worker exits, and the master's
  // ends of other children's channels.
  std::vector<int> close_fds;
};

struct SpawnedChild {
  pid_t pid = 0;
  int control_fd = -1;  // the master's end of the child's control channel (non-blocking)
};

// Creates the child's control channel (a SOCK_SEQPACKET socketpair) and forks. In the parent
// returns the pid and the master's end (or the error). In the child: resets signal handling,
// arranges for SIGTERM when the master dies, closes close_fds, sets the log role "worker N" and
// _exit()s with runWorker()'s code, so no destructor or atexit handler of the master runs twice.
Result<SpawnedChild> spawnWorker(const SpawnRequest& request);

}  // namespace lb::master
