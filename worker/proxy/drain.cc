// A client connection while its worker drains: handed to the next generation (worker/net/
// handoff.h), adopted from the previous one, or closed the safe way when there is no next
// generation, and the lingering close every safe close ends in. Part of ClientConn, like
// exchange.cc and response.cc.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "worker/http2/session.h"
#include "worker/net/handoff.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker {
namespace {

// A drain closes an idle connection only once it has been idle this long: a client that has
// just read a response is the one most likely to be sending its next request.
constexpr uint32_t kDrainGraceMs = 1000;
// Drain closes fall on at most this many distinct delays past the grace window (one timer queue
// each), never closer together than the timer tick.
constexpr uint32_t kDrainSlots = 32;
constexpr uint32_t kDrainStepMs = 100;

// Spreads a drain's closes; seeded in the worker process, so workers differ.
uint32_t randomBelow(uint32_t n) {
  static std::minstd_rand rng(static_cast<uint32_t>(::getpid()) ^
                              static_cast<uint32_t>(uv_hrtime()));
  return n == 0 ? 0 : static_cast<uint32_t>(rng() % n);
}

}  // namespace

void ClientConn::adopt(WorkerContext* ctx, const config::Listener* listener, int fd,
                       uint32_t requests, uint64_t idle_since_ms) {
  ClientConn* c = create(ctx, listener, fd);
  if (c == nullptr) {
    return;
  }
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    c->setPeer(reinterpret_cast<const sockaddr*>(&peer));
  }
  c->requests_ = requests;
  c->sm_.transition(ConnState::KeepAlive);
  if (ctx->draining) {
    c->drain();
    return;
  }
  // The keep-alive wait goes on from where the old worker left it.
  uint64_t now = uv_now(ctx->loop);
  if (idle_since_ms != 0 && idle_since_ms <= now) {
    c->idle_since_ = idle_since_ms;
  }
  uint64_t idle = now - c->idle_since_;
  uint32_t timeout = listener->limits.keepalive_timeout_ms;
  c->armClientTimer(idle < timeout ? static_cast<uint32_t>(timeout - idle) : 1);
  c->startReading();
}

bool ClientConn::idle() const {
  ConnState s = sm_.state();
  if (closing_ || h2s_ != nullptr || stream_ ||
      (s != ConnState::KeepAlive && s != ConnState::ReadingRequest)) {
    return false;
  }
  return ex_ == nullptr || (ex_->start_ms == 0 && ex_->in_start == ex_->in_end);
}

// A TLS session lives in this process's memory: such a connection cannot be handed over and
// ends with its current response.
bool ClientConn::closeForDrain() const {
  return draining_ || (ctx_->draining &&
                       (tls_ != nullptr || ctx_->handoff == nullptr || !ctx_->handoff->sending()));
}

void ClientConn::drain() {
  if (h2s_ != nullptr) {
    h2s_->drain();  // GOAWAY; the connection closes when its streams are done
    return;
  }
  if (tls_ != nullptr || ctx_->handoff == nullptr || !ctx_->handoff->sending()) {
    draining_ = true;
  }
  if (idle()) {
    drainIdle();
  }
}

void ClientConn::drainIdle() {
  releaseExchange();
  if (ctx_->handoff != nullptr && ctx_->handoff->sending() && handOff()) {
    return;
  }
  scheduleDrainClose();
}

// The descriptor that travels is a duplicate: closing the handle closes only this process's
// copy, so the socket sends no FIN and keeps what the client sent in its receive queue.
bool ClientConn::handOff() {
  if (tls_ != nullptr) {
    return false;
  }
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) {
    return false;
  }
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return false;
  }
  if (!ctx_->handoff->push(copy, listener_->address, requests_, idle_since_)) {
    ::close(copy);
    return false;
  }
  closeNow();
  return true;
}

void ClientConn::scheduleDrainClose() {
  const config::Config& cfg = *ctx_->config;
  drain_close_ = true;
  uint64_t idle_for = uv_now(ctx_->loop) - idle_since_;
  uint32_t grace = std::min(kDrainGraceMs, cfg.worker_shutdown_timeout_ms / 4);
  uint64_t wait = idle_for >= grace ? 0 : grace - idle_for;
  // Closes are spread so that the clients do not all reconnect at once, and end well before
  // worker_shutdown_timeout_ms cuts everything.
  uint32_t window = std::min(cfg.drain_window_ms, cfg.worker_shutdown_timeout_ms / 2);
  uint32_t step = std::max(kDrainStepMs, window / kDrainSlots);
  wait += randomBelow(window);
  wait = (wait + step - 1) / step * step;
  if (wait == 0) {
    lingeringClose(kDrainLingerMs);
    return;
  }
  idle_timer_ = true;
  armClientTimer(static_cast<uint32_t>(wait));
  startReading();
}

// After lb's last byte: FIN, then input is read and dropped until the client closes or
// `linger_ms` pass, so closing never turns unread bytes into a reset.
void ClientConn::lingeringClose(uint32_t linger_ms) {
  if (closing_) {
    return;
  }
  if (stream_) {
    closeNow();
    return;
  }
  idle_timer_ = false;
  drain_close_ = false;
  sm_.transition(ConnState::Draining);
  tlsCloseNotify();
  Exchange* ex = exchange();
  ex->shutdown_req.data = this;
  if (uv_shutdown(&ex->shutdown_req, reinterpret_cast<uv_stream_t*>(&tcp_),
                  &ClientConn::onShutdown) != 0) {
    closeNow();
    return;
  }
  armClientTimer(linger_ms);
  startReading();
}

void ClientConn::onShutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<ClientConn*>(req->data);
  if (status != 0 && status != UV_ECANCELED) {
    c->closeNow();
  }
}

}  // namespace lb::worker
