#include "worker/net/tls_session.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "shared/tls/server_context.h"

namespace lb::worker {

TlsSession::TlsSession(SSL* ssl, Role role) : ssl_(ssl) {
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  // An empty read BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  if (role == Role::Server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);  // frees both BIOs
}

void TlsSession::feed(const char* data, size_t n) {
  BIO_write(rbio_, data, static_cast<int>(n));
}

void TlsSession::fail(int rc) {
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_SSL) {
    error_ = tls::lastError();
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    error_ = "the peer closed the session";
  } else {
    error_ = "SSL error " + std::to_string(err);
    ERR_clear_error();
  }
}

TlsSession::Step TlsSession::handshake() {
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    if (!SSL_is_server(ssl_)) {
      return Step::Done;
    }
    if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
      if (SSL_get_verify_result(ssl_) == X509_V_OK) {
        char buf[512];
        X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
        subject_ = buf;
      }
      X509_free(peer);
    }
    return Step::Done;
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return Step::More;
  }
  fail(rc);
  return Step::Failed;
}

ssize_t TlsSession::read(char* out, size_t cap) {
  size_t got = 0;
  int rc = SSL_read_ex(ssl_, out, cap, &got);
  if (rc == 1) {
    return static_cast<ssize_t>(got);
  }
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return 0;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    return -1;
  }
  fail(rc);
  return -2;
}

bool TlsSession::write(const char* data, size_t n) {
  if (n == 0) {
    return true;
  }
  size_t done = 0;
  if (SSL_write_ex(ssl_, data, n, &done) != 1 || done != n) {
    fail(0);
    return false;
  }
  return true;
}

void TlsSession::shutdown() {
  if (SSL_is_init_finished(ssl_)) {
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
}

void TlsSession::quietShutdown() {
  SSL_set_quiet_shutdown(ssl_, 1);
  shutdown();
}

void TlsSession::takeOutput(std::string* out) {
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio_, &data);
  if (n > 0) {
    out->append(data, static_cast<size_t>(n));
    (void)BIO_reset(wbio_);
  }
}

bool TlsSession::hasOutput() const {
  return BIO_ctrl_pending(wbio_) > 0;
}

bool TlsSession::hasInput() const {
  return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0;
}

std::string TlsSession::alpn() const {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace lb::worker
