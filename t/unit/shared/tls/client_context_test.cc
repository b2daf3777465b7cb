// tls::ClientContext, a pool's TLS to its backends: the files of the tls group read and checked
// when the config loads (each problem an error at the group's line), and, through handshakes
// with an in-memory OpenSSL server, what each connection gets: SNI, the name or address its
// backend's certificate must carry, the reason a handshake failed, and the session a reconnect
// resumes. Certificates are made here with the OpenSSL API: a CA and a backend certificate for
// api.internal and 127.0.0.1.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "shared/config/load.h"
#include "shared/tls/client_context.h"
#include "shared/tls/server_context.h"

namespace lb::tls {
namespace {

struct Files {
  Files() {
    char tmpl[] = "/tmp/lb-client-context-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~Files() {
    for (const std::string& f : written) {
      ::unlink(f.c_str());
    }
    ::rmdir(dir.c_str());
  }
  std::string write(const std::string& name, const std::string& content) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << content;
    written.push_back(path);
    return path;
  }
  std::string dir;
  std::vector<std::string> written;
};

EVP_PKEY* newKey() {
  return EVP_EC_gen("P-256");
}

// A certificate for `cn`, signed by `issuer` (itself when null), with subjectAltName `san`
// ("" = none) or, for a CA, the CA basic constraint.
X509* newCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
              const std::string& san, bool ca) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (ca) {
    add(NID_basic_constraints, "critical,CA:TRUE");
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  if (!san.empty()) {
    add(NID_subject_alt_name, san);
  }
  REQUIRE(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0);
  return x;
}

std::string pem(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

std::string pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

// A CA, a backend certificate it signed (api.internal, 127.0.0.1), a client certificate, and
// their files.
struct Pki {
  Files files;
  EVP_PKEY* ca_key = newKey();
  X509* ca = newCert("test CA", ca_key, nullptr, nullptr, "", true);
  EVP_PKEY* backend_key = newKey();
  X509* backend =
      newCert("api.internal", backend_key, ca, ca_key, "DNS:api.internal,IP:127.0.0.1", false);
  EVP_PKEY* client_key = newKey();
  X509* client = newCert("lb client", client_key, ca, ca_key, "", false);
  std::string ca_pem = files.write("ca.pem", pem(ca));
  std::string client_pem = files.write("client.pem", pem(client));
  std::string client_key_pem = files.write("client.key", pem(client_key));
  std::string backend_key_pem = files.write("backend.key", pem(backend_key));
  ~Pki() {
    for (X509* x : {ca, backend, client}) {
      X509_free(x);
    }
    for (EVP_PKEY* k : {ca_key, backend_key, client_key}) {
      EVP_PKEY_free(k);
    }
  }
};

// A config with pool "app" (backend `backend`) whose tls group, on line 3, holds `tls`.
Result<config::Config, config::ConfigErrors> loadWith(Files& files, const std::string& tls,
                                                      const std::string& backend = "127.0.0.1") {
  std::string path = files.write(
      "lb.conf",
      "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
      "pools = ( { name = \"app\"; backends = ( { address = \"" +
          backend + ":9443\"; } );\n  tls = { " + tls +
          " }; },\n"
          "  { name = \"plain\"; backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n");
  return loadConfig(path);
}

std::shared_ptr<const ClientContext> contextWith(Files& files, const std::string& tls,
                                                 const std::string& backend = "127.0.0.1") {
  auto c = loadWith(files, tls, backend);
  if (!c) {
    FAIL(c.error()[0].toString());
  }
  REQUIRE(c->pools[0].tls_context != nullptr);
  return c->pools[0].tls_context;
}

// One error at line 3 of lb.conf, saying `message` (or starting so, with `prefix`).
void expectError(Files& files, const std::string& tls, const std::string& message,
                 bool prefix = false) {
  auto c = loadWith(files, tls);
  REQUIRE_FALSE(c.has_value());
  REQUIRE(c.error().size() == 1);
  CHECK(c.error()[0].file == files.dir + "/lb.conf");
  CHECK(c.error()[0].line == 3);
  if (prefix) {
    CHECK(c.error()[0].message.starts_with(message));
  } else {
    CHECK(c.error()[0].message == message);
  }
}

// A TLS server in memory, serving `cert`; optionally asking for a client certificate.
struct Server {
  Server(X509* cert, EVP_PKEY* key, X509* client_ca = nullptr) {
    ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    if (client_ca != nullptr) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), client_ca);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("t"), 1);
  }
  ~Server() { SSL_CTX_free(ctx); }
  SSL_CTX* ctx;
};

