#include "worker/checker/probe.h"

#include <unistd.h>

#include <algorithm>

#include "shared/tls/client_context.h"
#include "worker/net/tls_session.h"

namespace lb::worker {
namespace {

constexpr size_t kMaxBody = 64 * 1024;

std::string hostHeader(const config::HealthCheck& check, const config::Backend& backend) {
  return check.host.empty() ? backend.address_text : check.host;
}

}  // namespace

Probe::Probe(uv_loop_t* loop, const config::HealthCheck& check, const config::Backend& backend,
             OnResult on_result)
    : loop_(loop),
      check_(check),
      backend_(backend),
      on_result_(std::move(on_result)),
      rng_(static_cast<uint32_t>(::getpid()) * 2654435761u ^
           static_cast<uint32_t>(reinterpret_cast<uintptr_t>(this))) {
  request_ = check_.method + " " + check_.path +
             " HTTP/1.1\r\nHost: " + hostHeader(check_, backend_) +
             "\r\nUser-Agent: lb-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  llhttp_settings_init(&settings_);
  settings_.on_headers_complete = &Probe::onHeadersComplete;
  settings_.on_body = &Probe::onBody;
  settings_.on_message_complete = &Probe::onMessageComplete;
  uv_timer_init(loop_, &tick_);
  uv_timer_init(loop_, &timeout_);
  tick_.data = this;
  timeout_.data = this;
  open_handles_ = 2;
}

Probe::~Probe() = default;

void Probe::useTls(const tls::ClientContext* context, int backend_index) {
  tls_context_ = context;
  backend_index_ = backend_index;
}

void Probe::start(uint64_t first_delay_ms) {
  uv_timer_start(&tick_, &Probe::onTick, first_delay_ms, 0);
}

uint64_t Probe::nextDelay() {
  uint64_t delay = check_.interval_ms;
  if (check_.jitter_ms > 0) {
    rng_ = rng_ * 1103515245u + 12345u;  // spreading only; nothing depends on its quality
    uint64_t span = 2ull * check_.jitter_ms + 1;
    int64_t offset = static_cast<int64_t>((rng_ >> 8) % span) - check_.jitter_ms;
    delay = static_cast<uint64_t>(std::max<int64_t>(1, static_cast<int64_t>(delay) + offset));
  }
  return delay;
}

void Probe::onTick(uv_timer_t* t) {
  static_cast<Probe*>(t->data)->begin();
}

void Probe::begin() {
  if (stopping_ || in_check_) {
    return;
  }
  in_check_ = true;
  status_ = 0;
  complete_ = false;
  body_.clear();
  uv_timer_start(&timeout_, &Probe::onTimeout, check_.timeout_ms, 0);
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  tcp_open_ = true;
  ++open_handles_;
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, &tcp_, backend_.address.sockaddr_ptr(), &Probe::onConnect);
  if (rc != 0) {
    finish(false, std::string("connect: ") + uv_strerror(rc));
  }
}

void Probe::onTimeout(uv_timer_t* t) {
  auto* p = static_cast<Probe*>(t->data);
  p->finish(false, "timeout after " + std::to_string(p->check_.timeout_ms) + " ms");
}

