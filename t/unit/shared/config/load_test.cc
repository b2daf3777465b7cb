// The config loader on good input: the shipped configs, every directive, defaults, sizes,
// listener overrides, cross-references and @include.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "shared/config/load.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::allErrors;
using test::kConfDir;
using test::kFixtures;
using test::mustLoad;

Config loadText(const std::string& text) {
  return mustLoad(loadConfigFromString(text, "test.conf"));
}

// One listener and one pool; tests add what they look at.
const std::string kMinimal =
    "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
    "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n";

std::string header(const StaticResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      return v;
    }
  }
  return "<absent>";
}

TEST_CASE("the demo conf/lb.conf loads and is what the demo needs", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "lb.conf"));
  CHECK(c.file == kConfDir + "lb.conf");
  CHECK(c.worker_processes == 2);
  CHECK_FALSE(c.daemon);
  CHECK(c.pid == "/tmp/lb-demo.pid");
  CHECK(c.error_log.path == "stderr");
  CHECK(c.error_log.level == LogLevel::Notice);
  CHECK(c.access_log.path == "/dev/stdout");

  REQUIRE(c.listeners.size() == 3);
  const Listener& web = c.listeners[0];
  CHECK(web.name == "web");
  CHECK(web.address.toString() == "127.0.0.1:8080");
  CHECK_FALSE(web.has_action);
  REQUIRE(web.routes_index == 0);

  const char* names[] = {"backend-a", "backend-b"};
  const char* ports[] = {"127.0.0.1:8081", "127.0.0.1:8082"};
  const char* tags[] = {"a", "b"};
  for (int i = 0; i < 2; ++i) {
    const Listener& b = c.listeners[i + 1];
    CHECK(b.name == names[i]);
    CHECK(b.address.toString() == ports[i]);
    REQUIRE(b.has_action);
    CHECK(b.action.kind == Action::Kind::Static);
    CHECK(b.action.response.status == 200);
    CHECK(header(b.action.response, "X-Backend") == tags[i]);
    CHECK(b.action.response.body == std::string("backend ") + tags[i] + "\n");
  }

  REQUIRE(c.routes.size() == 1);
  const RouteTable& front = c.routes[0];
  REQUIRE(front.rules.size() == 2);
  CHECK(front.rules[0].path_prefix == "/healthz");
  CHECK(front.rules[0].action.kind == Action::Kind::Static);
  CHECK(front.rules[0].action.response.status == 200);
  CHECK(front.rules[1].host.empty());
  CHECK(front.rules[1].path_prefix.empty());
  CHECK(front.rules[1].action.kind == Action::Kind::Pool);
  CHECK(front.rules[1].action.pool_index == 0);

  REQUIRE(c.pools.size() == 1);
  const Pool& demo = c.pools[0];
  CHECK(demo.name == "demo");
  CHECK(demo.algorithm == Algorithm::RoundRobin);
  REQUIRE(demo.backends.size() == 2);
  CHECK(demo.backends[0].address == c.listeners[1].address);
  CHECK(demo.backends[1].address == c.listeners[2].address);
}

TEST_CASE("conf/minimal.conf loads", "[config]") {
  Config c = mustLoad(loadConfig(kConfDir + "minimal.conf"));
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].address.toString() == "0.0.0.0:8080");
  CHECK(c.listeners[0].action.pool_index == 0);
  REQUIRE(c.pools.size() == 1);
  CHECK(c.pools[0].backends.size() == 2);
}

