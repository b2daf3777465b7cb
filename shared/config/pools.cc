// The pools section: a pool's algorithm and its options (hash key, sticky cookie), its
// backends, the active health checks the checker process runs against them, what the
// workers do when a backend fails (retries, passive health, circuit breaker, queue), and TLS
// to the backends (the pool's tls group).

#include <algorithm>
#include <string>
#include <vector>

#include "shared/config/loader.h"

namespace lb::config::detail {

using libconfig::Setting;
using schema::alternatives;
using schema::hasControl;
using schema::member;
using schema::quoted;

namespace {

// What a "passive" or "queue" group without the directive sets (model.h keeps 0 for off).
constexpr uint32_t kPassiveFailures = 3;
constexpr uint32_t kQueueSize = 100;

// "unknown X "v" in C; expected ..." with a did-you-mean when `value` looks like a typo.
std::string unknownValue(std::string_view what, std::string_view value, const std::string& context,
                         std::span<const std::string_view> known) {
  std::string message = "unknown " + std::string(what) + " " + quoted(value) + " in " + context;
  std::string_view best = schema::closest(value, known);
  if (!best.empty()) {
    return message + "; did you mean " + quoted(best) + "?";
  }
  return message + "; expected " + alternatives(known);
}

constexpr uint32_t kMaxVerifyDepth = 10;
constexpr size_t kMaxHostName = 253;

// A DNS name as SNI carries it: dot-separated labels of letters, digits, '-' and '_'.
bool isHostName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostName || name.front() == '.' || name.back() == '.' ||
      name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

// "10.0.0.1": what reads as an IPv4 address (SNI never carries one).
bool looksLikeAddress(std::string_view name) {
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// A request-target path as a health check sends it: from "/", no spaces, no controls.
bool isCheckPath(std::string_view path) {
  return path.starts_with('/') && !hasControl(path) && path.find(' ') == std::string_view::npos;
}

}  // namespace

void Loader::readPool(const Setting& g, int index) {
  c_.pools.emplace_back();
  Pool& p = c_.pools.back();
  p.line = static_cast<int>(g.getSourceLine());
  if (!r_.expectGroup(g, "pool " + std::to_string(index + 1))) {
    return;
  }
  std::string context = contextOf("pool", g, index, "name");
  const Setting* name_setting = nullptr;
  const Setting* backends = nullptr;
  const Setting* hash_key = nullptr;
  const Setting* queue = nullptr;
  const Setting* slow_start = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "name") {
      name_setting = &s;
      if (r_.getString(s, &p.name) && p.name.empty()) {
        r_.error(s, "\"name\" must not be empty");
      }
    } else if (key == "algorithm") {
      std::string algorithm;
      if (r_.getString(s, &algorithm) && !schema::parseAlgorithm(algorithm, &p.algorithm)) {
        r_.error(s, unknownValue("algorithm", algorithm, context, schema::kAlgorithms));
      }
    } else if (key == "hash_key") {
      hash_key = &s;
      readHashKey(s, &p.hash_key);
    } else if (key == "sticky") {
      readSticky(s, "\"sticky\" of " + context, &p.sticky);
    } else if (key == "health_check") {
      readHealthCheck(s, "\"health_check\" of " + context, &p.health_check);
    } else if (key == "backends") {
      backends = &s;
      if (!r_.expectList(s, "\"backends\"")) {
        continue;
      }
      for (int j = 0; j < s.getLength(); ++j) {
        std::string backend_context = "backend " + std::to_string(j + 1) + " of " + context;
        Backend b;
        b.line = static_cast<int>(s[j].getSourceLine());
        if (r_.expectGroup(s[j], backend_context)) {
          readBackend(s[j], backend_context, &b);
        }
        p.backends.push_back(std::move(b));
      }
    } else if (key == "keepalive") {
      r_.getInt(s, 0, 65535, &p.keepalive);
    } else if (key == "keepalive_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &p.keepalive_timeout_ms);
    } else if (key == "keepalive_requests") {
      r_.getInt(s, 0, kMaxInt, &p.keepalive_requests);
    } else if (key == "connect_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &p.connect_timeout_ms);
    } else if (key == "read_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &p.read_timeout_ms);
    } else if (key == "send_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &p.send_timeout_ms);
    } else if (key == "retries") {
      // At most 8 attempts per request: the worker remembers 8 tried backends (client_conn.h).
      r_.getInt(s, 0, 7, &p.retries);
    } else if (key == "retry_on") {
      readStatuses(s, "[ 502, 503 ]", 100, 599, schema::kRetryableStatuses, &p.retry_on);
    } else if (key == "retry_budget") {
      readRetryBudget(s, "\"retry_budget\" of " + context, &p.retry_budget);
    } else if (key == "passive") {
      readPassive(s, "\"passive\" of " + context, &p.passive);
    } else if (key == "circuit_breaker") {
      readCircuitBreaker(s, "\"circuit_breaker\" of " + context, &p.circuit_breaker);
    } else if (key == "queue") {
      queue = &s;
      readQueue(s, "\"queue\" of " + context, &p.queue);
    } else if (key == "slow_start_ms") {
      slow_start = &s;
      r_.getInt(s, 0, kMaxMs, &p.slow_start_ms);
    } else if (key == "forwarded_headers") {
      r_.getBool(s, &p.forwarded_headers);
    } else if (key == "tls") {
      readPoolTls(s, "tls of " + context, &p.tls);
    } else {
      r_.unknown(s, context, schema::kPool);
    }
  }
  if (name_setting == nullptr) {
    r_.error(g, "missing \"name\" in " + context);
  } else if (auto it = pool_names_.find(p.name); it != pool_names_.end() && it->second < index) {
    r_.error(*name_setting, "duplicate pool name " + quoted(p.name) + " (first on line " +
                                std::to_string(c_.pools[it->second].line) + ")");
  }
  if (backends == nullptr || (backends->isList() && backends->getLength() == 0)) {
    r_.error(backends != nullptr ? *backends : g, context + " has no backends");
  }
  // A key the algorithm would ignore is a mistake: lb never ignores a line.
  if (hash_key != nullptr && p.algorithm != Algorithm::Hash) {
    r_.error(*hash_key, "\"hash_key\" in " + context + " needs algorithm \"hash\", not " +
                            quoted(schema::algorithmName(p.algorithm)));
  }
  // Requests wait in the queue only for a backend at its max_connections.
  if (queue != nullptr && p.queue.size > 0 && !p.backends.empty() &&
      std::none_of(p.backends.begin(), p.backends.end(),
                   [](const Backend& b) { return b.max_connections > 0; })) {
    r_.error(*queue,
             "\"queue\" in " + context + " has no effect: no backend has \"max_connections\"");
  }
  // Maglev builds its table from the weights: a ramping weight would move keys to and fro.
  // ip_hash also maps by weight but makes no promise of consistency, so slow start may ramp it.
  if (slow_start != nullptr && p.slow_start_ms > 0 && p.algorithm == Algorithm::Hash) {
    r_.error(*slow_start, "\"slow_start_ms\" in " + context +
                              " cannot be used with algorithm \"hash\": a ramping weight would "
                              "move keys between backends");
  }
}

