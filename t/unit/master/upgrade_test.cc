#include "master/upgrade.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace lb::master {
namespace {

os::SocketAddress addr(const char* text) {
  auto a = os::SocketAddress::parse(text);
  REQUIRE(a);
  return *a;
}

TEST_CASE("upgrade: inherited sockets survive encoding, IPv6 brackets included", "[master]") {
  Inherited in;
  in.listeners.emplace_back(addr("127.0.0.1:80"), 5);
  in.listeners.emplace_back(addr("[::1]:8443"), 6);
  in.handoff_rx = 9;
  in.handoff_tx = 10;
  std::string text = encodeInherited(in);
  CHECK(text == "5=127.0.0.1:80;6=[::1]:8443;handoff=9,10");
  auto out = parseInherited(text);
  REQUIRE(out);
  REQUIRE(out->listeners.size() == 2);
  CHECK(out->listeners[0].first == addr("127.0.0.1:80"));
  CHECK(out->listeners[0].second == 5);
  CHECK(out->listeners[1].first == addr("[::1]:8443"));
  CHECK(out->listeners[1].second == 6);
  CHECK(out->handoff_rx == 9);
  CHECK(out->handoff_tx == 10);
  CHECK(encodeInherited(Inherited{}).empty());
  auto empty = parseInherited("");
  REQUIRE(empty);
  CHECK(empty->listeners.empty());
  CHECK(empty->handoff_rx == -1);
}

TEST_CASE("upgrade: malformed LB_INHERIT values are refused with the item named", "[master]") {
  CHECK(parseInherited("5").error().message == "expected NAME=VALUE, got \"5\"");
  CHECK(parseInherited("x=127.0.0.1:80").error().message == "bad descriptor in \"x=127.0.0.1:80\"");
  CHECK(parseInherited("-1=127.0.0.1:80").error().message ==
        "bad descriptor in \"-1=127.0.0.1:80\"");
  CHECK(parseInherited("handoff=z,1").error().message == "bad descriptor in \"handoff=z,1\"");
  CHECK(parseInherited("handoff=3").error().message == "expected handoff=RX,TX, got \"handoff=3\"");
  auto bad = parseInherited("5=nowhere");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("bad address in \"5=nowhere\"") == 0);
}

TEST_CASE("upgrade: only real listening sockets on the announced address are kept", "[master]") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  const std::string real = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  int not_listening = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(not_listening >= 0);

  Inherited in;
  in.listeners.emplace_back(addr(real.c_str()), fd);
  in.listeners.emplace_back(addr("127.0.0.1:1"), fd);  // right socket, wrong address
  in.listeners.emplace_back(addr("127.0.0.1:2"), not_listening);
  in.listeners.emplace_back(addr("127.0.0.1:3"), 1000);  // not open
  in.handoff_rx = not_listening;                         // not a SOCK_SEQPACKET socket
  in.handoff_tx = not_listening;
  auto dropped = verifyInherited(in);
  CHECK(dropped.size() == 4);
  REQUIRE(in.listeners.size() == 1);
  CHECK(in.listeners[0].second == fd);
  CHECK(in.handoff_rx == -1);
  CHECK(in.handoff_tx == -1);
  CHECK(::fcntl(fd, F_GETFD) == FD_CLOEXEC);   // kept: open, close-on-exec
  CHECK(::fcntl(not_listening, F_GETFD) < 0);  // dropped: closed, it would leak otherwise
  ::close(fd);
}

TEST_CASE("upgrade: the executable path names the running binary", "[master]") {
  std::string path = executablePath();
  REQUIRE_FALSE(path.empty());
  CHECK(path.front() == '/');
  CHECK(::access(path.c_str(), X_OK) == 0);
}

}  // namespace
}  // namespace lb::master
