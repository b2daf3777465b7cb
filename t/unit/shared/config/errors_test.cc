// The config loader on bad input: every error names the file, the line and what was expected.
// Each case is a whole config; its lines are counted from 1 at the first character.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "shared/config/load.h"

namespace lb::config {
namespace {

const std::string kFixtures = LB_TEST_DATA_DIR "/config/";

// Lines that make a config valid, for cases about something else. One line each.
const std::string kListener =
    "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n";
const std::string kPool =
    "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n";

// A listener that needs no pool.
const std::string kStaticListener =
    "listeners = ( { listen = \"127.0.0.1:8080\"; return = { status = 204; }; } );\n";

struct Expected {
  int line;
  std::string message;
};

struct Case {
  std::string text;
  int line;
  std::string message;
};

std::string allErrors(const ConfigErrors& errors) {
  std::string out;
  for (const ConfigError& e : errors) {
    out += e.toString() + "\n";
  }
  return out;
}

void expectErrors(const Result<Config, ConfigErrors>& r, const std::string& file,
                  const std::vector<Expected>& expected) {
  REQUIRE_FALSE(r.has_value());
  INFO("errors:\n" << allErrors(r.error()));
  REQUIRE(r.error().size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(r.error()[i].file == file);
    CHECK(r.error()[i].line == expected[i].line);
    CHECK(r.error()[i].message == expected[i].message);
  }
}

void expectError(const std::string& text, int line, const std::string& message) {
  INFO("config:\n" << text);
  expectErrors(loadConfigFromString(text, "test.conf"), "test.conf", {{line, message}});
}

void expectCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    expectError(c.text, c.line, c.message);
  }
}

TEST_CASE("a syntax error stops loading and names its line", "[config]") {
  std::string path = kFixtures + "bad_syntax.conf";
  expectErrors(loadConfig(path), path, {{3, "syntax error near \"pid = ;\""}});
  expectError("daemon = true;\ndaemon = false;\n" + kListener + kPool, 2,
              "duplicate setting name near \"daemon = false;\"");
  expectError(
      kListener + "pools = ( { name = \"app\"; backends = ( { address = 1 } ); );\n", 2,
      "syntax error near \"pools = ( { name = \"app\"; backends = ( { address = 1 } ); );\"");
}

TEST_CASE("an integer literal beyond 32 bits is an error, not wrapped", "[config]") {
  // libconfig 1.5 would silently read 3000000000 as -1294967296.
  expectCases({
      {kListener + "worker_connections = 3000000000;\n" + kPool, 2,
       "integer 3000000000 does not fit in 32 bits; write 3000000000L for a 64-bit integer"},
      {"# 123456789012 in a comment is fine\nworker_connections = -3000000000;\n" + kListener +
           kPool,
       2, "integer -3000000000 does not fit in 32 bits; write -3000000000L for a 64-bit integer"},
      {kListener + kPool + "worker_connections = 0x100000000;\n", 3,
       "integer 0x100000000 does not fit in 32 bits; write 0x100000000L for a 64-bit integer"},
      {kListener + "worker_connections = 3000000000L;\n" + kPool, 2,
       "\"worker_connections\" must be between 1 and 1048576, got 3000000000"},
  });
  // At the edges, and inside strings and names, nothing is reported.
  auto ok = loadConfigFromString(
      "worker_shutdown_timeout_ms = 2147483647;\npid = \"/tmp/99999999999\";\n" + kListener + kPool,
      "test.conf");
  CHECK(ok.has_value());
}

