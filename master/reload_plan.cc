#include "master/reload_plan.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <set>
#include <string_view>

#include "shared/config/load.h"

namespace lb::master {
namespace {

using config::Config;

// Collects "what old -> new" for the fields of one object that differ.
class Changes {
 public:
  template <typename T>
  void field(std::string_view name, const T& from, const T& to) {
    if (!(from == to)) {
      add(name, std::to_string(from), std::to_string(to));
    }
  }
  void add(std::string_view name, std::string_view from, std::string_view to) {
    note(std::string(name) + " " + shorten(from) + " -> " + shorten(to));
  }
  void note(const std::string& text) {
    if (!out_.empty()) {
      out_ += ", ";
    }
    out_ += text;
  }
  bool empty() const { return out_.empty(); }
  const std::string& str() const { return out_; }

 private:
  // A static response's body can be kilobytes; the plan is a log line.
  static std::string shorten(std::string_view v) {
    constexpr size_t kMax = 80;
    return v.size() <= kMax ? std::string(v) : std::string(v.substr(0, kMax)) + "...";
  }
  std::string out_;
};

// One setting of a dumped block: "health_check.fall" = "3", or an item of a list written on one
// line, "tls.certificates[0]" = "{ cert = ...; key = ...; }".
struct Setting {
  std::string path;
  std::string value;
};

std::string_view trimLine(std::string_view s) {
  while (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == ',' || s.back() == ';')) {
    s.remove_suffix(1);
  }
  return s;
}

// The settings of a block written by dumpConfig, dumpListener or dumpPool, in order. It reads
// only that layout (per line one setting, or one bracket that opens or closes a group), which is
// why the plan compares dumps: whatever `lb -T` prints, the plan compares, with no list of fields
// here to keep in step.
std::vector<Setting> flatten(const std::string& dump) {
  struct Group {
    std::string path;
    int items = -1;  // a list: its items so far; a group: -1
  };
  std::vector<Setting> out;
  std::vector<Group> open;
  auto child = [&](const std::string& key) {
    std::string at = open.empty() ? std::string() : open.back().path;
    return at.empty() || key.front() == '[' ? at + key : at + "." + key;
  };
  auto nextItem = [&]() {
    int i = open.empty() ? 0 : open.back().items++;
    return "[" + std::to_string(i) + "]";
  };
  size_t pos = 0;
  while (pos < dump.size()) {
    size_t end = std::min(dump.find('\n', pos), dump.size());
    std::string_view line = trimLine(std::string_view(dump).substr(pos, end - pos));
    pos = end + 1;
    if (line.empty() || line.front() == '#') {
      continue;
    }
    if (line == "}" || line == ")") {
      if (!open.empty()) {
        open.pop_back();
      }
      continue;
    }
    if (line == "{") {  // an item of a list, or the dumped block itself
      open.push_back({open.empty() ? std::string() : child(nextItem()), -1});
      continue;
    }
    size_t eq = line.find(" = ");
    bool in_list = !open.empty() && open.back().items >= 0;
    if (eq == std::string_view::npos || (in_list && line.front() == '{')) {
      // an item of a list on one line: "\"a\"", or "{ cert = \"a.pem\"; key = \"a.key\"; }"
      out.push_back({child(nextItem()), std::string(line)});
      continue;
    }
    std::string key(line.substr(0, eq));
    std::string_view value = line.substr(eq + 3);
    if (value == "{" || value == "(") {
      open.push_back({child(key), value == "(" ? 0 : -1});
      continue;
    }
    out.push_back({child(key), std::string(value)});
  }
  return out;
}

// The group a setting belongs to at the top of its block: "tls" for "tls.certificates[0]".
std::string_view topGroup(std::string_view path) {
  return path.substr(0, std::min(path.find('.'), path.find('[')));
}

// "name old -> new" for every setting that differs between two dumps. A group there on one side
// only is one entry ("health_check added"); a setting there on one side only is "(unset)" on the
// other ("hash_key (unset) -> \"ip\""). The groups in `skip` are compared elsewhere.
void diffDumps(const std::string& from, const std::string& to,
               std::initializer_list<std::string_view> skip, Changes& c) {
  const std::vector<Setting> a = flatten(from);
  const std::vector<Setting> b = flatten(to);
  auto skipped = [&](const Setting& s) {
    return std::find(skip.begin(), skip.end(), topGroup(s.path)) != skip.end();
  };
  std::map<std::string_view, const Setting*> old_left;
  std::set<std::string_view> old_groups;
  std::set<std::string_view> new_groups;
  for (const Setting& s : a) {
    old_left.emplace(s.path, &s);
    old_groups.insert(topGroup(s.path));
  }
  for (const Setting& s : b) {
    new_groups.insert(topGroup(s.path));
  }
  std::set<std::string_view> noted;
  auto wholeGroup = [&](std::string_view group, const char* what) {
    if (noted.insert(group).second) {
      c.note(std::string(group) + what);
    }
  };
  for (const Setting& s : b) {
    if (skipped(s)) {
      continue;
    }
    auto it = old_left.find(s.path);
    if (it != old_left.end()) {
      if (it->second->value != s.value) {
        c.add(s.path, it->second->value, s.value);
      }
      old_left.erase(it);
    } else if (topGroup(s.path) != s.path && old_groups.count(topGroup(s.path)) == 0) {
      wholeGroup(topGroup(s.path), " added");
    } else {
      c.add(s.path, "(unset)", s.value);
    }
  }
  for (const Setting& s : a) {
    if (skipped(s) || old_left.count(s.path) == 0) {
      continue;
    }
    if (topGroup(s.path) != s.path && new_groups.count(topGroup(s.path)) == 0) {
      wholeGroup(topGroup(s.path), " removed");
    } else {
      c.add(s.path, s.value, "(unset)");
    }
  }
}

std::string listenerName(const config::Listener& l) {
  return l.name + " " + l.address.toString();
}

void planListeners(const Config& from, const Config& to, ReloadPlan& plan) {
  std::vector<bool> matched(from.listeners.size(), false);
  for (const auto& l : to.listeners) {
    const config::Listener* old = nullptr;
    for (size_t i = 0; i < from.listeners.size(); ++i) {
      if (!matched[i] && from.listeners[i].address == l.address) {
        matched[i] = true;
        old = &from.listeners[i];
        break;
      }
    }
    if (old == nullptr) {
      plan.listeners_added.push_back(listenerName(l));
      continue;
    }
    plan.listeners_kept.push_back(listenerName(l));
    Changes c;
    // The address matched; "listen" may still spell it differently ("[::1]:80", "::1:80").
    diffDumps(config::dumpListener(*old), config::dumpListener(l), {"listen"}, c);
    if (!c.empty()) {
      plan.listeners_changed.push_back(listenerName(l) + ": " + c.str());
    }
  }
  for (size_t i = 0; i < from.listeners.size(); ++i) {
    if (!matched[i]) {
      plan.listeners_removed.push_back(listenerName(from.listeners[i]));
    }
  }
}

void planPool(const config::Pool& a, const config::Pool& b, ReloadPlan& plan) {
  Changes c;
  diffDumps(config::dumpPool(a), config::dumpPool(b), {"backends"}, c);
  if (!c.empty()) {
    plan.pools_changed.push_back(b.name + ": " + c.str());
  }
  std::map<std::string, const config::Backend*> old_backends;
  for (const auto& be : a.backends) {
    old_backends.emplace(be.address.toString(), &be);
  }
  for (const auto& be : b.backends) {
    std::string key = be.address.toString();
    auto it = old_backends.find(key);
    if (it == old_backends.end()) {
      plan.backends_added.push_back(b.name + "/" + key);
      continue;
    }
    Changes bc;
    bc.field("weight", it->second->weight, be.weight);
    bc.field("max_connections", it->second->max_connections, be.max_connections);
    if (!bc.empty()) {
      plan.backends_changed.push_back(b.name + "/" + key + ": " + bc.str());
    }
    old_backends.erase(it);
  }
  for (const auto& [key, be] : old_backends) {
    plan.backends_removed.push_back(a.name + "/" + key);
  }
}

void planPools(const Config& from, const Config& to, ReloadPlan& plan) {
  std::map<std::string, const config::Pool*> old_pools;
  for (const auto& p : from.pools) {
    old_pools.emplace(p.name, &p);
  }
  for (const auto& p : to.pools) {
    auto it = old_pools.find(p.name);
    if (it == old_pools.end()) {
      plan.pools_added.push_back(p.name);
      for (const auto& be : p.backends) {
        plan.backends_added.push_back(p.name + "/" + be.address.toString());
      }
      continue;
    }
    planPool(*it->second, p, plan);
    old_pools.erase(it);
  }
  for (const auto& [name, p] : old_pools) {
    plan.pools_removed.push_back(name);
    for (const auto& be : p->backends) {
      plan.backends_removed.push_back(name + "/" + be.address.toString());
    }
  }
}

void planSettings(const Config& from, const Config& to, ReloadPlan& plan) {
  Changes c;
  diffDumps(config::dumpConfig(from), config::dumpConfig(to), {"listeners", "routes", "pools"}, c);
  if (!c.empty()) {
    plan.settings_changed.push_back(c.str());
  }
  std::map<std::string, const config::RouteTable*> old_routes;
  for (const auto& r : from.routes) {
    old_routes.emplace(r.name, &r);
  }
  for (const auto& r : to.routes) {
    auto it = old_routes.find(r.name);
    if (it == old_routes.end()) {
      plan.settings_changed.push_back("routes \"" + r.name + "\" added");
    } else {
      if (config::dumpRouteTable(*it->second) != config::dumpRouteTable(r)) {
        plan.settings_changed.push_back("routes \"" + r.name + "\" changed");
      }
      old_routes.erase(it);
    }
  }
  for (const auto& [name, r] : old_routes) {
    plan.settings_changed.push_back("routes \"" + name + "\" removed");
  }
}

void section(std::string& out, const char* title, const std::vector<std::string>& items) {
  for (const auto& item : items) {
    out += "  ";
    out += title;
    out += " ";
    out += item;
    out += "\n";
  }
}

}  // namespace

