#pragma once

// One TLS connection's OpenSSL state between the socket and the HTTP code: ciphertext read from
// the socket is fed in, plaintext comes out into the caller's buffer; plaintext written is
// encrypted into an output buffer the caller sends. Memory BIOs, so libuv keeps doing all the
// socket I/O and OpenSSL never blocks or touches the descriptor.

#include <openssl/ssl.h>

#include <sys/types.h>
#include <string>

namespace lb::worker {

class TlsSession {
 public:
  enum class Role { Server, Client };
  // Takes ownership of `ssl` and puts it in accept state (Server: from
  // tls::ServerContext::newSsl) or connect state (Client: from tls::ClientContext::newSsl).
  explicit TlsSession(SSL* ssl, Role role = Role::Server);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the socket.
  void feed(const char* data, size_t n);

  enum class Step { Done, More, Failed };
  // Advances the handshake with what was fed. Failed: error() says why.
  Step handshake();

  // Plaintext into [out, out + cap): the byte count; 0 when more ciphertext is needed; -1 when
  // the peer closed the TLS session (close_notify); -2 on an error (error() says why).
  ssize_t read(char* out, size_t cap);
  // Encrypts `n` plaintext bytes into the output. False on an error.
  bool write(const char* data, size_t n);
  // Queues a close_notify alert into the output.
  void shutdown();
  // Ends the session without the alert, yet as properly shut down, so that it stays in the
  // session cache for resumption (what nginx does on a connection in error).
  void quietShutdown();

  // Ciphertext waiting to go to the socket, moved into `*out` (appended).
  void takeOutput(std::string* out);
  bool hasOutput() const;
  // Plaintext or ciphertext is buffered here that read() would return without a socket read.
  bool hasInput() const;

  const std::string& error() const { return error_; }
  // After the handshake: the negotiated ALPN protocol ("" if none), whether the session was
  // resumed, the protocol version, and the verified client certificate's subject ("" if none;
  // always "" on the client side).
  std::string alpn() const;
  bool resumed() const { return SSL_session_reused(ssl_) == 1; }
  const char* version() const { return SSL_get_version(ssl_); }
  SSL* ssl() const { return ssl_; }
  const std::string& clientSubject() const { return subject_; }

 private:
  void fail(int rc);

  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
  std::string error_;
  std::string subject_;
};

}  // namespace lb::worker
