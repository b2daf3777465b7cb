#include "master/pidfile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <string>

namespace lb::master {
namespace {

std::string sysError(const char* call, const std::string& path) {
  return std::string(call) + " \"" + path + "\" failed: " + std::strerror(errno);
}

// Reads at most `cap` bytes of a small file; errno set on failure.
bool readSmallFile(const std::string& path, std::string* out, size_t cap) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  out->clear();
  char buf[256];
  while (out->size() < cap) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    if (n == 0) {
      break;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool writeAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<pid_t> readPidFile(const std::string& path) {
  std::string text;
  if (!readSmallFile(path, &text, 64)) {
    return unexpected(Error{sysError("open()", path)});
  }
  size_t end = text.find_last_not_of(" \t\r\n");
  std::string_view digits(text.data(), end == std::string::npos ? 0 : end + 1);
  if (digits.empty()) {
    return unexpected(Error{"pid file \"" + path + "\" is empty"});
  }
  long long value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || value <= 0 ||
      value > 0x3fffffff) {
    return unexpected(Error{"pid file \"" + path + "\" does not hold a valid pid: \"" +
                            std::string(digits.substr(0, 32)) + "\""});
  }
  return static_cast<pid_t>(value);
}

Result<void> writePidFile(const std::string& path, pid_t pid) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return unexpected(Error{sysError("open()", tmp)});
  }
  std::string text = std::to_string(pid) + "\n";
  if (!writeAll(fd, text.data(), text.size())) {
    Error err{sysError("write()", tmp)};
    ::close(fd);
    ::unlink(tmp.c_str());
    return unexpected(std::move(err));
  }
  if (::close(fd) != 0) {
    Error err{sysError("close()", tmp)};
    ::unlink(tmp.c_str());
    return unexpected(std::move(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error err{sysError("rename()", path)};
    ::unlink(tmp.c_str());
    return unexpected(std::move(err));
  }
  return {};
}

void removePidFile(const std::string& path, pid_t pid) {
  auto current = readPidFile(path);
  if (current && *current == pid) {
    ::unlink(path.c_str());
  }
}

std::string processName(pid_t pid) {
  std::string comm;
  if (!readSmallFile("/proc/" + std::to_string(pid) + "/comm", &comm, 64)) {
    return "";
  }
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\r')) {
    comm.pop_back();
  }
  return comm;
}

bool processAlive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  if (::kill(pid, 0) != 0 && errno != EPERM) {
    return false;
  }
  // A zombie has exited; only its parent has not reaped it yet.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') {
      return false;
    }
  }
  return true;
}

PidFileCheck checkPidFile(const std::string& path, const std::string& comm) {
  PidFileCheck check;
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return check;
  }
  auto pid = readPidFile(path);
  if (!pid) {
    check.status = PidFileStatus::Stale;
    check.reason = pid.error().message;
    return check;
  }
  check.pid = *pid;
  const std::string which = "process " + std::to_string(*pid);
  if (*pid == ::getpid()) {
    // A container restarted with the same pid numbering: the file is from a previous life.
    check.status = PidFileStatus::Stale;
    check.reason = which + " is this process";
    return check;
  }
  if (!processAlive(*pid)) {
    check.status = PidFileStatus::Stale;
    check.reason = which + " is not running";
    return check;
  }
  std::string name = processName(*pid);
  if (!name.empty() && name != comm) {
    // The pid was reused by an unrelated program; taking over the file is safe.
    check.status = PidFileStatus::Stale;
    check.reason = which + " is \"" + name + "\", not \"" + comm + "\"";
    return check;
  }
  check.status = PidFileStatus::Running;
  return check;
}

}  // namespace lb::master
