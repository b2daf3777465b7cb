#include "master/upgrade.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
  if (inherited.handoff_rx >= 0 && inherited.handoff_tx >= 0) {
    out += "handoff=" + std::to_string(inherited.handoff_rx) + "," +
           std::to_string(inherited.handoff_tx) + ";";
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
      size_t comma = value.find(',');
      if (comma == std::string_view::npos) {
        return unexpected(Error{"expected handoff=RX,TX, got \"" + std::string(item) + "\""});
      }
      auto rx = parseFd(value.substr(0, comma), item);
      auto tx = parseFd(value.substr(comma + 1), item);
      if (!rx || !tx) {
        return unexpected(rx ? tx.error() : rx.error());
      }
      out.handoff_rx = *rx;
      out.handoff_tx = *tx;
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

namespace {

bool isSeqpacket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

bool listensOn(int fd, const os::SocketAddress& address) {
  int listening = 0;
  socklen_t len = sizeof listening;
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0 &&
         ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0 &&
         os::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&bound), blen) == address;
}

}  // namespace

std::vector<std::string> verifyInherited(Inherited& inherited) {
  std::vector<std::string> dropped;
  std::vector<int> drop_fds;
  std::erase_if(inherited.listeners, [&](const std::pair<os::SocketAddress, int>& l) {
    if (listensOn(l.second, l.first)) {
      return false;
    }
    dropped.push_back("inherited descriptor " + std::to_string(l.second) +
                      " is not a socket listening on " + l.first.toString() + "; ignored");
    drop_fds.push_back(l.second);
    return true;
  });
  if (inherited.handoff_rx >= 0 || inherited.handoff_tx >= 0) {
    if (!isSeqpacket(inherited.handoff_rx) || !isSeqpacket(inherited.handoff_tx)) {
      dropped.push_back("inherited handoff descriptors " + std::to_string(inherited.handoff_rx) +
                        "," + std::to_string(inherited.handoff_tx) +
                        " are not SOCK_SEQPACKET sockets; ignored");
      drop_fds.push_back(inherited.handoff_rx);
      drop_fds.push_back(inherited.handoff_tx);
      inherited.handoff_rx = inherited.handoff_tx = -1;
    }
  }
  std::vector<int> kept;
  for (const auto& l : inherited.listeners) {
    kept.push_back(l.second);
  }
  for (int fd : {inherited.handoff_rx, inherited.handoff_tx}) {
    if (fd >= 0) {
      kept.push_back(fd);
    }
  }
  for (int fd : kept) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  for (const auto& l : inherited.listeners) {
    ::fcntl(l.second, F_SETFL, ::fcntl(l.second, F_GETFL) | O_NONBLOCK);
  }
  // A dropped descriptor that is open and not also a kept one would leak into every worker.
  for (int fd : drop_fds) {
    if (fd >= 0 && std::find(kept.begin(), kept.end(), fd) == kept.end() &&
        ::fcntl(fd, F_GETFD) >= 0) {
      ::close(fd);
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