TEST_CASE("unknown directives are errors at every level", "[config]") {
  const std::string web = "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; ";
  const std::string routes = "routes = ( { name = \"r\"; rules = ( { pool = \"app\"; } ); } );\n";
  expectCases({
      {kListener + kPool + "foo = 1;\n", 3, "unknown directive \"foo\""},
      {"error_log = { path = \"stderr\"; size = 1; };\n" + kListener + kPool, 1,
       "unknown directive \"size\" in error_log"},
      {"access_log = { format = \"x\"; };\n" + kListener + kPool, 1,
       "unknown directive \"format\" in access_log"},
      {"http = { keepalive_timout_ms = 1; };\n" + kListener + kPool, 1,
       "unknown directive \"keepalive_timout_ms\" in http; did you mean \"keepalive_timeout_ms\"?"},
      {web + "pool = \"app\"; ssl = true; } );\n" + kPool, 1,
       "unknown directive \"ssl\" in listener \"web\""},
      {web + "pool = \"app\";\n  lsiten = 1; } );\n" + kPool, 2,
       "unknown directive \"lsiten\" in listener \"web\"; did you mean \"listen\"?"},
      {web + "return = { code = 200; }; } );\n", 1,
       "unknown directive \"code\" in \"return\" of listener \"web\""},
      {kListener + kPool + "routes = ( { name = \"r\"; default = \"app\";\n" +
           "  rules = ( { pool = \"app\"; } ); } );\n",
       3, "unknown directive \"default\" in route table \"r\""},
      {kListener + kPool +
           "routes = ( { name = \"r\"; rules = (\n  { prefix = \"/\"; pool = \"app\"; } ); } );\n",
       4, "unknown directive \"prefix\" in rule 1 of route table \"r\""},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = ( { pool = \"app\"; },\n" +
           "  { return = { status = 200; stat = 1; }; } ); } );\n",
       4, "unknown directive \"stat\" in \"return\" of rule 2 of route table \"r\""},
      {"listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"api\"; } );\n"
       "pools = ( { name = \"api\"; balance = \"x\";\n"
       "  backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n",
       2, "unknown directive \"balance\" in pool \"api\""},
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; wieght = 2; } ); } );\n",
       3, "unknown directive \"wieght\" in backend 1 of pool \"app\"; did you mean \"weight\"?"},
  });
}

TEST_CASE("a value of the wrong type names what was expected", "[config]") {
  expectCases({
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; weight = \"1\"; } ); } );\n",
       3, "\"weight\" must be an integer, got a string"},
      {"daemon = 1;\n" + kListener + kPool, 1, "\"daemon\" must be true or false, got an integer"},
      {"pid = 5;\n" + kListener + kPool, 1, "\"pid\" must be a string, got an integer"},
      {"error_log = \"stderr\";\n" + kListener + kPool, 1,
       "\"error_log\" must be a group { ... }, got a string"},
      {"http = { client_max_body_size = true; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must be an integer or a size string such as \"16k\", got a "
       "boolean"},
      {"listeners = { listen = \"127.0.0.1:8080\"; pool = \"app\"; };\n" + kPool, 1,
       "\"listeners\" must be a list ( { ... }, ... ), got a group"},
      {"listeners = ( \"127.0.0.1:8080\" );\n" + kPool, 1,
       "listener 1 must be a group { ... }, got a string"},
      {"listeners = ( { listen = \"127.0.0.1:8080\"; return = 200; } );\n", 1,
       "\"return\" must be a group { ... }, got an integer"},
      {"listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { headers = ( 1 ); }; } );\n", 2,
       "\"headers\" must be a group { ... }, got a list"},
      {"listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { headers = { X-A = 5; }; }; } "
       ");\n",
       2, "header \"X-A\" must be a string or an array of strings, got an integer"},
      {"listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { headers = { X-A = [ 1 ]; }; }; "
       "} );\n",
       2, "element 1 of \"X-A\" must be a string, got an integer"},
      {kListener + "pools = ( { name = \"app\"; read_timeout_ms = 1.5;\n" +
           "  backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n",
       2, "\"read_timeout_ms\" must be an integer, got a float"},
      {kListener +
           "pools = ( { name = \"app\"; backends = { address = \"127.0.0.1:9000\"; }; } );\n",
       2, "\"backends\" must be a list ( { ... }, ... ), got a group"},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = ( \"x\" ); } );\n", 3,
       "rule 1 of route table \"r\" must be a group { ... }, got a string"},
  });
}

