#include "e2e/harness/fake_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace lb::e2e {

namespace {

constexpr size_t kMaxRequestHead = 64 * 1024;
constexpr size_t kRecordedBody = 64 * 1024;
constexpr auto kIdleLimit = 120s;  // a connection nobody uses is dropped after this
constexpr auto kBodyLimit = 120s;  // reading one request body
constexpr auto kSendLimit = 60s;   // one send() of a handler

const char* reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

bool allDigits(std::string_view s) {
  return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

bool wantsClose(const UpstreamRequest& r) {
  if (r.headers.hasToken("Connection", "close")) {
    return true;
  }
  return r.version == "HTTP/1.0" && !r.headers.hasToken("Connection", "keep-alive");
}

}  // namespace

// ---- Exchange ---------------------------------------------------------------------------

bool Exchange::send(std::string_view bytes) {
  if (gone_ || stopping_) {
    return false;
  }
  // Piecewise, so bytesSent() shows progress while the peer applies backpressure.
  constexpr size_t kPiece = 16 * 1024;
  while (!bytes.empty()) {
    std::string_view piece = bytes.substr(0, kPiece);
    if (stream_.sendAll(piece, deadlineIn(kSendLimit)) != IoStatus::Ok) {
      gone_ = true;
      return false;
    }
    sent_ += piece.size();
    bytes.remove_prefix(piece.size());
  }
  return true;
}

bool Exchange::closing() const {
  return close_after_ || gone_ || wantsClose(request_);
}

bool Exchange::respond(int status, const HeaderList& headers, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  out += "X-Upstream: " + name_ + "\r\n";
  bool framed = false;
  for (const auto& [n, v] : headers) {
    out += n + ": " + v + "\r\n";
    framed =
        framed || equalsIgnoreCase(n, "Content-Length") || equalsIgnoreCase(n, "Transfer-Encoding");
  }
  bool no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
  if (!framed && !no_body) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (closing()) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!no_body && request_.method != "HEAD") {
    out += body;
  }
  return send(out);
}

bool Exchange::waitFor(const std::function<bool()>& cond, milliseconds max) {
  Deadline end = deadlineIn(max);
  while (!cond()) {
    if (stopping_ || gone_ || Clock::now() >= end) {
      return cond();
    }
    if (stream_.waitPeerGone(std::min(end, deadlineIn(5ms)))) {
      gone_ = true;
    }
  }
  return true;
}

void Exchange::resetNow() {
  stream_.reset();
  gone_ = true;
}

// ---- FakeUpstream -----------------------------------------------------------------------

FakeUpstream::FakeUpstream(std::string name, Handler handler)
    : name_(std::move(name)), handler_(handler ? std::move(handler) : upstream::named()) {
  listen_fd_ = listenTcp(0, 1024, &port_);
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!listen_fd_.valid() || !stop_fd_.valid()) {
    throw std::runtime_error("fake upstream " + name_ + ": cannot listen");
  }
  acceptor_ = std::thread([this] { acceptLoop(); });
}

FakeUpstream::~FakeUpstream() {
  stop();
  auto errors = protocolErrors();
  INFO("fake upstream " << name_ << " got malformed requests from lb");
  for (const auto& e : errors) {
    UNSCOPED_INFO(e);
  }
  CHECK(errors.empty());
}

void FakeUpstream::setBodyGate(std::shared_ptr<Gate> gate) {
  std::lock_guard<std::mutex> lock(mutex_);
  body_gate_ = std::move(gate);
}

void FakeUpstream::setHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  handler_ = std::move(handler);
}

Handler FakeUpstream::currentHandler() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return handler_;
}

std::vector<UpstreamRequest> FakeUpstream::received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_;
}

std::optional<UpstreamRequest> FakeUpstream::lastRequest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (records_.empty()) {
    return std::nullopt;
  }
  return records_.back();
}

std::vector<std::string> FakeUpstream::protocolErrors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return errors_;
}

std::vector<std::string> FakeUpstream::takeProtocolErrors() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.swap(errors_);
  return out;
}

bool FakeUpstream::waitForRequests(int n, milliseconds timeout) const {
  return waitUntil([&] { return requests_ >= n; }, timeout, 2ms);
}

