// TLS on a connection to a backend: the handshake after the TCP connect (under the pool's
// connect timeout, which the owner armed), plaintext decrypted straight into the owner's
// response buffer, request bytes encrypted on their way out, the close_notify. The owner
// (ClientConn) sees the callbacks of a plain connection: connected once the handshake is done,
// a failed handshake as a failed connect, reads and write completions in plaintext.
//
// OpenSSL may hold decrypted input that no socket event will announce (the owner stopped
// reading while a record was half taken): when reading starts again, the connection pumps on
// the next loop turn from its own idle handle.

#include <openssl/ssl.h>

#include <cstring>
#include <string>

#include "shared/log/log.h"
#include "shared/tls/client_context.h"
#include "shared/tls/server_context.h"
#include "worker/net/tls_session.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {

struct UpstreamTls {
  UpstreamTls(const tls::ClientContext* c, SSL* ssl)
      : context(c), session(ssl, TlsSession::Role::Client) {}
  const tls::ClientContext* context;
  TlsSession session;
  std::string out;       // ciphertext not handed to the socket yet
  std::string inflight;  // ciphertext of the uv_write in flight
  uv_write_t wreq;
  uv_idle_t kick;
  bool handshaking = true;
  bool write_pending = false;  // a uv_write of `inflight` is in flight
  bool owner_waits = false;    // send() returned 0: the owner waits for onUpstreamWritten
  bool kicked = false;
  std::string failure;       // why TLS failed, for the owner's log line
  bool eof_unclean = false;  // the TCP stream ended with no close_notify before it
  bool eof_pending = false;  // the TCP stream ended while OpenSSL still held records
};

namespace {

// Ciphertext is read here, then fed to OpenSSL at once: one buffer serves every connection of
// the worker. A few records per read.
char g_tls_scratch[64 * 1024];

// Request pieces (a head, chunk sizes, body slices) are gathered here into full records: one
// record per piece would cost a record header, a MAC and a cipher call each.
constexpr size_t kRecordSize = 16 * 1024;
char g_tls_gather[kRecordSize];

// Empties `s`; a large one gives its memory back, so that an idle connection holds none.
void releaseBuffer(std::string* s) {
  if (s->capacity() > 4096) {
    std::string().swap(*s);
  } else {
    s->clear();
  }
}

}  // namespace

void UpstreamConn::startTls() {
  const config::Pool& pool = *ctx_->pools[pool_].pool;
  SSL* ssl = pool.tls_context->newSsl(backend_);
  if (ssl == nullptr) {
    LB_ERROR("cannot create a TLS session for upstream %s: %s",
             pool.backends[backend_].address_text.c_str(), tls::lastError().c_str());
    owner_->onUpstreamError(this, UV_ENOMEM);
    return;
  }
  tls_ = new UpstreamTls(pool.tls_context.get(), ssl);
  tls_->wreq.data = this;
  uv_idle_init(ctx_->loop, &tls_->kick);
  tls_->kick.data = this;
  reading_ = true;
  uv_read_start(stream(), &UpstreamConn::onTlsAlloc, &UpstreamConn::onTlsRead);
  pumpTls();  // the ClientHello
}

void UpstreamConn::closeTls() {
  uv_close(reinterpret_cast<uv_handle_t*>(&tls_->kick), &UpstreamConn::onTlsKickClosed);
}

void UpstreamConn::onTlsKickClosed(uv_handle_t* h) {
  auto* up = static_cast<UpstreamConn*>(h->data);
  delete up->tls_;
  delete up;
}

void UpstreamConn::onTlsAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(g_tls_scratch, sizeof g_tls_scratch);
}

