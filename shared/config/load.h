#pragma once

// Loads and validates a libconfig file into config::Config. Runs in the master (and in `lb -t`);
// never in a worker. libconfig++ throws: its exceptions are caught here and turned into errors.

#include <string>
#include <vector>

#include "shared/config/model.h"
#include "shared/util/result.h"

namespace lb::config {

struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the error has no line (file unreadable)
  std::string message;
  // "file:line: message", or "file: message" without a line.
  std::string toString() const;
};

// All errors found, in file order (loading goes on after a semantic error, so an operator sees
// every problem at once; a syntax error stops it).
using ConfigErrors = std::vector<ConfigError>;

Result<Config, ConfigErrors> loadConfig(const std::string& path);
// Same, from text; `name` stands for the file name in errors. For tests.
Result<Config, ConfigErrors> loadConfigFromString(const std::string& text, const std::string& name);

// The effective config with every default filled in, in the file's own syntax (`lb -T`).
std::string dumpConfig(const Config& config);
// One listener, route table or pool as it appears in dumpConfig's list, "{" to "}": what a
// reload plan compares, so that every directive the dump knows is compared.
std::string dumpListener(const Listener& listener);
std::string dumpRouteTable(const RouteTable& table);
std::string dumpPool(const Pool& pool);

}  // namespace lb::config
