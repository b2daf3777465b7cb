// A pool's tls group (TLS from lb to the backends): every directive read with its value and
// default, relative paths made absolute, and bad values, missing halves of a client certificate
// and a CA without verification refused with file:line errors. The files themselves are the
// TLS code's to check (t/unit/shared/tls/client_context_test.cc), not the loader's.

#include <limits.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "shared/config/load.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::expectError;
using test::kFixtures;
using test::mustLoad;

using Strings = std::vector<std::string>;

// A config whose pool "app" has a tls group opening on line 3; `options` start on line 4.
std::string withPoolTls(const std::string& options) {
  return "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
         "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9443\"; } );\n"
         "  tls = {\n" +
         options + "\n  }; } );\n";
}

PoolTls loadPoolTls(const std::string& options) {
  return mustLoad(loadConfigFromString(withPoolTls(options), "test.conf")).pools[0].tls;
}

TEST_CASE("pool tls: an empty group turns TLS on with the documented defaults", "[config]") {
  const PoolTls t = loadPoolTls("");
  CHECK(t.enabled);
  CHECK(t.line == 3);
  CHECK(t.verify);
  CHECK(t.ca.empty());
  CHECK(t.verify_depth == 1);
  CHECK(t.server_name.empty());
  CHECK(t.cert.empty());
  CHECK(t.key.empty());
  CHECK(t.protocols == Strings{"TLSv1.2", "TLSv1.3"});
  CHECK(t.ciphers == "DEFAULT");
  CHECK(t.ciphersuites ==
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  CHECK(t.session_reuse);
}

TEST_CASE("pool tls: a pool without the group speaks plain HTTP", "[config]") {
  Pool p = test::loadPool("");
  CHECK_FALSE(p.tls.enabled);
  CHECK(p.tls.line == 0);
  CHECK(p.tls_context == nullptr);  // the loader builds no TLS state, tls::loadConfig does
}

TEST_CASE("pool tls: every directive of pool_tls.conf is read, relative paths from its directory",
          "[config]") {
  Config c = mustLoad(loadConfig(kFixtures + "pool_tls.conf"));
  REQUIRE(c.pools.size() == 3);
  const PoolTls& t = c.pools[0].tls;
  CHECK(t.enabled);
  CHECK(t.line == 8);
  CHECK(t.verify);
  CHECK(t.ca == kFixtures + "certs/backends-ca.pem");
  CHECK(t.verify_depth == 3);
  CHECK(t.server_name == "api.internal");
  CHECK(t.cert == kFixtures + "certs/lb-client.pem");
  CHECK(t.key == "/etc/lb/lb-client.key");
  CHECK(t.protocols == Strings{"TLSv1.3"});
  CHECK(t.ciphers == "ECDHE+AESGCM");
  CHECK(t.ciphersuites == "TLS_AES_256_GCM_SHA384");
  CHECK_FALSE(t.session_reuse);
  CHECK_FALSE(c.pools[1].tls.enabled);
  CHECK(c.pools[2].tls.enabled);
  CHECK_FALSE(c.pools[2].tls.verify);
}

TEST_CASE("pool tls: a relative path without a config directory is taken from the current one",
          "[config]") {
  char cwd[PATH_MAX];
  REQUIRE(::getcwd(cwd, sizeof(cwd)) != nullptr);
  const std::string here = std::string(cwd) == "/" ? "/" : std::string(cwd) + "/";
  PoolTls t = loadPoolTls("ca = \"ca.pem\"; cert = \"./certs/c.pem\"; key = \"/k\";");
  CHECK(t.ca == here + "ca.pem");
  CHECK(t.cert == here + "certs/c.pem");
  CHECK(t.key == "/k");
}

TEST_CASE("pool tls: the extremes of each range and every value load", "[config]") {
  PoolTls t = loadPoolTls(
      "verify_depth = 10; protocols = ( \"TLSv1.3\", \"TLSv1.2\" );\n"
      "server_name = \"a\"; session_reuse = true;");
  CHECK(t.verify_depth == 10);
  CHECK(t.protocols == Strings{"TLSv1.3", "TLSv1.2"});
  CHECK(t.server_name == "a");
  t = loadPoolTls("verify_depth = 1; verify = false; server_name = \"Backend_1.svc-internal\";");
  CHECK(t.verify_depth == 1);
  CHECK_FALSE(t.verify);
  CHECK(t.server_name == "Backend_1.svc-internal");
  // verify_depth is kept with verification off: a dump writes it, and it must load back.
  CHECK(loadPoolTls("verify = false; verify_depth = 4;").verify_depth == 4);
  // A name of the longest length DNS allows.
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                        std::string(63, 'c') + "." + std::string(61, 'd');
  REQUIRE(longest.size() == 253);
  CHECK(loadPoolTls("server_name = \"" + longest + "\";").server_name == longest);
}

TEST_CASE("pool tls: values out of range or of the wrong type are refused", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"verify_depth = 0;", "\"verify_depth\" must be between 1 and 10, got 0"},
           {"verify_depth = 11;", "\"verify_depth\" must be between 1 and 10, got 11"},
           {"verify = 1;", "\"verify\" must be true or false, got an integer"},
           {"session_reuse = \"yes\";", "\"session_reuse\" must be true or false, got a string"},
           {"ca = 1;", "\"ca\" must be a string, got an integer"},
           {"server_name = [ \"a\" ];", "\"server_name\" must be a string, got an array"},
           {"ciphers = 3;", "\"ciphers\" must be a string, got an integer"},
           {"protocols = \"TLSv1.3\";",
            "\"protocols\" must be an array of strings such as [ \"TLSv1.2\", \"TLSv1.3\" ], got "
            "a string"},
           {"protocols = [ \"TLSv1.1\" ];",
            "element 1 of \"protocols\" must be \"TLSv1.2\" or \"TLSv1.3\", got \"TLSv1.1\""},
           {"protocols = [ \"TLSv1.2\", \"TLSv1.2\" ];",
            "\"TLSv1.2\" is listed twice in \"protocols\""},
           {"protocols = [ ];", "\"protocols\" must not be empty"}}) {
    expectError(withPoolTls(option), 4, message);
  }
  expectError(
      "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
      "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9443\"; } );\n"
      "  tls = true; } );\n",
      3, "\"tls\" must be a group { ... }, got a boolean");
}

