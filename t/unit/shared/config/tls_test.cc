// A listener's tls group: every directive read with its value and default, relative paths made
// absolute, and bad values, missing settings and inconsistent client verification refused with
// file:line errors. The files themselves are the TLS code's to check, not the loader's.

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

// A config whose listener "web" has a tls group opening on line 2; `options` start on line 3.
std::string withTls(const std::string& options) {
  return "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8443\"; pool = \"app\";\n"
         "  tls = {\n" +
         options +
         "\n  }; } );\n"
         "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n";
}

// One certificate, on one line.
const std::string kCert =
    "certificates = ( { cert = \"/etc/lb/a.pem\"; key = \"/etc/lb/a.key\"; } );";

ListenerTls loadTls(const std::string& options) {
  return mustLoad(loadConfigFromString(withTls(options), "test.conf")).listeners[0].tls;
}

TEST_CASE("a tls group with one certificate gets the documented defaults", "[config]") {
  const ListenerTls t = loadTls(kCert);
  CHECK(t.enabled());
  CHECK(t.line == 2);
  REQUIRE(t.certificates.size() == 1);
  CHECK(t.certificates[0].cert == "/etc/lb/a.pem");
  CHECK(t.certificates[0].key == "/etc/lb/a.key");
  CHECK(t.certificates[0].ocsp_response.empty());
  CHECK(t.certificates[0].line == 3);
  CHECK(t.protocols == Strings{"TLSv1.2", "TLSv1.3"});
  CHECK(t.ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20");
  CHECK(t.ciphersuites ==
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  CHECK(t.groups == "X25519:P-256:P-384");
  CHECK(t.alpn == Strings{"h2", "http/1.1"});
  CHECK(t.session_tickets);
  CHECK(t.ticket_key_rotation_s == 3600);
  CHECK(t.session_cache == 20480);
  CHECK(t.session_timeout_s == 300);
  CHECK(t.verify_client == ListenerTls::VerifyClient::Off);
  CHECK(t.client_ca.empty());
  CHECK(t.verify_depth == 1);
  CHECK(t.client_subject_header.empty());
}

TEST_CASE("a listener without a tls group is not a TLS listener", "[config]") {
  Config c = mustLoad(loadConfigFromString(
      "listeners = ( { listen = \"127.0.0.1:8080\"; return = { status = 204; }; } );\n",
      "test.conf"));
  CHECK_FALSE(c.listeners[0].tls.enabled());
  CHECK(c.listeners[0].tls.line == 0);
}

TEST_CASE("every tls directive of tls.conf is read, relative paths from its directory",
          "[config]") {
  Config c = mustLoad(loadConfig(kFixtures + "tls.conf"));
  REQUIRE(c.listeners.size() == 2);
  CHECK_FALSE(c.listeners[1].tls.enabled());
  const ListenerTls& t = c.listeners[0].tls;
  CHECK(t.line == 5);
  REQUIRE(t.certificates.size() == 2);
  CHECK(t.certificates[0].cert == kFixtures + "certs/a.pem");
  CHECK(t.certificates[0].key == kFixtures + "certs/a.key");
  CHECK(t.certificates[0].ocsp_response.empty());
  CHECK(t.certificates[0].line == 6);
  CHECK(t.certificates[1].cert == "/etc/lb/a-ec.pem");
  CHECK(t.certificates[1].key == kFixtures + "certs/a-ec.key");
  CHECK(t.certificates[1].ocsp_response == kFixtures + "certs/a-ec.ocsp");
  CHECK(t.certificates[1].line == 7);
  CHECK(t.protocols == Strings{"TLSv1.3"});
  CHECK(t.ciphers == "ECDHE+AESGCM");
  CHECK(t.ciphersuites == "TLS_AES_128_GCM_SHA256");
  CHECK(t.groups == "X25519:P-256");
  CHECK(t.alpn == Strings{"h2", "http/1.1"});
  CHECK_FALSE(t.session_tickets);
  CHECK(t.ticket_key_rotation_s == 600);
  CHECK(t.session_cache == 0);
  CHECK(t.session_timeout_s == 86400);
  CHECK(t.verify_client == ListenerTls::VerifyClient::Optional);
  CHECK(t.client_ca == kFixtures + "ca.pem");
  CHECK(t.verify_depth == 3);
  CHECK(t.client_subject_header == "X-Client-Subject");
}

TEST_CASE("a relative tls path without a config directory is taken from the current one",
          "[config]") {
  char cwd[PATH_MAX];
  REQUIRE(::getcwd(cwd, sizeof(cwd)) != nullptr);
  const std::string here = std::string(cwd) == "/" ? "/" : std::string(cwd) + "/";
  ListenerTls t = loadTls(
      "certificates = ( { cert = \"a.pem\"; key = \"./keys/a.key\"; ocsp_response = \"/o\"; } );\n"
      "verify_client = \"on\"; client_ca = \"ca.pem\";");
  CHECK(t.certificates[0].cert == here + "a.pem");
  CHECK(t.certificates[0].key == here + "keys/a.key");
  CHECK(t.certificates[0].ocsp_response == "/o");
  CHECK(t.client_ca == here + "ca.pem");
}

TEST_CASE("the extremes of each tls range and every enumeration value load", "[config]") {
  ListenerTls t = loadTls(kCert +
                          "\nticket_key_rotation_s = 60; session_cache = 1000000;\n"
                          "session_timeout_s = 1; verify_depth = 10; verify_client = \"on\";\n"
                          "client_ca = \"/ca.pem\"; protocols = ( \"TLSv1.3\", \"TLSv1.2\" );\n"
                          "alpn = [ \"h2\" ];");
  CHECK(t.ticket_key_rotation_s == 60);
  CHECK(t.session_cache == 1000000);
  CHECK(t.session_timeout_s == 1);
  CHECK(t.verify_depth == 10);
  CHECK(t.verify_client == ListenerTls::VerifyClient::On);
  CHECK(t.protocols == Strings{"TLSv1.3", "TLSv1.2"});
  CHECK(t.alpn == Strings{"h2"});
  t = loadTls(kCert + "\nticket_key_rotation_s = 604800; session_timeout_s = 86400;\n" +
              "verify_client = \"off\"; session_tickets = true;");
  CHECK(t.ticket_key_rotation_s == 604800);
  CHECK(t.session_timeout_s == 86400);
  CHECK(t.verify_client == ListenerTls::VerifyClient::Off);
  // verify_depth is kept with verification off: a dump writes it, and it must load back.
  CHECK(loadTls(kCert + " verify_depth = 4;").verify_depth == 4);
}

TEST_CASE("tls values out of range are refused with their range", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"ticket_key_rotation_s = 59;",
            "\"ticket_key_rotation_s\" must be between 60 and "
            "604800, got 59"},
           {"ticket_key_rotation_s = 604801;",
            "\"ticket_key_rotation_s\" must be between 60 and 604800, got 604801"},
           {"session_cache = -1;", "\"session_cache\" must be between 0 and 1000000, got -1"},
           {"session_cache = 1000001;",
            "\"session_cache\" must be between 0 and 1000000, got 1000001"},
           {"session_timeout_s = 0;", "\"session_timeout_s\" must be between 1 and 86400, got 0"},
           {"session_timeout_s = 86401;",
            "\"session_timeout_s\" must be between 1 and 86400, got 86401"},
           {"verify_depth = 0;", "\"verify_depth\" must be between 1 and 10, got 0"},
           {"verify_depth = 11;", "\"verify_depth\" must be between 1 and 10, got 11"}}) {
    expectError(withTls(option + "\n" + kCert), 3, message);
  }
}

