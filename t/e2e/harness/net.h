#pragma once

// Sockets for the e2e harness: free ports, connecting with a timeout, and a buffered stream whose
// every read and write is bounded by a deadline (and, for fake upstream threads, interrupted by
// a stop descriptor). Loopback only.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "e2e/harness/wait.h"

namespace lb::e2e {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read it, close. Never returns
// the same port twice in one process.
int freePort();

// A listening socket on 127.0.0.1:`port` (0 = any); `*bound` receives the port. Invalid on error.
UniqueFd listenTcp(int port, int backlog, int* bound);

// Connects to host:port within `timeout`. Invalid on failure (refused, timeout).
UniqueFd connectTcp(int port, milliseconds timeout, const std::string& host = "127.0.0.1");

int localPort(int fd);
// Makes close() send RST instead of FIN.
void setLingerZero(int fd);

enum class IoStatus { Ok, Timeout, Closed, Reset, Error, Stopped };
const char* ioStatusName(IoStatus s);

using Sink = std::function<void(std::string_view)>;

// Buffered, deadline-bounded I/O over a connected socket. Not thread-safe; one owner.
class Stream {
 public:
  // `stop_fd`: an eventfd/pipe that becomes readable when the owner must give up (-1 = none).
  explicit Stream(UniqueFd fd, int stop_fd = -1);

  IoStatus sendAll(std::string_view data, Deadline deadline);
  // Reads once more into the buffer (at least one byte) unless the deadline passes.
  IoStatus fill(Deadline deadline);
  // Reads until `delim`; `*out` receives everything up to and including it. Error if more than
  // `limit` bytes arrive without it.
  IoStatus readUntil(std::string_view delim, size_t limit, Deadline deadline, std::string* out);
  // Reads exactly `n` bytes and passes them to `sink` piecewise.
  IoStatus readExact(uint64_t n, Deadline deadline, const Sink& sink);
  // Reads until the peer closes; Ok when it closed cleanly (EOF).
  IoStatus readToEof(Deadline deadline, const Sink& sink);
  // True if the peer closed the connection (EOF or reset) before the deadline; discards data.
  bool waitClosed(Deadline deadline);
  // Waits for the peer to close or reset, or for stop; never reads. For handlers that hold a
  // connection: returns true if the peer went away.
  bool waitPeerGone(Deadline deadline);

  // Bytes read but not consumed yet.
  std::string& buffer() { return buf_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }
  void shutdownWrite();
  // RST the connection.
  void reset();
  uint64_t bytesReceived() const { return received_; }

 private:
  // Waits for `events` on the socket; Ok, Timeout or Stopped.
  IoStatus waitFor(short events, Deadline deadline);

  UniqueFd fd_;
  int stop_fd_;
  std::string buf_;
  uint64_t received_ = 0;
};

}  // namespace lb::e2e
