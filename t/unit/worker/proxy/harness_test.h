#pragma once

// A worker's HTTP/1.1 side under test, without a worker process: a WorkerContext built by hand
// (loop, config, shared-memory segment, balancers, timers), client connections that are loopback
// TCP pairs whose lb end goes to ClientConn::accept, and an upstream that is the test itself,
// answering on sockets it accepts. The loop runs in bounded steps on the test thread, so every
// byte either side sees is known and every wait has a deadline. Header-only: shared by the
// *_test.cc files of this directory.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/config/load.h"
#include "shared/shm/segment.h"
#include "worker/balancer/balancer.h"
#include "worker/http1/headers.h"
#include "worker/http2/session.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker::test {

using Clock = std::chrono::steady_clock;

// --- A strict reader for the messages lb sends (test side) ------------------------------------

enum class Parse { Incomplete, Complete, Invalid };

struct Message {
  std::string start;  // request line or status line
  std::vector<std::pair<std::string, std::string>> headers;
  std::string head;  // raw, through the blank line
  std::string body;  // decoded
  size_t size = 0;   // bytes taken from the stream

  int count(std::string_view name) const {
    int n = 0;
    for (const auto& [k, v] : headers) {
      n += http1::equalsIgnoreCase(k, name) ? 1 : 0;
    }
    return n;
  }
  std::string get(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (http1::equalsIgnoreCase(k, name)) {
        return v;
      }
    }
    return {};
  }
  int status() const { return start.size() >= 12 ? std::stoi(start.substr(9, 3)) : 0; }
};

inline Parse readChunked(std::string_view in, size_t p, Message* m) {
  for (;;) {
    size_t le = in.find("\r\n", p);
    if (le == std::string_view::npos) {
      return Parse::Incomplete;
    }
    std::string_view line = in.substr(p, le - p);
    line = line.substr(0, line.find(';'));
    size_t n = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), n, 16);
    if (line.empty() || ec != std::errc() || end != line.data() + line.size()) {
      return Parse::Invalid;
    }
    p = le + 2;
    if (n == 0) {
      for (;;) {  // trailers up to the blank line
        le = in.find("\r\n", p);
        if (le == std::string_view::npos) {
          return Parse::Incomplete;
        }
        bool blank = le == p;
        p = le + 2;
        if (blank) {
          m->size = p;
          return Parse::Complete;
        }
      }
    }
    if (in.size() < p + n + 2) {
      return Parse::Incomplete;
    }
    m->body.append(in.substr(p, n));
    if (in.substr(p + n, 2) != "\r\n") {
      return Parse::Invalid;
    }
    p += n + 2;
  }
}

// Reads the message at the front of `in`. Requests have a body by Content-Length or chunked;
// responses have none when `no_body`, else by Content-Length, chunked, or up to `eof`.
inline Parse readMessage(std::string_view in, bool response, bool no_body, bool eof, Message* m) {
  *m = Message();
  size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return Parse::Incomplete;
  }
  m->head = std::string(in.substr(0, end + 4));
  std::string_view rest = in.substr(0, end + 2);
  size_t le = rest.find("\r\n");
  m->start = std::string(rest.substr(0, le));
  rest.remove_prefix(le + 2);
  while (!rest.empty()) {
    le = rest.find("\r\n");
    std::string_view line = rest.substr(0, le);
    rest.remove_prefix(le + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.find('\n') != std::string::npos ||
        line.find('\r') != std::string::npos || line[colon - 1] == ' ') {
      return Parse::Invalid;
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    m->headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  size_t body_at = end + 4;
  std::string te = m->get("transfer-encoding");
  if (m->count("content-length") > 1 || (!te.empty() && m->count("content-length") > 0)) {
    return Parse::Invalid;
  }
  if (no_body) {
    m->size = body_at;
  } else if (!te.empty()) {
    return te == "chunked" ? readChunked(in, body_at, m) : Parse::Invalid;
  } else if (m->count("content-length") == 1) {
    size_t n = std::stoul(m->get("content-length"));
    if (in.size() < body_at + n) {
      return Parse::Incomplete;
    }
    m->body = std::string(in.substr(body_at, n));
    m->size = body_at + n;
  } else if (response) {
    if (!eof) {
      return Parse::Incomplete;
    }
    m->body = std::string(in.substr(body_at));
    m->size = in.size();
  } else {
    m->size = body_at;
  }
  return Parse::Complete;
}

// --- Sockets ---------------------------------------------------------------------------------

// Also without Nagle: a second small piece must not wait for lb's delayed ACK of the first.
inline void setNonBlocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

inline int listenLoopback(bool non_blocking, uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(fd, 64) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  *port = ntohs(a.sin_port);
  if (non_blocking) {
    setNonBlocking(fd);
  }
  return fd;
}

inline int ioctlInt(int fd, unsigned long request) {
  int n = 0;
  return ::ioctl(fd, request, &n) == 0 ? n : 0;  // a closed descriptor holds nothing
}

// The test's end of one TCP connection, with everything it received.
struct Peer {
  int fd = -1;
  int lb_fd = -1;        // lb's end, once known
  uint16_t lb_port = 0;  // lb's local port (upstream connections)
  std::string in;
  size_t taken = 0;  // bytes of `in` consumed as complete messages
  bool eof = false;  // FIN or reset seen
  bool reset = false;

  void readAvailable() {
    char buf[16384];
    while (fd >= 0 && !eof) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        eof = true;
      } else if (errno != EINTR) {
        if (errno != EAGAIN) {
          eof = reset = true;
        }
        return;
      }
    }
  }
  std::string_view unread() const { return std::string_view(in).substr(taken); }
  void close() {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
};

