#include "e2e/harness/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

namespace lb::e2e {

namespace {

int pollTimeout(Deadline deadline) {
  auto ms = remaining(deadline).count();
  return static_cast<int>(std::min<long long>(ms, 1000));
}

bool fillAddress(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *v4;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *v6;
    return true;
  }
  return false;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset(o.release());
  }
  return *this;
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

int freePort() {
  static std::mutex mutex;
  static std::set<int> given;
  std::lock_guard<std::mutex> lock(mutex);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port = 0;
    UniqueFd fd = listenTcp(0, 1, &port);
    if (fd.valid() && given.insert(port).second) {
      return port;
    }
  }
  return -1;
}

UniqueFd listenTcp(int port, int backlog, int* bound) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return {};
  }
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), backlog) != 0) {
    return {};
  }
  if (bound != nullptr) {
    *bound = localPort(fd.get());
  }
  return fd;
}

UniqueFd connectTcp(int port, milliseconds timeout, const std::string& host) {
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!fillAddress(host, port, &ss, &len)) {
    return {};
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return {};
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      return {};
    }
    pollfd p{fd.get(), POLLOUT, 0};
    Deadline end = deadlineIn(timeout);
    int n = 0;
    do {
      n = ::poll(&p, 1, pollTimeout(end));
    } while ((n == 0 && Clock::now() < end) || (n < 0 && errno == EINTR));
    int err = 0;
    socklen_t elen = sizeof err;
    if (n <= 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      return {};
    }
  }
  return fd;
}

int localPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return -1;
  }
  if (ss.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

void setLingerZero(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

const char* ioStatusName(IoStatus s) {
  switch (s) {
    case IoStatus::Ok:
      return "ok";
    case IoStatus::Timeout:
      return "timeout";
    case IoStatus::Closed:
      return "closed by peer";
    case IoStatus::Reset:
      return "reset by peer";
    case IoStatus::Error:
      return "error";
    case IoStatus::Stopped:
      return "stopped";
  }
  return "?";
}

Stream::Stream(UniqueFd fd, int stop_fd) : fd_(std::move(fd)), stop_fd_(stop_fd) {
  if (fd_.valid()) {
    int flags = ::fcntl(fd_.get(), F_GETFL);
    ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  }
}

IoStatus Stream::waitFor(short events, Deadline deadline) {
  while (true) {
    pollfd p[2] = {{fd_.get(), events, 0}, {stop_fd_, POLLIN, 0}};
    int n = ::poll(p, stop_fd_ >= 0 ? 2 : 1, pollTimeout(deadline));
    if (n < 0 && errno != EINTR) {
      return IoStatus::Error;
    }
    if (n > 0 && stop_fd_ >= 0 && (p[1].revents & POLLIN)) {
      return IoStatus::Stopped;
    }
    if (n > 0 && p[0].revents != 0) {
      return IoStatus::Ok;
    }
    if (Clock::now() >= deadline) {
      return IoStatus::Timeout;
    }
  }
}

IoStatus Stream::sendAll(std::string_view data, Deadline deadline) {
  if (!fd_.valid()) {
    return IoStatus::Error;
  }
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      IoStatus s = waitFor(POLLOUT, deadline);
      if (s != IoStatus::Ok) {
        return s;
      }
      continue;
    }
    return errno == ECONNRESET || errno == EPIPE ? IoStatus::Reset : IoStatus::Error;
  }
  return IoStatus::Ok;
}

IoStatus Stream::fill(Deadline deadline) {
  if (!fd_.valid()) {
    return IoStatus::Error;
  }
  char tmp[65536];
  while (true) {
    ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      received_ += static_cast<uint64_t>(n);
      return IoStatus::Ok;
    }
    if (n == 0) {
      return IoStatus::Closed;
    }
    if (errno == EAGAIN || errno == EINTR) {
      IoStatus s = waitFor(POLLIN, deadline);
      if (s != IoStatus::Ok) {
        return s;
      }
      continue;
    }
    return errno == ECONNRESET ? IoStatus::Reset : IoStatus::Error;
  }
}

IoStatus Stream::readUntil(std::string_view delim, size_t limit, Deadline deadline,
                           std::string* out) {
  size_t searched = 0;
  while (true) {
    size_t pos = buf_.find(delim, searched);
    if (pos != std::string::npos) {
      size_t end = pos + delim.size();
      out->assign(buf_, 0, end);
      buf_.erase(0, end);
      return IoStatus::Ok;
    }
    if (buf_.size() > limit) {
      return IoStatus::Error;
    }
    searched = buf_.size() >= delim.size() ? buf_.size() - delim.size() + 1 : 0;
    IoStatus s = fill(deadline);
    if (s != IoStatus::Ok) {
      return s;
    }
  }
}

IoStatus Stream::readExact(uint64_t n, Deadline deadline, const Sink& sink) {
  while (n > 0) {
    if (buf_.empty()) {
      IoStatus s = fill(deadline);
      if (s != IoStatus::Ok) {
        return s;
      }
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
    sink(std::string_view(buf_.data(), take));
    buf_.erase(0, take);
    n -= take;
  }
  return IoStatus::Ok;
}

IoStatus Stream::readToEof(Deadline deadline, const Sink& sink) {
  while (true) {
    if (!buf_.empty()) {
      sink(buf_);
      buf_.clear();
    }
    IoStatus s = fill(deadline);
    if (s == IoStatus::Closed) {
      return IoStatus::Ok;
    }
    if (s != IoStatus::Ok) {
      return s;
    }
  }
}

bool Stream::waitClosed(Deadline deadline) {
  while (true) {
    buf_.clear();
    IoStatus s = fill(deadline);
    if (s == IoStatus::Closed || s == IoStatus::Reset) {
      return true;
    }
    if (s != IoStatus::Ok) {
      return false;
    }
  }
}

bool Stream::waitPeerGone(Deadline deadline) {
  while (true) {
    pollfd p[2] = {{fd_.get(), POLLRDHUP, 0}, {stop_fd_, POLLIN, 0}};
    int n = ::poll(p, stop_fd_ >= 0 ? 2 : 1, pollTimeout(deadline));
    if (n > 0 && stop_fd_ >= 0 && (p[1].revents & POLLIN)) {
      return false;
    }
    if (n > 0 && (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      return true;
    }
    if (Clock::now() >= deadline || (n < 0 && errno != EINTR)) {
      return false;
    }
  }
}

void Stream::shutdownWrite() {
  if (fd_.valid()) {
    ::shutdown(fd_.get(), SHUT_WR);
  }
}

void Stream::reset() {
  if (fd_.valid()) {
    setLingerZero(fd_.get());
    fd_.reset();
  }
}

}  // namespace lb::e2e
