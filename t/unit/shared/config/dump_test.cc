// dumpConfig (`lb -T`): the effective config in libconfig syntax, which loads back to an equal
// Config.

#include <catch2/catch.hpp>
#include <string>

#include "shared/config/load.h"
#include "shared/config/schema.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::allErrors;
using test::kConfDir;
using test::kFixtures;
using test::mustLoad;

void checkEqual(const ClientLimits& a, const ClientLimits& b) {
  CHECK(a.header_timeout_ms == b.header_timeout_ms);
  CHECK(a.body_timeout_ms == b.body_timeout_ms);
  CHECK(a.keepalive_timeout_ms == b.keepalive_timeout_ms);
  CHECK(a.send_timeout_ms == b.send_timeout_ms);
  CHECK(a.max_header_size == b.max_header_size);
  CHECK(a.max_body_size == b.max_body_size);
  CHECK(a.keepalive_requests == b.keepalive_requests);
  CHECK(a.tunnel_timeout_ms == b.tunnel_timeout_ms);
  CHECK(a.request_buffering == b.request_buffering);
  CHECK(a.reset_timedout_connection == b.reset_timedout_connection);
}

void checkEqual(const Action& a, const Action& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.pool == b.pool);
  CHECK(a.pool_index == b.pool_index);
  CHECK(a.response.status == b.response.status);
  CHECK(a.response.headers == b.response.headers);
  CHECK(a.response.body == b.response.body);
}

void checkEqual(const ListenerTls& a, const ListenerTls& b) {
  REQUIRE(a.certificates.size() == b.certificates.size());
  for (size_t i = 0; i < a.certificates.size(); ++i) {
    CHECK(a.certificates[i].cert == b.certificates[i].cert);
    CHECK(a.certificates[i].key == b.certificates[i].key);
    CHECK(a.certificates[i].ocsp_response == b.certificates[i].ocsp_response);
  }
  // The settings of a listener without TLS mean nothing, and a dump leaves them out.
  if (!a.enabled()) {
    return;
  }
  CHECK(a.protocols == b.protocols);
  CHECK(a.ciphers == b.ciphers);
  CHECK(a.ciphersuites == b.ciphersuites);
  CHECK(a.groups == b.groups);
  CHECK(a.alpn == b.alpn);
  CHECK(a.session_tickets == b.session_tickets);
  CHECK(a.ticket_key_rotation_s == b.ticket_key_rotation_s);
  CHECK(a.session_cache == b.session_cache);
  CHECK(a.session_timeout_s == b.session_timeout_s);
  CHECK(a.verify_client == b.verify_client);
  CHECK(a.client_ca == b.client_ca);
  CHECK(a.verify_depth == b.verify_depth);
  CHECK(a.client_subject_header == b.client_subject_header);
}

void checkEqual(const PoolTls& a, const PoolTls& b) {
  CHECK(a.enabled == b.enabled);
  // The settings of a pool without TLS mean nothing, and a dump leaves them out.
  if (!a.enabled) {
    return;
  }
  CHECK(a.verify == b.verify);
  CHECK(a.ca == b.ca);
  CHECK(a.verify_depth == b.verify_depth);
  CHECK(a.server_name == b.server_name);
  CHECK(a.cert == b.cert);
  CHECK(a.key == b.key);
  CHECK(a.protocols == b.protocols);
  CHECK(a.ciphers == b.ciphers);
  CHECK(a.ciphersuites == b.ciphersuites);
  CHECK(a.session_reuse == b.session_reuse);
}

