#include "master/daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace lb::master {
namespace {

constexpr char kStartedOk = 'o';
constexpr char kStartFailed = 'f';

Error sysError(const char* call) {
  return Error{std::string(call) + " failed: " + std::strerror(errno)};
}

// The parent's side: block until the daemon reports, then leave with its verdict. A daemon that
// dies without a word (pipe closed) counts as a failure.
[[noreturn]] void waitForDaemon(int read_fd) {
  char verdict = kStartFailed;
  for (;;) {
    ssize_t n = ::read(read_fd, &verdict, 1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n != 1) {
      verdict = kStartFailed;
    }
    break;
  }
  ::_exit(verdict == kStartedOk ? 0 : 1);
}

void notify(int* fd, char verdict) {
  if (*fd < 0) {
    return;
  }
  ssize_t n;
  do {
    n = ::write(*fd, &verdict, 1);
  } while (n < 0 && errno == EINTR);
  ::close(*fd);
  *fd = -1;
}

}  // namespace

bool redirectToDevNull(int fd) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    return false;
  }
  bool ok = ::dup2(null_fd, fd) >= 0;
  ::close(null_fd);
  return ok;
}

Result<void> Daemonizer::detach() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return unexpected(sysError("pipe2()"));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    Error err = sysError("fork()");
    ::close(fds[0]);
    ::close(fds[1]);
    return unexpected(std::move(err));
  }
  if (pid > 0) {
    ::close(fds[1]);
    waitForDaemon(fds[0]);
  }
  ::close(fds[0]);
  notify_fd_ = fds[1];
  if (::setsid() < 0) {
    return unexpected(sysError("setsid()"));
  }
  if (!redirectToDevNull(STDIN_FILENO) || !redirectToDevNull(STDOUT_FILENO)) {
    return unexpected(sysError("open(\"/dev/null\")"));
  }
  return {};
}

void Daemonizer::startupDone(bool keep_stderr) {
  if (notify_fd_ < 0) {
    return;
  }
  if (!keep_stderr) {
    redirectToDevNull(STDERR_FILENO);
  }
  notify(&notify_fd_, kStartedOk);
}

void Daemonizer::startupFailed() {
  notify(&notify_fd_, kStartFailed);
}

}  // namespace lb::master
