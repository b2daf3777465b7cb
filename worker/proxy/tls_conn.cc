// TLS on a client connection: the handshake, plaintext pulled out of the session into the
// request buffer, responses encrypted on their way out, and the close_notify. The HTTP/1.1 code
// sees the same input buffer and the same write completions as on a plain connection.
//
// OpenSSL may hold decrypted input that no socket event will announce (a client that pipelined
// several requests in one record): whenever such a connection could take input again, it is
// put on the worker's list of connections to pump on the next loop turn.

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <string_view>

#include "shared/log/log.h"
#include "shared/tls/server_context.h"
#include "worker/http1/error_pages.h"
#include "worker/http2/session.h"
#include "worker/net/tls_session.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker {

struct ClientTls {
  explicit ClientTls(SSL* ssl) : session(ssl) {}
  TlsSession session;
  std::string out;       // ciphertext not handed to the socket yet
  std::string inflight;  // ciphertext of the uv_write in flight
  uv_write_t wreq;
  bool handshaking = true;
  bool write_pending = false;
  // TLS 1.3 session tickets wait for the first response, so that they cost the client no
  // wake-up and lb no write of their own; hold_timer sends them if that response is slow (a
  // long poll), so that the client can resume its next connections.
  bool hold_output = false;
  TimerNode hold_timer;
  bool kicked = false;  // on WorkerContext::tls_kicks
  bool fed = false;     // the client has sent a byte
};

namespace {

constexpr size_t kScratchSize = 64 * 1024;
// How long session tickets wait for a response to travel with (the timer tick adds up to 0.1 s).
constexpr uint32_t kTicketHoldMs = 100;
constexpr size_t kMaxPendingOutput = 1024 * 1024;

// Empties `s`; a large one gives its memory back, so that an idle connection holds none.
void releaseBuffer(std::string* s) {
  if (s->capacity() > 4096) {
    std::string().swap(*s);
  } else {
    s->clear();
  }
}

void onIdle(uv_idle_t* h) {
  auto* ctx = static_cast<WorkerContext*>(h->data);
  std::vector<ClientConn*> due;
  due.swap(ctx->tls_kicks);
  uv_idle_stop(h);
  for (ClientConn* c : due) {
    c->tlsKicked();
  }
}

}  // namespace

bool ClientConn::startTls() {
  SSL* ssl = listener_->tls_context->newSsl();
  if (ssl == nullptr) {
    LB_ERROR("cannot create a TLS session: %s", tls::lastError().c_str());
    return false;
  }
  tls_ = new ClientTls(ssl);
  tls_->wreq.data = this;
  return true;
}

void ClientConn::freeTls() {
  if (tls_ == nullptr) {
    return;
  }
  if (tls_->kicked) {
    std::erase(ctx_->tls_kicks, this);
  }
  ctx_->timers.disarm(&tls_->hold_timer);
  delete tls_;
  tls_ = nullptr;
}

char* ClientConn::tlsScratch(size_t* size) {
  if (ctx_->tls_scratch.empty()) {
    ctx_->tls_scratch.resize(kScratchSize);
  }
  *size = ctx_->tls_scratch.size();
  return ctx_->tls_scratch.data();
}

void ClientConn::tlsRead(ssize_t nread) {
  if (nread > 0) {
    // A TLS client starts with a handshake record (0x16); an HTTP client with a method, in
    // capitals. Anything else is left to OpenSSL to refuse.
    char first = ctx_->tls_scratch[0];
    if (!tls_->fed && tls_->handshaking && first >= 'A' && first <= 'Z') {
      plainHttpOnTls();
      return;
    }
    tls_->fed = true;
    tls_->session.feed(ctx_->tls_scratch.data(), static_cast<size_t>(nread));
    tlsPump();
    return;
  }
  if (tls_->handshaking) {
    if (nread < 0) {
      ctx_->count(shm::Counter::TlsHandshakeFailed);
      LB_INFO("TLS handshake with %s failed: the client closed the connection", peerText().c_str());
      closeNow();
    }
    return;
  }
  onInput(nread);
}

void ClientConn::plainHttpOnTls() {
  static constexpr std::string_view kBody = "The plain HTTP request was sent to an HTTPS port.\n";
  static const std::string kResponse =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\nConnection: close\r\n\r\n" + std::string(kBody);
  ctx_->count(shm::Counter::TlsHandshakeFailed);
  ctx_->count(http1::errorCounter(400));
  ctx_->count(http1::classCounter(400));
  LB_INFO("TLS handshake with %s failed: the client sent plain HTTP; answered 400",
          peerText().c_str());
  freeTls();
  sm_.transition(ConnState::Error);
  uv_buf_t b =
      uv_buf_init(const_cast<char*>(kResponse.data()), static_cast<unsigned>(kResponse.size()));
  uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  // The request the client sent is read and dropped: closing on it would reset the connection
  // and could destroy the 400 before the client reads it.
  lingeringClose(kLingerMs);
}

