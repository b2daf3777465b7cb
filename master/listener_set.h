#pragma once

// The listening sockets of one generation. The master owns every listening descriptor; workers
// inherit them through fork(). On reload a listener whose address is unchanged keeps its socket
// (nginx matches by sockaddr), so connections waiting in the kernel's accept queue are never
// lost; a socket is closed only when no generation uses it any more (shared ownership below).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/config/model.h"
#include "shared/os/socket_address.h"
#include "shared/util/result.h"

namespace lb::master {

// One open listening socket. Closing happens in the destructor, i.e. when the last ListenerSet
// holding it goes away.
class ListenSocket {
 public:
  ListenSocket(int fd, const os::SocketAddress& address, int backlog)
      : fd_(fd), address_(address), backlog_(backlog) {}
  ~ListenSocket();
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  int fd() const { return fd_; }
  const os::SocketAddress& address() const { return address_; }
  int backlog() const { return backlog_; }
  // Applies a new backlog to the listening socket (listen(2) again). Returns false, errno set,
  // on failure.
  bool setBacklog(int backlog);

 private:
  int fd_;
  os::SocketAddress address_;
  int backlog_;
};

using ListenSocketPtr = std::shared_ptr<ListenSocket>;

// socket(), SO_REUSEADDR, IPV6_V6ONLY=1 for IPv6, non-blocking, close-on-exec, bind(), listen().
// The error names the failing call, the address and the errno text.
Result<ListenSocketPtr> openListenSocket(const os::SocketAddress& address, int backlog);

// For each wanted address, the index of an old address equal to it, or -1. An old entry is
// matched at most once (two listeners can never share one socket). Pure; the core of reuse.
std::vector<int> matchByAddress(const std::vector<os::SocketAddress>& old_addresses,
                                const std::vector<os::SocketAddress>& wanted);

class ListenerSet {
 public:
  ListenerSet() = default;

  // Opens one socket per listener of `config`, in the config's order, taking over the socket of
  // `previous` (may be null) where the address is the same. Fails with "listener \"NAME\": ..."
  // on the first socket that cannot be opened; then every socket this call opened is closed
  // again and `previous` is untouched.
  static Result<ListenerSet> open(const config::Config& config, const ListenerSet* previous);
  // Sockets inherited from an old master (binary upgrade), to be passed to open() as
  // `previous`. Their backlog is unknown, so open() applies the configured one.
  static ListenerSet adopt(const std::vector<std::pair<os::SocketAddress, int>>& sockets);

  size_t size() const { return sockets_.size(); }
  const ListenSocket& at(size_t i) const { return *sockets_[i]; }
  // The descriptors, parallel to config.listeners (what WorkerInit::listen_fds wants).
  std::vector<int> fds() const;
  // Drops (closing unless shared) every socket `other` does not hold, so fds() and the config
  // no longer correspond: for an old generation whose workers already closed their copies.
  void retainOnly(const ListenerSet& other);
  bool contains(int fd) const;
  // How many sockets were taken over from `previous` / opened fresh by open().
  size_t reused() const { return reused_; }
  size_t opened() const { return sockets_.size() - reused_; }

 private:
  std::vector<ListenSocketPtr> sockets_;
  size_t reused_ = 0;
};

}  // namespace lb::master