// One connection: the client SSL from the context against a server SSL, over a BIO pair.
struct Connection {
  Connection(const ClientContext& cc, Server& server, int backend = 0) {
    client = cc.newSsl(backend);
    REQUIRE(client != nullptr);
    SSL_set_connect_state(client);
    this->server = SSL_new(server.ctx);
    SSL_set_accept_state(this->server);
    BIO* a = nullptr;
    BIO* b = nullptr;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(client, a, a);
    SSL_set_bio(this->server, b, b);
  }
  ~Connection() {
    // As lb does: OpenSSL spoils the session of an SSL freed without it.
    SSL_shutdown(client);
    ERR_clear_error();  // that of a failed handshake's
    SSL_free(client);
    SSL_free(server);
  }
  // Runs both sides until the client is done or fails; true when it is done. Then a byte from
  // the server, so that the client takes the session tickets sent after the handshake.
  bool handshake() {
    for (int i = 0; i < 20; ++i) {
      int c = SSL_do_handshake(client);
      SSL_do_handshake(server);
      if (c == 1 && SSL_is_init_finished(server)) {
        char byte = 'x';
        SSL_write(server, &byte, 1);
        char got = 0;
        return SSL_read(client, &got, 1) == 1 && got == 'x';
      }
      if (c <= 0 && SSL_get_error(client, c) == SSL_ERROR_SSL) {
        return false;
      }
    }
    return false;
  }
  SSL* client;
  SSL* server;
};

TEST_CASE("client context: built for TLS pools only, from readable files", "[tls]") {
  Pki pki;
  auto c = loadWith(pki.files, "ca = \"" + pki.ca_pem + "\"; cert = \"" + pki.client_pem +
                                   "\"; key = \"" + pki.client_key_pem + "\";");
  REQUIRE(c);
  CHECK(c->pools[0].tls_context != nullptr);
  CHECK(c->pools[1].tls_context == nullptr);
  // The system's CA store, and no verification at all, need no file.
  CHECK(loadWith(pki.files, "")->pools[0].tls_context != nullptr);
  CHECK(loadWith(pki.files, "verify = false;")->pools[0].tls_context != nullptr);
  // Relative to the config file's directory.
  CHECK(loadWith(pki.files, "ca = \"ca.pem\"; cert = \"client.pem\"; key = \"client.key\";"));
}

TEST_CASE("client context: an unreadable or invalid file is an error at the tls group's line",
          "[tls]") {
  Pki pki;
  Files& f = pki.files;
  const std::string missing = f.dir + "/missing.pem";
  const std::string junk = f.write("junk.pem", "not a certificate\n");
  expectError(f, "ca = \"" + missing + "\";",
              "tls of pool \"app\": cannot read ca \"" + missing + "\": No such file or directory");
  expectError(f, "ca = \"" + junk + "\";",
              "tls of pool \"app\": ca \"" + junk + "\" holds no PEM certificate: ", true);
  expectError(f, "cert = \"" + missing + "\"; key = \"" + pki.client_key_pem + "\";",
              "tls of pool \"app\": cannot read certificate \"" + missing +
                  "\": No such file or directory");
  expectError(
      f, "cert = \"" + pki.client_pem + "\"; key = \"" + missing + "\";",
      "tls of pool \"app\": cannot read key \"" + missing + "\": No such file or directory");
  expectError(f, "cert = \"" + junk + "\"; key = \"" + pki.client_key_pem + "\";",
              "tls of pool \"app\": certificate \"" + junk + "\" holds no PEM certificate: ", true);
  expectError(f, "cert = \"" + pki.client_pem + "\"; key = \"" + junk + "\";",
              "tls of pool \"app\": key \"" + junk + "\" holds no PEM private key: ", true);
  expectError(f, "cert = \"" + pki.client_pem + "\"; key = \"" + pki.backend_key_pem + "\";",
              "tls of pool \"app\": key \"" + pki.backend_key_pem +
                  "\" does not match certificate \"" + pki.client_pem + "\"");
  expectError(f, "ciphers = \"NO-SUCH-CIPHER\";",
              "tls of pool \"app\": no TLS 1.2 cipher in \"NO-SUCH-CIPHER\"");
  expectError(f, "ciphersuites = \"TLS_NOPE\";",
              "tls of pool \"app\": invalid TLS 1.3 ciphersuites \"TLS_NOPE\"");
  // Every problem of the group at once.
  auto c = loadWith(f, "ca = \"" + missing + "\"; ciphers = \"NO-SUCH-CIPHER\";");
  REQUIRE_FALSE(c);
  CHECK(c.error().size() == 2);
}

