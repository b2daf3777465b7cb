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

}  // namespace lb::config::test
