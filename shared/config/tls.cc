// A listener's "tls" group: its certificates, protocols, cipher lists, session resumption and
// client verification. Only the syntax and the directives' consistency are checked here; the
// certificate, key, OCSP and CA files and the OpenSSL strings are checked by the TLS code when
// `lb -t` or a reload builds the contexts.

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "shared/config/loader.h"

namespace lb::config::detail {

using libconfig::Setting;
using schema::alternatives;
using schema::hasControl;
using schema::lowercase;
using schema::quoted;

namespace {

constexpr uint32_t kMinTicketKeyRotationS = 60;
constexpr uint32_t kMaxTicketKeyRotationS = 604800;  // a week
constexpr uint32_t kMaxSessionCache = 1000000;
constexpr uint32_t kMaxSessionTimeoutS = 86400;
constexpr uint32_t kMaxVerifyDepth = 10;

// Headers lb itself manages or that frame the message: naming one of them as
// client_subject_header would remove or replace it on every request.
constexpr std::string_view kManagedHeaders[] = {"host",
                                                "content-length",
                                                "transfer-encoding",
                                                "connection",
                                                "upgrade",
                                                "te",
                                                "trailer",
                                                "keep-alive",
                                                "proxy-connection",
                                                "x-forwarded-for",
                                                "x-forwarded-proto",
                                                "x-forwarded-host"};

// `name` resolved against `dir`, then made absolute against the current directory, so that a
// dump names the same file wherever it is loaded from.
std::string absolutePath(const std::string& dir, const std::string& name) {
  std::string_view relative = name;
  while (relative.starts_with("./")) {
    relative.remove_prefix(2);
  }
  std::string path = schema::joinPath(dir, std::string(relative));
  if (path.starts_with('/')) {
    return path;
  }
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
    return path;  // the TLS code reports a file it cannot open
  }
  return schema::joinPath(cwd, path);
}

}  // namespace

void Loader::readHttp2(const Setting& g, const std::string& context, Http2* out) {
  if (!r_.expectGroup(g, "\"http2\"")) {
    return;
  }
  out->line = static_cast<int>(g.getSourceLine());
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "enabled") {
      r_.getBool(s, &out->enabled);
    } else if (key == "max_concurrent_streams") {
      r_.getInt(s, 1, 10000, &out->max_concurrent_streams);
    } else if (key == "initial_window_size") {
      // RFC 9113 6.5.2: at most 2^31-1; below a frame's size a stream crawls.
      r_.getInt(s, 16384, 2147483647, &out->initial_window_size);
    } else if (key == "max_resets_burst") {
      r_.getInt(s, 1, 100000, &out->max_resets_burst);
    } else if (key == "max_resets_per_s") {
      r_.getInt(s, 1, 100000, &out->max_resets_per_s);
    } else {
      r_.unknown(s, context, schema::kHttp2);
    }
  }
}

void Loader::readTls(const Setting& g, const std::string& context, ListenerTls* out) {
  if (!r_.expectGroup(g, "\"tls\"")) {
    return;
  }
  out->line = static_cast<int>(g.getSourceLine());
  const Setting* certificates = nullptr;
  const Setting* verify_client = nullptr;
  const Setting* client_ca = nullptr;
  const Setting* subject_header = nullptr;
  bool verify_known = true;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "certificates") {
      certificates = &s;
      readTlsCertificates(s, context, &out->certificates);
    } else if (key == "protocols") {
      readChoices(s, schema::kTlsProtocols, "[ \"TLSv1.2\", \"TLSv1.3\" ]", &out->protocols);
    } else if (key == "ciphers") {
      readTlsList(s, &out->ciphers);
    } else if (key == "ciphersuites") {
      readTlsList(s, &out->ciphersuites);
    } else if (key == "groups") {
      readTlsList(s, &out->groups);
    } else if (key == "alpn") {
      readChoices(s, schema::kAlpnProtocols, "[ \"h2\", \"http/1.1\" ]", &out->alpn);
    } else if (key == "session_tickets") {
      r_.getBool(s, &out->session_tickets);
    } else if (key == "ticket_key_rotation_s") {
      r_.getInt(s, kMinTicketKeyRotationS, kMaxTicketKeyRotationS, &out->ticket_key_rotation_s);
    } else if (key == "session_cache") {
      r_.getInt(s, 0, kMaxSessionCache, &out->session_cache);
    } else if (key == "session_timeout_s") {
      r_.getInt(s, 1, kMaxSessionTimeoutS, &out->session_timeout_s);
    } else if (key == "verify_client") {
      verify_client = &s;
      std::string value;
      verify_known = r_.getString(s, &value);
      if (!verify_known) {
        continue;
      }
      auto it = std::find(std::begin(schema::kVerifyClient), std::end(schema::kVerifyClient),
                          std::string_view(value));
      if (it == std::end(schema::kVerifyClient)) {
        verify_known = false;
        r_.error(s, "\"verify_client\" must be " + alternatives(schema::kVerifyClient) + ", got " +
                        quoted(value));
        continue;
      }
      out->verify_client = static_cast<ListenerTls::VerifyClient>(
          std::distance(std::begin(schema::kVerifyClient), it));
    } else if (key == "client_ca") {
      client_ca = &s;
      readTlsPath(s, &out->client_ca);
    } else if (key == "verify_depth") {
      r_.getInt(s, 1, kMaxVerifyDepth, &out->verify_depth);
    } else if (key == "client_subject_header") {
      subject_header = &s;
      std::string name;
      if (!r_.getString(s, &name)) {
        continue;
      }
      if (!schema::isToken(name)) {
        r_.error(s, "\"client_subject_header\" must be an HTTP header name, got " + quoted(name));
      } else if (std::find(std::begin(kManagedHeaders), std::end(kManagedHeaders),
                           lowercase(name)) != std::end(kManagedHeaders)) {
        r_.error(s, "\"client_subject_header\" cannot be " + quoted(name) +
                        ", a header lb manages itself");
      } else {
        out->client_subject_header = name;
      }
    } else {
      r_.unknown(s, context, schema::kTls);
    }
  }
  if (certificates == nullptr) {
    r_.error(g, "missing \"certificates\" in " + context);
  }
  if (!verify_known) {
    return;  // already an error; what depends on it cannot be judged
  }
  const bool verifying = out->verify_client != ListenerTls::VerifyClient::Off;
  if (verifying && client_ca == nullptr) {
    r_.error(*verify_client,
             "verify_client " +
                 quoted(schema::kVerifyClient[static_cast<size_t>(out->verify_client)]) +
                 " needs \"client_ca\" in " + context);
  }
  for (const Setting* s : {client_ca, subject_header}) {
    if (!verifying && s != nullptr) {
      r_.error(*s,
               quoted(s->getName()) + " needs verify_client \"optional\" or \"on\" in " + context);
    }
  }
}