// --- The worker under test ---------------------------------------------------------------------

inline constexpr const char* kConfig = R"(
listeners = (
  { name = "static"; listen = "127.0.0.1:1";
    return = { status = 200; headers = { X-Test = "yes"; }; body = "hello"; }; },
  { name = "proxy"; listen = "127.0.0.1:2"; pool = "app";
    client_max_header_size = 1024; client_max_body_size = 4096; },
  { name = "routed"; listen = "127.0.0.1:3"; routes = "site"; }
);
routes = (
  { name = "site";
    rules = (
      { path_prefix = "/one"; return = { status = 200; body = "1"; }; },
      { path_prefix = "/two"; return = { status = 201; headers = { X-Two = "2"; }; body = "22"; }; },
      { path_prefix = "/three"; return = { status = 202; body = "333"; }; },
      { host = "example.com"; pool = "app"; }
    ); }
);
pools = ( { name = "app"; backends = ( { address = "127.0.0.1:@UPSTREAM@"; } ); } );
)";

// One worker's context on a private loop, serving kConfig with the test as its only backend.
// Listeners are never bound: connect() hands lb the accepted end of a fresh loopback pair.
// Everything runs on the calling thread; no method blocks longer than its deadline.
class Harness {
 public:
  Harness() {
    ::signal(SIGPIPE, SIG_IGN);
    uint16_t front_port = 0;
    front_fd_ = listenLoopback(false, &front_port);
    upstream_fd_ = listenLoopback(true, &upstream_port_);
    front_.sin_family = AF_INET;
    front_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    front_.sin_port = htons(front_port);

    std::string text = kConfig;
    text.replace(text.find("@UPSTREAM@"), 10, std::to_string(upstream_port_));
    auto cfg = config::loadConfigFromString(text, "test.conf");
    if (!cfg) {
      for (const auto& e : cfg.error()) {
        UNSCOPED_INFO(e.toString());
      }
    }
    REQUIRE(cfg);
    config_ = std::move(*cfg);
    static std::atomic<int> counter{0};
    segment_name_ = "lb.unit." + std::to_string(::getpid()) + ".h1." + std::to_string(counter++);
    auto seg = shm::SharedSegment::create(segment_name_);
    REQUIRE(seg);
    segment_ = std::move(*seg);
    REQUIRE(segment_->assignSlots(config_));

    REQUIRE(uv_loop_init(&loop_) == 0);
    ctx.loop = &loop_;
    ctx.config = &config_;
    ctx.segment = segment_->get();
    ctx.slot = &ctx.segment->workers[0];
    ctx.pools.resize(config_.pools.size());
    for (size_t i = 0; i < config_.pools.size(); ++i) {
      ctx.pools[i].pool = &config_.pools[i];
      ctx.pools[i].balancer = makeBalancer(config_.pools[i], ctx.segment);
      ctx.pools[i].idle.resize(config_.pools[i].backends.size());
    }
    ctx.timers.start(&loop_, 100);
    ctx.turn.init(&loop_);
  }