// Every field but Config::file and the source lines, which name where the text came from.
void checkEqual(const Config& a, const Config& b) {
  CHECK(a.worker_processes == b.worker_processes);
  CHECK(a.daemon == b.daemon);
  CHECK(a.pid == b.pid);
  CHECK(a.worker_shutdown_timeout_ms == b.worker_shutdown_timeout_ms);
  CHECK(a.worker_connections == b.worker_connections);
  CHECK(a.reload_timeout_ms == b.reload_timeout_ms);
  CHECK(a.max_draining_generations == b.max_draining_generations);
  CHECK(a.drain_window_ms == b.drain_window_ms);
  CHECK(a.accept_spread == b.accept_spread);
  CHECK(a.error_log.path == b.error_log.path);
  CHECK(a.error_log.level == b.error_log.level);
  CHECK(a.access_log.path == b.access_log.path);
  checkEqual(a.http, b.http);
  REQUIRE(a.listeners.size() == b.listeners.size());
  for (size_t i = 0; i < a.listeners.size(); ++i) {
    const Listener& x = a.listeners[i];
    const Listener& y = b.listeners[i];
    CHECK(x.name == y.name);
    CHECK(x.listen == y.listen);
    CHECK(x.address == y.address);
    CHECK(x.protocol == y.protocol);
    CHECK(x.backlog == y.backlog);
    CHECK(x.routes == y.routes);
    CHECK(x.routes_index == y.routes_index);
    CHECK(x.has_action == y.has_action);
    checkEqual(x.action, y.action);
    checkEqual(x.limits, y.limits);
    checkEqual(x.tls, y.tls);
  }
  REQUIRE(a.routes.size() == b.routes.size());
  for (size_t i = 0; i < a.routes.size(); ++i) {
    CHECK(a.routes[i].name == b.routes[i].name);
    REQUIRE(a.routes[i].rules.size() == b.routes[i].rules.size());
    for (size_t j = 0; j < a.routes[i].rules.size(); ++j) {
      CHECK(a.routes[i].rules[j].host == b.routes[i].rules[j].host);
      CHECK(a.routes[i].rules[j].path_prefix == b.routes[i].rules[j].path_prefix);
      checkEqual(a.routes[i].rules[j].action, b.routes[i].rules[j].action);
    }
  }
  REQUIRE(a.pools.size() == b.pools.size());
  for (size_t i = 0; i < a.pools.size(); ++i) {
    const Pool& x = a.pools[i];
    const Pool& y = b.pools[i];
    CHECK(x.name == y.name);
    CHECK(x.algorithm == y.algorithm);
    CHECK(x.keepalive == y.keepalive);
    CHECK(x.keepalive_timeout_ms == y.keepalive_timeout_ms);
    CHECK(x.keepalive_requests == y.keepalive_requests);
    CHECK(x.connect_timeout_ms == y.connect_timeout_ms);
    CHECK(x.read_timeout_ms == y.read_timeout_ms);
    CHECK(x.send_timeout_ms == y.send_timeout_ms);
    CHECK(x.retries == y.retries);
    CHECK(x.retry_on == y.retry_on);
    CHECK(x.retry_budget.percent == y.retry_budget.percent);
    CHECK(x.retry_budget.window_ms == y.retry_budget.window_ms);
    CHECK(x.retry_budget.min_retries == y.retry_budget.min_retries);
    // The settings of a group that is off mean nothing, and a dump leaves them out.
    CHECK(x.passive.failures == y.passive.failures);
    if (x.passive.failures > 0) {
      CHECK(x.passive.fail_timeout_ms == y.passive.fail_timeout_ms);
      CHECK(x.passive.statuses == y.passive.statuses);
    }
    CHECK(x.circuit_breaker.enabled == y.circuit_breaker.enabled);
    if (x.circuit_breaker.enabled) {
      CHECK(x.circuit_breaker.failures == y.circuit_breaker.failures);
      CHECK(x.circuit_breaker.open_ms == y.circuit_breaker.open_ms);
      CHECK(x.circuit_breaker.half_open_probes == y.circuit_breaker.half_open_probes);
      CHECK(x.circuit_breaker.half_open_successes == y.circuit_breaker.half_open_successes);
      CHECK(x.circuit_breaker.statuses == y.circuit_breaker.statuses);
    }
    CHECK(x.queue.size == y.queue.size);
    if (x.queue.size > 0) {
      CHECK(x.queue.timeout_ms == y.queue.timeout_ms);
    }
    CHECK(x.slow_start_ms == y.slow_start_ms);
    CHECK(x.forwarded_headers == y.forwarded_headers);
    checkEqual(x.tls, y.tls);
    CHECK(x.hash_key.kind == y.hash_key.kind);
    CHECK(x.hash_key.name == y.hash_key.name);
    CHECK(x.sticky.enabled == y.sticky.enabled);
    CHECK(x.sticky.cookie == y.sticky.cookie);
    CHECK(x.sticky.max_age_s == y.sticky.max_age_s);
    const HealthCheck& hx = x.health_check;
    const HealthCheck& hy = y.health_check;
    CHECK(hx.type == hy.type);
    CHECK(hx.method == hy.method);
    CHECK(hx.path == hy.path);
    CHECK(hx.host == hy.host);
    CHECK(hx.expect == hy.expect);
    CHECK(hx.body_contains == hy.body_contains);
    CHECK(hx.interval_ms == hy.interval_ms);
    CHECK(hx.timeout_ms == hy.timeout_ms);
    CHECK(hx.fall == hy.fall);
    CHECK(hx.rise == hy.rise);
    CHECK(hx.initial_up == hy.initial_up);
    CHECK(hx.jitter_ms == hy.jitter_ms);
    REQUIRE(x.backends.size() == y.backends.size());
    for (size_t j = 0; j < x.backends.size(); ++j) {
      CHECK(x.backends[j].address_text == y.backends[j].address_text);
      CHECK(x.backends[j].address == y.backends[j].address);
      CHECK(x.backends[j].weight == y.backends[j].weight);
      CHECK(x.backends[j].max_connections == y.backends[j].max_connections);
    }
  }
}