void Loader::readTlsCertificates(const Setting& s, const std::string& context,
                                 std::vector<TlsCertificate>* out) {
  if (!r_.expectList(s, "\"certificates\"")) {
    return;
  }
  if (s.getLength() == 0) {
    r_.error(s, "\"certificates\" is empty; " + context + " needs at least one certificate");
    return;
  }
  std::vector<TlsCertificate> certificates;
  for (int i = 0; i < s.getLength(); ++i) {
    std::string cert_context = "certificate " + std::to_string(i + 1) + " of " + context;
    TlsCertificate c;
    c.line = static_cast<int>(s[i].getSourceLine());
    if (r_.expectGroup(s[i], cert_context)) {
      readTlsCertificate(s[i], cert_context, &c);
    }
    // The same chain twice is a copy-paste slip: the second could never be chosen.
    for (const TlsCertificate& other : certificates) {
      if (!c.cert.empty() && other.cert == c.cert) {
        r_.error(*schema::member(s[i], "cert"),
                 "certificate " + quoted(c.cert) + " is listed twice in " + context +
                     " (first on line " + std::to_string(other.line) + ")");
        break;
      }
    }
    certificates.push_back(std::move(c));
  }
  *out = std::move(certificates);
}

void Loader::readTlsCertificate(const Setting& g, const std::string& context, TlsCertificate* out) {
  const Setting* cert = nullptr;
  const Setting* key_setting = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "cert") {
      cert = &s;
      readTlsPath(s, &out->cert);
    } else if (key == "key") {
      key_setting = &s;
      readTlsPath(s, &out->key);
    } else if (key == "ocsp_response") {
      readTlsPath(s, &out->ocsp_response);
    } else {
      r_.unknown(s, context, schema::kTlsCertificate);
    }
  }
  if (cert == nullptr) {
    r_.error(g, "missing \"cert\" in " + context);
  }
  if (key_setting == nullptr) {
    r_.error(g, "missing \"key\" in " + context);
  }
}

bool Loader::readTlsPath(const Setting& s, std::string* out) {
  std::string path;
  if (!r_.getString(s, &path)) {
    return false;
  }
  if (path.empty()) {
    r_.error(s, quoted(s.getName()) + " must name a file, got \"\"");
    return false;
  }
  if (hasControl(path)) {
    r_.error(s, quoted(s.getName()) + " must not contain control characters");
    return false;
  }
  *out = absolutePath(r_.includeDir(), path);
  return true;
}

void Loader::readTlsList(const Setting& s, std::string* out) {
  std::string value;
  if (!r_.getString(s, &value)) {
    return;
  }
  if (value.empty()) {
    r_.error(s, quoted(s.getName()) + " must not be empty");
  } else if (hasControl(value)) {
    r_.error(s, quoted(s.getName()) + " must not contain control characters");
  } else {
    *out = std::move(value);
  }
}

void Loader::readChoices(const Setting& s, std::span<const std::string_view> allowed,
                         const char* example, std::vector<std::string>* out) {
  const std::string name = quoted(s.getName() != nullptr ? s.getName() : "");
  if (s.getType() != Setting::TypeArray && s.getType() != Setting::TypeList) {
    r_.error(s, name + " must be an array of strings such as " + example + ", got " +
                    schema::typeName(s));
    return;
  }
  if (s.getLength() == 0) {
    r_.error(s, name + " must not be empty");
    return;
  }
  std::vector<std::string> values;
  for (int i = 0; i < s.getLength(); ++i) {
    std::string value;
    if (!r_.getString(s[i], &value)) {
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      r_.error(s[i], "element " + std::to_string(i + 1) + " of " + name + " must be " +
                         alternatives(allowed) + ", got " + quoted(value));
      continue;
    }
    if (std::find(values.begin(), values.end(), value) != values.end()) {
      r_.error(s[i], quoted(value) + " is listed twice in " + name);
      continue;
    }
    values.push_back(std::move(value));
  }
  *out = std::move(values);
}

}  // namespace lb::config::detail