void FakeUpstream::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(stop_fd_.get(), &one, sizeof one);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    t.join();
  }
  listen_fd_.reset();
}

void FakeUpstream::acceptLoop() {
  while (!stopping_) {
    pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    int n = ::poll(p, 2, 1000);
    if (n <= 0 || (p[1].revents & POLLIN)) {
      continue;
    }
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) {
      continue;
    }
    int number = ++connections_;
    std::lock_guard<std::mutex> lock(mutex_);
    threads_.emplace_back(
        [this, f = std::move(fd), number]() mutable { serve(std::move(f), number); });
  }
}

void FakeUpstream::protocolError(Stream& s, std::string what) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.push_back(name_ + ": " + std::move(what));
  }
  s.sendAll("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            deadlineIn(1s));
}

bool FakeUpstream::readRequest(Stream& s, UpstreamRequest* r, int number, int sequence) {
  uint64_t before = s.bytesReceived();
  IoStatus st = s.readUntil("\r\n\r\n", kMaxRequestHead, deadlineIn(kIdleLimit), &r->head);
  bytes_ += s.bytesReceived() - before;
  if (st != IoStatus::Ok) {
    // A head cut short by a close is not malformed; it just never becomes a request.
    if (st == IoStatus::Error) {
      protocolError(s, "request head over 64 KiB");
    }
    return false;
  }
  std::string start, why;
  if (!parseHead(r->head, &start, &r->headers, &why)) {
    protocolError(s, why);
    return false;
  }
  size_t sp1 = start.find(' ');
  size_t sp2 = start.rfind(' ');
  if (sp1 == std::string::npos || sp1 == sp2) {
    protocolError(s, "bad request line: " + start);
    return false;
  }
  r->method = start.substr(0, sp1);
  r->target = start.substr(sp1 + 1, sp2 - sp1 - 1);
  r->version = start.substr(sp2 + 1);
  r->connection = number;
  r->sequence = sequence;
  r->peer_port = 0;
  if (r->version != "HTTP/1.1" && r->version != "HTTP/1.0") {
    protocolError(s, "bad version in: " + start);
    return false;
  }
  size_t hosts = r->headers.count("Host");
  if (hosts > 1 || (hosts == 0 && r->version == "HTTP/1.1")) {
    protocolError(s, "HTTP/1.1 request without exactly one Host: " + start);
    return false;
  }
  bool has_te = r->headers.has("Transfer-Encoding");
  bool has_cl = r->headers.has("Content-Length");
  if (has_te && has_cl) {
    protocolError(s, "both Transfer-Encoding and Content-Length: " + r->head);
    return false;
  }
  uint64_t length = 0;
  if (has_te) {
    if (!equalsIgnoreCase(r->headers.joined("Transfer-Encoding"), "chunked")) {
      protocolError(s, "Transfer-Encoding other than chunked: " + r->head);
      return false;
    }
    r->chunked = true;
  } else if (has_cl) {
    auto values = r->headers.all("Content-Length");
    if (values.size() != 1 || !allDigits(values[0])) {
      protocolError(s, "bad Content-Length: " + r->head);
      return false;
    }
    length = std::stoull(values[0]);
  }

  ++requests_;
  size_t index;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(*r);
    index = records_.size() - 1;
  }
  if (auto_continue_ && r->headers.hasToken("Expect", "100-continue") && r->version == "HTTP/1.1") {
    s.sendAll("HTTP/1.1 100 Continue\r\n\r\n", deadlineIn(kSendLimit));
  }
  std::shared_ptr<Gate> gate;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gate = body_gate_;
  }
  if (gate) {
    waitUntil([&] { return gate->isOpen() || stopping_; }, kBodyLimit, 2ms);
  }
  before = s.bytesReceived();
  Deadline body_end = deadlineIn(kBodyLimit);
  if (r->chunked) {
    st = readChunked(s, body_end, &r->body, &r->trailers, &why);
    if (st == IoStatus::Error) {
      protocolError(s, "chunked body: " + why);
    }
  } else {
    st = s.readExact(length, body_end, [&](std::string_view d) { r->body.append(d); });
  }
  bytes_ += s.bytesReceived() - before;
  r->complete = st == IoStatus::Ok;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    UpstreamRequest& rec = records_[index];
    rec.complete = r->complete;
    rec.trailers = r->trailers;
    rec.body = Body(kRecordedBody);
    rec.body.append(r->body.data);
    rec.body.sum = r->body.sum;
    rec.body.truncated = r->body.truncated || r->body.data.size() > kRecordedBody;
  }
  return r->complete;
}

