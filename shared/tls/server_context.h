#pragma once

// A TLS listener's OpenSSL state: one SSL_CTX per set of certificate names (an RSA and an ECDSA
// certificate for the same names share one), chosen by SNI, exact names before wildcards, the
// first certificate's context for clients without SNI or with an unknown name.
//
// Built by the master when it loads a configuration (`lb -t`, start, reload), so a bad
// certificate, key, OCSP response or cipher string refuses the configuration with file:line;
// workers inherit the built contexts through fork() and only create SSL objects from them.

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shared/config/load.h"
#include "shared/config/model.h"
#include "shared/shm/layout.h"

namespace lb::tls {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

class ServerContext {
 public:
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Reads and checks every file of `listener.tls` and builds the contexts. Errors name
  // `file` and the line of the offending certificate or tls group.
  static Result<std::unique_ptr<ServerContext>, config::ConfigErrors> create(
      const config::Listener& listener, const std::string& file);

  // A server-side SSL for a new connection (accept state not set). nullptr if OpenSSL fails.
  SSL* newSsl() const;

 private:
  struct Leaf {
    std::unique_ptr<X509, X509Free> cert;
    std::string ocsp;  // DER OCSP response to staple; empty = none
  };

  ServerContext() = default;
  // Sets everything but the certificates on a new context; the problems found (bad cipher,
  // group or CA strings), each to be reported at the tls group's line.
  std::vector<std::string> configure(SSL_CTX* ctx, const config::ListenerTls& cfg,
                                     const std::vector<unsigned char>& session_context);
  SSL_CTX* lookup(std::string_view server_name) const;
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);
  static int onStatus(SSL* ssl, void* arg);

  std::vector<SSL_CTX*> contexts_;  // [0] is the default
  std::map<std::string, SSL_CTX*, std::less<>> exact_;
  std::map<std::string, SSL_CTX*, std::less<>> wildcard_;  // "example.com" for *.example.com
  std::vector<Leaf> leaves_;
  std::string alpn_;  // wire format
};

// Ticket keys: every SSL_CTX built here encrypts and decrypts session tickets with the keys in
// `keys` (shared memory). Set once per process before any handshake; without keys no ticket is
// issued and none is accepted.
void setTicketKeys(shm::TicketKeys* keys);
// Writes a fresh key as the current one, the current one becoming the previous one. Master only.
void rotateTicketKeys(shm::TicketKeys& keys);

// config::loadConfig(), then the ServerContext of every TLS listener (Listener::tls_context)
// and the ClientContext of every pool with TLS to its backends (Pool::tls_context): what the
// master runs and `lb -t` checks. All errors, with file:line.
Result<config::Config, config::ConfigErrors> loadConfig(const std::string& path);

// The protocol range (from "TLSv1.2"/"TLSv1.3" names), TLS 1.2 cipher list and TLS 1.3 suites
// of `ctx`, for server and client contexts alike; what OpenSSL refuses is added to `problems`.
void setProtocols(SSL_CTX* ctx, const std::vector<std::string>& protocols,
                  const std::string& ciphers, const std::string& ciphersuites,
                  std::vector<std::string>* problems);

// The last OpenSSL error as text ("no error" when there is none), clearing the error queue.
std::string lastError();

}  // namespace lb::tls