TEST_CASE("a value out of its range names the range", "[config]") {
  const std::string backends = "backends = ( { address = \"127.0.0.1:9000\"; } );";
  expectCases({
      {"worker_processes = 0;\n" + kListener + kPool, 1,
       "\"worker_processes\" must be between 1 and 256, got 0"},
      {"worker_processes = 257;\n" + kListener + kPool, 1,
       "\"worker_processes\" must be between 1 and 256, got 257"},
      {"worker_processes = \"many\";\n" + kListener + kPool, 1,
       "\"worker_processes\" must be \"auto\" or an integer between 1 and 256, got \"many\""},
      {"worker_connections = 0;\n" + kListener + kPool, 1,
       "\"worker_connections\" must be between 1 and 1048576, got 0"},
      {"max_draining_generations = 0;\n" + kListener + kPool, 1,
       "\"max_draining_generations\" must be between 1 and 64, got 0"},
      {"reload_timeout_ms = 0;\n" + kListener + kPool, 1,
       "\"reload_timeout_ms\" must be between 1 and 2147483647, got 0"},
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; weight = 1001; } ); } );\n",
       3, "\"weight\" must be between 1 and 1000, got 1001"},
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; max_connections = -1; } ); } );\n",
       3, "\"max_connections\" must be between 0 and 2147483647, got -1"},
      {kListener + "pools = ( { name = \"app\"; " + backends + "\n  retries = 8; } );\n", 3,
       "\"retries\" must be between 0 and 7, got 8"},
      {kListener + "pools = ( { name = \"app\"; " + backends + "\n  keepalive = -1; } );\n", 3,
       "\"keepalive\" must be between 0 and 65535, got -1"},
      {kListener + "pools = ( { name = \"app\"; " + backends + "\n  connect_timeout_ms = 0; } );\n",
       3, "\"connect_timeout_ms\" must be between 1 and 2147483647, got 0"},
      {"listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; backlog = 0; } );\n" + kPool,
       1, "\"backlog\" must be between 1 and 65535, got 0"},
      {"listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { status = 199; }; } );\n", 2,
       "\"status\" must be between 200 and 599, got 199"},
      {"listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { status = 600; }; } );\n", 2,
       "\"status\" must be between 200 and 599, got 600"},
      {"http = { client_header_timeout_ms = 0; };\n" + kListener + kPool, 1,
       "\"client_header_timeout_ms\" must be between 1 and 2147483647, got 0"},
      {"http = { keepalive_requests = -1; };\n" + kListener + kPool, 1,
       "\"keepalive_requests\" must be between 0 and 2147483647, got -1"},
      {"http = { client_max_header_size = \"512\"; };\n" + kListener + kPool, 1,
       "\"client_max_header_size\" must be between 1k and 1m, got \"512\""},
      {"http = { client_max_header_size = \"2m\"; };\n" + kListener + kPool, 1,
       "\"client_max_header_size\" must be between 1k and 1m, got \"2m\""},
      {"http = { client_max_body_size = -1; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must not be negative, got -1"},
      {"http = { client_max_body_size = \"1.5m\"; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must be a size such as 1048576, \"16k\" or \"1m\", got \"1.5m\""},
      {"http = { client_max_body_size = \"1t\"; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must be a size such as 1048576, \"16k\" or \"1m\", got \"1t\""},
      {"http = { client_max_body_size = \"k\"; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must be a size such as 1048576, \"16k\" or \"1m\", got \"k\""},
      {"http = { client_max_body_size = \"99999999999g\"; };\n" + kListener + kPool, 1,
       "\"client_max_body_size\" must be a size such as 1048576, \"16k\" or \"1m\", got "
       "\"99999999999g\""},
  });
}