void Loader::readBackend(const Setting& g, const std::string& context, Backend* backend) {
  const Setting* address = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "address") {
      address = &s;
      r_.getString(s, &backend->address_text);
      readAddress(s, true, &backend->address);
    } else if (key == "weight") {
      r_.getInt(s, 1, 1000, &backend->weight);
    } else if (key == "max_connections") {
      r_.getInt(s, 0, kMaxInt, &backend->max_connections);
    } else {
      r_.unknown(s, context, schema::kBackend);
    }
  }
  if (address == nullptr) {
    r_.error(g, "missing \"address\" in " + context);
    return;
  }
  // One shared-memory slot per (pool, address): a backend listed twice would share it.
  const Pool& pool = c_.pools.back();
  for (const Backend& other : pool.backends) {
    if (backend->address.length() != 0 && other.address == backend->address) {
      r_.error(*address, "backend " + quoted(backend->address_text) + " is listed twice (first " +
                             "on line " + std::to_string(other.line) + "); use \"weight\"");
      break;
    }
  }
}

void Loader::readHashKey(const Setting& s, HashKey* out) {
  std::string text;
  if (r_.getString(s, &text) && !schema::parseHashKey(text, out)) {
    r_.error(s, "\"hash_key\" must be \"client\", \"uri\", \"header:NAME\" or \"cookie:NAME\" " +
                    std::string("with NAME an HTTP token, got ") + quoted(text));
  }
}

