#include "shared/tls/client_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "shared/tls/server_context.h"

namespace lb::tls {
namespace {

// The SSL ex_data slot that holds a connection's backend index + 1 (0: none), for the
// new-session callback.
int backendIndexSlot() {
  static const int slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return slot;
}

// True if `path` can be opened for reading; else the reason in *why.
bool readable(const std::string& path, std::string* why) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    *why = std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

// "certificate verify failed" out of "error:0A000086:SSL routines::certificate verify failed".
std::string reasonOf(const std::string& error) {
  size_t at = error.rfind("::");
  return error.starts_with("error:") && at != std::string::npos ? error.substr(at + 2) : error;
}

// Loads `cfg.key` as the key of the certificate already in `ctx`; the problem, or "".
std::string useKeyOf(SSL_CTX* ctx, const config::PoolTls& cfg) {
  BIO* bio = BIO_new_file(cfg.key.c_str(), "r");
  EVP_PKEY* key =
      bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  std::string problem;
  if (key == nullptr) {
    problem = "key \"" + cfg.key + "\" holds no PEM private key: " + lastError();
  } else if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
    ERR_clear_error();
    problem = "key \"" + cfg.key + "\" does not match certificate \"" + cfg.cert + "\"";
  } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    problem = "OpenSSL refuses key \"" + cfg.key + "\": " + lastError();
  }
  EVP_PKEY_free(key);
  return problem;
}

}  // namespace

ClientContext::~ClientContext() {
  for (SSL_SESSION* s : sessions_) {
    SSL_SESSION_free(s);  // null-safe
  }
  SSL_CTX_free(ctx_);
}

Result<std::unique_ptr<ClientContext>, config::ConfigErrors> ClientContext::create(
    const config::Pool& pool, const std::string& file) {
  const config::PoolTls& cfg = pool.tls;
  std::unique_ptr<ClientContext> cc(new ClientContext());
  cc->verify_ = cfg.verify;
  cc->session_reuse_ = cfg.session_reuse;
  cc->server_name_ = cfg.server_name;
  for (const config::Backend& b : pool.backends) {
    char host[64];
    size_t n = b.address.hostToBuffer(host, sizeof host);
    cc->addresses_.emplace_back(host, n);
  }
  cc->sessions_.assign(pool.backends.size(), nullptr);
  config::ConfigErrors errors;
  cc->ctx_ = SSL_CTX_new(TLS_client_method());
  if (cc->ctx_ == nullptr) {
    errors.push_back({file, cfg.line, "OpenSSL cannot create a context: " + lastError()});
    return unexpected(std::move(errors));
  }
  for (const std::string& problem : cc->configure(cfg)) {
    errors.push_back({file, cfg.line, "tls of pool \"" + pool.name + "\": " + problem});
  }
  if (!errors.empty()) {
    return unexpected(std::move(errors));
  }
  return cc;
}

std::vector<std::string> ClientContext::configure(const config::PoolTls& cfg) {
  std::vector<std::string> problems;
  setProtocols(ctx_, cfg.protocols, cfg.ciphers, cfg.ciphersuites, &problems);
  ERR_clear_error();
  SSL_CTX_set_options(ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  std::string why;
  if (cfg.verify) {
    if (cfg.ca.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
        problems.push_back("cannot load the system's CA store: " + lastError());
      }
    } else if (!readable(cfg.ca, &why)) {
      problems.push_back("cannot read ca \"" + cfg.ca + "\": " + why);
    } else if (SSL_CTX_load_verify_locations(ctx_, cfg.ca.c_str(), nullptr) != 1) {
      problems.push_back("ca \"" + cfg.ca + "\" holds no PEM certificate: " + lastError());
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx_, static_cast<int>(cfg.verify_depth));
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.cert.empty()) {
    if (!readable(cfg.cert, &why)) {
      problems.push_back("cannot read certificate \"" + cfg.cert + "\": " + why);
    } else if (!readable(cfg.key, &why)) {
      problems.push_back("cannot read key \"" + cfg.key + "\": " + why);
    } else if (SSL_CTX_use_certificate_chain_file(ctx_, cfg.cert.c_str()) != 1) {
      problems.push_back("certificate \"" + cfg.cert +
                         "\" holds no PEM certificate: " + lastError());
    } else if (std::string problem = useKeyOf(ctx_, cfg); !problem.empty()) {
      problems.push_back(problem);
    }
  }
  // Sessions go to onNewSession only: OpenSSL's own client cache is never looked up anyway.
  SSL_CTX_set_session_cache_mode(
      ctx_, cfg.session_reuse ? SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE
                              : SSL_SESS_CACHE_OFF);
  if (cfg.session_reuse) {
    SSL_CTX_set_app_data(ctx_, this);
    SSL_CTX_sess_set_new_cb(ctx_, &ClientContext::onNewSession);
  } else {
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
  }
  return problems;
}

SSL* ClientContext::newSsl(int backend) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) {
    return nullptr;
  }
  SSL_set_ex_data(ssl, backendIndexSlot(), reinterpret_cast<void*>(intptr_t{backend} + 1));
  bool ok = true;
  if (!server_name_.empty()) {
    ok = SSL_set_tlsext_host_name(ssl, server_name_.c_str()) == 1;
  }
  if (ok && verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = server_name_.empty()
             ? X509_VERIFY_PARAM_set1_ip_asc(param, addresses_[backend].c_str()) == 1
             : X509_VERIFY_PARAM_set1_host(param, server_name_.c_str(), server_name_.size()) == 1;
  }
  if (!ok) {
    SSL_free(ssl);
    return nullptr;
  }
  if (session_reuse_ && sessions_[backend] != nullptr) {
    SSL_set_session(ssl, sessions_[backend]);
  }
  return ssl;
}

void ClientContext::forgetSession(int backend) const {
  SSL_SESSION_free(sessions_[backend]);
  sessions_[backend] = nullptr;
}

int ClientContext::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* cc = static_cast<const ClientContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  auto backend = reinterpret_cast<intptr_t>(SSL_get_ex_data(ssl, backendIndexSlot())) - 1;
  if (cc == nullptr || backend < 0 || static_cast<size_t>(backend) >= cc->sessions_.size() ||
      SSL_SESSION_is_resumable(session) != 1) {
    return 0;  // OpenSSL keeps its reference
  }
  SSL_SESSION_free(cc->sessions_[backend]);
  cc->sessions_[backend] = session;
  return 1;  // the reference is ours now
}

std::string ClientContext::handshakeError(SSL* ssl, const std::string& fallback) {
  std::string reason;
  if (ERR_peek_error() != 0) {
    reason = reasonOf(lastError());
  }
  ERR_clear_error();
  const long verified = SSL_get_verify_result(ssl);
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 && verified != X509_V_OK) {
    return std::string("certificate verify failed (") + X509_verify_cert_error_string(verified) +
           ")";
  }
  return reason.empty() ? reasonOf(fallback) : reason;
}

}  // namespace lb::tls