TEST_CASE("enumerations and paths name their accepted values", "[config]") {
  expectCases({
      {"error_log = { level = \"loud\"; };\n" + kListener + kPool, 1,
       "unknown error_log level \"loud\"; expected debug, info, notice, warn, error, crit, alert "
       "or emerg"},
      {"accept_spread = \"fair\";\n" + kListener + kPool, 1,
       "unknown accept_spread \"fair\"; expected \"auto\" or \"even\""},
      {"listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\";\n"
       "  protocol = \"h2\"; } );\n" +
           kPool,
       2, "unknown protocol \"h2\" in listener \"web\"; expected \"http\""},
      {kListener + "pools = ( { name = \"app\"; algorithm = \"weighted\";\n" +
           "  backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n",
       2,
       "unknown algorithm \"weighted\" in pool \"app\"; expected \"round_robin\", "
       "\"least_conn\", \"least_time\", \"peak_ewma\", \"random\", \"ip_hash\" or \"hash\""},
      {"pid = \"lb.pid\";\n" + kListener + kPool, 1,
       "\"pid\" must be an absolute path, got \"lb.pid\""},
      {"error_log = { path = \"logs/error.log\"; };\n" + kListener + kPool, 1,
       "\"path\" must be \"stderr\" or an absolute path, got \"logs/error.log\""},
      {"access_log = { path = \"\"; };\n" + kListener + kPool, 1,
       "\"path\" must be \"off\" or an absolute path, got \"\""},
  });
}

TEST_CASE("a missing required setting is named with its context", "[config]") {
  expectCases({
      {"listeners = ( { name = \"web\"; pool = \"app\"; } );\n" + kPool, 1,
       "missing \"listen\" in listener \"web\""},
      {kStaticListener + "pools = (\n  { backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n",
       3, "missing \"name\" in pool 1"},
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; }, { weight = 2; } ); } );\n",
       3, "missing \"address\" in backend 2 of pool \"app\""},
      {kListener + kPool + "routes = ( { rules = ( { pool = \"app\"; } ); } );\n", 3,
       "missing \"name\" in route table 1"},
      {kListener + kPool + "routes = ( { name = \"r\"; } );\n", 3,
       "route table \"r\" has no rules"},
      {kListener + kPool + "routes = ( { name = \"r\";\n  rules = ( ); } );\n", 4,
       "route table \"r\" has no rules"},
      {kListener + "pools = ( { name = \"app\"; } );\n", 2, "pool \"app\" has no backends"},
      {kListener + "pools = ( { name = \"app\";\n  backends = ( ); } );\n", 3,
       "pool \"app\" has no backends"},
      {"listeners = ( { name = \"\"; listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n" + kPool,
       1, "\"name\" must not be empty"},
  });
}

TEST_CASE("at least one listener is required", "[config]") {
  auto r = loadConfigFromString(kPool, "test.conf");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().size() == 1);
  CHECK(r.error()[0].line == 0);
  CHECK(r.error()[0].toString() ==
        "test.conf: no \"listeners\": at least one listener is required");
  expectError("daemon = false;\nlisteners = ( );\n" + kPool, 2,
              "\"listeners\" is empty; at least one listener is required");
}