void Loader::readSticky(const Setting& g, const std::string& context, Sticky* out) {
  if (!r_.expectGroup(g, "\"sticky\"")) {
    return;
  }
  out->enabled = true;  // the group's presence turns it on
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "cookie") {
      std::string name;
      if (r_.getString(s, &name) && !schema::isToken(name)) {
        r_.error(s, "\"cookie\" must be a cookie name (an HTTP token), got " + quoted(name));
      } else if (!name.empty()) {
        out->cookie = name;
      }
    } else if (key == "max_age_s") {
      r_.getInt(s, 0, kMaxInt, &out->max_age_s);
    } else {
      r_.unknown(s, context, schema::kSticky);
    }
  }
}

void Loader::readHealthCheck(const Setting& g, const std::string& context, HealthCheck* out) {
  if (!r_.expectGroup(g, "\"health_check\"")) {
    return;
  }
  out->line = static_cast<int>(g.getSourceLine());
  out->type = HealthCheck::Type::Tcp;  // the group's presence turns checks on
  const Setting* http_only = nullptr;  // the first HTTP-only directive
  const Setting* interval = nullptr;
  const Setting* timeout = nullptr;
  const Setting* jitter = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (http_only == nullptr &&
        std::find(std::begin(schema::kHttpCheckOnly), std::end(schema::kHttpCheckOnly), key) !=
            std::end(schema::kHttpCheckOnly)) {
      http_only = &s;
    }
    if (key == "type") {
      std::string type;
      if (!r_.getString(s, &type)) {
        continue;
      }
      if (type == "tcp") {
        out->type = HealthCheck::Type::Tcp;
      } else if (type == "http") {
        out->type = HealthCheck::Type::Http;
      } else {
        r_.error(s, "unknown health check type " + quoted(type) + " in " + context +
                        "; expected \"tcp\" or \"http\"");
      }
    } else if (key == "method") {
      if (r_.getString(s, &out->method) && !schema::isToken(out->method)) {
        r_.error(s,
                 "\"method\" must be an HTTP method such as \"GET\", got " + quoted(out->method));
      }
    } else if (key == "path") {
      if (r_.getString(s, &out->path) && !isCheckPath(out->path)) {
        r_.error(s, "\"path\" must start with \"/\" and hold no spaces, got " + quoted(out->path));
      }
    } else if (key == "host") {
      if (r_.getString(s, &out->host) &&
          (hasControl(out->host) || out->host.find(' ') != std::string::npos)) {
        r_.error(s, "\"host\" must hold no spaces or control characters, got " + quoted(out->host));
      }
    } else if (key == "expect") {
      readExpect(s, &out->expect);
    } else if (key == "body_contains") {
      r_.getString(s, &out->body_contains);
    } else if (key == "interval_ms") {
      interval = &s;
      r_.getInt(s, 10, kMaxMs, &out->interval_ms);
    } else if (key == "timeout_ms") {
      timeout = &s;
      r_.getInt(s, 1, kMaxMs, &out->timeout_ms);
    } else if (key == "fall") {
      r_.getInt(s, 1, 1000, &out->fall);
    } else if (key == "rise") {
      r_.getInt(s, 1, 1000, &out->rise);
    } else if (key == "initial") {
      std::string initial;
      if (!r_.getString(s, &initial)) {
        continue;
      }
      if (initial == "up" || initial == "down") {
        out->initial_up = initial == "up";
      } else {
        r_.error(s, "\"initial\" must be \"up\" or \"down\", got " + quoted(initial));
      }
    } else if (key == "jitter_ms") {
      jitter = &s;
      r_.getInt(s, 0, kMaxMs, &out->jitter_ms);
    } else {
      r_.unknown(s, context, schema::kHealthCheck);
    }
  }
  if (out->type == HealthCheck::Type::Tcp && http_only != nullptr) {
    r_.error(*http_only, quoted(http_only->getName()) + " needs type \"http\" in " + context);
  }
  // A check still running when the next one is due would overlap it.
  if (out->timeout_ms >= out->interval_ms) {
    r_.error(timeout != nullptr    ? *timeout
             : interval != nullptr ? *interval
                                   : g,
             "\"timeout_ms\" (" + std::to_string(out->timeout_ms) +
                 ") must be less than \"interval_ms\" (" + std::to_string(out->interval_ms) +
                 ") in " + context);
  }
  if (out->jitter_ms >= out->interval_ms) {
    r_.error(jitter != nullptr     ? *jitter
             : interval != nullptr ? *interval
                                   : g,
             "\"jitter_ms\" (" + std::to_string(out->jitter_ms) +
                 ") must be less than \"interval_ms\" (" + std::to_string(out->interval_ms) +
                 ") in " + context);
  }
}

