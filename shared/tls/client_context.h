#pragma once

// TLS from lb to a pool's backends: the pool's client SSL_CTX (trusted CAs, client certificate,
// protocols, ciphers) and what each connection to a backend adds to it (SNI, the name or
// address its certificate must carry, the session to resume).
//
// Built by the master when it loads a configuration (`lb -t`, start, reload), so an unreadable
// or invalid CA, certificate or key refuses the configuration with file:line and a reload with
// a bad file leaves the running generation serving. Workers inherit it through fork() and only
// create SSL objects from it. Each process keeps the last session of each backend here (the
// copy it got with fork() is its own), so a worker's reconnect to a backend resumes.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "shared/config/load.h"
#include "shared/config/model.h"

namespace lb::tls {

class ClientContext {
 public:
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // Reads and checks the files of `pool.tls` (CA, client certificate and key) and the OpenSSL
  // strings, and builds the context. Errors name `file` and the line of the pool's tls group.
  static Result<std::unique_ptr<ClientContext>, config::ConfigErrors> create(
      const config::Pool& pool, const std::string& file);

  // A client-side SSL for a new connection to backend `backend` (an index into the pool's
  // backends), connect state not set: SNI and the verified name or address set, and the
  // backend's last session offered when session_reuse is on. nullptr if OpenSSL fails.
  SSL* newSsl(int backend) const;
  // The handshake of a connection to `backend` failed: its session is not offered again.
  void forgetSession(int backend) const;

  // Why the handshake of `ssl` failed, for the log: "certificate verify failed (unable to get
  // local issuer certificate)" when the backend's certificate did not verify, else the OpenSSL
  // error (`fallback` when there is none). Clears OpenSSL's error queue.
  static std::string handshakeError(SSL* ssl, const std::string& fallback);

 private:
  ClientContext() = default;
  // Protocols, ciphers, verification and the client certificate; the problems found.
  std::vector<std::string> configure(const config::PoolTls& cfg);
  static int onNewSession(SSL* ssl, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
  bool session_reuse_ = true;
  std::string server_name_;
  std::vector<std::string> addresses_;  // per backend: its IP address, verified without a name
  // Per backend: the session a reconnect resumes (owned; null when there is none). Written by
  // OpenSSL's new-session callback during handshakes and reads of the owning process only.
  mutable std::vector<SSL_SESSION*> sessions_;
};

}  // namespace lb::tls
