#include "master/listener_set.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace lb::master {
namespace {

os::SocketAddress addr(const char* text) {
  auto a = os::SocketAddress::parse(text);
  REQUIRE(a);
  return *a;
}

config::Listener listener(const char* name, const char* listen, int backlog = 511) {
  config::Listener l;
  l.name = name;
  l.listen = listen;
  l.address = addr(listen);
  l.backlog = backlog;
  return l;
}

config::Config configOf(std::vector<config::Listener> listeners) {
  config::Config c;
  c.listeners = std::move(listeners);
  return c;
}

bool fdOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

size_t openFdCount() {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

int intOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

uint16_t boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  return os::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
}

// Holds a listening port so that binding it again fails.
struct Occupied {
  ListenSocketPtr sock;
  std::string listen;
};

Occupied occupyPort() {
  auto s = openListenSocket(addr("127.0.0.1:0"), 8);
  REQUIRE(s);
  return {*s, "127.0.0.1:" + std::to_string(boundPort((*s)->fd()))};
}

}  // namespace

TEST_CASE("listener_set: matchByAddress pairs equal addresses once", "[master]") {
  auto a = addr("127.0.0.1:80");
  auto b = addr("127.0.0.1:81");
  auto c = addr("[::1]:80");
  CHECK(matchByAddress({}, {a, b}) == std::vector<int>{-1, -1});
  CHECK(matchByAddress({a, b}, {}) == std::vector<int>{});
  CHECK(matchByAddress({a, b}, {b, a}) == std::vector<int>{1, 0});
  CHECK(matchByAddress({a, b}, {c, b}) == std::vector<int>{-1, 1});
  // Same port, other family: a different socket.
  CHECK(matchByAddress({a}, {c}) == std::vector<int>{-1});
  // Two wanted copies of one old address: only the first takes the socket over.
  CHECK(matchByAddress({a}, {a, a}) == std::vector<int>{0, -1});
  CHECK(matchByAddress({a, a}, {a, a}) == std::vector<int>{0, 1});
  // "*:80" is 0.0.0.0:80, not 127.0.0.1:80.
  CHECK(matchByAddress({addr("*:80")}, {addr("0.0.0.0:80"), a}) == std::vector<int>{0, -1});
}

TEST_CASE("listener_set: open makes non-blocking listening sockets", "[master]") {
  auto set = ListenerSet::open(
      configOf({listener("v4", "127.0.0.1:0", 64), listener("v6", "[::1]:0", 32)}), nullptr);
  REQUIRE(set);
  REQUIRE(set->size() == 2);
  CHECK(set->opened() == 2);
  CHECK(set->reused() == 0);
  for (size_t i = 0; i < set->size(); ++i) {
    int fd = set->at(i).fd();
    CHECK(set->fds()[i] == fd);
    CHECK(set->contains(fd));
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(intOption(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1);
    CHECK(intOption(fd, SOL_SOCKET, SO_REUSEADDR) == 1);
    CHECK(boundPort(fd) != 0);
  }
  CHECK(set->at(0).backlog() == 64);
  CHECK(set->at(1).address().family() == AF_INET6);
  CHECK(intOption(set->at(1).fd(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
}

TEST_CASE("listener_set: a reload keeps sockets by address and drops the rest", "[master]") {
  auto first = ListenerSet::open(configOf({listener("a", "127.0.0.1:0"), listener("b", "[::1]:0")}),
                                 nullptr);
  REQUIRE(first);
  const int fd_a = first->at(0).fd();
  const int fd_b = first->at(1).fd();

  // Names and order may change; the address decides. "b" is gone, "c" is new.
  auto second = ListenerSet::open(
      configOf({listener("c", "127.0.0.2:0"), listener("renamed-a", "127.0.0.1:0", 100)}), &*first);
  REQUIRE(second);
  CHECK(second->reused() == 1);
  CHECK(second->opened() == 1);
  CHECK(second->at(1).fd() == fd_a);
  CHECK(second->at(1).backlog() == 100);  // a changed backlog is applied to the kept socket
  CHECK(second->at(0).fd() != fd_b);
  const int fd_c = second->at(0).fd();

  // The old generation goes away: only the socket nobody took over closes.
  first = ListenerSet();
  CHECK_FALSE(fdOpen(fd_b));
  CHECK(fdOpen(fd_a));
  CHECK(fdOpen(fd_c));
  CHECK(intOption(fd_a, SOL_SOCKET, SO_ACCEPTCONN) == 1);

  second = ListenerSet();
  CHECK_FALSE(fdOpen(fd_a));
  CHECK_FALSE(fdOpen(fd_c));
}

TEST_CASE("listener_set: a bind error names the listener and address", "[master]") {
  Occupied busy = occupyPort();
  auto set = ListenerSet::open(configOf({listener("web", busy.listen.c_str())}), nullptr);
  REQUIRE_FALSE(set);
  CHECK(set.error().message ==
        "listener \"web\": bind() to " + busy.listen + " failed: Address already in use");
}

TEST_CASE("listener_set: a failed reload leaves the running sockets alone", "[master]") {
  auto running = ListenerSet::open(configOf({listener("a", "127.0.0.1:0", 50)}), nullptr);
  REQUIRE(running);
  const int fd_a = running->at(0).fd();
  Occupied busy = occupyPort();
  const size_t fds_before = openFdCount();

  auto next = ListenerSet::open(
      configOf({listener("a", "127.0.0.1:0", 300), listener("fresh", "127.0.0.3:0"),
                listener("clash", busy.listen.c_str())}),
      &*running);
  REQUIRE_FALSE(next);
  CHECK(next.error().message.rfind("listener \"clash\": bind() to ", 0) == 0);
  CHECK(openFdCount() == fds_before);  // the socket opened for "fresh" was closed again
  CHECK(fdOpen(fd_a));
  CHECK(running->at(0).backlog() == 50);  // backlog changes wait until every socket is open
  CHECK(intOption(fd_a, SOL_SOCKET, SO_ACCEPTCONN) == 1);
}

}  // namespace lb::master
