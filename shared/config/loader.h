#pragma once

// Internal to the config loader: Loader turns a parsed libconfig tree into a Config. load.cc
// holds the top level, the logs and the http limits; sections.cc the listeners and route
// tables; tls.cc a listener's tls group; pools.cc the pools, their backends, hash key, sticky
// cookie, health checks and the resilience groups (retry budget, passive health, circuit
// breaker, queue).

#include <libconfig.h++>

#include <map>
#include <span>
#include <string>
#include <vector>

#include "shared/config/model.h"
#include "shared/config/schema.h"

namespace lb::config::detail {

inline constexpr int64_t kMaxMs = schema::kMaxMs;
inline constexpr int64_t kMaxInt = 2147483647;
inline constexpr uint64_t kMinHeaderSize = 1024;
inline constexpr uint64_t kMaxHeaderSize = 1024 * 1024;

// How a list element is named before its name is known: `pool "api"`, else `pool 3`.
std::string contextOf(const char* kind, const libconfig::Setting& g, int index,
                      const char* name_key);

// Builds a Config from a parsed tree, in file order. Every check reports through the Reader
// and carries on, so one load lists every problem. Never throws for any tree libconfig accepts:
// each value's type is checked before it is read. One Loader per load.
class Loader {
 public:
  explicit Loader(schema::Reader& reader) : r_(reader) {}
  // The config, with defaults where the tree is silent. Meaningful only if the Reader has
  // recorded no error.
  Config load(const libconfig::Setting& root);

 private:
  using Setting = libconfig::Setting;

  void collectNames(const Setting& root);
  void readWorkerProcesses(const Setting& s);
  void readPath(const Setting& s, std::string_view special, std::string* out);
  void readErrorLog(const Setting& g);
  void readAccessLog(const Setting& g);
  void readHttp(const Setting& g);
  // Applies `s` if it is one of the ClientLimits keys; false if it is none of them.
  bool readLimit(const Setting& s, ClientLimits* limits);

  void readListener(const Setting& g, int index);
  void readAddress(const Setting& s, bool is_backend, os::SocketAddress* out);
  void readReturn(const Setting& g, const std::string& context, StaticResponse* out);
  // A listener's "tls" group; `context` names it ("tls of listener \"web\""). Checks syntax,
  // ranges and the directives' consistency only: the files are read by the TLS code.
  void readTls(const Setting& g, const std::string& context, ListenerTls* out);
  void readHttp2(const Setting& g, const std::string& context, Http2* out);
  void readTlsCertificates(const Setting& s, const std::string& context,
                           std::vector<TlsCertificate>* out);
  void readTlsCertificate(const Setting& g, const std::string& context, TlsCertificate* out);
  // A non-empty path without control characters into *out, made absolute: a relative one is
  // taken from the main config file's directory (as @include is), then from the current one.
  bool readTlsPath(const Setting& s, std::string* out);
  // A non-empty string without control characters (an OpenSSL list such as "ciphers").
  void readTlsList(const Setting& s, std::string* out);
  // An array (or list) of distinct strings, each one of `allowed`, at least one; `example`
  // shows the shape in the message for a setting of another type.
  void readChoices(const Setting& s, std::span<const std::string_view> allowed, const char* example,
                   std::vector<std::string>* out);
  void readHeaders(const Setting& g, StaticResponse* out);
  void readRouteTable(const Setting& g, int index);
  void readRule(const Setting& g, const std::string& context, RouteRule* rule);
  void readPool(const Setting& g, int index);
  void readBackend(const Setting& g, const std::string& context, Backend* backend);
  void readHashKey(const Setting& s, HashKey* out);
  void readSticky(const Setting& g, const std::string& context, Sticky* out);
  void readHealthCheck(const Setting& g, const std::string& context, HealthCheck* out);
  // expect = [ 200, 204 ]: statuses 100 to 599, each once.
  void readExpect(const Setting& s, std::vector<int>* out);
  // An array (or list) of distinct statuses within [min, max] and, unless `only` is empty, among
  // `only`; `example` shows the shape in the message for a setting of another type. [] is
  // allowed. On an error in an element, *out gets the valid ones (the load fails anyway).
  void readStatuses(const Setting& s, const char* example, int min, int max,
                    std::span<const int> only, std::vector<int>* out);
  void readRetryBudget(const Setting& g, const std::string& context, RetryBudget* out);
  void readPassive(const Setting& g, const std::string& context, PassiveHealth* out);
  void readCircuitBreaker(const Setting& g, const std::string& context, CircuitBreaker* out);
  void readQueue(const Setting& g, const std::string& context, RequestQueue* out);
  // A pool's "tls" group; `context` names it ("tls of pool \"api\""). Syntax and consistency
  // only: the CA, certificate and key files are read by the TLS code (tls::ClientContext).
  void readPoolTls(const Setting& g, const std::string& context, PoolTls* out);
  // The index of the pool / route table named by string setting `s`; -1 (and an error) if none.
  int resolve(const Setting& s, const std::map<std::string, int>& names, const char* kind);

  schema::Reader& r_;
  Config c_;
  std::map<std::string, int> pool_names_;   // name -> index; the first definition wins
  std::map<std::string, int> route_names_;  // the same for route tables
  std::vector<int> listener_name_lines_;    // line of each listener's "name", 0 = defaulted
};

}  // namespace lb::config::detail
