#include "shared/tls/server_context.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "shared/config/schema.h"
#include "shared/tls/client_context.h"

namespace lb::tls {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// One certificate as read from its files.
struct Loaded {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;
  KeyPtr key;
  std::vector<std::string> names;  // lowercased, sorted
  std::string ocsp;
  int line = 0;
};

// Errors of one listener's TLS setup, with the config file's name.
struct Errors {
  const std::string& file;
  config::ConfigErrors list;
  void add(int line, std::string message) {
    list.push_back(config::ConfigError{file, line, std::move(message)});
  }
};

// The names a certificate serves: its DNS subjectAltNames, else its subject's CN.
std::vector<std::string> namesOf(X509* x) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type == GEN_DNS) {
        const auto* data = ASN1_STRING_get0_data(n->d.dNSName);
        names.push_back(config::schema::lowercase(
            std::string(reinterpret_cast<const char*>(data), ASN1_STRING_length(n->d.dNSName))));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0) {
      names.push_back(config::schema::lowercase(cn));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

bool readFile(const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

int protocolVersion(const std::string& name) {
  return name == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
}

shm::TicketKeys* g_ticket_keys = nullptr;

// A consistent copy of the shared keys (seqlock read).
bool snapshot(shm::TicketKey* current, shm::TicketKey* previous, uint32_t* count) {
  if (g_ticket_keys == nullptr) {
    return false;
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t before = g_ticket_keys->sequence.load(std::memory_order_acquire);
    if (before & 1) {
      sched_yield();  // the master is writing: let it finish
      continue;
    }
    *count = g_ticket_keys->count.load(std::memory_order_relaxed);
    std::memcpy(current, &g_ticket_keys->current, sizeof *current);
    std::memcpy(previous, &g_ticket_keys->previous, sizeof *previous);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (g_ticket_keys->sequence.load(std::memory_order_relaxed) == before) {
      return *count > 0;
    }
  }
  return false;
}

bool setKeys(const shm::TicketKey& k, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
             const unsigned char* iv, int enc) {
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("sha256"), 0),
                         OSSL_PARAM_construct_end()};
  return EVP_CipherInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes_key, iv, enc) == 1 &&
         EVP_MAC_init(mac, k.hmac_key, sizeof k.hmac_key, params) == 1;
}

// RFC 5077 ticket protection with the shared keys: 1 = done, 2 = decrypted, issue a new ticket,
// 0 = unknown key (full handshake), -1 = error. A TLS 1.3 client uses a ticket once (RFC 8446
// appendix C.4), so every TLS 1.3 resumption gets a fresh ticket; without one the client's next
// connection is a full handshake.
int onTicketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                EVP_MAC_CTX* mac, int enc) {
  shm::TicketKey current;
  shm::TicketKey previous;
  uint32_t count = 0;
  if (!snapshot(&current, &previous, &count)) {
    return 0;  // no ticket issued, or a full handshake: never a failed one
  }
  if (enc) {
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) {
      return -1;
    }
    std::memcpy(name, current.name, sizeof current.name);
    return setKeys(current, cipher, mac, iv, 1) ? 1 : -1;
  }
  if (std::memcmp(name, current.name, sizeof current.name) == 0) {
    if (!setKeys(current, cipher, mac, iv, 0)) {
      return -1;
    }
    return SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
  }
  if (count > 1 && std::memcmp(name, previous.name, sizeof previous.name) == 0) {
    return setKeys(previous, cipher, mac, iv, 0) ? 2 : -1;
  }
  return 0;
}

