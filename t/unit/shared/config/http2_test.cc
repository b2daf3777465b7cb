// A listener's http2 group: defaults, every directive, and bad values refused with file:line.

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "shared/config/load.h"
#include "unit/shared/config/config_test_util.h"

namespace lb::config {
namespace {

using test::expectError;
using test::mustLoad;

// A config whose listener "web" has an http2 group opening on line 2; `options` on line 3.
std::string withHttp2(const std::string& options) {
  return "listeners = ( { name = \"web\"; listen = \"127.0.0.1:8080\"; pool = \"app\";\n"
         "  http2 = {\n" +
         options +
         "\n  }; } );\n"
         "pools = ( { name = \"app\"; backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n";
}

TEST_CASE("a listener speaks HTTP/2 by default, with the documented limits", "[config]") {
  const Config c = mustLoad(loadConfigFromString(
      "listeners = ( { listen = \"127.0.0.1:8080\"; return = { status = 204; }; } );\n",
      "test.conf"));
  const Http2& h = c.listeners[0].http2;
  CHECK(h.enabled);
  CHECK(h.max_concurrent_streams == 128);
  CHECK(h.initial_window_size == 262144);
  CHECK(h.max_resets_burst == 200);
  CHECK(h.max_resets_per_s == 50);
  CHECK(c.listeners[0].tls.alpn == std::vector<std::string>{"h2", "http/1.1"});
}

TEST_CASE("every http2 directive is read", "[config]") {
  const Http2 h = mustLoad(loadConfigFromString(
                               withHttp2("enabled = false; max_concurrent_streams = 16;\n"
                                         "initial_window_size = 1048576; max_resets_burst = 10;\n"
                                         "max_resets_per_s = 5;"),
                               "test.conf"))
                      .listeners[0]
                      .http2;
  CHECK_FALSE(h.enabled);
  CHECK(h.max_concurrent_streams == 16);
  CHECK(h.initial_window_size == 1048576);
  CHECK(h.max_resets_burst == 10);
  CHECK(h.max_resets_per_s == 5);
  CHECK(h.line == 2);
}

TEST_CASE("bad http2 values are refused with their line", "[config]") {
  for (auto [option, message] : std::vector<std::pair<std::string, std::string>>{
           {"enabled = 1;", "\"enabled\" must be true or false, got an integer"},
           {"max_concurrent_streams = 0;",
            "\"max_concurrent_streams\" must be between 1 and 10000, got 0"},
           {"initial_window_size = 1024;",
            "\"initial_window_size\" must be between 16384 and 2147483647, got 1024"},
           {"max_resets_burst = 0;", "\"max_resets_burst\" must be between 1 and 100000, got 0"},
           {"max_resets_per_s = 100001;",
            "\"max_resets_per_s\" must be between 1 and 100000, got 100001"}}) {
    expectError(withHttp2(option), 3, message);
  }
}

TEST_CASE("an unknown http2 directive names the known ones", "[config]") {
  expectError(withHttp2("max_streams = 5;"), 3,
              "unknown directive \"max_streams\" in http2 of listener \"web\"");
}

}  // namespace
}  // namespace lb::config
