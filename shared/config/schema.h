#pragma once

// Internal to the config loader (load.cc, dump.cc): the directive names of every context and
// Reader, the typed, non-throwing view of libconfig settings that records each problem as a
// ConfigError and lets loading go on, so an operator sees every mistake at once.

#include <libconfig.h++>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shared/config/load.h"

namespace lb::config::schema {

// The directives each context accepts, in the order dumpConfig writes them. A name missing
// here is reported as unknown even if the loader handles it, so keep both in step.
inline constexpr std::string_view kTopLevel[] = {"worker_processes",
                                                 "daemon",
                                                 "pid",
                                                 "worker_shutdown_timeout_ms",
                                                 "worker_connections",
                                                 "reload_timeout_ms",
                                                 "max_draining_generations",
                                                 "drain_window_ms",
                                                 "accept_spread",
                                                 "error_log",
                                                 "access_log",
                                                 "http",
                                                 "listeners",
                                                 "routes",
                                                 "pools"};
inline constexpr std::string_view kErrorLog[] = {"path", "level"};
inline constexpr std::string_view kAccessLog[] = {"path"};
inline constexpr std::string_view kLimits[] = {
    "client_header_timeout_ms", "client_body_timeout_ms", "keepalive_timeout_ms",
    "send_timeout_ms",          "client_max_header_size", "client_max_body_size",
    "keepalive_requests",       "tunnel_timeout_ms",      "request_buffering",
    "reset_timedout_connection"};
inline constexpr std::string_view kListener[] = {"name", "listen", "protocol", "backlog", "routes",
                                                 "pool", "return", "tls",      "http2"};
inline constexpr std::string_view kHttp2[] = {"enabled", "max_concurrent_streams",
                                              "initial_window_size", "max_resets_burst",
                                              "max_resets_per_s"};
inline constexpr std::string_view kReturn[] = {"status", "headers", "body"};
inline constexpr std::string_view kRouteTable[] = {"name", "rules"};
inline constexpr std::string_view kRule[] = {"host", "path_prefix", "pool", "return"};
inline constexpr std::string_view kPool[] = {"name",
                                             "algorithm",
                                             "hash_key",
                                             "sticky",
                                             "health_check",
                                             "backends",
                                             "keepalive",
                                             "keepalive_timeout_ms",
                                             "keepalive_requests",
                                             "connect_timeout_ms",
                                             "read_timeout_ms",
                                             "send_timeout_ms",
                                             "retries",
                                             "retry_on",
                                             "retry_budget",
                                             "passive",
                                             "circuit_breaker",
                                             "queue",
                                             "slow_start_ms",
                                             "forwarded_headers",
                                             "tls"};
inline constexpr std::string_view kBackend[] = {"address", "weight", "max_connections"};
inline constexpr std::string_view kSticky[] = {"cookie", "max_age_s"};
inline constexpr std::string_view kHealthCheck[] = {
    "type",        "method",     "path", "host", "expect",  "body_contains",
    "interval_ms", "timeout_ms", "fall", "rise", "initial", "jitter_ms"};
inline constexpr std::string_view kRetryBudget[] = {"percent", "window_ms", "min_retries"};
inline constexpr std::string_view kPassive[] = {"failures", "fail_timeout_ms", "statuses"};
inline constexpr std::string_view kCircuitBreaker[] = {"failures", "open_ms", "half_open_probes",
                                                       "half_open_successes", "statuses"};
inline constexpr std::string_view kQueue[] = {"size", "timeout_ms"};
inline constexpr std::string_view kTls[] = {"certificates",    "protocols",
                                            "ciphers",         "ciphersuites",
                                            "groups",          "alpn",
                                            "session_tickets", "ticket_key_rotation_s",
                                            "session_cache",   "session_timeout_s",
                                            "verify_client",   "client_ca",
                                            "verify_depth",    "client_subject_header"};
inline constexpr std::string_view kTlsCertificate[] = {"cert", "key", "ocsp_response"};
// A pool's tls group: TLS from lb to the pool's backends.
inline constexpr std::string_view kPoolTls[] = {
    "verify", "ca",        "verify_depth", "server_name",  "cert",
    "key",    "protocols", "ciphers",      "ciphersuites", "session_reuse"};
// The values "protocols" and "alpn" of a tls group may list.
inline constexpr std::string_view kTlsProtocols[] = {"TLSv1.2", "TLSv1.3"};
inline constexpr std::string_view kAlpnProtocols[] = {"h2", "http/1.1"};
// The names of ListenerTls::VerifyClient values as the config spells them, in enum order.
inline constexpr std::string_view kVerifyClient[] = {"off", "optional", "on"};
// The response statuses "retry_on" may list: the ones a backend sends when another one may
// well succeed.
inline constexpr int kRetryableStatuses[] = {429, 500, 502, 503, 504};
// The health_check directives that only an HTTP check uses.
inline constexpr std::string_view kHttpCheckOnly[] = {"method", "path", "host", "expect",
                                                      "body_contains"};

// The names of Algorithm values as the config spells them, in enum order.
inline constexpr std::string_view kAlgorithms[] = {
    "round_robin", "least_conn", "least_time", "peak_ewma", "random", "ip_hash", "hash"};
// The name of `a` in the config ("round_robin", ...).
std::string_view algorithmName(Algorithm a);
// The Algorithm named `name`; false if there is none.
bool parseAlgorithm(std::string_view name, Algorithm* out);
// "client", "uri", "header:NAME" or "cookie:NAME" into *out; false (with *out untouched) if
// `text` is none of them or NAME is not an HTTP token.
bool parseHashKey(std::string_view text, HashKey* out);
// The inverse of parseHashKey.
std::string hashKeyText(const HashKey& key);

// Limits shared by several directives.
inline constexpr int64_t kMaxMs = 2147483647;  // ~24.8 days; libconfig's plain int range
inline constexpr int kMaxWorkers = 256;

// The name of `known` that `name` is most likely a typo of; "" if none is close.
std::string_view closest(std::string_view name, std::span<const std::string_view> known);

// "a string", "an integer", ... for "got ..." in messages.
const char* typeName(const libconfig::Setting& s);

// "16k" -> 16384: digits with an optional k/m/g suffix (case-insensitive, powers of 1024).
// Returns false on anything else or on overflow.
bool parseSize(std::string_view text, uint64_t* out);
// The inverse for dumps: 16384 -> "16k"; a value that is no exact multiple stays digits.
std::string formatSize(uint64_t value);

// `name` relative to `dir` ("" or "." = as is); an absolute `name` stays.
std::string joinPath(const std::string& dir, const std::string& name);

// "\"name\"": a value quoted for a message.
std::string quoted(std::string_view s);
// `"a", "b" or "c"` for an "expected ..." message.
std::string alternatives(std::span<const std::string_view> names);
std::string lowercase(std::string s);
// True if `s` holds a control character other than HTAB (CR and LF included).
bool hasControl(std::string_view s);

// True if `name` is an HTTP token (RFC 9110 tchar+).
bool isToken(std::string_view name);

// Wraps one parsed libconfig tree. Every getter checks the setting's type and range itself (the
// libconfig::Config runs with auto-conversion off), so none of them throws; on a mismatch it
// records an error at the setting's file and line and returns false, leaving *out untouched.
// Single-threaded; lives for one load.
class Reader {
 public:
  // `file`: the file name for settings that libconfig does not attribute to an @include file.
  // `include_dir`: where @include paths are resolved ("" = the current directory).
  Reader(std::string file, std::string include_dir);