// Reads one certificate, its chain, key and OCSP response; nullopt (and the reason in
// `errors`) when a file cannot be read or does not hold what it should.
std::optional<Loaded> loadCertificate(const config::TlsCertificate& c, Errors& errors) {
  Loaded l;
  l.line = c.line;
  std::string pem;
  std::string why;
  if (!readFile(c.cert, &pem, &why)) {
    errors.add(c.line, "cannot read certificate \"" + c.cert + "\": " + why);
    return std::nullopt;
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  l.leaf.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!l.leaf) {
    errors.add(c.line, "certificate \"" + c.cert + "\" holds no PEM certificate: " + lastError());
    return std::nullopt;
  }
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    l.chain.emplace_back(extra);
  }
  ERR_clear_error();  // the end of the file reads as an error
  std::string key_pem;
  if (!readFile(c.key, &key_pem, &why)) {
    errors.add(c.line, "cannot read key \"" + c.key + "\": " + why);
    return std::nullopt;
  }
  BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  l.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!l.key) {
    errors.add(c.line, "key \"" + c.key + "\" holds no PEM private key: " + lastError());
    return std::nullopt;
  }
  if (X509_check_private_key(l.leaf.get(), l.key.get()) != 1) {
    ERR_clear_error();
    errors.add(c.line, "key \"" + c.key + "\" does not match certificate \"" + c.cert + "\"");
    return std::nullopt;
  }
  l.names = namesOf(l.leaf.get());
  if (l.names.empty()) {
    errors.add(c.line,
               "certificate \"" + c.cert + "\" names no host (no DNS subjectAltName, no CN)");
    return std::nullopt;
  }
  if (!c.ocsp_response.empty()) {
    if (!readFile(c.ocsp_response, &l.ocsp, &why)) {
      errors.add(c.line, "cannot read OCSP response \"" + c.ocsp_response + "\": " + why);
      return std::nullopt;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(l.ocsp.data());
    OCSP_RESPONSE* r = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(l.ocsp.size()));
    if (r == nullptr) {
      ERR_clear_error();
      errors.add(c.line, "\"" + c.ocsp_response + "\" is not a DER OCSP response");
      return std::nullopt;
    }
    OCSP_RESPONSE_free(r);
  }
  return l;
}

// A session resumes only where it was made and only while the client verification that
// admitted it is unchanged: the listener, its verify settings and its CA file's contents.
std::vector<unsigned char> sessionContext(const config::Listener& listener) {
  const config::ListenerTls& cfg = listener.tls;
  std::string seed = listener.name + '\0' + std::to_string(static_cast<int>(cfg.verify_client)) +
                     '\0' + std::to_string(cfg.verify_depth) + '\0';
  std::string ca;
  std::string why;
  if (cfg.verify_client != config::ListenerTls::VerifyClient::Off &&
      readFile(cfg.client_ca, &ca, &why)) {
    seed += ca;
  }
  std::vector<unsigned char> out(SHA256_DIGEST_LENGTH);
  SHA256(reinterpret_cast<const unsigned char*>(seed.data()), seed.size(), out.data());
  return out;
}

}  // namespace

std::string lastError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return "no error";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void setTicketKeys(shm::TicketKeys* keys) {
  g_ticket_keys = keys;
}

void rotateTicketKeys(shm::TicketKeys& keys) {
  shm::TicketKey fresh;
  RAND_bytes(reinterpret_cast<unsigned char*>(&fresh), sizeof fresh);
  uint64_t seq = keys.sequence.load(std::memory_order_relaxed);
  keys.sequence.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const uint32_t count = keys.count.load(std::memory_order_relaxed);
  if (count > 0) {
    std::memcpy(&keys.previous, &keys.current, sizeof keys.previous);
  }
  std::memcpy(&keys.current, &fresh, sizeof fresh);
  keys.count.store(std::min<uint32_t>(count + 1, 2), std::memory_order_relaxed);
  keys.sequence.store(seq + 2, std::memory_order_release);
}

ServerContext::~ServerContext() {
  for (SSL_CTX* ctx : contexts_) {
    SSL_CTX_free(ctx);
  }
}