TEST_CASE("every directive of full.conf is read", "[config]") {
  Config c = mustLoad(loadConfig(kFixtures + "full.conf"));
  CHECK(c.worker_processes == 3);
  CHECK_FALSE(c.daemon);
  CHECK(c.pid == "/tmp/lb-test.pid");
  CHECK(c.worker_shutdown_timeout_ms == 2500);
  CHECK(c.worker_connections == 4096);
  CHECK(c.reload_timeout_ms == 7000);
  CHECK(c.max_draining_generations == 2);
  CHECK(c.drain_window_ms == 500);
  CHECK(c.accept_spread == AcceptSpread::Even);
  CHECK(c.error_log.path == "/tmp/lb-test-error.log");
  CHECK(c.error_log.level == LogLevel::Debug);
  CHECK(c.access_log.path == "/tmp/lb-test-access.log");
  CHECK(c.http.header_timeout_ms == 1001);
  CHECK(c.http.body_timeout_ms == 1002);
  CHECK(c.http.keepalive_timeout_ms == 0);
  CHECK(c.http.send_timeout_ms == 1004);
  CHECK(c.http.max_header_size == 8192);
  CHECK(c.http.max_body_size == 5368709120ULL);
  CHECK(c.http.keepalive_requests == 7);
  CHECK_FALSE(c.http.request_buffering);
  CHECK(c.http.reset_timedout_connection);

  REQUIRE(c.listeners.size() == 3);
  const Listener& main = c.listeners[0];
  CHECK(main.listen == "*:8080");
  CHECK(main.backlog == 128);
  CHECK(main.routes == "site");
  CHECK(main.routes_index == 0);
  CHECK(main.line == 24);
  const Listener& v6 = c.listeners[1];
  CHECK(v6.address.family() == AF_INET6);
  CHECK(v6.address.toString() == "[::1]:8443");
  CHECK(v6.action.pool == "api");
  CHECK(v6.action.pool_index == 1);
  const StaticResponse& maint = c.listeners[2].action.response;
  CHECK(maint.status == 503);
  using Headers = std::vector<std::pair<std::string, std::string>>;
  CHECK(maint.headers == Headers{{"Content-Type", "text/html"},
                                 {"Retry-After", "120"},
                                 {"Set-Cookie", "a=1"},
                                 {"Set-Cookie", "b=2"}});
  CHECK(maint.body == "<h1>down for \"maintenance\"</h1>\n");

  const RouteTable& site = c.routes[0];
  REQUIRE(site.rules.size() == 3);
  CHECK(site.rules[0].host == "api.example.com");  // lowercased once, at load
  CHECK(site.rules[0].path_prefix == "/v1/");
  CHECK(site.rules[0].action.pool_index == 1);
  CHECK(site.rules[0].line == 37);
  CHECK(site.rules[1].action.response.status == 204);
  CHECK(site.rules[1].action.response.body.empty());
  CHECK(site.rules[2].action.pool_index == 0);

  const Pool& api = c.pools[1];
  CHECK(api.algorithm == Algorithm::LeastConn);
  REQUIRE(api.backends.size() == 2);
  CHECK(api.backends[0].address_text == "10.0.0.1:8080");
  CHECK(api.backends[0].weight == 2);
  CHECK(api.backends[0].max_connections == 100);
  CHECK(api.backends[1].address.toString() == "127.0.0.1:8081");
  CHECK(api.keepalive == 8);
  CHECK(api.keepalive_timeout_ms == 30000);
  CHECK(api.keepalive_requests == 500);
  CHECK(api.connect_timeout_ms == 200);
  CHECK(api.read_timeout_ms == 3000);
  CHECK(api.send_timeout_ms == 4000);
  CHECK(api.retries == 2);
  CHECK(c.pools[0].backends[1].weight == 3);
}