// Dumps, loads the dump back under the same name, and checks both the Config and the text.
void checkRoundTrip(const Config& original) {
  std::string text = dumpConfig(original);
  INFO("dump:\n" << text);
  Config again = mustLoad(loadConfigFromString(text, original.file));
  checkEqual(original, again);
  CHECK(dumpConfig(again) == text);
}

TEST_CASE("dumps of the shipped configs load back equal", "[config]") {
  checkRoundTrip(mustLoad(loadConfig(kConfDir + "lb.conf")));
  checkRoundTrip(mustLoad(loadConfig(kConfDir + "minimal.conf")));
  checkRoundTrip(mustLoad(loadConfig(kFixtures + "full.conf")));
  checkRoundTrip(mustLoad(loadConfig(kFixtures + "include_main.conf")));
  checkRoundTrip(mustLoad(loadConfig(kFixtures + "tls.conf")));
  checkRoundTrip(mustLoad(loadConfig(kFixtures + "pool_tls.conf")));
}

TEST_CASE("a dump writes every directive, defaults included", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  std::string text = dumpConfig(c);
  // minimal.conf sets no route table, no static response and no pool options: add them.
  c.routes.push_back({"r", {{"", "/", {Action::Kind::Static, "", -1, {}}, 0}}, 0});
  c.pools[0].algorithm = Algorithm::Hash;
  c.pools[0].sticky.enabled = true;
  c.pools[0].health_check.type = HealthCheck::Type::Http;
  c.pools[0].health_check.expect = {200};
  c.pools[0].passive.failures = 3;
  c.pools[0].circuit_breaker.enabled = true;
  c.pools[0].queue.size = 10;
  ListenerTls& tls = c.listeners[0].tls;
  tls.certificates = {{"/a.pem", "/a.key", "/a.ocsp", 0}};
  tls.verify_client = ListenerTls::VerifyClient::On;
  tls.client_ca = "/ca.pem";
  tls.client_subject_header = "X-Subject";
  PoolTls& pool_tls = c.pools[0].tls;
  pool_tls.enabled = true;
  pool_tls.ca = "/ca.pem";
  pool_tls.server_name = "api.internal";
  pool_tls.cert = "/c.pem";
  pool_tls.key = "/c.key";
  text += dumpConfig(c);
  for (auto list : {std::span<const std::string_view>(schema::kTopLevel),
                    std::span<const std::string_view>(schema::kErrorLog),
                    std::span<const std::string_view>(schema::kAccessLog),
                    std::span<const std::string_view>(schema::kLimits),
                    std::span<const std::string_view>(schema::kReturn),
                    std::span<const std::string_view>(schema::kRouteTable),
                    std::span<const std::string_view>(schema::kRule),
                    std::span<const std::string_view>(schema::kPool),
                    std::span<const std::string_view>(schema::kBackend),
                    std::span<const std::string_view>(schema::kSticky),
                    std::span<const std::string_view>(schema::kHealthCheck),
                    std::span<const std::string_view>(schema::kRetryBudget),
                    std::span<const std::string_view>(schema::kPassive),
                    std::span<const std::string_view>(schema::kCircuitBreaker),
                    std::span<const std::string_view>(schema::kQueue),
                    std::span<const std::string_view>(schema::kTls),
                    std::span<const std::string_view>(schema::kTlsCertificate),
                    std::span<const std::string_view>(schema::kPoolTls)}) {
    for (std::string_view name : list) {
      INFO(name);
      CHECK(text.find(std::string(name) + " = ") != std::string::npos);
    }
  }
  CHECK(text.find("access_log = {\n  path = \"off\";") != std::string::npos);
  CHECK(text.find("pid = \"/run/lb.pid\";") != std::string::npos);
  CHECK(text.find("client_max_header_size = \"16k\";") != std::string::npos);
  CHECK(text.find("client_max_body_size = \"1m\";") != std::string::npos);
}