TEST_CASE("tls values of the wrong type name what was expected", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"session_tickets = 1;", "\"session_tickets\" must be true or false, got an integer"},
           {"session_cache = \"20k\";", "\"session_cache\" must be an integer, got a string"},
           {"ciphers = [ \"A\" ];", "\"ciphers\" must be a string, got an array"},
           {"verify_client = true;", "\"verify_client\" must be a string, got a boolean"},
           {"protocols = \"TLSv1.3\";",
            "\"protocols\" must be an array of strings such as [ \"TLSv1.2\", \"TLSv1.3\" ], got "
            "a string"},
           {"alpn = \"h2\";",
            "\"alpn\" must be an array of strings such as [ \"h2\", \"http/1.1\" ], got a string"},
           {"protocols = [ 12 ];", "element 1 of \"protocols\" must be a string, got an integer"},
           {"client_ca = 1; verify_client = \"on\";",
            "\"client_ca\" must be a string, got an integer"}}) {
    expectError(withTls(option + "\n" + kCert), 3, message);
  }
  // A header of the wrong type is also one given without verification: both are said.
  auto r = loadConfigFromString(withTls("client_subject_header = 1;\n" + kCert), "test.conf");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().size() == 2);
  CHECK(r.error()[0].message == "\"client_subject_header\" must be a string, got an integer");
  CHECK(r.error()[1].message ==
        "\"client_subject_header\" needs verify_client \"optional\" or "
        "\"on\" in tls of listener \"web\"");
  expectError(withTls("certificates = { cert = \"/a\"; key = \"/b\"; };"), 3,
              "\"certificates\" must be a list ( { ... }, ... ), got a group");
  expectError(withTls("certificates = ( \"/a.pem\" );"), 3,
              "certificate 1 of tls of listener \"web\" must be a group { ... }, got a string");
  expectError(
      "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8443\"; return = { status = 204; };\n"
      "  tls = \"on\"; } );\n",
      2, "\"tls\" must be a group { ... }, got a string");
}