void ClientConn::tlsPump() {
  TlsSession& s = tls_->session;
  if (tls_->handshaking) {
    TlsSession::Step step = s.handshake();
    const bool h2 = step == TlsSession::Step::Done && listener_->http2.enabled && s.alpn() == "h2";
    // A finished TLS 1.3 handshake leaves only session tickets to send: no client waits for
    // them, so they go out with the first response (or the close). An h2 connection writes
    // its SETTINGS at once anyway. TLS 1.2's last flight is the handshake itself: never held.
    if (step == TlsSession::Step::Done && !h2 && SSL_version(s.ssl()) == TLS1_3_VERSION) {
      tls_->hold_output = true;
      tls_->hold_timer.data = this;
      tls_->hold_timer.on_timeout = &ClientConn::onTicketHold;
      ctx_->timers.arm(&tls_->hold_timer, kTicketHoldMs);
    } else {
      tlsFlush();
    }
    if (closing_) {
      return;
    }
    if (step == TlsSession::Step::More) {
      return;
    }
    if (step == TlsSession::Step::Failed) {
      ctx_->count(shm::Counter::TlsHandshakeFailed);
      LB_INFO("TLS handshake with %s failed: %s", peerText().c_str(), s.error().c_str());
      closeNow();
      return;
    }
    tls_->handshaking = false;
    ctx_->count(shm::Counter::TlsHandshakes);
    if (s.resumed()) {
      ctx_->count(shm::Counter::TlsResumed);
    }
    sm_.transition(ConnState::ReadingRequest);
    if (h2 && !startH2()) {
      return;
    }
  }
  while (reading_ && !closing_ && tls_ != nullptr) {
    uv_buf_t space = inputSpace();
    if (space.len == 0) {
      stopReading();  // the request buffer is full: OpenSSL keeps the rest until it drains
      return;
    }
    ssize_t n = s.read(space.base, space.len);
    if (s.hasOutput() && !tls_->hold_output) {
      tlsFlush();  // alerts, key updates
      if (closing_) {
        return;
      }
    }
    if (n == 0) {
      onInput(0);
      return;
    }
    if (n < 0) {
      if (n == -2) {
        LB_INFO("TLS error from %s: %s", peerText().c_str(), s.error().c_str());
      }
      onInput(n == -1 ? UV_EOF : UV_EPROTO);
      return;
    }
    onInput(n);
  }
}

void ClientConn::kickTls() {
  if (tls_ == nullptr || tls_->handshaking || tls_->kicked || closing_ ||
      !tls_->session.hasInput()) {
    return;
  }
  tls_->kicked = true;
  ctx_->tls_kicks.push_back(this);
  if (!ctx_->tls_idle_ready) {
    uv_idle_init(ctx_->loop, &ctx_->tls_idle);
    ctx_->tls_idle.data = ctx_;
    ctx_->tls_idle_ready = true;
  }
  uv_idle_start(&ctx_->tls_idle, &onIdle);
}

void ClientConn::tlsKicked() {
  tls_->kicked = false;
  if (!closing_ && reading_ && sm_.state() != ConnState::Draining) {
    tlsPump();
  }
}

bool ClientConn::tlsWrite(const uv_buf_t* iov, int iovcnt) {
  for (int i = 0; i < iovcnt; ++i) {
    if (!tls_->session.write(iov[i].base, iov[i].len)) {
      LB_INFO("TLS error writing to %s: %s", peerText().c_str(), tls_->session.error().c_str());
      closeNow();
      return false;
    }
  }
  return true;
}

void ClientConn::onTicketHold(TimerNode* node) {
  auto* c = static_cast<ClientConn*>(node->data);
  if (!c->closing_ && c->tls_ != nullptr && c->tls_->hold_output) {
    c->tlsFlush();
  }
}