  ~Harness() {
    for (Peer& p : clients_) {
      p.close();
    }
    for (Peer& p : upstreams_) {
      p.close();
    }
    for (ClientConn* c = ctx.clients; c != nullptr;) {
      ClientConn* next = c->next();
      c->abort();
      c = next;
    }
    UpstreamConn::closeAllIdle(&ctx);
    ctx.timers.stop();
    ctx.turn.close();
    for (int i = 0; i < 1000 && uv_loop_close(&loop_) == UV_EBUSY; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
    for (Exchange* e : ctx.free_exchanges) {
      delete e;
    }
    ctx.free_exchanges.clear();
    http2::releaseSpareStreams(&ctx);
    ctx.pools.clear();
    ::close(front_fd_);
    ::close(upstream_fd_);
    segment_.reset();
    shm::SharedSegment::remove(segment_name_);
  }

  // A new client connection on the listener `name`, adopted by ClientConn::accept.
  Peer& connect(const std::string& name) {
    int index = -1;
    for (size_t i = 0; i < config_.listeners.size(); ++i) {
      if (config_.listeners[i].name == name) {
        index = static_cast<int>(i);
      }
    }
    REQUIRE(index >= 0);
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&front_), sizeof(front_)) == 0);
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    int s = ::accept4(front_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    REQUIRE(s >= 0);
    setNonBlocking(c);
    setNonBlocking(s);
    ClientConn::accept(&ctx, &config_.listeners[index], index, s,
                       reinterpret_cast<sockaddr*>(&peer));
    clients_.emplace_back();
    clients_.back().fd = c;
    clients_.back().lb_fd = s;
    return clients_.back();
  }

  // One bounded turn: wait (10 ms at most) for the loop or a test socket, run the loop once
  // without blocking, accept upstream connections, read what arrived.
  void pumpOnce(int max_ms = 10) {
    std::vector<pollfd> fds{{uv_backend_fd(&loop_), POLLIN, 0}, {upstream_fd_, POLLIN, 0}};
    for (auto* list : {&clients_, &upstreams_}) {
      for (Peer& p : *list) {
        if (p.fd >= 0 && !p.eof) {
          fds.push_back({p.fd, POLLIN, 0});
        }
      }
    }
    int t = uv_backend_timeout(&loop_);
    ::poll(fds.data(), fds.size(), t < 0 || t > max_ms ? max_ms : t);
    uv_run(&loop_, UV_RUN_NOWAIT);
    for (;;) {
      sockaddr_in a{};
      socklen_t len = sizeof(a);
      int s = ::accept4(upstream_fd_, reinterpret_cast<sockaddr*>(&a), &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (s < 0) {
        break;
      }
      upstreams_.emplace_back();
      setNonBlocking(s);
      upstreams_.back().fd = s;
      upstreams_.back().lb_port = ntohs(a.sin_port);
    }
    for (auto* list : {&clients_, &upstreams_}) {
      for (Peer& p : *list) {
        p.readAvailable();
      }
    }
  }

  bool pumpUntil(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) {
        return false;
      }
      pumpOnce();
    }
    return true;
  }

  // Writes `data` from the test's end and runs the loop until lb has read all of it: none of it
  // is left unsent on the test's side (SIOCOUTQNSD; not SIOCOUTQ, which waits for lb's delayed
  // ACK) nor unread in lb's receive queue. False if lb closed or never read.
  bool feed(Peer& p, std::string_view data) {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(p.fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EAGAIN && Clock::now() < deadline) {
        pumpOnce();
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
    return pumpUntil([&] {
      int fd = p.lb_port != 0 && p.eof ? -1 : lbFd(p);  // an upstream lb closed is gone
      return (p.reset || ioctlInt(p.fd, SIOCOUTQNSD) == 0) &&
             (fd < 0 || ioctlInt(fd, FIONREAD) == 0);
    });
  }

  // The next complete response on `c`; false if none arrives (or it is malformed).
  bool response(Peer& c, Message* m, bool head_request = false) {
    Parse r = Parse::Incomplete;
    pumpUntil([&] {
      r = readMessage(c.unread(), true, head_request, c.eof, m);
      return r != Parse::Incomplete || (c.eof && c.unread().empty());
    });
    if (r == Parse::Complete) {
      c.taken += m->size;
    }
    return r == Parse::Complete;
  }

  // The next complete request some upstream connection received; false if none comes.
  bool upstreamRequest(Peer** on, Message* m,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    Parse r = Parse::Incomplete;
    pumpUntil(
        [&] {
          for (Peer& u : upstreams_) {
            r = readMessage(u.unread(), false, false, u.eof, m);
            if (r != Parse::Incomplete) {
              *on = &u;
              return true;
            }
          }
          return false;
        },
        limit);
    if (r == Parse::Complete) {
      (*on)->taken += m->size;
    }
    return r == Parse::Complete;
  }

  // Closes every client connection from the test's end and waits until lb has closed its ends.
  void closeClients() {
    for (Peer& p : clients_) {
      p.close();
    }
    REQUIRE(pumpUntil([&] { return ctx.connections == 0; }));
    clients_.clear();
  }

  // Closes every upstream connection from the test's end.
  void closeUpstreams() {
    for (Peer& p : upstreams_) {
      p.close();
    }
  }

  // Closes every connection from the test's end, upstream ones too (also those lb opens while
  // it gives up), and waits until lb has no client connection left.
  void closeAll() {
    REQUIRE(pumpUntil([&] {
      for (auto* list : {&clients_, &upstreams_}) {
        for (Peer& p : *list) {
          p.close();
        }
      }
      return ctx.connections == 0;
    }));
    clients_.clear();
  }

  std::deque<Peer>& upstreams() { return upstreams_; }
  // Upstream connections lb started (whether or not the test has accepted them yet).
  uint64_t upstreamConnects() {
    return std::max<uint64_t>(ctx.backendSlot(0, 0).connections.load(), upstreams_.size());
  }

  WorkerContext ctx;

 private:
  // lb's descriptor for an upstream connection: the loop's TCP handle bound to lb_port.
  int lbFd(Peer& p) {
    if (p.lb_fd >= 0 || p.lb_port == 0) {
      return p.lb_fd;
    }
    std::pair<uint16_t, int> find{p.lb_port, -1};
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) {
          auto* f = static_cast<std::pair<uint16_t, int>*>(arg);
          uv_os_fd_t fd;
          if (h->type != UV_TCP || uv_is_closing(h) || uv_fileno(h, &fd) != 0) {
            return;
          }
          sockaddr_in a{};
          socklen_t len = sizeof(a);
          if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
              a.sin_family == AF_INET && ntohs(a.sin_port) == f->first) {
            f->second = fd;
          }
        },
        &find);
    p.lb_fd = find.second;
    return p.lb_fd;
  }

  uv_loop_t loop_{};
  config::Config config_;
  std::string segment_name_;
  std::unique_ptr<shm::SharedSegment> segment_;
  int front_fd_ = -1;
  int upstream_fd_ = -1;
  uint16_t upstream_port_ = 0;
  sockaddr_in front_{};
  std::deque<Peer> clients_;
  std::deque<Peer> upstreams_;
};