TEST_CASE("pool tls: strings and paths must say something", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"ca = \"\";", "\"ca\" must name a file, got \"\""},
           {"cert = \"\"; key = \"/k\";", "\"cert\" must name a file, got \"\""},
           {"cert = \"/c\"; key = \"/k\\n\";", "\"key\" must not contain control characters"},
           {"ciphers = \"\";", "\"ciphers\" must not be empty"},
           {"ciphersuites = \"TLS_AES_128_GCM_SHA256\\x01\";",
            "\"ciphersuites\" must not contain control characters"}}) {
    expectError(withPoolTls(option), 4, message);
  }
}

TEST_CASE("pool tls: server_name is a host name, never an address", "[config]") {
  for (const char* name : {"", "api internal", "api.internal.", ".api", "a..b", "api/v1",
                           "api.internal:443", "[::1]", "b\xC3\xA4r.example"}) {
    expectError(withPoolTls("server_name = \"" + std::string(name) + "\";"), 4,
                "\"server_name\" must be a host name such as \"api.internal\", got \"" +
                    std::string(name) + "\"");
  }
  expectError(withPoolTls("server_name = \"" + std::string(254, 'a') + "\";"), 4,
              "\"server_name\" must be a host name such as \"api.internal\", got \"" +
                  std::string(254, 'a') + "\"");
  expectError(withPoolTls("server_name = \"10.0.0.1\";"), 4,
              "\"server_name\" must be a host name, got the address \"10.0.0.1\"; without "
              "server_name the certificate must name the backend's address");
}

TEST_CASE("pool tls: a client certificate needs its key, a CA needs verification", "[config]") {
  expectError(withPoolTls("cert = \"/etc/lb/c.pem\";"), 4,
              "\"cert\" needs \"key\" in tls of pool \"app\"");
  expectError(withPoolTls("key = \"/etc/lb/c.key\";"), 4,
              "\"key\" needs \"cert\" in tls of pool \"app\"");
  expectError(withPoolTls("verify = false;\nca = \"/etc/lb/ca.pem\";"), 5,
              "\"ca\" needs verify true in tls of pool \"app\" (line 4 turns verification off)");
  // In any order, and with verification stated.
  PoolTls t = loadPoolTls("key = \"/k\"; ca = \"/ca\"; verify = true; cert = \"/c\";");
  CHECK(t.cert == "/c");
  CHECK(t.key == "/k");
  CHECK(t.ca == "/ca");
  // Without verification the name is still sent as SNI.
  t = loadPoolTls("verify = false; server_name = \"api.internal\";");
  CHECK(t.server_name == "api.internal");
}

TEST_CASE("pool tls: a misspelt directive suggests the right one", "[config]") {
  expectError(withPoolTls("sever_name = \"api.internal\";"), 4,
              "unknown directive \"sever_name\" in tls of pool \"app\"; did you mean "
              "\"server_name\"?");
  expectError(withPoolTls("client_ca = \"/ca.pem\";"), 4,
              "unknown directive \"client_ca\" in tls of pool \"app\"");
  expectError(withPoolTls("certificates = ( );"), 4,
              "unknown directive \"certificates\" in tls of pool \"app\"");
  expectError(
      "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
      "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9443\"; } );\n"
      "  tlss = { }; } );\n",
      3, "unknown directive \"tlss\" in pool \"app\"; did you mean \"tls\"?");
}

TEST_CASE("pool tls: every error in the group is reported, in file order", "[config]") {
  auto r = loadConfigFromString(withPoolTls("verify = false;\n"
                                            "ca = \"/ca.pem\";\n"
                                            "verify_depth = 99;\n"
                                            "server_name = \"10.1.1.1\";\n"
                                            "cert = \"/c.pem\";"),
                                "test.conf");
  REQUIRE_FALSE(r.has_value());
  INFO(test::allErrors(r.error()));
  REQUIRE(r.error().size() == 4);
  CHECK(r.error()[0].line == 5);
  CHECK(r.error()[0].message ==
        "\"ca\" needs verify true in tls of pool \"app\" (line 4 turns verification off)");
  CHECK(r.error()[1].line == 6);
  CHECK(r.error()[1].message == "\"verify_depth\" must be between 1 and 10, got 99");
  CHECK(r.error()[2].line == 7);
  CHECK(r.error()[2].message.starts_with("\"server_name\" must be a host name, got the address"));
  CHECK(r.error()[3].line == 8);
  CHECK(r.error()[3].message == "\"cert\" needs \"key\" in tls of pool \"app\"");
}

}  // namespace
}  // namespace lb::config