TEST_CASE("tls enumerations name their accepted values, each value once", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"protocols = [ \"TLSv1.2\", \"TLSv1.1\" ];",
            "element 2 of \"protocols\" must be \"TLSv1.2\" or \"TLSv1.3\", got \"TLSv1.1\""},
           {"protocols = [ \"tlsv1.3\" ];",
            "element 1 of \"protocols\" must be \"TLSv1.2\" or \"TLSv1.3\", got \"tlsv1.3\""},
           {"protocols = [ \"TLSv1.3\", \"TLSv1.3\" ];",
            "\"TLSv1.3\" is listed twice in \"protocols\""},
           {"protocols = [ ];", "\"protocols\" must not be empty"},
           {"alpn = [ \"http/1.0\" ];",
            "element 1 of \"alpn\" must be \"h2\" or \"http/1.1\", got \"http/1.0\""},
           {"alpn = [ \"h2\", \"http/1.1\", \"h2\" ];", "\"h2\" is listed twice in \"alpn\""},
           {"alpn = ( );", "\"alpn\" must not be empty"},
           {"verify_client = \"required\";",
            "\"verify_client\" must be \"off\", \"optional\" or \"on\", got \"required\""}}) {
    expectError(withTls(option + "\n" + kCert), 3, message);
  }
}

TEST_CASE("tls strings and paths must say something", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"ciphers = \"\";", "\"ciphers\" must not be empty"},
           {"ciphersuites = \"\";", "\"ciphersuites\" must not be empty"},
           {"groups = \"\";", "\"groups\" must not be empty"},
           {"ciphers = \"HIGH\\n\";", "\"ciphers\" must not contain control characters"},
           {"groups = \"X25519\\x01\";", "\"groups\" must not contain control characters"}}) {
    expectError(withTls(option + "\n" + kCert), 3, message);
  }
  expectError(withTls("certificates = ( { cert = \"\"; key = \"/a.key\"; } );"), 3,
              "\"cert\" must name a file, got \"\"");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a\\r.key\"; } );"), 3,
              "\"key\" must not contain control characters");
  expectError(
      withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a.key\"; ocsp_response = \"\"; } );"),
      3, "\"ocsp_response\" must name a file, got \"\"");
}

TEST_CASE("certificates are required, each with its cert and key", "[config]") {
  expectError(withTls("session_cache = 0;"), 2,
              "missing \"certificates\" in tls of listener \"web\"");
  expectError(withTls("certificates = ( );"), 3,
              "\"certificates\" is empty; tls of listener \"web\" needs at least one certificate");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a.key\"; },\n"
                      "  { key = \"/b.key\"; } );"),
              4, "missing \"cert\" in certificate 2 of tls of listener \"web\"");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; } );"), 3,
              "missing \"key\" in certificate 1 of tls of listener \"web\"");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a.key\"; },\n"
                      "  { cert = \"/a.pem\"; key = \"/b.key\"; } );"),
              4,
              "certificate \"/a.pem\" is listed twice in tls of listener \"web\" (first on line "
              "3)");
  // An unnamed listener is named by its address.
  expectError(
      "listeners = ( { listen = \"127.0.0.1:8443\"; return = { status = 204; };\n"
      "  tls = { certificates = ( { key = \"/a.key\"; } ); }; } );\n",
      2, "missing \"cert\" in certificate 1 of tls of listener \"127.0.0.1:8443\"");
}