// --- Helpers for the tests ------------------------------------------------------------------

// What the "static" listener answers.
inline const std::string kStaticResponse =
    "HTTP/1.1 200 OK\r\nX-Test: yes\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

inline std::string_view piece(const std::string& s, size_t from, size_t to = std::string::npos) {
  return std::string_view(s).substr(from, to == std::string::npos ? to : to - from);
}

// --- Proxying ---------------------------------------------------------------------------------

struct RoundTrip {
  Message upstream;  // the request as the backend received it
  Message client;    // the response as the client received it
};

// One proxied exchange on `c`: the request written split at `k`, the backend's response (to the
// next request any upstream connection received) written split at `j`.
inline RoundTrip roundTrip(Harness& h, Peer& c, const std::string& req, size_t k,
                           const std::string& resp, size_t j, bool head_request = false) {
  RoundTrip rt;
  REQUIRE(h.feed(c, piece(req, 0, k)));
  REQUIRE(h.feed(c, piece(req, k)));
  Peer* u = nullptr;
  REQUIRE(h.upstreamRequest(&u, &rt.upstream));
  REQUIRE(h.feed(*u, piece(resp, 0, j)));
  REQUIRE(h.feed(*u, piece(resp, j)));
  REQUIRE(h.response(c, &rt.client, head_request));
  return rt;
}

inline const std::string kOkResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: 1\r\n\r\nok";

// --- Refusals ---------------------------------------------------------------------------------

// What happened to `req` written split at `k` on a fresh connection to `listener`: "" when lb
// answered `status` with Connection: close, closed the connection and never contacted the
// upstream; otherwise a description of what it did instead.
inline std::string refusal(Harness& h, const std::string& listener, const std::string& req,
                           size_t k, int status) {
  Peer& c = h.connect(listener);
  h.feed(c, piece(req, 0, k));  // lb may close before it takes everything
  h.feed(c, piece(req, k));
  h.pumpUntil([&] { return c.eof || h.upstreamConnects() > 0; });
  std::string what;
  Message m;
  Parse r = readMessage(c.in, true, false, c.eof, &m);
  if (h.upstreamConnects() > 0) {
    Peer* u = nullptr;
    Message got;
    bool forwarded = h.upstreamRequest(&u, &got, std::chrono::milliseconds(200));
    what = forwarded ? "forwarded: " + got.head : "upstream contacted";
    h.closeAll();
    return what;
  } else if (r != Parse::Complete) {
    what = "no valid response: " + c.in;
  } else if (m.status() != status || m.get("connection") != "close") {
    what = "answered: " + m.head;
  } else if (!c.eof || m.size != c.in.size()) {
    what = "not closed after: " + m.head;
  }
  h.closeClients();
  return what;
}

// Every split of `req` is refused with `status`; reports the first split that is not.
inline void expectRefusedAtEverySplit(const std::string& listener, const std::string& req,
                                      int status, size_t stride = 1) {
  Harness h;
  for (size_t k = 0; k <= req.size();
       k = k + stride > req.size() && k < req.size() ? req.size() : k + stride) {
    std::string what = refusal(h, listener, req, k, status);
    INFO("split at " << k);
    REQUIRE(what == "");
  }
  CHECK(h.upstreamConnects() == 0);
}

}  // namespace lb::worker::test
