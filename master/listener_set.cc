#include "master/listener_set.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lb::master {
namespace {

Error sysError(const char* call, const os::SocketAddress& address) {
  return Error{std::string(call) + " " + address.toString() + " failed: " + std::strerror(errno)};
}

}  // namespace

ListenSocket::~ListenSocket() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool ListenSocket::setBacklog(int backlog) {
  if (::listen(fd_, backlog) != 0) {
    return false;
  }
  backlog_ = backlog;
  return true;
}

Result<ListenSocketPtr> openListenSocket(const os::SocketAddress& address, int backlog) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return unexpected(sysError("socket() for", address));
  }
  // From here on the socket object owns fd and closes it on every early return.
  auto sock = std::make_shared<ListenSocket>(fd, address, backlog);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return unexpected(sysError("setsockopt(SO_REUSEADDR) on", address));
  }
  // A v6 wildcard must not grab the v4 port too: "[::]:80" and "0.0.0.0:80" may both be listed.
  if (address.family() == AF_INET6 &&
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    return unexpected(sysError("setsockopt(IPV6_V6ONLY) on", address));
  }
  if (::bind(fd, address.sockaddr_ptr(), address.length()) != 0) {
    return unexpected(sysError("bind() to", address));
  }
  if (::listen(fd, backlog) != 0) {
    return unexpected(sysError("listen() on", address));
  }
  return sock;
}

std::vector<int> matchByAddress(const std::vector<os::SocketAddress>& old_addresses,
                                const std::vector<os::SocketAddress>& wanted) {
  std::vector<int> match(wanted.size(), -1);
  std::vector<bool> taken(old_addresses.size(), false);
  for (size_t i = 0; i < wanted.size(); ++i) {
    for (size_t j = 0; j < old_addresses.size(); ++j) {
      if (!taken[j] && old_addresses[j] == wanted[i]) {
        match[i] = static_cast<int>(j);
        taken[j] = true;
        break;
      }
    }
  }
  return match;
}

Result<ListenerSet> ListenerSet::open(const config::Config& config, const ListenerSet* previous) {
  std::vector<os::SocketAddress> old_addresses;
  if (previous != nullptr) {
    for (const auto& s : previous->sockets_) {
      old_addresses.push_back(s->address());
    }
  }
  std::vector<os::SocketAddress> wanted;
  for (const auto& l : config.listeners) {
    wanted.push_back(l.address);
  }
  std::vector<int> match = matchByAddress(old_addresses, wanted);

  ListenerSet set;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const config::Listener& l = config.listeners[i];
    if (match[i] >= 0) {
      set.sockets_.push_back(previous->sockets_[static_cast<size_t>(match[i])]);
      ++set.reused_;
      continue;
    }
    auto sock = openListenSocket(l.address, l.backlog);
    if (!sock) {
      // `set` goes out of scope here: fresh sockets close, taken-over ones stay with previous.
      return unexpected(Error{"listener \"" + l.name + "\": " + sock.error().message});
    }
    set.sockets_.push_back(std::move(*sock));
  }
  // Backlog changes on a reused socket are applied only once every socket is open, so a failed
  // reload leaves the running sockets exactly as they were.
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    ListenSocket& s = *set.sockets_[i];
    int backlog = config.listeners[i].backlog;
    if (match[i] >= 0 && s.backlog() != backlog && !s.setBacklog(backlog)) {
      return unexpected(Error{"listener \"" + config.listeners[i].name + "\": listen() on " +
                              s.address().toString() + " failed: " + std::strerror(errno)});
    }
  }
  return set;
}

ListenerSet ListenerSet::adopt(const std::vector<std::pair<os::SocketAddress, int>>& sockets) {
  ListenerSet set;
  for (const auto& [address, fd] : sockets) {
    set.sockets_.push_back(std::make_shared<ListenSocket>(fd, address, -1));
  }
  return set;
}

void ListenerSet::retainOnly(const ListenerSet& other) {
  std::erase_if(sockets_, [&](const ListenSocketPtr& s) { return !other.contains(s->fd()); });
}

std::vector<int> ListenerSet::fds() const {
  std::vector<int> out;
  out.reserve(sockets_.size());
  for (const auto& s : sockets_) {
    out.push_back(s->fd());
  }
  return out;
}

bool ListenerSet::contains(int fd) const {
  for (const auto& s : sockets_) {
    if (s->fd() == fd) {
      return true;
    }
  }
  return false;
}

}  // namespace lb::master