void FakeUpstream::serve(UniqueFd fd, int number) {
  ++active_;
  int peer = 0;
  {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      peer = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
  }
  Stream s(std::move(fd), stop_fd_.get());
  for (int sequence = 1; !stopping_; ++sequence) {
    UpstreamRequest r;
    if (!readRequest(s, &r, number, sequence)) {
      break;
    }
    r.peer_port = peer;
    Exchange ex(s, r, name_, stopping_, sent_);
    Handler h = currentHandler();
    h(ex);
    if (ex.closing() || s.fd() < 0) {
      break;
    }
  }
  --active_;
}

// ---- handlers ---------------------------------------------------------------------------

namespace upstream {

Handler named() {
  return [](Exchange& ex) { ex.respond(200, {}, ex.upstreamName()); };
}

Handler fixed(int status, std::string body, HeaderList headers) {
  return [=](Exchange& ex) { ex.respond(status, headers, body); };
}

Handler echo() {
  return [](Exchange& ex) {
    const auto& r = ex.request();
    ex.respond(200,
               {{"X-Body-Length", std::to_string(r.body.length())},
                {"X-Body-Checksum", r.body.checksum()},
                {"X-Request-Chunked", r.chunked ? "1" : "0"}},
               r.body.data);
  };
}

Handler sink() {
  return [](Exchange& ex) {
    const auto& r = ex.request();
    std::string len = std::to_string(r.body.length());
    ex.respond(200, {{"X-Body-Length", len}, {"X-Body-Checksum", r.body.checksum()}},
               len + " " + r.body.checksum());
  };
}

Handler stream(uint64_t n, bool chunked) {
  std::string sum = patternChecksumHex(n);
  return [=](Exchange& ex) {
    HeaderList h = {{"X-Body-Checksum", sum}, {"X-Body-Length", std::to_string(n)}};
    h.emplace_back(chunked ? "Transfer-Encoding" : "Content-Length",
                   chunked ? "chunked" : std::to_string(n));
    if (!ex.respond(200, h, "") || ex.request().method == "HEAD") {
      return;
    }
    std::string block;
    constexpr uint64_t kBlock = 64 * 1024;
    for (uint64_t off = 0; off < n; off += kBlock) {
      size_t len = static_cast<size_t>(std::min(kBlock, n - off));
      block = pattern(off, len);
      if (chunked) {
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        block = size_line + block + "\r\n";
      }
      if (!ex.send(block)) {
        return;
      }
    }
    if (chunked) {
      ex.send("0\r\n\r\n");
    }
  };
}

Handler delayed(milliseconds delay, Handler then) {
  return [=](Exchange& ex) {
    Deadline end = deadlineIn(delay);
    ex.waitFor([&] { return Clock::now() >= end; }, delay + 1s);
    if (!ex.stopping()) {
      then(ex);
    }
  };
}

Handler gated(std::shared_ptr<Gate> gate, Handler then, milliseconds max) {
  return [=](Exchange& ex) {
    ex.waitFor([&] { return gate->isOpen(); }, max);
    if (!ex.stopping()) {
      then(ex);
    }
  };
}

Handler closeWithoutAnswer() {
  return [](Exchange& ex) { ex.closeAfter(); };
}

Handler reset() {
  return [](Exchange& ex) { ex.resetNow(); };
}

Handler malformed() {
  return [](Exchange& ex) {
    ex.send("THIS IS NOT HTTP\r\n\r\n");
    ex.closeAfter();
  };
}

Handler hang() {
  return [](Exchange& ex) {
    ex.waitFor([] { return false; }, 120s);
    ex.closeAfter();
  };
}

Handler raw(std::string bytes, bool close_after) {
  return [=](Exchange& ex) {
    ex.send(bytes);
    if (close_after) {
      ex.closeAfter();
    }
  };
}

}  // namespace upstream

}  // namespace lb::e2e
