#include "shared/os/socket_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace lb::os {

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return unexpected(Error{"expected \"[ipv6]:port\", got \"" + std::string(text) + "\""});
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return unexpected(Error{"expected \"host:port\", got \"" + std::string(text) + "\""});
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return unexpected(Error{"an IPv6 address must be in brackets, \"[::1]:80\"; got \"" +
                              std::string(text) + "\""});
    }
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return unexpected(Error{"expected a port number 0-65535, got \"" + std::string(port) + "\""});
  }
  SocketAddress a;
  std::string h(host);
  if (h == "*" || h.empty()) {
    h = "0.0.0.0";
  } else if (h == "localhost") {
    h = "127.0.0.1";
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(value));
    a.len_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(value));
    a.len_ = sizeof(sockaddr_in6);
  } else {
    return unexpected(Error{"expected a numeric IPv4 or IPv6 address, got \"" + h + "\""});
  }
  return a;
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (len > sizeof(a.storage_)) {
    len = sizeof(a.storage_);
  }
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

size_t SocketAddress::hostToBuffer(char* buf, size_t cap) const {
  const void* src = nullptr;
  if (family() == AF_INET) {
    src = &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr;
  } else if (family() == AF_INET6) {
    src = &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
  } else {
    if (cap > 0) {
      buf[0] = '\0';
    }
    return 0;
  }
  if (inet_ntop(family(), src, buf, static_cast<socklen_t>(cap)) == nullptr) {
    buf[0] = '\0';
    return 0;
  }
  return std::strlen(buf);
}

std::string SocketAddress::toString() const {
  char host[INET6_ADDRSTRLEN];
  size_t n = hostToBuffer(host, sizeof(host));
  std::string out;
  out.reserve(n + 8);
  if (family() == AF_INET6) {
    out.push_back('[');
    out.append(host, n);
    out.push_back(']');
  } else {
    out.append(host, n);
  }
  out.push_back(':');
  out.append(std::to_string(port()));
  return out;
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  return len_ == other.len_ && std::memcmp(&storage_, &other.storage_, len_) == 0;
}

}  // namespace lb::os
