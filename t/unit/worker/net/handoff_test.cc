// The connection handoff between generations: the wire format (batches, and messages that must
// be refused), the descriptor passing itself over a real SOCK_SEQPACKET pair, and two workers'
// loops in one process, where a draining one hands its idle keep-alive connections to the other
// and the bytes a client wrote before the handoff are answered after it, also through a channel
// that is full for a while. Also the safe close a drain falls back to when there is no next
// generation, or when the channel breaks.

#include "worker/net/handoff.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "unit/worker/proxy/harness_test.h"

namespace lb::worker::test {
namespace {

using handoff::IoResult;

os::SocketAddress address(const char* text) {
  auto a = os::SocketAddress::parse(text);
  REQUIRE(a);
  return *a;
}

int openFds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (::readdir(d) != nullptr) {
    ++n;
  }
  ::closedir(d);
  return n;
}

struct SeqPair {
  int fd[2] = {-1, -1};
  SeqPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd) == 0); }
  ~SeqPair() {
    for (int f : fd) {
      if (f >= 0) {
        ::close(f);
      }
    }
  }
};

// A connected loopback TCP pair: client end and server end, both blocking.
struct TcpPair {
  int client = -1;
  int server = -1;
  explicit TcpPair(int listen_fd, const sockaddr_in& to) {
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0);
    server = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(server >= 0);
  }
  ~TcpPair() {
    for (int f : {client, server}) {
      if (f >= 0) {
        ::close(f);
      }
    }
  }
};

// --- Wire format ------------------------------------------------------------------------------

TEST_CASE("handoff wire: a full batch of IPv4 and IPv6 listeners decodes to what was encoded",
          "[handoff]") {
  std::vector<HandoffItem> items(handoff::kMaxFdsPerMessage);
  for (size_t i = 0; i < items.size(); ++i) {
    items[i].listener = address(i % 2 == 0 ? "127.0.0.1:8080" : "[::1]:443");
    items[i].requests = static_cast<uint32_t>(i * 1000 + 7);
    items[i].idle_since_ms = 123'456'789'012ULL + i * 1234;
  }
  for (size_t n : {size_t{1}, size_t{2}, items.size()}) {
    INFO(n << " connections");
    char buf[handoff::kMaxMessageSize];
    size_t len = handoff::encode(items.data(), n, buf);
    CHECK(len == sizeof(handoff::WireHeader) + n * sizeof(handoff::WireEntry));
    std::vector<HandoffItem> out(handoff::kMaxFdsPerMessage);
    auto count = handoff::decode(buf, len, n, out.data());
    REQUIRE(count);
    REQUIRE(*count == n);
    for (size_t i = 0; i < n; ++i) {
      CHECK(out[i].listener == items[i].listener);
      CHECK(out[i].listener.toString() == items[i].listener.toString());
      CHECK(out[i].requests == items[i].requests);
      CHECK(out[i].idle_since_ms == items[i].idle_since_ms);
    }
  }
}

TEST_CASE("handoff wire: a version 1 message, from a build before idle times, still decodes",
          "[handoff]") {
  handoff::WireHeader h{handoff::kWireMagic, handoff::kWireVersionV1, 2};
  handoff::WireEntryV1 e[2] = {};
  for (uint32_t i = 0; i < 2; ++i) {
    os::SocketAddress a = address(i == 0 ? "127.0.0.1:8080" : "[::1]:443");
    e[i].address_length = static_cast<uint16_t>(a.length());
    e[i].requests = 40 + i;
    std::memcpy(e[i].address, a.sockaddr_ptr(), a.length());
  }
  char buf[sizeof(h) + sizeof(e)];
  std::memcpy(buf, &h, sizeof(h));
  std::memcpy(buf + sizeof(h), e, sizeof(e));
  HandoffItem out[2];
  auto count = handoff::decode(buf, sizeof(buf), 2, out);
  REQUIRE(count);
  CHECK(*count == 2);
  CHECK(out[1].listener.toString() == "[::1]:443");
  CHECK(out[1].requests == 41);
  CHECK(out[0].idle_since_ms == 0);  // unknown: the keep-alive wait starts again
  CHECK_FALSE(handoff::decode(buf, sizeof(buf) - 1, 2, out));
}

