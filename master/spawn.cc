#include "master/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "master/signals.h"
#include "shared/log/log.h"
#include "worker/worker.h"

namespace lb::master {
namespace {

[[noreturn]] void runChild(const SpawnRequest& request, pid_t master, int control_fd) {
  // Signals stay blocked from the fork until the worker's loop handles them, so none that
  // arrives meanwhile (QUIT, USR2 at a reload's commit) takes its default action.
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
  log::setRole(request.checker ? std::string("checker")
                               : "worker " + std::to_string(request.index));

  worker::WorkerInit init;
  init.config = request.config;
  init.index = request.index;
  init.generation = request.generation;
  init.segment = request.segment;
  init.slot = request.shm_slot;
  init.listen_fds = request.listen_fds;
  init.control_fd = control_fd;
  init.handoff_out_fd = request.handoff_out_fd;
  init.handoff_in_fd = request.handoff_in_fd;
  ::_exit(request.checker ? worker::runChecker(init) : worker::runWorker(init));
}

}  // namespace

Result<SpawnedChild> spawnWorker(const SpawnRequest& request) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return unexpected(Error{std::string("socketpair() failed: ") + std::strerror(errno)});
  }
  const pid_t master = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return unexpected(Error{std::string("fork() failed: ") + std::strerror(err)});
  }
  if (pid == 0) {
    ::close(sv[0]);
    runChild(request, master, sv[1]);
  }
  ::close(sv[1]);
  ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  return SpawnedChild{pid, sv[0]};
}

}  // namespace lb::master
