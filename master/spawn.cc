#include "master/spawn.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "master/signals.h"
#include "shared/log/log.h"
#include "worker/worker.h"

namespace lb::master {
namespace {

[[noreturn]] void runChild(const SpawnRequest& request) {
  // Signals stay blocked from the fork until here, so nothing the master's handlers would have
  // caught is lost: pending ones take the default action once unblocked.
  resetSignalsInChild();
  for (int fd : request.close_fds) {
    ::close(fd);
  }
  log::setRole("worker " + std::to_string(request.index));

  worker::WorkerInit init;
  init.config = request.config;
  init.index = request.index;
  init.generation = request.generation;
  init.segment = request.segment;
  init.listen_fds = request.listen_fds;
  ::_exit(worker::runWorker(init));
}

}  // namespace

Result<pid_t> spawnWorker(const SpawnRequest& request) {
  pid_t pid = ::fork();
  if (pid < 0) {
    return unexpected(Error{std::string("fork() failed: ") + std::strerror(errno)});
  }
  if (pid == 0) {
    runChild(request);
  }
  return pid;
}

}  // namespace lb::master
