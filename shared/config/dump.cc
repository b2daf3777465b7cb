// dumpConfig: the effective config (`lb -T`), written in the same libconfig syntax and with every
// directive of schema.h spelled out, so that loading the output gives back an equal Config.

#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "shared/config/load.h"
#include "shared/config/schema.h"
#include "shared/log/log.h"

namespace lb::config {

namespace {

// A libconfig string literal: escapes what its scanner understands (\\ \" \n \r \t \f \xNN).
std::string literal(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "\\x%02x", u);
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// An integer literal; one past libconfig's 32-bit range needs the "L" suffix.
std::string integer(int64_t v) {
  std::string out = std::to_string(v);
  return (v > 2147483647 || v < -2147483648LL) ? out + "L" : out;
}

std::string size(uint64_t v) {
  std::string text = schema::formatSize(v);
  return text.back() >= '0' && text.back() <= '9' ? integer(static_cast<int64_t>(v))
                                                  : literal(text);
}

// "[ 502, 503 ]"; "[ ]" for none.
std::string statusList(const std::vector<int>& statuses) {
  std::string list = "[ ";
  for (size_t i = 0; i < statuses.size(); ++i) {
    list += (i == 0 ? "" : ", ") + integer(statuses[i]);
  }
  return list + (statuses.empty() ? "]" : " ]");
}

class Writer {
 public:
  void open(int depth, std::string_view key, char bracket) {
    line(depth, key.empty() ? std::string(1, bracket) : std::string(key) + " = " + bracket);
  }
  void close(int depth, char bracket) { line(depth, std::string(1, bracket) + ";"); }
  void set(int depth, std::string_view key, const std::string& value) {
    line(depth, std::string(key) + " = " + value + ";");
  }
  void blank() { out_ += "\n"; }
  std::string take() { return std::move(out_); }

  void line(int depth, const std::string& text) {
    out_.append(static_cast<size_t>(depth) * 2, ' ');
    out_ += text;
    out_ += "\n";
  }