void UpstreamConn::onTlsRead(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* up = static_cast<UpstreamConn*>(s->data);
  if (up->closing_ || nread == 0) {
    return;
  }
  if (nread > 0) {
    up->tls_->session.feed(g_tls_scratch, static_cast<size_t>(nread));
    up->pumpTls();
    return;
  }
  if (up->tls_->handshaking) {
    const std::string& address =
        up->ctx_->pools[up->pool_].pool->backends[up->backend_].address_text;
    up->tls_->failure = "TLS handshake with " + address + " failed: " +
                        (nread == UV_EOF ? "the backend closed the connection"
                                         : uv_strerror(static_cast<int>(nread)));
    up->tls_->context->forgetSession(up->backend_);
    up->failTls(nread == UV_EOF ? UV_ECONNRESET : static_cast<int>(nread));
    return;
  }
  if (up->owner_ != nullptr && nread == UV_EOF &&
      (up->tls_->eof_pending || up->tls_->session.hasInput())) {
    // Records read before the end (reading was stopped) may hold the rest of the body and the
    // close_notify: the end is told once OpenSSL has given all of them (pumpTls).
    up->tls_->eof_pending = true;
    up->kickTls();
    return;
  }
  if (up->owner_ != nullptr) {
    up->tls_->eof_unclean = nread == UV_EOF;
    up->owner_->onUpstreamRead(up, nread);  // EOF without close_notify, or a socket error
  } else {
    up->close();
  }
}

void UpstreamConn::pumpTls() {
  TlsSession& s = tls_->session;
  if (tls_->handshaking) {
    TlsSession::Step step = s.handshake();
    if (int rc = flushTls(); rc < 0) {
      failTls(rc);
      return;
    }
    if (step == TlsSession::Step::More) {
      return;
    }
    const std::string& address = ctx_->pools[pool_].pool->backends[backend_].address_text;
    if (step == TlsSession::Step::Failed) {
      tls_->failure = "TLS handshake with " + address +
                      " failed: " + tls::ClientContext::handshakeError(s.ssl(), s.error());
      tls_->context->forgetSession(backend_);
      failTls(UV_EPROTO);
      return;
    }
    tls_->handshaking = false;
    connected_ = true;
    LB_DEBUG("upstream TLS handshake with %s: %s%s", address.c_str(), s.version(),
             s.resumed() ? ", resumed" : "");
    if (owner_ == nullptr) {
      close();
      return;
    }
    owner_->onUpstreamConnected(this);
    kickTls();  // a backend that spoke first
    return;
  }
  while (reading_ && !closing_) {
    if (owner_ == nullptr) {
      // Idle: TLS housekeeping (session tickets) is all that may arrive.
      ssize_t n = s.read(g_tls_scratch, sizeof g_tls_scratch);
      if (int rc = flushTls(); rc < 0 || n != 0 || tls_->eof_pending) {
        close();  // the backend closed it, failed, or sent bytes nobody asked for
      }
      return;
    }
    uv_buf_t buf;
    owner_->onUpstreamAlloc(&buf);
    if (buf.len == 0) {
      owner_->onUpstreamRead(this, UV_ENOBUFS);  // it stops reading: OpenSSL keeps the rest
      return;
    }
    ssize_t n = s.read(buf.base, buf.len);
    if (s.hasOutput()) {
      if (int rc = flushTls(); rc < 0) {
        failTls(rc);
        return;
      }
    }
    if (n == 0) {
      if (tls_->eof_pending) {  // no more is coming: the socket ended without a close_notify
        tls_->eof_pending = false;
        tls_->eof_unclean = true;
        owner_->onUpstreamRead(this, UV_EOF);
      }
      return;  // more ciphertext is needed
    }
    if (n < 0) {
      if (n == -2) {
        tls_->failure = "TLS error from " +
                        ctx_->pools[pool_].pool->backends[backend_].address_text + ": " + s.error();
      }
      owner_->onUpstreamRead(this, n == -1 ? UV_EOF : UV_EPROTO);
      return;
    }
    owner_->onUpstreamRead(this, n);
  }
}

void UpstreamConn::kickTls() {
  if (tls_ == nullptr || tls_->handshaking || tls_->kicked || closing_ || !reading_ ||
      (!tls_->session.hasInput() && !tls_->eof_pending)) {
    return;
  }
  tls_->kicked = true;
  uv_idle_start(&tls_->kick, &UpstreamConn::onTlsKick);
}

void UpstreamConn::onTlsKick(uv_idle_t* h) {
  auto* up = static_cast<UpstreamConn*>(h->data);
  uv_idle_stop(h);
  up->tls_->kicked = false;
  if (!up->closing_) {
    up->pumpTls();
  }
}

