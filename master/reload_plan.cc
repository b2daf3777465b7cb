#include "master/reload_plan.h"

#include <map>
#include <string_view>

#include "shared/log/log.h"

namespace lb::master {
namespace {

using config::Config;

// Collects "what old -> new" for the fields of one object that differ.
class Changes {
 public:
  template <typename T>
  void field(std::string_view name, const T& from, const T& to) {
    if (!(from == to)) {
      add(name, text(from), text(to));
    }
  }
  void add(std::string_view name, const std::string& from, const std::string& to) {
    if (!out_.empty()) {
      out_ += ", ";
    }
    out_ += std::string(name) + " " + from + " -> " + to;
  }
  bool empty() const { return out_.empty(); }
  const std::string& str() const { return out_; }

 private:
  static std::string text(const std::string& v) { return "\"" + v + "\""; }
  static std::string text(bool v) { return v ? "true" : "false"; }
  static std::string text(config::Algorithm a) {
    return a == config::Algorithm::LeastConn ? "least_conn" : "round_robin";
  }
  static std::string text(config::LogLevel l) { return log::levelName(l); }
  static std::string text(config::AcceptSpread a) {
    return a == config::AcceptSpread::Even ? "even" : "auto";
  }
  template <typename T>
  static std::string text(const T& v) {
    return std::to_string(v);
  }
  std::string out_;
};

void limitChanges(Changes& c, const config::ClientLimits& a, const config::ClientLimits& b) {
  c.field("client_header_timeout_ms", a.header_timeout_ms, b.header_timeout_ms);
  c.field("client_body_timeout_ms", a.body_timeout_ms, b.body_timeout_ms);
  c.field("keepalive_timeout_ms", a.keepalive_timeout_ms, b.keepalive_timeout_ms);
  c.field("send_timeout_ms", a.send_timeout_ms, b.send_timeout_ms);
  c.field("client_max_header_size", a.max_header_size, b.max_header_size);
  c.field("client_max_body_size", a.max_body_size, b.max_body_size);
  c.field("keepalive_requests", a.keepalive_requests, b.keepalive_requests);
}

std::string actionText(const config::Action& a) {
  if (a.kind == config::Action::Kind::Pool) {
    return "pool " + a.pool;
  }
  return "return " + std::to_string(a.response.status);
}

bool sameAction(const config::Action& a, const config::Action& b) {
  if (a.kind != b.kind) {
    return false;
  }
  if (a.kind == config::Action::Kind::Pool) {
    return a.pool == b.pool;
  }
  return a.response.status == b.response.status && a.response.headers == b.response.headers &&
         a.response.body == b.response.body;
}

bool sameRules(const config::RouteTable& a, const config::RouteTable& b) {
  if (a.rules.size() != b.rules.size()) {
    return false;
  }
  for (size_t i = 0; i < a.rules.size(); ++i) {
    const auto& x = a.rules[i];
    const auto& y = b.rules[i];
    if (x.host != y.host || x.path_prefix != y.path_prefix || !sameAction(x.action, y.action)) {
      return false;
    }
  }
  return true;
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
    c.field("name", old->name, l.name);
    c.field("backlog", old->backlog, l.backlog);
    c.field("routes", old->routes, l.routes);
    if (old->has_action != l.has_action || (l.has_action && !sameAction(old->action, l.action))) {
      c.add("action", old->has_action ? actionText(old->action) : "none",
            l.has_action ? actionText(l.action) : "none");
    }
    limitChanges(c, old->limits, l.limits);
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
  c.field("algorithm", a.algorithm, b.algorithm);
  c.field("keepalive", a.keepalive, b.keepalive);
  c.field("keepalive_timeout_ms", a.keepalive_timeout_ms, b.keepalive_timeout_ms);
  c.field("keepalive_requests", a.keepalive_requests, b.keepalive_requests);
  c.field("connect_timeout_ms", a.connect_timeout_ms, b.connect_timeout_ms);
  c.field("read_timeout_ms", a.read_timeout_ms, b.read_timeout_ms);
  c.field("send_timeout_ms", a.send_timeout_ms, b.send_timeout_ms);
  c.field("retries", a.retries, b.retries);
  c.field("forwarded_headers", a.forwarded_headers, b.forwarded_headers);
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
  c.field("worker_processes", from.worker_processes, to.worker_processes);
  c.field("worker_connections", from.worker_connections, to.worker_connections);
  c.field("worker_shutdown_timeout_ms", from.worker_shutdown_timeout_ms,
          to.worker_shutdown_timeout_ms);
  c.field("reload_timeout_ms", from.reload_timeout_ms, to.reload_timeout_ms);
  c.field("max_draining_generations", from.max_draining_generations, to.max_draining_generations);
  c.field("drain_window_ms", from.drain_window_ms, to.drain_window_ms);
  c.field("accept_spread", from.accept_spread, to.accept_spread);
  c.field("error_log.path", from.error_log.path, to.error_log.path);
  c.field("error_log.level", from.error_log.level, to.error_log.level);
  c.field("access_log.path", from.access_log.path, to.access_log.path);
  limitChanges(c, from.http, to.http);
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
      if (!sameRules(*it->second, r)) {
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
