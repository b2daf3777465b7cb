#include "worker/access_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "shared/log/log.h"

namespace lb::worker {
namespace {

constexpr size_t kFlushAt = 32768;

// Request lines are client input: control bytes and quotes are escaped so a line stays one line.
void appendEscaped(std::string& out, std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
      char tmp[8];
      std::snprintf(tmp, sizeof(tmp), "\\x%02X", c);
      out += tmp;
    } else {
      out += ch;
    }
  }
}

}  // namespace

AccessLog::~AccessLog() {
  flush();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Result<void> AccessLog::open(const std::string& path) {
  int fd;
  if (path == "/dev/stdout" || path == "/dev/stderr") {
    // Share the inherited descriptor (and its file offset) with the master and the other
    // workers: reopening it would give each process an offset of its own in a redirected file.
    fd = ::dup(path == "/dev/stdout" ? STDOUT_FILENO : STDERR_FILENO);
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    return unexpected(Error{"cannot open access log \"" + path + "\": " + std::strerror(errno)});
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
  path_ = path;
  buf_.reserve(kFlushAt + 1024);
  return {};
}

void AccessLog::write(const AccessEntry& e) {
  time_t now = ::time(nullptr);
  if (now != time_sec_) {
    time_sec_ = now;
    struct tm tm;
    ::localtime_r(&now, &tm);
    std::strftime(time_str_, sizeof(time_str_), "%d/%b/%Y:%H:%M:%S %z", &tm);
  }
  char ip[64] = "-";
  if (e.peer_family != 0) {
    inet_ntop(e.peer_family, e.peer_addr, ip, sizeof(ip));
  }
  buf_ += ip;
  buf_ += " - - [";
  buf_ += time_str_;
  buf_ += "] \"";
  appendEscaped(buf_, e.method);
  buf_ += ' ';
  appendEscaped(buf_, e.url);
  buf_ += e.http_minor == 0    ? " HTTP/1.0\" "
          : e.http_minor == 20 ? " HTTP/2.0\" "
                               : " HTTP/1.1\" ";
  char tail[160];
  if (e.upstream.empty()) {
    std::snprintf(tail, sizeof(tail), "%d %llu \"-\" - %.3f -\n", e.status,
                  static_cast<unsigned long long>(e.bytes), e.request_ms / 1000.0);
    buf_ += tail;
  } else {
    std::snprintf(tail, sizeof(tail), "%d %llu \"", e.status,
                  static_cast<unsigned long long>(e.bytes));
    buf_ += tail;
    buf_ += e.upstream;
    if (e.upstream_status != 0) {
      std::snprintf(tail, sizeof(tail), "\" %d %.3f %.3f\n", e.upstream_status,
                    e.request_ms / 1000.0, e.upstream_ms / 1000.0);
    } else {
      std::snprintf(tail, sizeof(tail), "\" - %.3f %.3f\n", e.request_ms / 1000.0,
                    e.upstream_ms / 1000.0);
    }
    buf_ += tail;
  }
  if (buf_.size() >= kFlushAt) {
    flush();
  }
}

void AccessLog::flush() {
  if (buf_.empty() || fd_ < 0) {
    buf_.clear();
    return;
  }
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;  // a full disk loses log lines, never requests
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  buf_.clear();
}

void AccessLog::reopen() {
  flush();
  if (path_.empty() || path_.starts_with("/dev/std")) {
    return;
  }
  auto r = open(path_);
  if (!r) {
    LB_ERROR("%s", r.error().message.c_str());
  }
}

}  // namespace lb::worker
