#include "shared/log/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace lb::log {
namespace {

struct State {
  int fd = STDERR_FILENO;
  std::string path = "stderr";
  Level level = Level::Notice;
  std::string role;
};

State& state() {
  static State s;
  return s;
}

const char* const kNames[] = {"debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"};

Result<int> openPath(const std::string& path) {
  if (path == "stderr") {
    return STDERR_FILENO;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return unexpected(Error{"cannot open \"" + path + "\": " + std::strerror(errno)});
  }
  return fd;
}

}  // namespace

Result<void> open(const std::string& path, Level level) {
  auto fd = openPath(path);
  if (!fd) {
    return unexpected(fd.error());
  }
  State& s = state();
  if (s.fd != STDERR_FILENO && s.fd != *fd) {
    ::close(s.fd);
  }
  s.fd = *fd;
  s.path = path;
  s.level = level;
  return {};
}

bool reopen() {
  State& s = state();
  if (s.path == "stderr") {
    return true;
  }
  auto fd = openPath(s.path);
  if (!fd) {
    write(Level::Error, "reopen error log: %s", fd.error().message.c_str());
    return false;
  }
  ::dup2(*fd, s.fd);  // keep the descriptor number: children and cached copies stay valid
  ::close(*fd);
  return true;
}

void setRole(const std::string& role) {
  state().role = role;
}

int fd() {
  return state().fd;
}

bool enabled(Level level) {
  return level >= state().level;
}

const char* levelName(Level level) {
  return kNames[static_cast<int>(level)];
}

bool parseLevel(const std::string& name, Level* out) {
  for (int i = 0; i < 8; ++i) {
    if (name == kNames[i]) {
      *out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void vwrite(Level level, const char* fmt, va_list ap) {
  State& s = state();
  char line[2048];
  time_t now = ::time(nullptr);
  struct tm tm;
  ::localtime_r(&now, &tm);
  size_t n = std::strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
  int m = std::snprintf(line + n, sizeof(line) - n, " [%s] [%d] %s%s", levelName(level),
                        static_cast<int>(::getpid()), s.role.c_str(), s.role.empty() ? "" : ": ");
  if (m > 0) {
    n += static_cast<size_t>(m);
  }
  if (n < sizeof(line) - 1) {
    int k = std::vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (k > 0) {
      n = std::min(n + static_cast<size_t>(k), sizeof(line) - 2);
    }
  }
  line[n++] = '\n';
  ssize_t w = ::write(s.fd, line, n);
  (void)w;
}

void write(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwrite(level, fmt, ap);
  va_end(ap);
}

}  // namespace lb::log