TEST_CASE("duplicate names and listen addresses point at the first", "[config]") {
  expectCases({
      {kPool + "listeners = (\n"
               "  { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\"; },\n"
               "  { name = \"web\"; listen = \"127.0.0.1:8081\"; pool = \"app\"; } );\n",
       4, "duplicate listener name \"web\" (first on line 3)"},
      {kPool + "listeners = (\n"
               "  { name = \"a\"; listen = \"127.0.0.1:8080\"; pool = \"app\"; },\n"
               "  { name = \"b\"; listen = \"localhost:8080\"; pool = \"app\"; } );\n",
       4, "listen address \"localhost:8080\" is already used by listener \"a\" (line 3)"},
      {kPool + "listeners = (\n"
               "  { listen = \"[::1]:80\"; pool = \"app\"; },\n"
               "  { listen = \"[0:0::1]:80\"; pool = \"app\"; } );\n",
       4, "listen address \"[0:0::1]:80\" is already used by listener \"[::1]:80\" (line 3)"},
      {kListener + kPool + "routes = (\n  { name = \"r\"; rules = ( { pool = \"app\"; } ); },\n" +
           "  { name = \"r\"; rules = ( { pool = \"app\"; } ); } );\n",
       5, "duplicate route table name \"r\" (first on line 4)"},
      {kListener +
           "pools = (\n  { name = \"app\"; backends = ( { address = \"127.0.0.1:1\"; } ); },\n" +
           "  { name = \"app\"; backends = ( { address = \"127.0.0.1:2\"; } ); } );\n",
       4, "duplicate pool name \"app\" (first on line 3)"},
      {kListener + "pools = ( { name = \"app\"; backends = (\n" +
           "  { address = \"127.0.0.1:9000\"; },\n  { address = \"127.0.0.1:9000\"; } ); } );\n",
       4, "backend \"127.0.0.1:9000\" is listed twice (first on line 3); use \"weight\""},
  });
}

TEST_CASE("bad addresses carry the address parser's message", "[config]") {
  auto listen = [](const std::string& address) {
    return "listeners = ( { listen = \"" + address + "\"; pool = \"app\"; } );\n" + kPool;
  };
  auto backend = [](const std::string& address) {
    return kListener + "pools = ( { name = \"app\"; backends = (\n  { address = \"" + address +
           "\"; } ); } );\n";
  };
  expectCases({
      {listen("8080"), 1, "\"listen\": expected \"host:port\", got \"8080\""},
      {listen("::1:80"), 1,
       "\"listen\": an IPv6 address must be in brackets, \"[::1]:80\"; got \"::1:80\""},
      {listen("example.com:80"), 1,
       "\"listen\": expected a numeric IPv4 or IPv6 address, got \"example.com\""},
      {listen("127.0.0.1:70000"), 1, "\"listen\": expected a port number 0-65535, got \"70000\""},
      {listen("127.0.0.1:0"), 1,
       "\"listen\" needs a port between 1 and 65535, got \"127.0.0.1:0\""},
      {backend("10.0.0.1"), 3, "\"address\": expected \"host:port\", got \"10.0.0.1\""},
      {backend("*:80"), 3, "\"address\" must name one host, not a wildcard, got \"*:80\""},
      {backend("[::]:80"), 3, "\"address\" must name one host, not a wildcard, got \"[::]:80\""},
  });
}

