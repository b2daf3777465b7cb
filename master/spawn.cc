#include "master/spawn.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "master/signals.h"
#include "shared/log/log.h"
#include "worker/worker.h"

namespace lb::master {
namespace {

[[noreturn]] void runChild(const SpawnRequest& request, pid_t master) {
  // Signals stay blocked from the fork until here, so nothing the master's handlers would have
  // caught is lost: pending ones take the default action once unblocked.
  resetSignalsInChild();
  // A worker must not outlive a master killed with SIGKILL: it would keep the listening ports
  // and no new master could bind them. The getppid() check closes the race with a master that
  // died before prctl().
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != master) {
    ::_exit(0);
  }
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
  const pid_t master = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    return unexpected(Error{std::string("fork() failed: ") + std::strerror(errno)});
  }
  if (pid == 0) {
    runChild(request, master);
  }
  return pid;
}

}  // namespace lb::master