TEST_CASE("handoff wire: truncated, padded and garbled messages are refused", "[handoff]") {
  HandoffItem items[3];
  for (auto& it : items) {
    it.listener = address("127.0.0.1:80");
  }
  char buf[handoff::kMaxMessageSize];
  size_t len = handoff::encode(items, 3, buf);
  HandoffItem out[handoff::kMaxFdsPerMessage];
  REQUIRE(handoff::decode(buf, len, 3, out));

  SECTION("every truncation") {
    for (size_t cut = 0; cut < len; ++cut) {
      INFO("cut to " << cut << " bytes");
      CHECK_FALSE(handoff::decode(buf, cut, 3, out));
    }
  }
  SECTION("a byte too many") {
    char longer[handoff::kMaxMessageSize + 1] = {};
    std::memcpy(longer, buf, len);
    CHECK_FALSE(handoff::decode(longer, len + 1, 3, out));
  }
  SECTION("fewer or more descriptors than entries") {
    CHECK_FALSE(handoff::decode(buf, len, 2, out));
    CHECK_FALSE(handoff::decode(buf, len, 4, out));
    CHECK_FALSE(handoff::decode(buf, len, 0, out));
  }
  SECTION("wrong magic or version") {
    buf[0] ^= 0x5a;
    CHECK_FALSE(handoff::decode(buf, len, 3, out));
    buf[0] ^= 0x5a;
    buf[4] = 9;
    CHECK_FALSE(handoff::decode(buf, len, 3, out));
  }
  SECTION("a count of zero or above the batch size") {
    handoff::WireHeader h{handoff::kWireMagic, handoff::kWireVersion, 0};
    std::memcpy(buf, &h, sizeof(h));
    CHECK_FALSE(handoff::decode(buf, sizeof(h), 0, out));
    h.count = handoff::kMaxFdsPerMessage + 1;
    std::vector<char> big(sizeof(h) + h.count * sizeof(handoff::WireEntry));
    std::memcpy(big.data(), &h, sizeof(h));
    CHECK_FALSE(handoff::decode(big.data(), big.size(), h.count, out));
  }
  SECTION("an address lb does not know") {
    handoff::WireEntry e;
    std::memcpy(&e, buf + sizeof(handoff::WireHeader), sizeof(e));
    e.address_length = 110;  // a unix socket path
    std::memcpy(buf + sizeof(handoff::WireHeader), &e, sizeof(e));
    CHECK_FALSE(handoff::decode(buf, len, 3, out));
    e.address_length = sizeof(sockaddr_in);
    sa_family_t unix_family = AF_UNIX;
    std::memcpy(e.address, &unix_family, sizeof(unix_family));
    std::memcpy(buf + sizeof(handoff::WireHeader), &e, sizeof(e));
    CHECK_FALSE(handoff::decode(buf, len, 3, out));
  }
}

// --- Descriptor passing -----------------------------------------------------------------------

TEST_CASE("handoff socket: TCP connections arrive open, with what their clients wrote before",
          "[handoff]") {
  uint16_t port = 0;
  int lfd = listenLoopback(false, &port);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  SeqPair ch;
  std::vector<std::unique_ptr<TcpPair>> conns;
  std::vector<HandoffItem> items(3);
  for (size_t i = 0; i < items.size(); ++i) {
    conns.push_back(std::make_unique<TcpPair>(lfd, to));
    items[i].fd = conns[i]->server;
    items[i].listener = address("127.0.0.1:8080");
    items[i].requests = static_cast<uint32_t>(i + 1);
  }
  int err = 0;
  REQUIRE(handoff::sendBatch(ch.fd[0], items.data(), items.size(), &err) == IoResult::Ok);
  // The sender's copies go; the sockets live on in the message: the clients see no FIN.
  for (auto& c : conns) {
    ::close(c->server);
    c->server = -1;
    std::string msg = "request on " + std::to_string(&c - &conns[0]);
    REQUIRE(::send(c->client, msg.data(), msg.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(msg.size()));
  }
  HandoffItem out[handoff::kMaxFdsPerMessage];
  size_t n = 0;
  std::string why;
  REQUIRE(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Ok);
  REQUIRE(n == 3);
  for (size_t i = 0; i < n; ++i) {
    CHECK(out[i].requests == i + 1);
    CHECK(out[i].listener == items[i].listener);
    CHECK((::fcntl(out[i].fd, F_GETFD) & FD_CLOEXEC) != 0);
    char buf[64] = {};
    ssize_t got = ::recv(out[i].fd, buf, sizeof(buf), 0);
    CHECK(std::string(buf, got > 0 ? static_cast<size_t>(got) : 0) ==
          "request on " + std::to_string(i));
    REQUIRE(::send(out[i].fd, "answer", 6, MSG_NOSIGNAL) == 6);
    got = ::recv(conns[i]->client, buf, sizeof(buf), 0);
    CHECK(std::string(buf, got > 0 ? static_cast<size_t>(got) : 0) == "answer");
    ::close(out[i].fd);
  }
  CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Again);
  ::close(ch.fd[0]);
  ch.fd[0] = -1;
  CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Closed);
  ::close(lfd);
}