TEST_CASE("pool options are dumped only where they are on", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  std::string text = dumpConfig(c);
  CHECK(text.find("hash_key") == std::string::npos);
  CHECK(text.find("sticky") == std::string::npos);
  CHECK(text.find("health_check") == std::string::npos);
  // A TCP check writes no HTTP directive: loading them back with type "tcp" would fail.
  c.pools[0].health_check.type = HealthCheck::Type::Tcp;
  c.pools[0].health_check.initial_up = false;
  c.pools[0].algorithm = Algorithm::Hash;
  c.pools[0].hash_key = {HashKey::Kind::Cookie, "sid"};
  text = dumpConfig(c);
  CHECK(text.find("type = \"tcp\";") != std::string::npos);
  CHECK(text.find("path = \"/\";") == std::string::npos);
  CHECK(text.find("method = ") == std::string::npos);
  CHECK(text.find("initial = \"down\";") != std::string::npos);
  CHECK(text.find("hash_key = \"cookie:sid\";") != std::string::npos);
  checkRoundTrip(c);
  c.pools[0].hash_key = {};  // only "hash" writes it
  for (Algorithm a :
       {Algorithm::LeastTime, Algorithm::PeakEwma, Algorithm::Random, Algorithm::IpHash}) {
    c.pools[0].algorithm = a;
    checkRoundTrip(c);
  }
}