 private:
  std::string out_;
};

// The items of a list are groups separated by commas; the last closes with no separator.
void closeItem(Writer& w, int depth, bool last) {
  w.line(depth, last ? "}" : "},");
}

void writeLimits(Writer& w, int depth, const ClientLimits& l) {
  w.set(depth, "client_header_timeout_ms", integer(l.header_timeout_ms));
  w.set(depth, "client_body_timeout_ms", integer(l.body_timeout_ms));
  w.set(depth, "keepalive_timeout_ms", integer(l.keepalive_timeout_ms));
  w.set(depth, "send_timeout_ms", integer(l.send_timeout_ms));
  w.set(depth, "client_max_header_size", size(l.max_header_size));
  w.set(depth, "client_max_body_size", size(l.max_body_size));
  w.set(depth, "keepalive_requests", integer(l.keepalive_requests));
  w.set(depth, "tunnel_timeout_ms", integer(l.tunnel_timeout_ms));
  w.set(depth, "request_buffering", l.request_buffering ? "true" : "false");
  w.set(depth, "reset_timedout_connection", l.reset_timedout_connection ? "true" : "false");
}

void writeReturn(Writer& w, int depth, const StaticResponse& r) {
  w.open(depth, "return", '{');
  w.set(depth + 1, "status", integer(r.status));
  w.open(depth + 1, "headers", '{');
  // A header given several times was an array; keep each name's values together, in order.
  std::vector<bool> done(r.headers.size(), false);
  for (size_t i = 0; i < r.headers.size(); ++i) {
    if (done[i]) {
      continue;
    }
    std::vector<std::string> values;
    for (size_t j = i; j < r.headers.size(); ++j) {
      if (!done[j] && r.headers[j].first == r.headers[i].first) {
        values.push_back(literal(r.headers[j].second));
        done[j] = true;
      }
    }
    std::string value = values[0];
    if (values.size() > 1) {
      value = "[ " + values[0];
      for (size_t k = 1; k < values.size(); ++k) {
        value += ", " + values[k];
      }
      value += " ]";
    }
    w.set(depth + 2, r.headers[i].first, value);
  }
  w.close(depth + 1, '}');
  w.set(depth + 1, "body", literal(r.body));
  w.close(depth, '}');
}

void writeAction(Writer& w, int depth, const Action& a) {
  if (a.kind == Action::Kind::Pool) {
    w.set(depth, "pool", literal(a.pool));
  } else {
    writeReturn(w, depth, a.response);
  }
}

// "[ \"a\", \"b\" ]".
std::string stringArray(const std::vector<std::string>& values) {
  std::string list = "[ ";
  for (size_t i = 0; i < values.size(); ++i) {
    list += (i == 0 ? "" : ", ") + literal(values[i]);
  }
  return list + (values.empty() ? "]" : " ]");
}

// Only a TLS listener has the group; the optional paths and the header only when set, since
// an empty one does not load.
void writeTls(Writer& w, int depth, const ListenerTls& t) {
  if (!t.enabled()) {
    return;
  }
  w.open(depth, "tls", '{');
  w.open(depth + 1, "certificates", '(');
  for (size_t i = 0; i < t.certificates.size(); ++i) {
    const TlsCertificate& c = t.certificates[i];
    std::string item = "{ cert = " + literal(c.cert) + "; key = " + literal(c.key) + ";";
    if (!c.ocsp_response.empty()) {
      item += " ocsp_response = " + literal(c.ocsp_response) + ";";
    }
    w.line(depth + 2, item + (i + 1 == t.certificates.size() ? " }" : " },"));
  }
  w.close(depth + 1, ')');
  w.set(depth + 1, "protocols", stringArray(t.protocols));
  w.set(depth + 1, "ciphers", literal(t.ciphers));
  w.set(depth + 1, "ciphersuites", literal(t.ciphersuites));
  w.set(depth + 1, "groups", literal(t.groups));
  w.set(depth + 1, "alpn", stringArray(t.alpn));
  w.set(depth + 1, "session_tickets", t.session_tickets ? "true" : "false");
  w.set(depth + 1, "ticket_key_rotation_s", integer(t.ticket_key_rotation_s));
  w.set(depth + 1, "session_cache", integer(t.session_cache));
  w.set(depth + 1, "session_timeout_s", integer(t.session_timeout_s));
  auto verify = static_cast<size_t>(t.verify_client);
  w.set(depth + 1, "verify_client",
        literal(verify < std::size(schema::kVerifyClient) ? schema::kVerifyClient[verify] : "off"));
  if (!t.client_ca.empty()) {
    w.set(depth + 1, "client_ca", literal(t.client_ca));
  }
  w.set(depth + 1, "verify_depth", integer(t.verify_depth));
  if (!t.client_subject_header.empty()) {
    w.set(depth + 1, "client_subject_header", literal(t.client_subject_header));
  }
  w.close(depth, '}');
}

// One item of `listeners`, "{" to "}" (a comma after it unless it is the last).
void writeListener(Writer& w, int depth, const Listener& l, bool last) {
  w.line(depth, "{");
  w.set(depth + 1, "name", literal(l.name));
  w.set(depth + 1, "listen", literal(l.listen));
  w.set(depth + 1, "protocol", literal("http"));
  w.set(depth + 1, "backlog", integer(l.backlog));
  if (l.has_action) {
    writeAction(w, depth + 1, l.action);
  } else {
    w.set(depth + 1, "routes", literal(l.routes));
  }
  writeLimits(w, depth + 1, l.limits);
  writeTls(w, depth + 1, l.tls);
  w.open(depth + 1, "http2", '{');
  w.set(depth + 2, "enabled", l.http2.enabled ? "true" : "false");
  w.set(depth + 2, "max_concurrent_streams", integer(l.http2.max_concurrent_streams));
  w.set(depth + 2, "initial_window_size", integer(l.http2.initial_window_size));
  w.set(depth + 2, "max_resets_burst", integer(l.http2.max_resets_burst));
  w.set(depth + 2, "max_resets_per_s", integer(l.http2.max_resets_per_s));
  w.close(depth + 1, '}');
  closeItem(w, depth, last);
}

void writeListeners(Writer& w, const Config& c) {
  w.open(0, "listeners", '(');
  for (size_t i = 0; i < c.listeners.size(); ++i) {
    writeListener(w, 1, c.listeners[i], i + 1 == c.listeners.size());
  }
  w.close(0, ')');
}

// One item of `routes`, "{" to "}" (a comma after it unless it is the last).
void writeRouteTable(Writer& w, int depth, const RouteTable& t, bool last) {
  w.line(depth, "{");
  w.set(depth + 1, "name", literal(t.name));
  w.open(depth + 1, "rules", '(');
  for (size_t j = 0; j < t.rules.size(); ++j) {
    const RouteRule& rule = t.rules[j];
    w.line(depth + 2, "{");
    w.set(depth + 3, "host", literal(rule.host));
    w.set(depth + 3, "path_prefix", literal(rule.path_prefix));
    writeAction(w, depth + 3, rule.action);
    closeItem(w, depth + 2, j + 1 == t.rules.size());
  }
  w.close(depth + 1, ')');
  closeItem(w, depth, last);
}

void writeRoutes(Writer& w, const Config& c) {
  w.open(0, "routes", '(');
  for (size_t i = 0; i < c.routes.size(); ++i) {
    writeRouteTable(w, 1, c.routes[i], i + 1 == c.routes.size());
  }
  w.close(0, ')');
}

// Only a pool with checks has the group: its presence turns them on.
void writeHealthCheck(Writer& w, int depth, const HealthCheck& h) {
  if (h.type == HealthCheck::Type::None) {
    return;
  }
  const bool http = h.type == HealthCheck::Type::Http;
  w.open(depth, "health_check", '{');
  w.set(depth + 1, "type", literal(http ? "http" : "tcp"));
  if (http) {
    w.set(depth + 1, "method", literal(h.method));
    w.set(depth + 1, "path", literal(h.path));
    w.set(depth + 1, "host", literal(h.host));
    if (!h.expect.empty()) {  // none: any 2xx or 3xx, which has no list to write
      w.set(depth + 1, "expect", statusList(h.expect));
    }
    w.set(depth + 1, "body_contains", literal(h.body_contains));
  }
  w.set(depth + 1, "interval_ms", integer(h.interval_ms));
  w.set(depth + 1, "timeout_ms", integer(h.timeout_ms));
  w.set(depth + 1, "fall", integer(h.fall));
  w.set(depth + 1, "rise", integer(h.rise));
  w.set(depth + 1, "initial", literal(h.initial_up ? "up" : "down"));
  w.set(depth + 1, "jitter_ms", integer(h.jitter_ms));
  w.close(depth, '}');
}

// The retry settings are always in force (retries 0 turns them off), so always written;
// passive health, the breaker and the queue only when their group turned them on.
void writeResilience(Writer& w, int depth, const Pool& p) {
  w.set(depth, "retries", integer(p.retries));
  w.set(depth, "retry_on", statusList(p.retry_on));
  const RetryBudget& b = p.retry_budget;
  w.line(depth, "retry_budget = { percent = " + integer(b.percent) + "; window_ms = " +
                    integer(b.window_ms) + "; min_retries = " + integer(b.min_retries) + "; };");
  if (p.passive.failures > 0) {
    const PassiveHealth& h = p.passive;
    w.open(depth, "passive", '{');
    w.set(depth + 1, "failures", integer(h.failures));
    w.set(depth + 1, "fail_timeout_ms", integer(h.fail_timeout_ms));
    w.set(depth + 1, "statuses", statusList(h.statuses));
    w.close(depth, '}');
  }
  if (p.circuit_breaker.enabled) {
    const CircuitBreaker& cb = p.circuit_breaker;
    w.open(depth, "circuit_breaker", '{');
    w.set(depth + 1, "failures", integer(cb.failures));
    w.set(depth + 1, "open_ms", integer(cb.open_ms));
    w.set(depth + 1, "half_open_probes", integer(cb.half_open_probes));
    w.set(depth + 1, "half_open_successes", integer(cb.half_open_successes));
    w.set(depth + 1, "statuses", statusList(cb.statuses));
    w.close(depth, '}');
  }
  if (p.queue.size > 0) {
    w.line(depth, "queue = { size = " + integer(p.queue.size) +
                      "; timeout_ms = " + integer(p.queue.timeout_ms) + "; };");
  }
  w.set(depth, "slow_start_ms", integer(p.slow_start_ms));
}

// Only a pool with TLS to its backends has the group; the optional names and paths only when
// set, since an empty one does not load.
void writePoolTls(Writer& w, int depth, const PoolTls& t) {
  if (!t.enabled) {
    return;
  }
  w.open(depth, "tls", '{');
  w.set(depth + 1, "verify", t.verify ? "true" : "false");
  if (!t.ca.empty()) {
    w.set(depth + 1, "ca", literal(t.ca));
  }
  w.set(depth + 1, "verify_depth", integer(t.verify_depth));
  if (!t.server_name.empty()) {
    w.set(depth + 1, "server_name", literal(t.server_name));
  }
  if (!t.cert.empty()) {
    w.set(depth + 1, "cert", literal(t.cert));
    w.set(depth + 1, "key", literal(t.key));
  }
  w.set(depth + 1, "protocols", stringArray(t.protocols));
  w.set(depth + 1, "ciphers", literal(t.ciphers));
  w.set(depth + 1, "ciphersuites", literal(t.ciphersuites));
  w.set(depth + 1, "session_reuse", t.session_reuse ? "true" : "false");
  w.close(depth, '}');
}

// One item of `pools`, "{" to "}" (a comma after it unless it is the last).
void writePool(Writer& w, int depth, const Pool& p, bool last) {
  w.line(depth, "{");
  w.set(depth + 1, "name", literal(p.name));
  w.set(depth + 1, "algorithm", literal(schema::algorithmName(p.algorithm)));
  if (p.algorithm == Algorithm::Hash) {
    w.set(depth + 1, "hash_key", literal(schema::hashKeyText(p.hash_key)));
  }
  if (p.sticky.enabled) {
    w.line(depth + 1, "sticky = { cookie = " + literal(p.sticky.cookie) +
                          "; max_age_s = " + integer(p.sticky.max_age_s) + "; };");
  }
  writeHealthCheck(w, depth + 1, p.health_check);
  w.open(depth + 1, "backends", '(');
  for (size_t j = 0; j < p.backends.size(); ++j) {
    const Backend& b = p.backends[j];
    w.line(depth + 2, "{ address = " + literal(b.address_text) + "; weight = " + integer(b.weight) +
                          "; max_connections = " + integer(b.max_connections) +
                          (j + 1 == p.backends.size() ? "; }" : "; },"));
  }
  w.close(depth + 1, ')');
  w.set(depth + 1, "keepalive", integer(p.keepalive));
  w.set(depth + 1, "keepalive_timeout_ms", integer(p.keepalive_timeout_ms));
  w.set(depth + 1, "keepalive_requests", integer(p.keepalive_requests));
  w.set(depth + 1, "connect_timeout_ms", integer(p.connect_timeout_ms));
  w.set(depth + 1, "read_timeout_ms", integer(p.read_timeout_ms));
  w.set(depth + 1, "send_timeout_ms", integer(p.send_timeout_ms));
  writeResilience(w, depth + 1, p);
  w.set(depth + 1, "forwarded_headers", p.forwarded_headers ? "true" : "false");
  writePoolTls(w, depth + 1, p.tls);
  closeItem(w, depth, last);
}

void writePools(Writer& w, const Config& c) {
  w.open(0, "pools", '(');
  for (size_t i = 0; i < c.pools.size(); ++i) {
    writePool(w, 1, c.pools[i], i + 1 == c.pools.size());
  }
  w.close(0, ')');
}

}  // namespace

std::string dumpConfig(const Config& config) {
  Writer w;
  w.line(0, "# The effective configuration" +
                (config.file.empty() ? std::string() : " of " + config.file) +
                ": every directive, defaults filled in.");
  w.set(0, "worker_processes", integer(config.worker_processes));
  w.set(0, "daemon", config.daemon ? "true" : "false");
  w.set(0, "pid", literal(config.pid));
  w.set(0, "worker_shutdown_timeout_ms", integer(config.worker_shutdown_timeout_ms));
  w.set(0, "worker_connections", integer(config.worker_connections));
  w.set(0, "reload_timeout_ms", integer(config.reload_timeout_ms));
  w.set(0, "max_draining_generations", integer(config.max_draining_generations));
  w.set(0, "drain_window_ms", integer(config.drain_window_ms));
  w.set(0, "accept_spread", config.accept_spread == AcceptSpread::Even ? "\"even\"" : "\"auto\"");
  w.blank();
  w.open(0, "error_log", '{');
  w.set(1, "path", literal(config.error_log.path));
  w.set(1, "level", literal(log::levelName(config.error_log.level)));
  w.close(0, '}');
  w.open(0, "access_log", '{');
  w.set(1, "path", literal(config.access_log.path.empty() ? "off" : config.access_log.path));
  w.close(0, '}');
  w.blank();
  w.open(0, "http", '{');
  writeLimits(w, 1, config.http);
  w.close(0, '}');
  w.blank();
  writeListeners(w, config);
  w.blank();
  writeRoutes(w, config);
  w.blank();
  writePools(w, config);
  return w.take();
}

std::string dumpListener(const Listener& listener) {
  Writer w;
  writeListener(w, 0, listener, true);
  return w.take();
}

std::string dumpRouteTable(const RouteTable& table) {
  Writer w;
  writeRouteTable(w, 0, table, true);
  return w.take();
}

std::string dumpPool(const Pool& pool) {
  Writer w;
  writePool(w, 0, pool, true);
  return w.take();
}

}  // namespace lb::config