TEST_CASE(
    "handoff socket: a message with too many descriptors or a garbled payload is refused "
    "and its descriptors closed",
    "[handoff]") {
  SeqPair ch;
  auto sendRaw = [&](const std::string& payload, int nfds) {
    std::vector<int> fds;
    for (int i = 0; i < nfds; ++i) {
      fds.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec iov{const_cast<char*>(payload.data()), payload.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    REQUIRE(::sendmsg(ch.fd[0], &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(payload.size()));
    for (int f : fds) {
      ::close(f);
    }
  };
  HandoffItem items[handoff::kMaxFdsPerMessage + 6];
  for (auto& it : items) {
    it.listener = address("127.0.0.1:80");
  }
  char buf[handoff::kMaxMessageSize];
  const int before = openFds();
  HandoffItem out[handoff::kMaxFdsPerMessage];
  size_t n = 0;
  std::string why;

  SECTION("more descriptors than a batch: control data truncated") {
    size_t len = handoff::encode(items, handoff::kMaxFdsPerMessage, buf);
    sendRaw(std::string(buf, len), handoff::kMaxFdsPerMessage + 6);
    CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Rejected);
    CHECK_THAT(why, Catch::Contains("truncated"));
  }
  SECTION("a payload that does not match its descriptors") {
    size_t len = handoff::encode(items, 2, buf);
    sendRaw(std::string(buf, len), 3);
    CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Rejected);
  }
  SECTION("garbage") {
    sendRaw("GET / HTTP/1.1\r\n\r\n", 1);
    CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Rejected);
  }
  INFO(why);
  CHECK(n == 0);
  CHECK(openFds() == before);  // nothing that arrived was kept
  CHECK(handoff::recvBatch(ch.fd[1], out, &n, &why) == IoResult::Again);
}

// --- Two workers' loops -----------------------------------------------------------------------

const std::string kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

// A drain as Worker::gracefulStop does it, on a harness.
void drainAll(Harness& h, Handoff* out) {
  h.ctx.draining = true;
  if (out != nullptr) {
    REQUIRE(out->beginSending());
  }
  for (ClientConn* c = h.ctx.clients; c != nullptr;) {
    ClientConn* next = c->next();
    c->drain();
    c = next;
  }
}

bool pumpBothUntil(Harness& a, Harness& b, const std::function<bool()>& done) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    a.pumpOnce(5);
    b.pumpOnce(5);
  }
  return true;
}

void sendRawRequest(Peer& c, const std::string& req) {
  REQUIRE(::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
}

// The two workers of consecutive generations, joined by a handoff channel. Handoff handles live
// on the harnesses' loops, so they are declared first (destroyed last) and closed in the
// destructor before the harnesses close their loops.
struct TwoGenerations {
  Handoff old_side;
  Handoff new_side;
  SeqPair channel;
  Harness a;  // draining
  Harness b;  // the next generation

  TwoGenerations() {
    REQUIRE(old_side.start(&a.ctx, -1, channel.fd[0]));
    REQUIRE(new_side.start(&b.ctx, channel.fd[1], -1));
    a.ctx.handoff = &old_side;
    b.ctx.handoff = &new_side;
  }
  ~TwoGenerations() {
    old_side.close();
    new_side.close();
  }
};

TEST_CASE(
    "handoff: an idle keep-alive connection moves to the next generation with the request "
    "its client already sent",
    "[handoff]") {
  TwoGenerations g;
  Peer& c = g.a.connect("static");
  REQUIRE(g.a.feed(c, kGet));
  Message m;
  REQUIRE(g.a.response(c, &m));
  CHECK(m.status() == 200);
  uint64_t served_by_b = g.b.ctx.slot->requests.load();

  // The next request is on its way when the drain starts: it stays in the socket.
  sendRawRequest(c, kGet);
  drainAll(g.a, &g.old_side);
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return c.in.size() - c.taken >= kStaticResponse.size(); }));
  CHECK(c.unread() == kStaticResponse);
  CHECK_FALSE(c.eof);
  CHECK(g.old_side.sent() == 1);
  CHECK(g.new_side.received() == 1);
  CHECK(g.a.ctx.connections == 0);
  CHECK(g.b.ctx.connections == 1);
  CHECK(g.b.ctx.slot->requests.load() == served_by_b + 1);
  c.taken = c.in.size();

  // And it goes on serving there.
  sendRawRequest(c, kGet);
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return c.in.size() - c.taken >= kStaticResponse.size(); }));
  CHECK(c.unread() == kStaticResponse);
  CHECK(g.b.ctx.slot->requests.load() == served_by_b + 2);
  c.close();
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return g.b.ctx.connections == 0; }));
}

