#pragma once

// In-process fake upstream servers: a thread with its own listening socket on a free port and a
// thread per accepted connection (plain sockets + poll, every wait bounded and interrupted by
// stop()). Each server counts TCP connections and requests, records the request heads it got,
// and checks that what lb sends is well-formed HTTP/1.1. A Handler decides how each request is
// answered; the factories in namespace `upstream` cover the behaviours the tests need.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness/http_client.h"
#include "e2e/harness/http_message.h"
#include "e2e/harness/net.h"

namespace lb::e2e {

struct UpstreamRequest {
  std::string method;
  std::string target;
  std::string version;  // "HTTP/1.1"
  Headers headers;
  std::string head;  // raw, as received
  Body body;         // the whole body for the handler; records keep the first 64 KiB
  bool chunked = false;
  Headers trailers;
  int connection = 0;     // 1-based number of the TCP connection on this server
  int sequence = 0;       // 1 for the first request on that connection
  int peer_port = 0;      // lb's local port of that connection
  bool complete = false;  // the body was read completely
};

// A latch a test opens to release held requests.
class Gate {
 public:
  void open() { open_ = true; }
  bool isOpen() const { return open_; }

 private:
  std::atomic<bool> open_{false};
};

// One request being answered; only valid inside a Handler call, on the connection's thread.
class Exchange {
 public:
  Exchange(Stream& stream, const UpstreamRequest& request, const std::string& name,
           const std::atomic<bool>& stopping, std::atomic<uint64_t>& sent)
      : stream_(stream), request_(request), name_(name), stopping_(stopping), sent_(sent) {}

  const UpstreamRequest& request() const { return request_; }
  const std::string& upstreamName() const { return name_; }
  // Raw bytes. False if the connection broke or the server is stopping.
  bool send(std::string_view bytes);
  // A complete response: status line, "X-Upstream: <name>", `headers`, then Content-Length
  // (unless `headers` frame the body themselves), then the body; no body bytes for HEAD,
  // 1xx, 204 and 304. Adds "Connection: close" when the connection will close.
  bool respond(int status, const HeaderList& headers, std::string_view body);
  // Waits until `cond` holds, the peer closes, the server stops or `max` passes; returns cond().
  bool waitFor(const std::function<bool()>& cond, milliseconds max);
  // Close the connection once the handler returns.
  void closeAfter() { close_after_ = true; }
  // Reset (RST) the connection now.
  void resetNow();
  bool closing() const;
  bool stopping() const { return stopping_; }

 private:
  Stream& stream_;
  const UpstreamRequest& request_;
  const std::string& name_;
  const std::atomic<bool>& stopping_;
  std::atomic<uint64_t>& sent_;
  bool close_after_ = false;
  bool gone_ = false;

  friend class FakeUpstream;
};

using Handler = std::function<void(Exchange&)>;

class FakeUpstream {
 public:
  // Starts listening on 127.0.0.1 (free port) and serving. `name` is sent as X-Upstream and is
  // the body of upstream::named(). Throws std::runtime_error if it cannot listen.
  explicit FakeUpstream(std::string name, Handler handler = nullptr);
  // stop(), then CHECKs that lb sent nothing malformed (see protocolErrors()).
  ~FakeUpstream();
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  void setHandler(Handler handler);
  // Answer "Expect: 100-continue" with an interim 100 before reading the body (default true).
  void setAutoContinue(bool on) { auto_continue_ = on; }
  // Until `gate` opens, request bodies are not read (for upload backpressure tests).
  void setBodyGate(std::shared_ptr<Gate> gate);

  int connections() const { return connections_; }
  int activeConnections() const { return active_; }
  // Requests whose head was received (counted before the body is read).
  int requests() const { return requests_; }
  uint64_t bytesReceived() const { return bytes_; }
  // Bytes handlers have sent (heads and bodies).
  uint64_t bytesSent() const { return sent_; }
  std::vector<UpstreamRequest> received() const;
  std::optional<UpstreamRequest> lastRequest() const;
  // Malformed requests from lb (bad framing, bare LF, both Content-Length and
  // Transfer-Encoding, ...). Each one was answered 400 and its connection closed.
  std::vector<std::string> protocolErrors() const;
  // Returns and forgets them (for tests that send malformed requests on purpose).
  std::vector<std::string> takeProtocolErrors();
  bool waitForRequests(int n, milliseconds timeout = 5s) const;

  // Stops accepting, interrupts every connection and joins all threads. Idempotent.
  void stop();

 private:
  void acceptLoop();
  void serve(UniqueFd fd, int number);
  // Reads and checks one request; false (and records why) if the connection should end.
  bool readRequest(Stream& s, UpstreamRequest* r, int number, int sequence);
  void protocolError(Stream& s, std::string what);
  Handler currentHandler() const;

  std::string name_;
  int port_ = 0;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> auto_continue_{true};
  std::atomic<int> connections_{0};
  std::atomic<int> active_{0};
  std::atomic<int> requests_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> sent_{0};
  std::shared_ptr<Gate> body_gate_;

  mutable std::mutex mutex_;
  Handler handler_;
  std::vector<UpstreamRequest> records_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

namespace upstream {

// 200 with the upstream's name as body (the default handler).
Handler named();
// `status` with `body` and extra headers.
Handler fixed(int status, std::string body, HeaderList headers = {});
// 200 echoing the request body, with X-Body-Length, X-Body-Checksum and X-Request-Chunked.
Handler echo();
// 200 with body "<length> <checksum>" of the request body (for bodies too large to echo).
Handler sink();
// 200 with `n` pattern bytes, Content-Length or chunked, X-Body-Checksum set.
Handler stream(uint64_t n, bool chunked);
// Waits `delay` (bounded, interruptible), then runs `then`.
Handler delayed(milliseconds delay, Handler then);
// Holds the request until `gate` opens (at most `max`), then runs `then`.
Handler gated(std::shared_ptr<Gate> gate, Handler then, milliseconds max = 20s);
// Closes the connection without answering.
Handler closeWithoutAnswer();
// Resets the connection (SO_LINGER 0) without answering.
Handler reset();
// Answers with bytes that are not HTTP.
Handler malformed();
// Never answers; the connection stays open until lb closes it or the server stops.
Handler hang();
// Sends `bytes` verbatim; closes afterwards if `close_after`.
Handler raw(std::string bytes, bool close_after = false);

}  // namespace upstream

}  // namespace lb::e2e