TEST_CASE("resilience groups are dumped only where they are on", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  std::string text = dumpConfig(c);
  // The retry settings and slow_start_ms are always in force, so always written.
  CHECK(text.find("  retries = 1;\n    retry_on = [ ];\n") != std::string::npos);
  CHECK(text.find("retry_budget = { percent = 20; window_ms = 10000; min_retries = 10; };") !=
        std::string::npos);
  CHECK(text.find("slow_start_ms = 0;") != std::string::npos);
  CHECK(text.find("passive") == std::string::npos);
  CHECK(text.find("circuit_breaker") == std::string::npos);
  CHECK(text.find("queue") == std::string::npos);
  checkRoundTrip(c);

  Pool& p = c.pools[0];
  p.retries = 0;
  p.retry_on = {429, 503};
  p.retry_budget = {0, 100, 0};
  p.passive = {1, 1, {}};
  p.circuit_breaker = {true, 1000, 1, 1000, 1, {599, 400}};
  p.backends[0].max_connections = 1;
  p.queue = {1000000, 1};
  p.slow_start_ms = 2147483647;
  text = dumpConfig(c);
  CHECK(text.find("retry_on = [ 429, 503 ];") != std::string::npos);
  CHECK(text.find("retry_budget = { percent = 0; window_ms = 100; min_retries = 0; };") !=
        std::string::npos);
  CHECK(text.find("passive = {\n      failures = 1;\n      fail_timeout_ms = 1;\n"
                  "      statuses = [ ];\n    };") != std::string::npos);
  CHECK(text.find("statuses = [ 599, 400 ];") != std::string::npos);
  CHECK(text.find("half_open_probes = 1000;") != std::string::npos);
  CHECK(text.find("queue = { size = 1000000; timeout_ms = 1; };") != std::string::npos);
  CHECK(text.find("slow_start_ms = 2147483647;") != std::string::npos);
  checkRoundTrip(c);

  // A group that is off writes nothing, whatever its other fields hold.
  p.circuit_breaker.enabled = false;
  p.passive.failures = 0;
  p.queue.size = 0;
  text = dumpConfig(c);
  CHECK(text.find("statuses") == std::string::npos);
  CHECK(text.find("queue") == std::string::npos);
  checkRoundTrip(c);
}

TEST_CASE("a listener's http2 group is dumped with every value", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  c.listeners[0].http2.enabled = false;
  c.listeners[0].http2.max_concurrent_streams = 7;
  std::string text = dumpConfig(c);
  CHECK(text.find("    http2 = {\n"
                  "      enabled = false;\n"
                  "      max_concurrent_streams = 7;\n"
                  "      initial_window_size = 262144;\n"
                  "      max_resets_burst = 200;\n"
                  "      max_resets_per_s = 50;\n"
                  "    };\n") != std::string::npos);
  checkRoundTrip(c);
}

TEST_CASE("a tls group is dumped only for TLS listeners, its optional paths only when set",
          "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  CHECK(dumpConfig(c).find("tls = ") == std::string::npos);
  ListenerTls& t = c.listeners[0].tls;
  t.certificates = {{"/etc/lb/a.pem", "/etc/lb/a.key", "", 0}};
  std::string text = dumpConfig(c);
  CHECK(text.find("    tls = {\n"
                  "      certificates = (\n"
                  "        { cert = \"/etc/lb/a.pem\"; key = \"/etc/lb/a.key\"; }\n"
                  "      );\n"
                  "      protocols = [ \"TLSv1.2\", \"TLSv1.3\" ];\n"
                  "      ciphers = \"ECDHE+AESGCM:ECDHE+CHACHA20\";\n") != std::string::npos);
  CHECK(text.find("      alpn = [ \"h2\", \"http/1.1\" ];\n"
                  "      session_tickets = true;\n"
                  "      ticket_key_rotation_s = 3600;\n"
                  "      session_cache = 20480;\n"
                  "      session_timeout_s = 300;\n"
                  "      verify_client = \"off\";\n"
                  "      verify_depth = 1;\n"
                  "    };\n") != std::string::npos);
  CHECK(text.find("ocsp_response") == std::string::npos);
  CHECK(text.find("client_ca") == std::string::npos);
  CHECK(text.find("client_subject_header") == std::string::npos);
  checkRoundTrip(c);

  t.certificates.push_back({"/etc/lb/a \"ec\".pem", "/etc/lb/a-ec.key", "/etc/lb/a.ocsp", 0});
  t.protocols = {"TLSv1.3"};
  t.alpn = {"h2", "http/1.1"};
  t.session_tickets = false;
  t.ticket_key_rotation_s = 604800;
  t.session_cache = 0;
  t.session_timeout_s = 86400;
  t.verify_client = ListenerTls::VerifyClient::Optional;
  t.client_ca = "/etc/lb/ca.pem";
  t.verify_depth = 10;
  t.client_subject_header = "X-Client-Subject";
  text = dumpConfig(c);
  CHECK(text.find("{ cert = \"/etc/lb/a.pem\"; key = \"/etc/lb/a.key\"; },\n") !=
        std::string::npos);
  CHECK(text.find("{ cert = \"/etc/lb/a \\\"ec\\\".pem\"; key = \"/etc/lb/a-ec.key\"; "
                  "ocsp_response = \"/etc/lb/a.ocsp\"; }\n") != std::string::npos);
  CHECK(text.find("verify_client = \"optional\";\n"
                  "      client_ca = \"/etc/lb/ca.pem\";\n"
                  "      verify_depth = 10;\n"
                  "      client_subject_header = \"X-Client-Subject\";\n") != std::string::npos);
  checkRoundTrip(c);
  t.verify_client = ListenerTls::VerifyClient::On;
  checkRoundTrip(c);
}

