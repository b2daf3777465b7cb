#pragma once

// What the config tests share: fixture paths and a load that fails the test with every error.

#include <catch2/catch.hpp>
#include <string>

#include "shared/config/load.h"

namespace lb::config::test {

inline const std::string kFixtures = LB_TEST_DATA_DIR "/config/";
inline const std::string kConfDir = LB_TEST_DATA_DIR "/../../conf/";

inline std::string allErrors(const ConfigErrors& errors) {
  std::string out;
  for (const ConfigError& e : errors) {
    out += e.toString() + "\n";
  }
  return out;
}

inline Config mustLoad(const Result<Config, ConfigErrors>& r) {
  if (!r) {
    FAIL("unexpected errors:\n" << allErrors(r.error()));
  }
  return r.value();
}

// A config whose pool "app" (on line 2) holds `options` before its one backend.
inline std::string withPool(const std::string& options) {
  return "listeners = ( { listen = \"127.0.0.1:8080\"; pool = \"app\"; } );\n"
         "pools = ( { name = \"app\"; " +
         options + "\n  backends = ( { address = \"127.0.0.1:9000\"; } ); } );\n";
}

inline Pool loadPool(const std::string& options) {
  return mustLoad(loadConfigFromString(withPool(options), "test.conf")).pools[0];
}

// Exactly one error, at `line` of test.conf, saying `message`.
inline void expectError(const std::string& text, int line, const std::string& message) {
  INFO("config:\n" << text);
  auto r = loadConfigFromString(text, "test.conf");
  REQUIRE_FALSE(r.has_value());
  INFO("errors:\n" << allErrors(r.error()));
  REQUIRE(r.error().size() == 1);
  CHECK(r.error()[0].file == "test.conf");
  CHECK(r.error()[0].line == line);
  CHECK(r.error()[0].message == message);
}

}  // namespace lb::config::test