TEST_CASE("client verification needs a CA, and its directives need verification", "[config]") {
  expectError(withTls("verify_client = \"on\";\n" + kCert), 3,
              "verify_client \"on\" needs \"client_ca\" in tls of listener \"web\"");
  expectError(
      withTls("verify_client = \"optional\"; client_subject_header = \"X-Subject\";\n" + kCert), 3,
      "verify_client \"optional\" needs \"client_ca\" in tls of listener \"web\"");
  expectError(withTls(kCert + "\nclient_ca = \"/ca.pem\";"), 4,
              "\"client_ca\" needs verify_client \"optional\" or \"on\" in tls of listener "
              "\"web\"");
  expectError(withTls(kCert + "\nverify_client = \"off\";\nclient_ca = \"/ca.pem\";"), 5,
              "\"client_ca\" needs verify_client \"optional\" or \"on\" in tls of listener "
              "\"web\"");
  expectError(withTls(kCert + "\nclient_subject_header = \"X-Client-Subject\";"), 4,
              "\"client_subject_header\" needs verify_client \"optional\" or \"on\" in tls of "
              "listener \"web\"");
  // A bad verify_client is one error, not one more per directive that depends on it.
  expectError(withTls(kCert + "\nverify_client = \"yes\"; client_ca = \"/ca.pem\";"), 4,
              "\"verify_client\" must be \"off\", \"optional\" or \"on\", got \"yes\"");
  // The directives may come in any order.
  ListenerTls t = loadTls("client_subject_header = \"X-Subject\"; client_ca = \"/ca.pem\";\n" +
                          kCert + "\nverify_client = \"on\";");
  CHECK(t.verify_client == ListenerTls::VerifyClient::On);
  CHECK(t.client_subject_header == "X-Subject");
}

TEST_CASE("client_subject_header is a header name lb does not manage itself", "[config]") {
  const std::string verify = "verify_client = \"on\"; client_ca = \"/ca.pem\";\n" + kCert + "\n";
  expectError(withTls(verify + "client_subject_header = \"X Subject\";"), 5,
              "\"client_subject_header\" must be an HTTP header name, got \"X Subject\"");
  expectError(withTls(verify + "client_subject_header = \"\";"), 5,
              "\"client_subject_header\" must be an HTTP header name, got \"\"");
  for (const char* name : {"Host", "content-length", "X-Forwarded-For", "Connection"}) {
    expectError(withTls(verify + "client_subject_header = \"" + name + "\";"), 5,
                "\"client_subject_header\" cannot be \"" + std::string(name) +
                    "\", a header lb manages itself");
  }
}

TEST_CASE("a misspelt tls directive suggests the right one", "[config]") {
  expectError(withTls(kCert + "\nsession_ticket = true;"), 4,
              "unknown directive \"session_ticket\" in tls of listener \"web\"; did you mean "
              "\"session_tickets\"?");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a.key\";\n"
                      "  ocsp = \"/a.ocsp\"; } );"),
              4, "unknown directive \"ocsp\" in certificate 1 of tls of listener \"web\"");
  expectError(withTls("certificates = ( { cert = \"/a.pem\"; key = \"/a.key\";\n"
                      "  ocsp_respons = \"/a.ocsp\"; } );"),
              4,
              "unknown directive \"ocsp_respons\" in certificate 1 of tls of listener \"web\"; "
              "did you mean \"ocsp_response\"?");
  // A misspelt required directive is also a missing one.
  auto r = loadConfigFromString(
      withTls("certificates = ( { cert = \"/a.pem\"; keys = \"/a.key\"; } );"), "test.conf");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.error().size() == 2);
  CHECK(r.error()[0].message ==
        "unknown directive \"keys\" in certificate 1 of tls of listener \"web\"; did you mean "
        "\"key\"?");
  CHECK(r.error()[1].message == "missing \"key\" in certificate 1 of tls of listener \"web\"");
  expectError(
      "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8443\"; return = { status = 204; };\n"
      "  tsl = { }; } );\n",
      2, "unknown directive \"tsl\" in listener \"web\"");
  expectError(
      "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8443\"; return = { status = 204; };\n"
      "  tlss = { }; } );\n",
      2, "unknown directive \"tlss\" in listener \"web\"; did you mean \"tls\"?");
}

TEST_CASE("every error in a tls group is reported, in file order", "[config]") {
  auto r = loadConfigFromString(withTls("protocols = [ \"SSLv3\" ];\n"
                                        "certificates = ( { cert = \"/a.pem\"; } );\n"
                                        "session_cache = -5;\n"
                                        "verify_client = \"on\";"),
                                "test.conf");
  REQUIRE_FALSE(r.has_value());
  INFO(test::allErrors(r.error()));
  REQUIRE(r.error().size() == 4);
  CHECK(r.error()[0].line == 3);
  CHECK(r.error()[0].message ==
        "element 1 of \"protocols\" must be \"TLSv1.2\" or \"TLSv1.3\", got \"SSLv3\"");
  CHECK(r.error()[1].line == 4);
  CHECK(r.error()[1].message == "missing \"key\" in certificate 1 of tls of listener \"web\"");
  CHECK(r.error()[2].line == 5);
  CHECK(r.error()[2].message == "\"session_cache\" must be between 0 and 1000000, got -5");
  CHECK(r.error()[3].line == 6);
  CHECK(r.error()[3].message ==
        "verify_client \"on\" needs \"client_ca\" in tls of listener \"web\"");
}

}  // namespace
}  // namespace lb::config