void Loader::readExpect(const Setting& s, std::vector<int>* out) {
  if ((s.getType() == Setting::TypeArray || s.getType() == Setting::TypeList) &&
      s.getLength() == 0) {
    r_.error(s, "\"expect\" must list at least one status");
    return;
  }
  readStatuses(s, "[ 200, 204 ]", 100, 599, {}, out);
}

void Loader::readStatuses(const Setting& s, const char* example, int min, int max,
                          std::span<const int> only, std::vector<int>* out) {
  const std::string name = quoted(s.getName() != nullptr ? s.getName() : "");
  if (s.getType() != Setting::TypeArray && s.getType() != Setting::TypeList) {
    r_.error(s, name + " must be an array of statuses such as " + example + ", got " +
                    schema::typeName(s));
    return;
  }
  std::vector<int> statuses;
  for (int i = 0; i < s.getLength(); ++i) {
    int status = 0;
    if (!r_.getInt(s[i], min, max, &status)) {
      continue;
    }
    if (!only.empty() && std::find(only.begin(), only.end(), status) == only.end()) {
      std::string allowed;
      for (size_t j = 0; j < only.size(); ++j) {
        allowed += j == 0 ? "" : j + 1 == only.size() ? " or " : ", ";
        allowed += std::to_string(only[j]);
      }
      r_.error(s[i], "element " + std::to_string(i + 1) + " of " + name + " must be " + allowed +
                         ", got " + std::to_string(status));
      continue;
    }
    if (std::find(statuses.begin(), statuses.end(), status) != statuses.end()) {
      r_.error(s[i], "status " + std::to_string(status) + " is listed twice in " + name);
      continue;
    }
    statuses.push_back(status);
  }
  *out = std::move(statuses);
}

void Loader::readRetryBudget(const Setting& g, const std::string& context, RetryBudget* out) {
  if (!r_.expectGroup(g, "\"retry_budget\"")) {
    return;
  }
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "percent") {
      r_.getInt(s, 0, 1000, &out->percent);
    } else if (key == "window_ms") {
      r_.getInt(s, 100, kMaxMs, &out->window_ms);
    } else if (key == "min_retries") {
      r_.getInt(s, 0, kMaxInt, &out->min_retries);
    } else {
      r_.unknown(s, context, schema::kRetryBudget);
    }
  }
}

void Loader::readPassive(const Setting& g, const std::string& context, PassiveHealth* out) {
  if (!r_.expectGroup(g, "\"passive\"")) {
    return;
  }
  out->failures = kPassiveFailures;  // the group's presence turns it on
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "failures") {
      r_.getInt(s, 1, 1000, &out->failures);
    } else if (key == "fail_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &out->fail_timeout_ms);
    } else if (key == "statuses") {
      readStatuses(s, "[ 500, 503 ]", 400, 599, {}, &out->statuses);
    } else {
      r_.unknown(s, context, schema::kPassive);
    }
  }
}