TEST_CASE("a name that refers to nothing is an error", "[config]") {
  expectCases({
      {"listeners = ( { listen = \"127.0.0.1:8080\"; routes = \"main\"; } );\n" + kPool, 1,
       "no route table named \"main\""},
      {"listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"api\"; } );\n" + kPool, 1,
       "no pool named \"api\""},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = (\n  { pool = \"ap\"; } ); } );\n",
       4, "no pool named \"ap\""},
  });
}

TEST_CASE("a listener has exactly one of routes, pool, return", "[config]") {
  const std::string routes = "routes = ( { name = \"r\"; rules = ( { pool = \"app\"; } ); } );\n";
  expectCases({
      {"listeners = (\n  { name = \"web\"; listen = \"127.0.0.1:8080\"; } );\n" + kPool, 2,
       "listener \"web\" needs one of \"routes\", \"pool\" or \"return\""},
      {"listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\";\n"
       "  routes = \"r\"; } );\n" +
           kPool + routes,
       2,
       "listener \"web\" has more than one of \"routes\", \"pool\" and \"return\"; keep exactly "
       "one"},
      {"listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\";\n"
       "  return = { status = 503; }; } );\n" +
           kPool,
       2,
       "listener \"127.0.0.1:8080\" has more than one of \"routes\", \"pool\" and \"return\"; keep "
       "exactly one"},
  });
}

TEST_CASE("a rule has exactly one of pool, return", "[config]") {
  expectCases({
      {kListener + kPool +
           "routes = ( { name = \"r\"; rules = (\n  { host = \"a.example\"; } ); } );\n",
       4, "rule 1 of route table \"r\" needs \"pool\" or \"return\""},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = ( { pool = \"app\";\n" +
           "  return = { status = 404; }; } ); } );\n",
       4, "rule 1 of route table \"r\" has both \"pool\" and \"return\"; keep one"},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = (\n" +
           "  { host = \"*.example.com\"; pool = \"app\"; } ); } );\n",
       4,
       "\"host\" must be a host name such as \"api.example.com\" (no port, no wildcard), got "
       "\"*.example.com\""},
      {kListener + kPool + "routes = ( { name = \"r\"; rules = (\n" +
           "  { path_prefix = \"v1/\"; pool = \"app\"; } ); } );\n",
       4, "\"path_prefix\" must start with \"/\" and hold no spaces, got \"v1/\""},
  });
}

TEST_CASE("static responses must be valid HTTP", "[config]") {
  auto response = [](const std::string& body) {
    return "listeners = ( { listen = \"127.0.0.1:8080\";\n  return = { " + body + " }; } );\n";
  };
  expectCases({
      {response("status = 204; body = \"x\";"), 2, "a 204 response cannot have a body"},
      {response("status = 304; body = \"x\";"), 2, "a 304 response cannot have a body"},
      {response("headers = { Content-Length = \"5\"; };"), 2,
       "header \"Content-Length\" is set by lb itself; remove it"},
      {response("headers = { transfer-encoding = \"chunked\"; };"), 2,
       "header \"transfer-encoding\" is set by lb itself; remove it"},
      {response("headers = { X-A = \"a\\r\\nX-Injected: 1\"; };"), 2,
       "header \"X-A\" must not contain CR, LF or other control characters"},
  });
}

TEST_CASE("every semantic error is reported, in file order", "[config]") {
  std::string path = kFixtures + "bad_many.conf";
  expectErrors(
      loadConfig(path), path,
      {{3,
        "unknown algorithm \"fastest\" in pool \"app\"; expected \"round_robin\", "
        "\"least_conn\", \"least_time\", \"peak_ewma\", \"random\", \"ip_hash\" or \"hash\""},
       {4, "\"weight\" must be between 1 and 1000, got 0"},
       {7, "no pool named \"ap\""},
       {8, "no route table named \"main\""},
       {8, "duplicate listener name \"web\" (first on line 7)"},
       {8, "listen address \"127.0.0.1:8080\" is already used by listener \"web\" (line 7)"},
       {10, "\"worker_processes\" must be between 1 and 256, got 0"}});
}

TEST_CASE("an error in an @include'd file names that file", "[config]") {
  expectErrors(loadConfig(kFixtures + "bad_include_main.conf"), kFixtures + "bad_include_pools.inc",
               {{3,
                 "unknown directive \"wieght\" in backend 1 of pool \"app\"; did you mean "
                 "\"weight\"?"}});
}

TEST_CASE("a file that cannot be read says why", "[config]") {
  std::string missing = kFixtures + "no-such-file.conf";
  expectErrors(loadConfig(missing), missing, {{0, "cannot open: No such file or directory"}});
  expectErrors(loadConfig(kFixtures), kFixtures, {{0, "cannot open: Is a directory"}});
  CHECK(loadConfig(missing).error()[0].toString() ==
        missing + ": cannot open: No such file or directory");
}

TEST_CASE("ConfigError::toString is file:line: message", "[config]") {
  CHECK(ConfigError{"a.conf", 12, "bad"}.toString() == "a.conf:12: bad");
  CHECK(ConfigError{"a.conf", 0, "bad"}.toString() == "a.conf: bad");
}

}  // namespace
}  // namespace lb::config