void Probe::onConnect(uv_connect_t* req, int status) {
  auto* p = static_cast<Probe*>(req->data);
  if (!p->in_check_ || status == UV_ECANCELED) {
    return;
  }
  if (status < 0) {
    p->finish(false, std::string("connect: ") + uv_strerror(status));
    return;
  }
  if (p->tls_context_ != nullptr) {
    SSL* ssl = p->tls_context_->newSsl(p->backend_index_);
    if (ssl == nullptr) {
      p->finish(false, "TLS: cannot create a session");
      return;
    }
    p->tls_ = std::make_unique<TlsSession>(ssl, TlsSession::Role::Client);
    p->handshaking_ = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp_), &Probe::onAlloc, &Probe::onRead);
    p->tlsStep();  // the ClientHello
    return;
  }
  if (p->check_.type == config::HealthCheck::Type::Tcp) {
    p->finish(true, "connected");
    return;
  }
  llhttp_init(&p->parser_, HTTP_RESPONSE, &p->settings_);
  p->parser_.data = p;
  uv_buf_t b = uv_buf_init(p->request_.data(), static_cast<unsigned>(p->request_.size()));
  p->write_req_.data = p;
  int rc =
      uv_write(&p->write_req_, reinterpret_cast<uv_stream_t*>(&p->tcp_), &b, 1, &Probe::onWritten);
  if (rc != 0) {
    p->finish(false, std::string("send: ") + uv_strerror(rc));
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp_), &Probe::onAlloc, &Probe::onRead);
}

void Probe::tlsStep() {
  if (handshaking_) {
    TlsSession::Step step = tls_->handshake();
    flushTls();
    if (!in_check_ || step == TlsSession::Step::More) {
      return;
    }
    if (step == TlsSession::Step::Failed) {
      tls_context_->forgetSession(backend_index_);
      finish(false,
             "TLS handshake: " + tls::ClientContext::handshakeError(tls_->ssl(), tls_->error()));
      return;
    }
    handshaking_ = false;
    if (check_.type == config::HealthCheck::Type::Tcp) {
      finish(true, "TLS handshake done");
      return;
    }
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
    if (!tls_->write(request_.data(), request_.size())) {
      finish(false, "TLS: " + tls_->error());
      return;
    }
    flushTls();
  }
  // The ciphertext read into buf_ is with OpenSSL already: buf_ takes the plaintext.
  while (in_check_) {
    ssize_t n = tls_->read(buf_, sizeof buf_);
    if (tls_->hasOutput()) {
      flushTls();
    }
    if (n == 0) {
      return;
    }
    if (n == -1) {
      endOfInput();
      return;
    }
    if (n < 0) {
      finish(false, "TLS: " + tls_->error());
      return;
    }
    consume(buf_, static_cast<size_t>(n));
  }
}

void Probe::flushTls() {
  tls_->takeOutput(&tls_out_);
  if (tls_writing_ || tls_out_.empty() || !in_check_) {
    return;  // the rest follows when the write in flight completes
  }
  tls_wbuf_.swap(tls_out_);
  tls_out_.clear();
  uv_buf_t b = uv_buf_init(tls_wbuf_.data(), static_cast<unsigned>(tls_wbuf_.size()));
  write_req_.data = this;
  int rc =
      uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1, &Probe::onTlsWritten);
  if (rc != 0) {
    finish(false, std::string("send: ") + uv_strerror(rc));
    return;
  }
  tls_writing_ = true;
}

void Probe::onTlsWritten(uv_write_t* req, int status) {
  auto* p = static_cast<Probe*>(req->data);
  p->tls_writing_ = false;
  if (!p->in_check_ || status == UV_ECANCELED) {
    return;
  }
  if (status < 0) {
    p->finish(false, std::string("send: ") + uv_strerror(status));
    return;
  }
  p->flushTls();
}

void Probe::onWritten(uv_write_t* req, int status) {
  auto* p = static_cast<Probe*>(req->data);
  if (p->in_check_ && status < 0 && status != UV_ECANCELED) {
    p->finish(false, std::string("send: ") + uv_strerror(status));
  }
}

void Probe::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* p = static_cast<Probe*>(h->data);
  *buf = uv_buf_init(p->buf_, sizeof p->buf_);
}