TEST_CASE("handoff: a busy connection keeps keep-alive and follows once its response is out",
          "[handoff]") {
  TwoGenerations g;
  Peer& c = g.a.connect("proxy");
  REQUIRE(g.a.feed(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  Peer* u = nullptr;
  Message up;
  REQUIRE(g.a.upstreamRequest(&u, &up));

  drainAll(g.a, &g.old_side);
  g.a.pumpOnce(0);
  CHECK(g.a.ctx.connections == 1);  // in flight: it stays until answered
  CHECK(g.old_side.sent() == 0);

  REQUIRE(g.a.feed(*u, kOkResponse));
  Message m;
  REQUIRE(g.a.response(c, &m));
  CHECK(m.status() == 200);
  CHECK(m.get("connection") == "");  // no Connection: close: the connection is not ending
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return g.b.ctx.connections == 1; }));
  CHECK(g.a.ctx.connections == 0);
  CHECK(g.old_side.sent() == 1);

  // The next request goes through the new generation's own upstream.
  sendRawRequest(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
  Peer* u2 = nullptr;
  REQUIRE(g.b.upstreamRequest(&u2, &up));
  CHECK(up.start == "GET /next HTTP/1.1");
  REQUIRE(g.b.feed(*u2, kOkResponse));
  REQUIRE(pumpBothUntil(g.a, g.b, [&] {
    return readMessage(c.unread(), true, false, c.eof, &m) == Parse::Complete;
  }));
  CHECK(m.status() == 200);
  CHECK(m.body == "ok");
  CHECK_FALSE(c.eof);
}

TEST_CASE("handoff: a full channel queues the connections and sends them once it is writable",
          "[handoff]") {
  TwoGenerations g;
  // A send buffer this small holds a message or two: the rest waits for the receiver.
  int small = 1;
  REQUIRE(::setsockopt(g.channel.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
  constexpr int kConns = 40;
  std::vector<Peer*> peers;
  for (int i = 0; i < kConns; ++i) {
    Peer& c = g.a.connect("static");
    REQUIRE(g.a.feed(c, kGet));
    Message m;
    REQUIRE(g.a.response(c, &m));
    peers.push_back(&c);
  }
  // One connection per loop turn, so each travels alone: more messages than the channel holds.
  g.a.ctx.draining = true;
  REQUIRE(g.old_side.beginSending());
  for (ClientConn* c = g.a.ctx.clients; c != nullptr;) {
    ClientConn* next = c->next();
    c->drain();
    g.a.pumpOnce(0);
    c = next;
  }
  // Only the old side runs: the channel fills up and the rest stays queued, not lost.
  for (int i = 0; i < 20; ++i) {
    g.a.pumpOnce(1);
  }
  INFO("sent " << g.old_side.sent() << ", queued " << g.old_side.queued());
  CHECK(g.old_side.sent() > 0);
  CHECK(g.old_side.queued() > 0);
  CHECK(g.old_side.sent() + g.old_side.queued() == kConns);
  CHECK(g.a.ctx.connections == 0);
  // The new side reads; the old one is woken as the channel drains.
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return g.b.ctx.connections == kConns; }));
  CHECK(g.old_side.queued() == 0);
  CHECK(g.new_side.received() == kConns);
  for (Peer* p : peers) {
    sendRawRequest(*p, kGet);
  }
  REQUIRE(pumpBothUntil(g.a, g.b, [&] {
    return std::all_of(peers.begin(), peers.end(),
                       [](Peer* p) { return p->unread() == kStaticResponse; });
  }));
  for (Peer* p : peers) {
    CHECK_FALSE(p->eof);
  }
}