Result<std::unique_ptr<ServerContext>, config::ConfigErrors> ServerContext::create(
    const config::Listener& listener, const std::string& file) {
  const config::ListenerTls& cfg = listener.tls;
  Errors errors{file, {}};
  std::vector<Loaded> loaded;
  for (const config::TlsCertificate& c : cfg.certificates) {
    if (auto l = loadCertificate(c, errors)) {
      loaded.push_back(std::move(*l));
    }
  }
  const std::string where = "listener \"" + listener.name + "\"";
  std::unique_ptr<ServerContext> sc(new ServerContext());
  for (const std::string& proto : cfg.alpn) {
    if (proto == "h2" && !listener.http2.enabled) {
      continue;  // HTTP/2 is off on this listener: not offered
    }
    sc->alpn_ += static_cast<char>(proto.size());
    sc->alpn_ += proto;
  }
  const std::vector<unsigned char> session_context = sessionContext(listener);

  // One context per name set, in config order: the first certificate's is the default.
  std::vector<std::vector<std::string>> sets;
  std::vector<std::vector<int>> key_types;  // per context, the key types it has, for duplicates
  for (Loaded& l : loaded) {
    size_t i = 0;
    while (i < sets.size() && sets[i] != l.names) {
      ++i;
    }
    if (i == sets.size()) {
      SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
      if (ctx == nullptr) {
        errors.add(l.line, "OpenSSL cannot create a context: " + lastError());
        continue;
      }
      sets.push_back(l.names);
      key_types.emplace_back();
      sc->contexts_.push_back(ctx);
      std::vector<std::string> problems = sc->configure(ctx, cfg, session_context);
      if (sets.size() == 1) {  // every context has the same settings: said once
        for (const std::string& problem : problems) {
          errors.add(cfg.line, problem + " of " + where);
        }
      }
    }
    SSL_CTX* ctx = sc->contexts_[i];
    const int type = EVP_PKEY_get_base_id(l.key.get());
    if (std::find(key_types[i].begin(), key_types[i].end(), type) != key_types[i].end()) {
      errors.add(l.line,
                 "certificate for the same names with the same key type as an earlier one; "
                 "one of each type (RSA, ECDSA) is offered side by side");
      continue;
    }
    key_types[i].push_back(type);
    if (SSL_CTX_use_certificate(ctx, l.leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, l.key.get()) != 1) {
      errors.add(l.line, "OpenSSL refuses the certificate or key: " + lastError());
      continue;
    }
    for (const X509Ptr& extra : l.chain) {
      SSL_CTX_add1_chain_cert(ctx, extra.get());
    }
    for (const std::string& n : l.names) {
      if (n.starts_with("*.")) {
        sc->wildcard_.emplace(n.substr(2), ctx);
      } else {
        sc->exact_.emplace(n, ctx);
      }
    }
    sc->leaves_.push_back(Leaf{std::move(l.leaf), std::move(l.ocsp)});
  }
  if (!errors.list.empty()) {
    return unexpected(std::move(errors.list));
  }
  return sc;
}

std::vector<std::string> ServerContext::configure(
    SSL_CTX* ctx, const config::ListenerTls& cfg,
    const std::vector<unsigned char>& session_context) {
  std::vector<std::string> problems;
  setProtocols(ctx, cfg.protocols, cfg.ciphers, cfg.ciphersuites, &problems);
  if (SSL_CTX_set1_groups_list(ctx, cfg.groups.c_str()) != 1) {
    problems.push_back("invalid groups \"" + cfg.groups + "\"");
  }
  ERR_clear_error();
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE |
                               (cfg.session_tickets ? 0 : SSL_OP_NO_TICKET));
  // An idle keep-alive connection keeps no 34 KiB of OpenSSL buffers; the chain goes out as
  // the certificate file holds it, never completed from elsewhere.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_session_id_context(ctx, session_context.data(),
                                 static_cast<unsigned>(session_context.size()));
  SSL_CTX_set_session_cache_mode(
      ctx, cfg.session_cache > 0 ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  SSL_CTX_sess_set_cache_size(ctx, cfg.session_cache);
  SSL_CTX_set_timeout(ctx, cfg.session_timeout_s);
  SSL_CTX_set_num_tickets(ctx, cfg.session_tickets ? 1 : 0);
  if (cfg.session_tickets) {
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &onTicketKey);
  }
  SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::onAlpn, this);
  SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::onServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  SSL_CTX_set_tlsext_status_cb(ctx, &ServerContext::onStatus);
  SSL_CTX_set_tlsext_status_arg(ctx, this);
  if (cfg.verify_client == config::ListenerTls::VerifyClient::Off) {
    return problems;
  }
  if (SSL_CTX_load_verify_locations(ctx, cfg.client_ca.c_str(), nullptr) != 1) {
    problems.push_back("cannot load client_ca \"" + cfg.client_ca + "\": " + lastError());
  } else if (STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(cfg.client_ca.c_str())) {
    SSL_CTX_set_client_CA_list(ctx, cas);
  }
  if (cfg.verify_client == config::ListenerTls::VerifyClient::On) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    // Optional: a certificate that does not verify lets the handshake go on; its subject is
    // then not forwarded (TlsSession checks the verify result).
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  }
  SSL_CTX_set_verify_depth(ctx, static_cast<int>(cfg.verify_depth));
  return problems;
}