void Probe::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* p = static_cast<Probe*>(s->data);
  if (!p->in_check_) {
    return;
  }
  if (p->handshaking_ && nread < 0) {
    p->finish(false, std::string("TLS handshake: ") + (nread == UV_EOF
                                                           ? "the backend closed the connection"
                                                           : uv_strerror(static_cast<int>(nread))));
    return;
  }
  if (nread == UV_EOF) {
    p->endOfInput();
    return;
  }
  if (nread < 0) {
    p->finish(false, std::string("receive: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0) {
    return;
  }
  if (p->tls_ != nullptr) {
    p->tls_->feed(buf->base, static_cast<size_t>(nread));
    p->tlsStep();
    return;
  }
  p->consume(buf->base, static_cast<size_t>(nread));
}

void Probe::endOfInput() {
  if (!complete_) {
    llhttp_finish(&parser_);  // completes a response whose body ends with the connection
  }
  if (complete_) {
    evaluate();
  } else {
    finish(false, "connection closed before the response was complete");
  }
}

void Probe::consume(const char* data, size_t n) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, n);
  if (complete_) {
    evaluate();
  } else if (err != HPE_OK) {
    finish(false, std::string("malformed response: ") + llhttp_get_error_reason(&parser_));
  }
}

int Probe::onHeadersComplete(llhttp_t* parser) {
  auto* p = static_cast<Probe*>(parser->data);
  p->status_ = parser->status_code;
  // A HEAD response has no body whatever its headers say.
  return p->check_.method == "HEAD" ? 1 : 0;
}

int Probe::onBody(llhttp_t* parser, const char* at, size_t n) {
  auto* p = static_cast<Probe*>(parser->data);
  if (p->body_.size() < kMaxBody) {
    p->body_.append(at, std::min(n, kMaxBody - p->body_.size()));
  }
  return 0;
}

int Probe::onMessageComplete(llhttp_t* parser) {
  static_cast<Probe*>(parser->data)->complete_ = true;
  return HPE_PAUSED;  // one response is all a check reads
}

void Probe::evaluate() {
  const auto& expect = check_.expect;
  bool status_ok = expect.empty()
                       ? (status_ >= 200 && status_ < 400)
                       : std::find(expect.begin(), expect.end(), status_) != expect.end();
  if (!status_ok) {
    finish(false, "status " + std::to_string(status_));
    return;
  }
  if (!check_.body_contains.empty() && body_.find(check_.body_contains) == std::string::npos) {
    finish(false, "status " + std::to_string(status_) + ", body does not contain \"" +
                      check_.body_contains + "\"");
    return;
  }
  finish(true, "status " + std::to_string(status_));
}

void Probe::finish(bool passed, const std::string& reason) {
  if (!in_check_) {
    return;
  }
  in_check_ = false;
  uv_timer_stop(&timeout_);
  if (tls_ != nullptr) {
    // Not sent, but it keeps the session resumable: OpenSSL spoils one freed without it.
    tls_->shutdown();
  }
  if (tcp_open_) {
    tcp_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Probe::onTcpClosed);
  }
  on_result_(*this, passed, reason);
}

void Probe::onTcpClosed(uv_handle_t* h) {
  auto* p = static_cast<Probe*>(h->data);
  --p->open_handles_;
  // Every write callback has run (cancelled) by now: the TLS state can go.
  p->tls_.reset();
  p->tls_out_.clear();
  p->tls_wbuf_.clear();
  p->tls_writing_ = false;
  p->handshaking_ = false;
  if (p->stopping_) {
    if (p->open_handles_ == 0 && p->on_closed_) {
      p->on_closed_();
    }
    return;
  }
  uv_timer_start(&p->tick_, &Probe::onTick, p->nextDelay(), 0);
}

void Probe::onHandleClosed(uv_handle_t* h) {
  auto* p = static_cast<Probe*>(h->data);
  if (--p->open_handles_ == 0 && p->on_closed_) {
    p->on_closed_();
  }
}

void Probe::stop(std::function<void()> on_closed) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  on_closed_ = std::move(on_closed);
  in_check_ = false;
  if (tcp_open_) {
    tcp_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Probe::onTcpClosed);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), &Probe::onHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timeout_), &Probe::onHandleClosed);
}

}  // namespace lb::worker
