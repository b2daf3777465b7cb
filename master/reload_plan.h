#pragma once

// What a reload changes, computed from the running and the new configuration before anything is
// applied: the master logs it as a summary, and `lb -t --plan` prints it against a running
// instance without applying it. Listeners are matched by address (that is how their sockets are
// reused), pools by name, backends by pool and address. Pure; no I/O.

#include <string>
#include <vector>

#include "shared/config/model.h"

namespace lb::master {

struct ReloadPlan {
  // Each entry names the object ("web 0.0.0.0:80", "api", "api/10.0.0.1:8080"); a changed one
  // also says what changed ("api: algorithm round_robin -> least_conn").
  std::vector<std::string> listeners_added;
  std::vector<std::string> listeners_removed;
  std::vector<std::string> listeners_kept;  // same address: the socket is reused
  std::vector<std::string> listeners_changed;
  std::vector<std::string> pools_added;
  std::vector<std::string> pools_removed;
  std::vector<std::string> pools_changed;
  std::vector<std::string> backends_added;
  std::vector<std::string> backends_removed;
  std::vector<std::string> backends_changed;
  std::vector<std::string> settings_changed;  // top-level directives, http limits, routes

  // True when the new configuration changes nothing but may still be reloaded.
  bool unchanged() const;
};

ReloadPlan planReload(const config::Config& from, const config::Config& to);

// One line for the error log: "listeners +1 -0 =2 ~1; pools +0 -0 ~1; backends +2 -1 ~0;
// settings ~1".
std::string summarizePlan(const ReloadPlan& plan);

// The plan in full, one item per line, for `lb -t --plan` and the [info] log.
std::string formatPlan(const ReloadPlan& plan);

}  // namespace lb::master
