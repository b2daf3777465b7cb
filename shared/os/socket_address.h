#pragma once

// A socket address parsed from the config's "host:port" syntax: "127.0.0.1:80", "[::1]:80",
// "*:80" or "0.0.0.0:80" (any IPv4), "[::]:80" (any IPv6), "localhost:80".
// Only numeric hosts and "localhost" are accepted: the config must not depend on DNS at load.

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <string_view>

#include "shared/util/result.h"

namespace lb::os {

class SocketAddress {
 public:
  SocketAddress() = default;

  // Parses "host:port". Errors say what was expected.
  static Result<SocketAddress> parse(std::string_view text);
  // From a kernel-filled address (accept, getsockname).
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return len_; }
  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  // "127.0.0.1:80" / "[::1]:80".
  std::string toString() const;
  // Host part only, no brackets: "127.0.0.1" / "::1". Writes into buf, returns length.
  size_t hostToBuffer(char* buf, size_t cap) const;

  bool operator==(const SocketAddress& other) const;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace lb::os