TEST_CASE("settings left out get the documented defaults", "[config]") {
  Config c = loadText(kMinimal);
  const Config d;  // model.h holds the documented defaults
  CHECK(c.worker_processes == std::clamp<long>(sysconf(_SC_NPROCESSORS_ONLN), 1, 256));
  CHECK(c.daemon == d.daemon);
  CHECK(c.pid == "/run/lb.pid");
  CHECK(c.worker_shutdown_timeout_ms == d.worker_shutdown_timeout_ms);
  CHECK(c.worker_connections == d.worker_connections);
  CHECK(c.reload_timeout_ms == 10000);
  CHECK(c.max_draining_generations == 4);
  CHECK(c.drain_window_ms == 2000);
  CHECK(c.accept_spread == AcceptSpread::Auto);
  CHECK(c.error_log.path == "/var/log/lb/error.log");
  CHECK(c.error_log.level == LogLevel::Notice);
  CHECK(c.access_log.path.empty());

  const ClientLimits& l = c.listeners[0].limits;
  CHECK(l.header_timeout_ms == 60000);
  CHECK(l.body_timeout_ms == 60000);
  CHECK(l.keepalive_timeout_ms == 75000);
  CHECK(l.send_timeout_ms == 60000);
  CHECK(l.max_header_size == 16384);
  CHECK(l.max_body_size == 1048576);
  CHECK(l.keepalive_requests == 10000);
  CHECK(l.request_buffering);
  CHECK_FALSE(l.reset_timedout_connection);

  const Listener& listener = c.listeners[0];
  CHECK(listener.name == "127.0.0.1:8080");  // an unnamed listener is called by its address
  CHECK(listener.protocol == Protocol::Http);
  CHECK(listener.backlog == 511);

  const Pool& p = c.pools[0];
  const Pool dp;
  CHECK(p.algorithm == Algorithm::RoundRobin);
  CHECK(p.keepalive == dp.keepalive);
  CHECK(p.keepalive_timeout_ms == dp.keepalive_timeout_ms);
  CHECK(p.keepalive_requests == dp.keepalive_requests);
  CHECK(p.connect_timeout_ms == dp.connect_timeout_ms);
  CHECK(p.read_timeout_ms == dp.read_timeout_ms);
  CHECK(p.send_timeout_ms == dp.send_timeout_ms);
  CHECK(p.retries == dp.retries);
  CHECK(p.backends[0].weight == 1);
  CHECK(p.backends[0].max_connections == 0);
  CHECK(p.backends[0].slot == -1);
  CHECK(p.slot == -1);
}

TEST_CASE("worker_processes takes auto or a count", "[config]") {
  long cpus = std::clamp<long>(sysconf(_SC_NPROCESSORS_ONLN), 1, 256);
  CHECK(loadText("worker_processes = \"auto\";\n" + kMinimal).worker_processes == cpus);
  CHECK(loadText("worker_processes = 1;\n" + kMinimal).worker_processes == 1);
  CHECK(loadText("worker_processes = 256;\n" + kMinimal).worker_processes == 256);
}

TEST_CASE("sizes take bytes or a k/m/g suffix", "[config]") {
  auto limits = [](const std::string& header, const std::string& body) {
    return loadText("http = { client_max_header_size = " + header +
                    "; client_max_body_size = " + body + "; };\n" + kMinimal)
        .http;
  };
  ClientLimits l = limits("\"16k\"", "\"1m\"");
  CHECK(l.max_header_size == 16384);
  CHECK(l.max_body_size == 1048576);
  l = limits("\"1K\"", "\"2G\"");
  CHECK(l.max_header_size == 1024);
  CHECK(l.max_body_size == 2147483648ULL);
  l = limits("4096", "0");
  CHECK(l.max_header_size == 4096);
  CHECK(l.max_body_size == 0);
  l = limits("\"1m\"", "\"123\"");
  CHECK(l.max_header_size == 1048576);
  CHECK(l.max_body_size == 123);
  l = limits("2048", "10737418240L");
  CHECK(l.max_body_size == 10737418240ULL);
  CHECK(limits("\"8k\"", "\"100g\"").max_body_size == 107374182400ULL);
}

TEST_CASE("a listener starts from the http limits and overrides its own", "[config]") {
  // The http group comes after the listeners on purpose: its position does not matter.
  Config c = loadText(R"(listeners = (
  { name = "a"; listen = "127.0.0.1:8080"; pool = "app";
    client_header_timeout_ms = 5; client_max_body_size = "2k"; keepalive_timeout_ms = 0; },
  { name = "b"; listen = "127.0.0.1:8081"; pool = "app"; }
);
pools = ( { name = "app"; backends = ( { address = "127.0.0.1:9000"; } ); } );
http = { client_header_timeout_ms = 1000; client_body_timeout_ms = 2000; send_timeout_ms = 3;
         client_max_body_size = "5m"; keepalive_requests = 9; client_max_header_size = "4k"; };
)");
  const ClientLimits& a = c.listeners[0].limits;
  CHECK(a.header_timeout_ms == 5);
  CHECK(a.max_body_size == 2048);
  CHECK(a.keepalive_timeout_ms == 0);
  CHECK(a.body_timeout_ms == 2000);  // the rest comes from http
  CHECK(a.send_timeout_ms == 3);
  CHECK(a.keepalive_requests == 9);
  CHECK(a.max_header_size == 4096);
  const ClientLimits& b = c.listeners[1].limits;
  CHECK(b.header_timeout_ms == 1000);
  CHECK(b.max_body_size == 5 * 1048576);
  CHECK(b.keepalive_timeout_ms == 75000);  // neither sets it: the default
  CHECK(c.http.header_timeout_ms == 1000);
}