void setProtocols(SSL_CTX* ctx, const std::vector<std::string>& protocols,
                  const std::string& ciphers, const std::string& ciphersuites,
                  std::vector<std::string>* problems) {
  int min_version = TLS1_3_VERSION;
  int max_version = TLS1_2_VERSION;
  for (const std::string& p : protocols) {
    min_version = std::min(min_version, protocolVersion(p));
    max_version = std::max(max_version, protocolVersion(p));
  }
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    problems->push_back("no TLS 1.2 cipher in \"" + ciphers + "\"");
  }
  if (SSL_CTX_set_ciphersuites(ctx, ciphersuites.c_str()) != 1) {
    problems->push_back("invalid TLS 1.3 ciphersuites \"" + ciphersuites + "\"");
  }
}

Result<config::Config, config::ConfigErrors> loadConfig(const std::string& path) {
  auto config = config::loadConfig(path);
  if (!config) {
    return config;
  }
  config::ConfigErrors errors;
  for (config::Listener& l : config->listeners) {
    if (!l.tls.enabled()) {
      continue;
    }
    auto sc = ServerContext::create(l, config->file);
    if (!sc) {
      errors.insert(errors.end(), sc.error().begin(), sc.error().end());
      continue;
    }
    l.tls_context = std::move(*sc);
  }
  for (config::Pool& p : config->pools) {
    if (!p.tls.enabled) {
      continue;
    }
    auto cc = ClientContext::create(p, config->file);
    if (!cc) {
      errors.insert(errors.end(), cc.error().begin(), cc.error().end());
      continue;
    }
    p.tls_context = std::move(*cc);
  }
  if (!errors.empty()) {
    return unexpected(std::move(errors));
  }
  return config;
}

SSL* ServerContext::newSsl() const {
  return contexts_.empty() ? nullptr : SSL_new(contexts_.front());
}

SSL_CTX* ServerContext::lookup(std::string_view server_name) const {
  std::string name = config::schema::lowercase(std::string(server_name));
  if (auto it = exact_.find(name); it != exact_.end()) {
    return it->second;
  }
  size_t dot = name.find('.');
  if (dot != std::string::npos) {
    if (auto it = wildcard_.find(std::string_view(name).substr(dot + 1)); it != wildcard_.end()) {
      return it->second;
    }
  }
  return nullptr;
}

int ServerContext::onServerName(SSL* ssl, int*, void* arg) {
  const auto* sc = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  SSL_CTX* ctx = sc->lookup(name);
  if (ctx == nullptr || ctx == SSL_get_SSL_CTX(ssl)) {
    return SSL_TLSEXT_ERR_OK;  // the default certificate (or already the right one)
  }
  SSL_set_SSL_CTX(ssl, ctx);
  // SSL_set_SSL_CTX swaps certificates only: the verification settings follow by hand.
  SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
  SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onAlpn(SSL*, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* sc = static_cast<const ServerContext*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(
          &selected, outlen, reinterpret_cast<const unsigned char*>(sc->alpn_.data()),
          static_cast<unsigned>(sc->alpn_.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: HTTP/1.1 without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onStatus(SSL* ssl, void* arg) {
  const auto* sc = static_cast<const ServerContext*>(arg);
  X509* cert = SSL_get_certificate(ssl);
  for (const Leaf& leaf : sc->leaves_) {
    if (!leaf.ocsp.empty() && X509_cmp(leaf.cert.get(), cert) == 0) {
      auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(leaf.ocsp.size()));
      if (copy == nullptr) {
        return SSL_TLSEXT_ERR_NOACK;
      }
      std::memcpy(copy, leaf.ocsp.data(), leaf.ocsp.size());
      SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(leaf.ocsp.size()));
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace lb::tls