TEST_CASE("handoff: connections from a listener the next generation lacks are closed there",
          "[handoff]") {
  TwoGenerations g;
  HandoffItem item;
  uint16_t port = 0;
  int lfd = listenLoopback(false, &port);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  TcpPair conn(lfd, to);
  item.fd = conn.server;
  item.listener = address("127.0.0.1:9");  // not in kConfig
  int err = 0;
  REQUIRE(handoff::sendBatch(g.channel.fd[0], &item, 1, &err) == IoResult::Ok);
  ::close(conn.server);
  conn.server = -1;
  REQUIRE(pumpBothUntil(g.a, g.b, [&] { return g.new_side.received() == 1; }));
  CHECK(g.b.ctx.connections == 0);
  pollfd pfd{conn.client, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  char buf[8];
  CHECK(::recv(conn.client, buf, sizeof(buf), MSG_DONTWAIT) == 0);  // closed
  ::close(lfd);
}

// --- The safe close, when there is no next generation ----------------------------------------

TEST_CASE(
    "drain without a handoff: idle connections close after a grace window, spread out, "
    "with a lingering close that never resets",
    "[handoff]") {
  Harness h;
  constexpr int kConns = 20;
  std::vector<Peer*> peers;
  for (int i = 0; i < kConns; ++i) {
    Peer& c = h.connect("static");
    REQUIRE(h.feed(c, kGet));
    Message m;
    REQUIRE(h.response(c, &m));
    peers.push_back(&c);
  }
  auto start = Clock::now();
  drainAll(h, nullptr);
  std::vector<long long> closed_ms(kConns, -1);
  REQUIRE(h.pumpUntil(
      [&] {
        bool all = true;
        for (int i = 0; i < kConns; ++i) {
          if (peers[i]->eof && closed_ms[i] < 0) {
            closed_ms[i] =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
          }
          all = all && peers[i]->eof;
        }
        return all;
      },
      std::chrono::milliseconds(6000)));
  long long first = *std::min_element(closed_ms.begin(), closed_ms.end());
  long long last = *std::max_element(closed_ms.begin(), closed_ms.end());
  INFO("closes from " << first << " to " << last << " ms after the drain");
  CHECK(first >= 800);         // the grace window (1 s, counted from the last response)
  CHECK(last - first >= 500);  // spread over drain_window_ms (2 s)
  CHECK(last <= 3500);
  for (Peer* p : peers) {
    CHECK_FALSE(p->reset);
  }

  // A request that crosses lb's FIN is read and dropped: the client sees no reset.
  Peer& c = *peers[0];
  sendRawRequest(c, kGet);
  REQUIRE(h.pumpUntil(
      [&] { return ioctlInt(c.fd, SIOCOUTQNSD) == 0 && ioctlInt(c.lb_fd, FIONREAD) == 0; }));
  char buf[64];
  ssize_t r = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
  INFO("recv: " << r << " " << (r < 0 ? std::strerror(errno) : ""));
  CHECK(r == 0);
  for (Peer* p : peers) {
    p->close();
  }
  REQUIRE(h.pumpUntil([&] { return h.ctx.connections == 0; }));
}

// Closes a Handoff before the harness that owns its loop goes, whatever way the test ends.
struct CloseAtEnd {
  Handoff& handoff;
  ~CloseAtEnd() { handoff.close(); }
};

TEST_CASE("handoff: a channel that fails gives the connections back to be closed safely",
          "[handoff]") {
  Handoff out;
  SeqPair channel;
  Harness h;
  CloseAtEnd guard{out};
  ::close(channel.fd[1]);  // nobody will ever receive
  channel.fd[1] = -1;
  REQUIRE(out.start(&h.ctx, -1, channel.fd[0]));
  h.ctx.handoff = &out;
  Peer& c = h.connect("static");
  REQUIRE(h.feed(c, kGet));
  Message m;
  REQUIRE(h.response(c, &m));
  drainAll(h, &out);
  REQUIRE(h.pumpUntil([&] { return !out.sending(); }));
  CHECK(out.sent() == 0);
  CHECK(h.ctx.connections == 1);  // given back, waiting for its safe close
  REQUIRE(h.pumpUntil([&] { return c.eof; }, std::chrono::milliseconds(6000)));
  CHECK_FALSE(c.reset);
  c.close();
  REQUIRE(h.pumpUntil([&] { return h.ctx.connections == 0; }));
}

}  // namespace
}  // namespace lb::worker::test