  void error(const libconfig::Setting& at, std::string message);
  // An error with no setting to point at: "file: message".
  void errorNoLine(std::string message);
  // `unknown directive "foo" in pool "api"`, plus a suggestion when a known name is close.
  // `context` "" stands for the top level.
  void unknown(const libconfig::Setting& s, const std::string& context,
               std::span<const std::string_view> known);

  bool getString(const libconfig::Setting& s, std::string* out);
  bool getBool(const libconfig::Setting& s, bool* out);
  // Accepts an int or an int64 ("L" suffix) setting within [min, max].
  bool getInt(const libconfig::Setting& s, int64_t min, int64_t max, int64_t* out);
  template <typename T>
  bool getInt(const libconfig::Setting& s, int64_t min, int64_t max, T* out) {
    int64_t v = 0;
    if (!getInt(s, min, max, &v)) {
      return false;
    }
    *out = static_cast<T>(v);
    return true;
  }
  // An integer, or a string with a k/m/g suffix, within [min, max].
  bool getSize(const libconfig::Setting& s, uint64_t min, uint64_t max, uint64_t* out);
  // Type checks for aggregates; `shape` completes "must be a group ..." for the message.
  bool expectGroup(const libconfig::Setting& s, std::string_view what);
  bool expectList(const libconfig::Setting& s, std::string_view what);

  // The file a setting came from, resolved against the include directory.
  std::string fileOf(const libconfig::Setting& s) const;
  const std::string& file() const { return file_; }
  // The directory relative @include names (and other relative paths) are taken from.
  const std::string& includeDir() const { return include_dir_; }
  ConfigErrors& errors() { return errors_; }

 private:
  std::string file_;
  std::string include_dir_;
  ConfigErrors errors_;
};

// The member `name` of a group, or nullptr. Never throws (unlike Setting::operator[]).
const libconfig::Setting* member(const libconfig::Setting& group, std::string_view name);

// libconfig 1.5 silently wraps an integer literal that does not fit in 32 bits
// (3000000000 becomes -1294967296). Scans the text, and any @include'd file, for such literals
// so that they are errors instead. Appends one error per literal; returns false if any.
bool checkIntegerLiterals(const std::string& text, const std::string& file,
                          const std::string& include_dir, ConfigErrors* errors, int depth = 0);

}  // namespace lb::config::schema
