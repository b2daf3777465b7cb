// The reload plan: what `lb -t --plan` prints and the master logs, from two loaded configs.

#include "master/reload_plan.h"

#include <catch2/catch.hpp>
#include <string>

#include "shared/config/load.h"

namespace lb::master {
namespace {

config::Config load(const std::string& text) {
  auto c = config::loadConfigFromString(text, "test.conf");
  INFO((c ? std::string() : c.error()[0].toString()));
  REQUIRE(c);
  return std::move(*c);
}

// A config with one listener and pool "app" of two backends; `pool` and `listener` add options
// to them, `top` adds top-level directives.
std::string conf(const std::string& pool = "", const std::string& listener = "",
                 const std::string& top = "") {
  std::string name = listener.find("name =") == std::string::npos ? "name = \"web\"; " : "";
  return top + "\nlisteners = ( { " + name + "listen = \"127.0.0.1:8080\"; pool = \"app\"; " +
         listener +
         " } );\n"
         "pools = ( { name = \"app\"; backends = ( { address = \"10.0.0.1:80\"; },\n"
         "  { address = \"10.0.0.2:80\"; } ); " +
         pool + " } );\n";
}

ReloadPlan plan(const std::string& from, const std::string& to) {
  return planReload(load(from), load(to));
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("reload plan: the same config changes nothing", "[master][reload]") {
  ReloadPlan p = plan(conf("health_check = { };"), conf("health_check = { };"));
  CHECK(p.unchanged());
  CHECK(p.listeners_kept == Strings{"web 127.0.0.1:8080"});
  CHECK(formatPlan(p) ==
        "plan: listeners +0 -0 =1 ~0; pools +0 -0 ~0; backends +0 -0 ~0; settings ~0\n"
        "  listener kept:    web 127.0.0.1:8080\n"
        "  nothing changes\n");
}

TEST_CASE("reload plan: a pool's settings, each one the dump knows", "[master][reload]") {
  SECTION("a value") {
    ReloadPlan p = plan(conf(), conf("algorithm = \"least_conn\"; connect_timeout_ms = 900;"));
    CHECK(p.pools_changed ==
          Strings{
              "app: algorithm \"round_robin\" -> \"least_conn\", connect_timeout_ms 5000 -> 900"});
    CHECK_FALSE(p.unchanged());
  }
  SECTION("the hash algorithm is named as such, with its key") {
    ReloadPlan p = plan(conf(), conf("algorithm = \"hash\"; hash_key = \"header:X-User\";"));
    CHECK(p.pools_changed == Strings{"app: algorithm \"round_robin\" -> \"hash\", hash_key (unset) "
                                     "-> \"header:X-User\""});
  }
  SECTION("a group turned on or off is one entry") {
    ReloadPlan p = plan(conf(), conf("health_check = { }; tls = { };"));
    CHECK(p.pools_changed == Strings{"app: health_check added, tls added"});
    p = plan(conf("health_check = { }; tls = { };"), conf());
    CHECK(p.pools_changed == Strings{"app: health_check removed, tls removed"});
  }
  SECTION("a setting inside a group, named by its path") {
    ReloadPlan p = plan(conf("health_check = { interval_ms = 3000; };"),
                        conf("health_check = { interval_ms = 5000; type = \"http\"; };"));
    REQUIRE(p.pools_changed.size() == 1);
    const std::string& c = p.pools_changed[0];
    INFO(c);
    CHECK(c.find("health_check.type \"tcp\" -> \"http\"") != std::string::npos);
    CHECK(c.find("health_check.interval_ms 3000 -> 5000") != std::string::npos);
    CHECK(c.find("health_check.path (unset) -> \"/\"") != std::string::npos);
  }
  SECTION("settings written on one line: TLS to the backends, the queue, retries") {
    ReloadPlan p = plan(conf("tls = { verify = false; };"),
                        conf("tls = { verify = false; server_name = \"app.internal\"; };"
                             "retry_on = [ 503 ]; passive = { failures = 3; };"));
    CHECK(p.pools_changed == Strings{"app: retry_on [ ] -> [ 503 ], passive added, "
                                     "tls.server_name (unset) -> \"app.internal\""});
  }
}

TEST_CASE("reload plan: backends are matched by address", "[master][reload]") {
  std::string to =
      "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
      "pools = ( { name = \"app\"; backends = ( { address = \"10.0.0.2:80\"; weight = 5; },\n"
      "  { address = \"10.0.0.3:80\"; max_connections = 7; } ); } );\n";
  ReloadPlan p = plan(conf(), to);
  CHECK(p.backends_added == Strings{"app/10.0.0.3:80"});
  CHECK(p.backends_removed == Strings{"app/10.0.0.1:80"});
  CHECK(p.backends_changed == Strings{"app/10.0.0.2:80: weight 1 -> 5"});
  CHECK(p.pools_changed.empty());  // the backends list is not a pool setting
  CHECK(summarizePlan(p) ==
        "listeners +0 -0 =1 ~0; pools +0 -0 ~0; backends +1 -1 ~1; settings ~0");
}

TEST_CASE("reload plan: pools added and removed take their backends along", "[master][reload]") {
  std::string to =
      "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"api\"; } );\n"
      "pools = ( { name = \"api\"; backends = ( { address = \"10.0.0.9:80\"; } ); } );\n";
  ReloadPlan p = plan(conf(), to);
  CHECK(p.pools_added == Strings{"api"});
  CHECK(p.pools_removed == Strings{"app"});
  CHECK(p.backends_added == Strings{"api/10.0.0.9:80"});
  CHECK(p.backends_removed == Strings{"app/10.0.0.1:80", "app/10.0.0.2:80"});
  CHECK(p.listeners_changed == Strings{"web 127.0.0.1:8080: pool \"app\" -> \"api\""});
}

TEST_CASE("reload plan: listeners are matched by address", "[master][reload]") {
  SECTION("limits, HTTP/2 and the name of a kept listener") {
    ReloadPlan p = plan(conf(), conf("",
                                     "name = \"front\"; tunnel_timeout_ms = 5000; "
                                     "http2 = { enabled = false; };"));
    CHECK(p.listeners_kept == Strings{"front 127.0.0.1:8080"});
    CHECK(p.listeners_changed ==
          Strings{"front 127.0.0.1:8080: name \"web\" -> \"front\", tunnel_timeout_ms 3600000 -> "
                  "5000, http2.enabled true -> false"});
  }
  SECTION("a pool action replaced by a static response") {
    ReloadPlan p = plan(conf(),
                        "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
                        "  return = { status = 503; body = \"down\"; }; } );\n"
                        "pools = ( { name = \"app\"; backends = ( { address = "
                        "\"10.0.0.1:80\"; }, { address = \"10.0.0.2:80\"; } ); } );\n");
    CHECK(p.listeners_changed ==
          Strings{"web 127.0.0.1:8080: return added, pool \"app\" -> (unset)"});
  }
  SECTION("a route table replaced by a pool") {
    std::string from =
        "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; routes = \"r\"; } );\n"
        "routes = ( { name = \"r\"; rules = ( { pool = \"app\"; } ); } );\n"
        "pools = ( { name = \"app\"; backends = ( { address = \"10.0.0.1:80\"; },\n"
        "  { address = \"10.0.0.2:80\"; } ); } );\n";
    ReloadPlan p = plan(from, conf());
    CHECK(p.listeners_changed ==
          Strings{"web 127.0.0.1:8080: pool (unset) -> \"app\", routes \"r\" -> (unset)"});
  }
  SECTION("a long static body is cut short in the plan") {
    std::string body(200, 'x');
    auto withBody = [&](const std::string& b) {
      return "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\";\n"
             "  return = { status = 200; body = \"" +
             b + "\"; }; } );\n";
    };
    ReloadPlan p = plan(withBody(body), withBody(body + "y"));
    std::string cut = "\"" + std::string(79, 'x') + "...";
    CHECK(p.listeners_changed == Strings{"web 127.0.0.1:8080: return.body " + cut + " -> " + cut});
  }
  SECTION("a new address is a new listener") {
    std::string to = conf();
    to.replace(to.find("8080"), 4, "8081");
    ReloadPlan p = plan(conf(), to);
    CHECK(p.listeners_added == Strings{"web 127.0.0.1:8081"});
    CHECK(p.listeners_removed == Strings{"web 127.0.0.1:8080"});
    CHECK(p.listeners_kept.empty());
  }
}

TEST_CASE("reload plan: top-level settings, http limits and routes", "[master][reload]") {
  ReloadPlan p = plan(conf(), conf("", "",
                                   "accept_spread = \"even\"; drain_window_ms = 500;\n"
                                   "http = { tunnel_timeout_ms = 1000; };\n"
                                   "error_log = { path = \"stderr\"; level = \"info\"; };"));
  REQUIRE(p.settings_changed.size() == 1);
  const std::string& s = p.settings_changed[0];
  INFO(s);
  CHECK(s.find("drain_window_ms 2000 -> 500") != std::string::npos);
  CHECK(s.find("accept_spread \"auto\" -> \"even\"") != std::string::npos);
  CHECK(s.find("error_log.level \"notice\" -> \"info\"") != std::string::npos);
  CHECK(s.find("http.tunnel_timeout_ms 3600000 -> 1000") != std::string::npos);
  // A listener that inherits the http default shows its own effective value changing.
  CHECK(p.listeners_changed == Strings{"web 127.0.0.1:8080: tunnel_timeout_ms 3600000 -> 1000"});

  std::string routes_a =
      "listeners = ( { listen = \"127.0.0.1:8080\"; routes = \"r\"; } );\n"
      "routes = ( { name = \"r\"; rules = ( { path_prefix = \"/a\"; pool = \"app\"; } ); } );\n"
      "pools = ( { name = \"app\"; backends = ( { address = \"10.0.0.1:80\"; } ); } );\n";
  std::string routes_b = routes_a;
  routes_b.replace(routes_b.find("/a"), 2, "/b");
  p = plan(routes_a, routes_b);
  CHECK(p.settings_changed == Strings{"routes \"r\" changed"});
}

TEST_CASE("reload plan: a listener's TLS certificates, item by item", "[master][reload]") {
  auto tls = [](const std::string& certs) {
    return conf("", "tls = { certificates = ( " + certs + " ); };");
  };
  const std::string a = "{ cert = \"/a.pem\"; key = \"/a.key\"; }";
  const std::string b = "{ cert = \"/b.pem\"; key = \"/b.key\"; }";
  CHECK(plan(tls(a + ", " + b), tls(a + ", " + b)).unchanged());
  ReloadPlan p = plan(tls(a + ", " + b), tls(a));
  CHECK(p.listeners_changed == Strings{"web 127.0.0.1:8080: tls.certificates[1] { cert = "
                                       "\"/b.pem\"; key = \"/b.key\"; } -> (unset)"});
  p = plan(tls(a), tls(b));
  CHECK(p.listeners_changed ==
        Strings{"web 127.0.0.1:8080: tls.certificates[0] { cert = \"/a.pem\"; key = \"/a.key\"; } "
                "-> { cert = \"/b.pem\"; key = \"/b.key\"; }"});
  p = plan(conf(), tls(a));
  CHECK(p.listeners_changed == Strings{"web 127.0.0.1:8080: tls added"});
}

TEST_CASE("reload plan: a config using every kind of group compares equal to itself",
          "[master][reload]") {
  const std::string full =
      "http = { tunnel_timeout_ms = 9000; };\n"
      "listeners = (\n"
      "  { name = \"tls\"; listen = \"127.0.0.1:8443\"; routes = \"r\";\n"
      "    tls = { certificates = ( { cert = \"/a.pem\"; key = \"/a.key\"; },\n"
      "                             { cert = \"/b.pem\"; key = \"/b.key\"; } );\n"
      "            alpn = [ \"h2\", \"http/1.1\" ]; }; },\n"
      "  { name = \"static\"; listen = \"127.0.0.1:8081\";\n"
      "    return = { status = 200; headers = { X-A = [ \"1\", \"2\" ]; X-B = \"{\"; };\n"
      "               body = \"{ = }\\n\"; }; }\n"
      ");\n"
      "routes = ( { name = \"r\"; rules = ( { path_prefix = \"/a\"; pool = \"h\"; },\n"
      "                                     { pool = \"s\"; } ); } );\n"
      "pools = (\n"
      "  { name = \"h\"; algorithm = \"hash\"; hash_key = \"header:X-User\";\n"
      "    backends = ( { address = \"10.0.0.1:80\"; max_connections = 5; } );\n"
      "    queue = { size = 3; }; circuit_breaker = { failures = 2; };\n"
      "    passive = { failures = 3; }; retry_on = [ 502, 503 ];\n"
      "    health_check = { type = \"http\"; expect = [ 200 ]; }; tls = { verify = false; }; },\n"
      "  { name = \"s\"; sticky = { cookie = \"lb\"; };\n"
      "    backends = ( { address = \"10.0.0.2:80\"; }, { address = \"10.0.0.3:80\"; } ); }\n"
      ");\n";
  ReloadPlan p = plan(full, full);
  INFO(formatPlan(p));
  CHECK(p.unchanged());
  CHECK(p.listeners_kept.size() == 2);
}

}  // namespace lb::master