TEST_CASE("client context: SNI and the verified name, or the address without SNI", "[tls]") {
  Pki pki;
  const std::string ca = "ca = \"" + pki.ca_pem + "\";";
  Server server(pki.backend, pki.backend_key);
  {
    auto cc = contextWith(pki.files, ca + " server_name = \"api.internal\";");
    Connection c(*cc, server);
    CHECK(c.handshake());
    const char* sni = SSL_get_servername(c.server, TLSEXT_NAMETYPE_host_name);
    REQUIRE(sni != nullptr);
    CHECK(std::string(sni) == "api.internal");
  }
  {
    auto cc = contextWith(pki.files, ca);
    Connection c(*cc, server);
    CHECK(c.handshake());
    CHECK(SSL_get_servername(c.server, TLSEXT_NAMETYPE_host_name) == nullptr);
  }
  {
    auto cc = contextWith(pki.files, ca + " server_name = \"db.internal\";");
    Connection c(*cc, server);
    CHECK_FALSE(c.handshake());
    CHECK(ClientContext::handshakeError(c.client, "") ==
          "certificate verify failed (hostname mismatch)");
  }
  {
    auto cc = contextWith(pki.files, ca, "127.0.0.2");
    Connection c(*cc, server);
    CHECK_FALSE(c.handshake());
    CHECK(ClientContext::handshakeError(c.client, "") ==
          "certificate verify failed (IP address mismatch)");
  }
  {
    // Another CA's backend, and the system's store, which does not know the test CA.
    auto cc = contextWith(pki.files, "server_name = \"api.internal\";");
    Connection c(*cc, server);
    CHECK_FALSE(c.handshake());
    CHECK(ClientContext::handshakeError(c.client, "") ==
          "certificate verify failed (unable to get local issuer certificate)");
  }
  {
    auto cc = contextWith(pki.files, "verify = false; server_name = \"db.internal\";");
    Connection c(*cc, server);
    CHECK(c.handshake());
  }
}

TEST_CASE("client context: the client certificate goes to a server that asks for it", "[tls]") {
  Pki pki;
  Server server(pki.backend, pki.backend_key, pki.ca);
  const std::string ca = "ca = \"" + pki.ca_pem + "\";";
  auto with = contextWith(
      pki.files, ca + " cert = \"" + pki.client_pem + "\"; key = \"" + pki.client_key_pem + "\";");
  Connection c(*with, server);
  REQUIRE(c.handshake());
  X509* shown = SSL_get0_peer_certificate(c.server);
  REQUIRE(shown != nullptr);
  CHECK(X509_cmp(shown, pki.client) == 0);
  auto without = contextWith(pki.files, ca + " protocols = [ \"TLSv1.2\" ];");
  Connection d(*without, server);
  CHECK_FALSE(d.handshake());
  CHECK(ClientContext::handshakeError(d.client, "") != "");
}

TEST_CASE("client context: a reconnect resumes each backend's last session", "[tls]") {
  Pki pki;
  Server server(pki.backend, pki.backend_key);
  for (const std::string protocol : {"TLSv1.3", "TLSv1.2"}) {
    INFO(protocol);
    auto cc = contextWith(pki.files,
                          "ca = \"" + pki.ca_pem + "\"; protocols = [ \"" + protocol + "\" ];");
    {
      Connection first(*cc, server);
      REQUIRE(first.handshake());
      CHECK(SSL_session_reused(first.client) == 0);
    }
    {
      Connection second(*cc, server);
      REQUIRE(second.handshake());
      CHECK(SSL_session_reused(second.client) == 1);
    }
    cc->forgetSession(0);
    Connection third(*cc, server);
    REQUIRE(third.handshake());
    CHECK(SSL_session_reused(third.client) == 0);
  }
  auto off = contextWith(pki.files, "ca = \"" + pki.ca_pem + "\"; session_reuse = false;");
  for (int i = 0; i < 2; ++i) {
    Connection c(*off, server);
    REQUIRE(c.handshake());
    CHECK(SSL_session_reused(c.client) == 0);
  }
}

}  // namespace
}  // namespace lb::tls