bool ClientConn::tlsFlush() {
  if (tls_->hold_output) {
    tls_->hold_output = false;
    ctx_->timers.disarm(&tls_->hold_timer);
  }
  tls_->session.takeOutput(&tls_->out);
  if (tls_->out.size() + tls_->inflight.size() > kMaxPendingOutput) {
    // Responses have their own backpressure; this is TLS traffic the client provokes (key
    // updates) and never reads.
    LB_INFO("client %s does not read its TLS output, closing", peerText().c_str());
    closeNow();
    return false;
  }
  if (tls_->write_pending) {
    return false;  // the rest follows when the write in flight completes (onTlsWritten)
  }
  if (tls_->out.empty()) {
    return true;
  }
  uv_buf_t out = uv_buf_init(tls_->out.data(), static_cast<unsigned>(tls_->out.size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &out, 1);
  if (n >= 0 && static_cast<size_t>(n) == tls_->out.size()) {
    releaseBuffer(&tls_->out);
    return true;
  }
  if (n < 0 && n != UV_EAGAIN) {
    closeNow();
    return false;
  }
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  // What is left goes out with uv_write.
  tls_->inflight.assign(tls_->out, done, std::string::npos);
  tls_->out.clear();
  uv_buf_t b = uv_buf_init(tls_->inflight.data(), static_cast<unsigned>(tls_->inflight.size()));
  if (uv_write(&tls_->wreq, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
               &ClientConn::onTlsWritten) != 0) {
    closeNow();
    return false;
  }
  tls_->write_pending = true;
  return false;
}

void ClientConn::onTlsWritten(uv_write_t* req, int status) {
  auto* c = static_cast<ClientConn*>(req->data);
  if (c->closing_ || c->tls_ == nullptr) {
    return;
  }
  c->tls_->write_pending = false;
  releaseBuffer(&c->tls_->inflight);
  if (status < 0) {
    c->closeNow();
    return;
  }
  if (!c->tlsFlush()) {
    return;  // more is on its way, or the connection closed
  }
  if (c->h2s_ != nullptr) {
    c->h2s_->onWritten(0);
    return;
  }
  // A response still waiting for the end of the loop turn is not part of this write (which
  // carried tickets, a 100 Continue or a key update).
  if (c->ex_ != nullptr && c->ex_->cl_write_pending && !c->ex_->cl_turn.queued) {
    c->clientWriteDone(0);
  }
}

void ClientConn::writeRaw(const char* data, size_t len) {
  if (stream_) {
    if (h2st_ != nullptr) {
      h2st_->session->submitContinue(h2st_);  // the only bytes lb writes outside a response
    }
    return;
  }
  uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  if (tls_ != nullptr) {
    if (tlsWrite(&b, 1)) {
      tlsFlush();
    }
    return;
  }
  uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
}

void ClientConn::sendBeforeClose() {
  Exchange* ex = ex_;
  if (stream_ || ex->cl_iovcnt == 0) {
    return;
  }
  if (tls_ == nullptr) {
    uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), ex->cl_iov,
                 static_cast<unsigned>(ex->cl_iovcnt));
    return;
  }
  if (tls_->handshaking || tls_->write_pending) {
    return;  // nothing may pass the write in flight
  }
  for (int i = 0; i < ex->cl_iovcnt; ++i) {
    if (!tls_->session.write(ex->cl_iov[i].base, ex->cl_iov[i].len)) {
      return;
    }
  }
  // tlsGoodbye, next in closeNow, sends these records (with the close_notify).
}

void ClientConn::tlsGoodbye(bool notify) {
  if (tls_ == nullptr || tls_->handshaking || tls_->write_pending) {
    return;
  }
  // Best effort, never blocking: the client learns that the response ended here.
  if (notify) {
    tls_->session.shutdown();
  } else {
    tls_->session.quietShutdown();
  }
  tls_->session.takeOutput(&tls_->out);
  if (!tls_->out.empty()) {
    uv_buf_t b = uv_buf_init(tls_->out.data(), static_cast<unsigned>(tls_->out.size()));
    uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  }
}

bool ClientConn::tlsHandshaking() const {
  return tls_ != nullptr && tls_->handshaking;
}

void ClientConn::tlsCloseNotify(bool flush) {
  if (tls_ != nullptr && !tls_->handshaking) {
    tls_->session.shutdown();
    if (flush) {
      tlsFlush();
    }
  }
}

const std::string& ClientConn::tlsClientSubject() const {
  static const std::string kNone;
  if (stream_) {
    return h2st_ != nullptr ? h2st_->session->carrier()->tlsClientSubject() : kNone;
  }
  return tls_ == nullptr ? kNone : tls_->session.clientSubject();
}

std::string ClientConn::peerText() const {
  char buf[64];
  if (peer_family_ == AF_INET) {
    inet_ntop(AF_INET, peer_addr_, buf, sizeof buf);
  } else if (peer_family_ == AF_INET6) {
    inet_ntop(AF_INET6, peer_addr_, buf, sizeof buf);
  } else {
    return "a client";
  }
  return std::string(buf) + ":" + std::to_string(peer_port_);
}

}  // namespace lb::worker