TEST_CASE("names resolve to indices in either order of definition", "[config]") {
  Config c = loadText(R"(pools = (
  { name = "one"; backends = ( { address = "127.0.0.1:9001"; } ); },
  { name = "two"; backends = ( { address = "127.0.0.1:9002"; } ); }
);
listeners = (
  { listen = "127.0.0.1:8080"; routes = "second"; },
  { listen = "127.0.0.1:8081"; routes = "first"; },
  { listen = "127.0.0.1:8082"; pool = "two"; }
);
routes = (
  { name = "first"; rules = ( { pool = "two"; }, { pool = "one"; } ); },
  { name = "second"; rules = ( { host = "x"; pool = "one"; } ); }
);
)");
  CHECK(c.listeners[0].routes_index == 1);
  CHECK(c.listeners[1].routes_index == 0);
  CHECK(c.listeners[2].action.pool_index == 1);
  CHECK(c.routes[0].rules[0].action.pool_index == 1);
  CHECK(c.routes[0].rules[1].action.pool_index == 0);
  CHECK(c.routes[1].rules[0].action.pool_index == 0);
}

TEST_CASE("listen and backend addresses in every accepted form", "[config]") {
  Config c = loadText(R"(listeners = (
  { listen = "*:80"; pool = "app"; },
  { listen = "0.0.0.0:81"; pool = "app"; },
  { listen = "[::]:80"; pool = "app"; },
  { listen = "[::1]:82"; pool = "app"; },
  { listen = "localhost:83"; pool = "app"; }
);
pools = ( { name = "app"; backends = ( { address = "[::1]:9000"; }, { address = "10.1.2.3:1"; },
                                       { address = "localhost:65535"; } ); } );
)");
  CHECK(c.listeners[0].address.toString() == "0.0.0.0:80");
  CHECK(c.listeners[1].address.toString() == "0.0.0.0:81");
  CHECK(c.listeners[2].address.toString() == "[::]:80");
  CHECK(c.listeners[3].address.toString() == "[::1]:82");
  CHECK(c.listeners[4].address.toString() == "127.0.0.1:83");
  CHECK(c.pools[0].backends[0].address.toString() == "[::1]:9000");
  CHECK(c.pools[0].backends[2].address.toString() == "127.0.0.1:65535");
  CHECK(c.pools[0].backends[2].address_text == "localhost:65535");
}

TEST_CASE("@include is relative to the including file", "[config]") {
  // From another working directory, to show that the path is not relative to it.
  char cwd[4096];
  REQUIRE(getcwd(cwd, sizeof(cwd)) != nullptr);
  REQUIRE(chdir("/") == 0);
  auto r = loadConfig(kFixtures + "include_main.conf");
  REQUIRE(chdir(cwd) == 0);
  Config c = mustLoad(r);
  REQUIRE(c.pools.size() == 1);
  CHECK(c.pools[0].name == "app");
  CHECK(c.listeners[0].action.pool_index == 0);
}

TEST_CASE("an unnamed listener and a static listener coexist", "[config]") {
  Config c = loadText(R"(listeners = (
  { listen = "127.0.0.1:8080"; return = { body = "hi"; }; }
);
)");
  const Listener& l = c.listeners[0];
  REQUIRE(l.has_action);
  CHECK(l.action.kind == Action::Kind::Static);
  CHECK(l.action.response.status == 200);
  CHECK(l.action.response.headers.empty());
  CHECK(l.action.response.body == "hi");
  CHECK(c.pools.empty());
}

}  // namespace
}  // namespace lb::config