TEST_CASE("a pool's tls group is dumped only where it is on, its names and files only when set",
          "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  PoolTls& t = c.pools[0].tls;
  t.enabled = true;
  std::string text = dumpConfig(c);
  CHECK(text.find("    forwarded_headers = true;\n"
                  "    tls = {\n"
                  "      verify = true;\n"
                  "      verify_depth = 1;\n"
                  "      protocols = [ \"TLSv1.2\", \"TLSv1.3\" ];\n"
                  "      ciphers = \"DEFAULT\";\n"
                  "      ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                  "TLS_CHACHA20_POLY1305_SHA256\";\n"
                  "      session_reuse = true;\n"
                  "    };\n") != std::string::npos);
  checkRoundTrip(c);

  t.ca = "/etc/lb/backends \"ca\".pem";
  t.verify_depth = 10;
  t.server_name = "api.internal";
  t.cert = "/etc/lb/client.pem";
  t.key = "/etc/lb/client.key";
  t.protocols = {"TLSv1.3"};
  t.session_reuse = false;
  text = dumpConfig(c);
  CHECK(text.find("      verify = true;\n"
                  "      ca = \"/etc/lb/backends \\\"ca\\\".pem\";\n"
                  "      verify_depth = 10;\n"
                  "      server_name = \"api.internal\";\n"
                  "      cert = \"/etc/lb/client.pem\";\n"
                  "      key = \"/etc/lb/client.key\";\n"
                  "      protocols = [ \"TLSv1.3\" ];\n") != std::string::npos);
  CHECK(text.find("      session_reuse = false;\n") != std::string::npos);
  checkRoundTrip(c);
  t.ca.clear();
  t.verify = false;
  checkRoundTrip(c);
  c.pools[0].tls = PoolTls();
  CHECK(dumpConfig(c).find("tls = ") == std::string::npos);
}

TEST_CASE("awkward strings and sizes survive a dump", "[config]") {
  Config c = mustLoad(loadConfigFromString(
      R"(listeners = ( { listen = "[::1]:8080"; return = { body = "x"; }; } );)", "awkward.conf"));
  std::string body;
  for (int b = 1; b < 256; ++b) {
    body += static_cast<char>(b);
  }
  StaticResponse& r = c.listeners[0].action.response;
  r.body = body + "\\\"\\n";
  r.status = 418;
  r.headers = {{"X-Quote", "say \"hi\"\t\\"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}};
  c.http.max_body_size = 3000000001ULL;  // no exact k/m/g: a 64-bit integer
  c.http.max_header_size = 1025;
  c.listeners[0].limits.max_body_size = 0;
  c.listeners[0].limits.max_header_size = 1048576;
  c.error_log.level = LogLevel::Emerg;
  c.worker_processes = 256;
  std::string text = dumpConfig(c);
  CHECK(text.find("client_max_body_size = 3000000001L;") != std::string::npos);
  CHECK(text.find("Set-Cookie = [ \"a=1\", \"b=2\" ];") != std::string::npos);
  checkRoundTrip(c);
}

}  // namespace
}  // namespace lb::config