bool ReloadPlan::unchanged() const {
  return listeners_added.empty() && listeners_removed.empty() && listeners_changed.empty() &&
         pools_added.empty() && pools_removed.empty() && pools_changed.empty() &&
         backends_added.empty() && backends_removed.empty() && backends_changed.empty() &&
         settings_changed.empty();
}

ReloadPlan planReload(const Config& from, const Config& to) {
  ReloadPlan plan;
  planListeners(from, to, plan);
  planPools(from, to, plan);
  planSettings(from, to, plan);
  return plan;
}

std::string summarizePlan(const ReloadPlan& p) {
  auto n = [](const std::vector<std::string>& v) { return std::to_string(v.size()); };
  return "listeners +" + n(p.listeners_added) + " -" + n(p.listeners_removed) + " =" +
         n(p.listeners_kept) + " ~" + n(p.listeners_changed) + "; pools +" + n(p.pools_added) +
         " -" + n(p.pools_removed) + " ~" + n(p.pools_changed) + "; backends +" +
         n(p.backends_added) + " -" + n(p.backends_removed) + " ~" + n(p.backends_changed) +
         "; settings ~" + n(p.settings_changed);
}

std::string formatPlan(const ReloadPlan& p) {
  std::string out = "plan: " + summarizePlan(p) + "\n";
  section(out, "listener added:  ", p.listeners_added);
  section(out, "listener removed:", p.listeners_removed);
  section(out, "listener kept:   ", p.listeners_kept);
  section(out, "listener changed:", p.listeners_changed);
  section(out, "pool added:      ", p.pools_added);
  section(out, "pool removed:    ", p.pools_removed);
  section(out, "pool changed:    ", p.pools_changed);
  section(out, "backend added:   ", p.backends_added);
  section(out, "backend removed: ", p.backends_removed);
  section(out, "backend changed: ", p.backends_changed);
  section(out, "setting changed: ", p.settings_changed);
  if (p.unchanged()) {
    out += "  nothing changes\n";
  }
  return out;
}

}  // namespace lb::master
