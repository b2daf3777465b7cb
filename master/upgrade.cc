#include "master/upgrade.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <string_view>

namespace lb::master {
namespace {

Result<int> parseFd(std::string_view text, std::string_view item) {
  int fd = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (ec != std::errc() || end != text.data() + text.size() || fd < 0) {
    return unexpected(Error{"bad descriptor in \"" + std::string(item) + "\""});
  }
  return fd;
}

}  // namespace

std::string encodeInherited(const Inherited& inherited) {
  std::string out;
  for (const auto& [address, fd] : inherited.listeners) {
    out += std::to_string(fd) + "=" + address.toString() + ";";
  }
  if (inherited.handoff_rx >= 0) {
    out += "handoff=" + std::to_string(inherited.handoff_rx) + ";";
  }
  if (!out.empty()) {
    out.pop_back();
  }
  return out;
}

Result<Inherited> parseInherited(const std::string& text) {
  Inherited out;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t semi = rest.find(';');
    std::string_view item = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return unexpected(Error{"expected NAME=VALUE, got \"" + std::string(item) + "\""});
    }
    std::string_view key = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    if (key == "handoff") {
      auto fd = parseFd(value, item);
      if (!fd) {
        return unexpected(fd.error());
      }
      out.handoff_rx = *fd;
      continue;
    }
    auto fd = parseFd(key, item);
    if (!fd) {
      return unexpected(fd.error());
    }
    auto address = os::SocketAddress::parse(value);
    if (!address) {
      return unexpected(
          Error{"bad address in \"" + std::string(item) + "\": " + address.error().message});
    }
    out.listeners.emplace_back(*address, *fd);
  }
  return out;
}

std::vector<std::string> verifyInherited(Inherited& inherited) {
  std::vector<std::string> dropped;
  std::erase_if(inherited.listeners, [&](const std::pair<os::SocketAddress, int>& l) {
    const auto& [address, fd] = l;
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) != 0 ||
        !(os::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&bound), blen) == address)) {
      dropped.push_back("inherited descriptor " + std::to_string(fd) + " is not a socket " +
                        "listening on " + address.toString() + "; ignored");
      return true;  // left alone: a descriptor that is not what it claims to be is not ours
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return false;
  });
  if (inherited.handoff_rx >= 0) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(inherited.handoff_rx, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_SEQPACKET) {
      dropped.push_back("inherited handoff descriptor " + std::to_string(inherited.handoff_rx) +
                        " is not a SOCK_SEQPACKET socket; ignored");
      inherited.handoff_rx = -1;
    } else {
      ::fcntl(inherited.handoff_rx, F_SETFD, FD_CLOEXEC);
    }
  }
  return dropped;
}

std::string executablePath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) {
    return {};
  }
  std::string path(buf, static_cast<size_t>(n));
  // Replaced on disk since this process started: the new file has the old name.
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.ends_with(kDeleted)) {
    path.resize(path.size() - kDeleted.size());
  }
  return path;
}

}  // namespace lb::master