int UpstreamConn::flushTls() {
  tls_->session.takeOutput(&tls_->out);
  if (tls_->write_pending || tls_->out.empty()) {
    return 0;  // what is queued follows when the write in flight completes (onTlsWritten)
  }
  uv_buf_t b = uv_buf_init(tls_->out.data(), static_cast<unsigned>(tls_->out.size()));
  int n = uv_try_write(stream(), &b, 1);
  if (n >= 0 && static_cast<size_t>(n) == tls_->out.size()) {
    releaseBuffer(&tls_->out);
    return 0;
  }
  if (n < 0 && n != UV_EAGAIN) {
    return n;
  }
  tls_->inflight.assign(tls_->out, n > 0 ? static_cast<size_t>(n) : 0, std::string::npos);
  releaseBuffer(&tls_->out);
  b = uv_buf_init(tls_->inflight.data(), static_cast<unsigned>(tls_->inflight.size()));
  int rc = uv_write(&tls_->wreq, stream(), &b, 1, &UpstreamConn::onTlsWritten);
  if (rc != 0) {
    return rc;
  }
  tls_->write_pending = true;
  return 0;
}

void UpstreamConn::onTlsWritten(uv_write_t* req, int status) {
  auto* up = static_cast<UpstreamConn*>(req->data);
  if (up->closing_) {
    return;
  }
  UpstreamTls* t = up->tls_;
  t->write_pending = false;
  releaseBuffer(&t->inflight);
  if (status == 0) {
    status = up->flushTls();
    if (status == 0 && t->write_pending) {
      return;  // more went out meanwhile; its completion carries on
    }
  }
  if (t->owner_waits && up->owner_ != nullptr) {
    t->owner_waits = false;
    up->owner_->onUpstreamWritten(status);
  } else if (status < 0) {
    up->failTls(status);
  }
}

int UpstreamConn::sendTls(const uv_buf_t* iov, int iovcnt) {
  TlsSession& s = tls_->session;
  size_t gathered = 0;
  bool ok = true;
  for (int i = 0; i < iovcnt && ok; ++i) {
    if (gathered + iov[i].len > kRecordSize) {
      ok = s.write(g_tls_gather, gathered);
      gathered = 0;
    }
    if (iov[i].len >= kRecordSize) {
      ok = ok && s.write(iov[i].base, iov[i].len);
    } else {
      std::memcpy(g_tls_gather + gathered, iov[i].base, iov[i].len);
      gathered += iov[i].len;
    }
  }
  if (!ok || !s.write(g_tls_gather, gathered)) {
    tls_->failure = "TLS error writing to " +
                    ctx_->pools[pool_].pool->backends[backend_].address_text + ": " + s.error();
    return UV_EPROTO;
  }
  // The plaintext is OpenSSL's now, but the owner's backpressure is the socket's: it hears
  // "written" only when the ciphertext is with the kernel.
  int rc = flushTls();
  if (rc < 0) {
    return rc;
  }
  if (!tls_->write_pending) {
    return 1;
  }
  tls_->owner_waits = true;
  return 0;
}

void UpstreamConn::failTls(int err) {
  if (owner_ != nullptr) {
    owner_->onUpstreamError(this, err);
  } else {
    if (!tls_->failure.empty()) {
      LB_ERROR("upstream %s", tls_->failure.c_str());  // no request to tell it with
    }
    close();
  }
}

std::string UpstreamConn::tlsFailure() const {
  return tls_ != nullptr ? tls_->failure : std::string();
}

bool UpstreamConn::endedWithoutCloseNotify() {
  if (tls_ == nullptr || !tls_->eof_unclean) {
    return false;
  }
  tls_->failure = ctx_->pools[pool_].pool->backends[backend_].address_text +
                  " ended the TLS connection without close_notify in a body delimited by the "
                  "close: it may be cut short";
  return true;
}

void UpstreamConn::tlsGoodbye() {
  if (tls_->handshaking) {
    return;
  }
  // Also what keeps the session resumable: OpenSSL spoils one whose SSL is freed without it.
  tls_->session.shutdown();
  if (tls_->write_pending) {
    return;  // the alert would go out after a cut record: better not at all
  }
  tls_->session.takeOutput(&tls_->out);
  if (!tls_->out.empty()) {
    uv_buf_t b = uv_buf_init(tls_->out.data(), static_cast<unsigned>(tls_->out.size()));
    uv_try_write(stream(), &b, 1);
  }
}

}  // namespace lb::worker