void Loader::readCircuitBreaker(const Setting& g, const std::string& context, CircuitBreaker* out) {
  if (!r_.expectGroup(g, "\"circuit_breaker\"")) {
    return;
  }
  out->enabled = true;  // the group's presence turns it on
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "failures") {
      r_.getInt(s, 1, 1000, &out->failures);
    } else if (key == "open_ms") {
      r_.getInt(s, 1, kMaxMs, &out->open_ms);
    } else if (key == "half_open_probes") {
      r_.getInt(s, 1, 1000, &out->half_open_probes);
    } else if (key == "half_open_successes") {
      r_.getInt(s, 1, 1000, &out->half_open_successes);
    } else if (key == "statuses") {
      readStatuses(s, "[ 500, 503 ]", 400, 599, {}, &out->statuses);
    } else {
      r_.unknown(s, context, schema::kCircuitBreaker);
    }
  }
}

void Loader::readQueue(const Setting& g, const std::string& context, RequestQueue* out) {
  if (!r_.expectGroup(g, "\"queue\"")) {
    return;
  }
  out->size = kQueueSize;  // the group's presence turns it on
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "size") {
      r_.getInt(s, 1, 1000000, &out->size);
    } else if (key == "timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &out->timeout_ms);
    } else {
      r_.unknown(s, context, schema::kQueue);
    }
  }
}

void Loader::readPoolTls(const Setting& g, const std::string& context, PoolTls* out) {
  if (!r_.expectGroup(g, "\"tls\"")) {
    return;
  }
  out->enabled = true;  // the group's presence turns it on
  out->line = static_cast<int>(g.getSourceLine());
  const Setting* verify = nullptr;
  const Setting* ca = nullptr;
  const Setting* cert = nullptr;
  const Setting* key_setting = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "verify") {
      verify = &s;
      r_.getBool(s, &out->verify);
    } else if (key == "ca") {
      ca = &s;
      readTlsPath(s, &out->ca);
    } else if (key == "verify_depth") {
      r_.getInt(s, 1, kMaxVerifyDepth, &out->verify_depth);
    } else if (key == "server_name") {
      std::string name;
      if (!r_.getString(s, &name)) {
        continue;
      }
      if (!isHostName(name)) {
        r_.error(
            s, "\"server_name\" must be a host name such as \"api.internal\", got " + quoted(name));
      } else if (looksLikeAddress(name)) {
        r_.error(s, "\"server_name\" must be a host name, got the address " + quoted(name) +
                        "; without server_name the certificate must name the backend's address");
      } else {
        out->server_name = std::move(name);
      }
    } else if (key == "cert") {
      cert = &s;
      readTlsPath(s, &out->cert);
    } else if (key == "key") {
      key_setting = &s;
      readTlsPath(s, &out->key);
    } else if (key == "protocols") {
      readChoices(s, schema::kTlsProtocols, "[ \"TLSv1.2\", \"TLSv1.3\" ]", &out->protocols);
    } else if (key == "ciphers") {
      readTlsList(s, &out->ciphers);
    } else if (key == "ciphersuites") {
      readTlsList(s, &out->ciphersuites);
    } else if (key == "session_reuse") {
      r_.getBool(s, &out->session_reuse);
    } else {
      r_.unknown(s, context, schema::kPoolTls);
    }
  }
  // A CA that nothing checks against would give a false sense of safety.
  if (ca != nullptr && !out->verify) {
    r_.error(*ca, "\"ca\" needs verify true in " + context + " (line " +
                      std::to_string(verify->getSourceLine()) + " turns verification off)");
  }
  if (cert != nullptr && key_setting == nullptr) {
    r_.error(*cert, "\"cert\" needs \"key\" in " + context);
  } else if (key_setting != nullptr && cert == nullptr) {
    r_.error(*key_setting, "\"key\" needs \"cert\" in " + context);
  }
}

}  // namespace lb::config::detail
