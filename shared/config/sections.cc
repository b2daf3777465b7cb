// The listeners and route tables sections, and the static responses they may return. Pools are
// in pools.cc.

#include <algorithm>
#include <string>
#include <vector>

#include "shared/config/loader.h"

namespace lb::config::detail {

using libconfig::Setting;
using schema::hasControl;
using schema::lowercase;
using schema::member;
using schema::quoted;

std::string contextOf(const char* kind, const Setting& g, int index, const char* name_key) {
  const Setting* name = member(g, name_key);
  if (name != nullptr && name->getType() == Setting::TypeString && name->c_str()[0] != '\0') {
    return std::string(kind) + " " + quoted(name->c_str());
  }
  return std::string(kind) + " " + std::to_string(index + 1);
}

void Loader::readAddress(const Setting& s, bool is_backend, os::SocketAddress* out) {
  std::string text;
  if (!r_.getString(s, &text)) {
    return;
  }
  std::string key = quoted(s.getName());
  auto parsed = os::SocketAddress::parse(text);
  if (!parsed) {
    r_.error(s, key + ": " + parsed.error().message);
    return;
  }
  if (parsed->port() == 0) {
    r_.error(s, key + " needs a port between 1 and 65535, got " + quoted(text));
    return;
  }
  char host[INET6_ADDRSTRLEN];
  parsed->hostToBuffer(host, sizeof(host));
  if (is_backend && (std::string_view(host) == "0.0.0.0" || std::string_view(host) == "::")) {
    r_.error(s, key + " must name one host, not a wildcard, got " + quoted(text));
    return;
  }
  *out = *parsed;
}

int Loader::resolve(const Setting& s, const std::map<std::string, int>& names, const char* kind) {
  std::string name;
  if (!r_.getString(s, &name)) {
    return -1;
  }
  auto it = names.find(name);
  if (it == names.end()) {
    r_.error(s, std::string("no ") + kind + " named " + quoted(name));
    return -1;
  }
  return it->second;
}

void Loader::readListener(const Setting& g, int index) {
  if (!r_.expectGroup(g, "listener " + std::to_string(index + 1))) {
    return;
  }
  Listener l;
  l.line = static_cast<int>(g.getSourceLine());
  l.limits = c_.http;
  std::string context = contextOf("listener", g, index, "name");
  if (member(g, "name") == nullptr) {
    context = contextOf("listener", g, index, "listen");
  }
  static const std::vector<std::string_view> kKnown = [] {
    std::vector<std::string_view> v(std::begin(schema::kListener), std::end(schema::kListener));
    v.insert(v.end(), std::begin(schema::kLimits), std::end(schema::kLimits));
    return v;
  }();
  const Setting* name_setting = nullptr;
  const Setting* listen_setting = nullptr;
  std::vector<const Setting*> actions;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "name") {
      name_setting = &s;
      if (r_.getString(s, &l.name) && l.name.empty()) {
        r_.error(s, "\"name\" must not be empty");
      }
    } else if (key == "listen") {
      listen_setting = &s;
      r_.getString(s, &l.listen);
      readAddress(s, false, &l.address);
    } else if (key == "protocol") {
      std::string protocol;
      if (r_.getString(s, &protocol) && protocol != "http") {
        r_.error(s,
                 "unknown protocol " + quoted(protocol) + " in " + context + "; expected \"http\"");
      }
    } else if (key == "backlog") {
      r_.getInt(s, 1, 65535, &l.backlog);
    } else if (key == "routes") {
      actions.push_back(&s);
      r_.getString(s, &l.routes);
      l.routes_index = resolve(s, route_names_, "route table");
    } else if (key == "pool") {
      actions.push_back(&s);
      l.has_action = true;
      l.action.kind = Action::Kind::Pool;
      r_.getString(s, &l.action.pool);
      l.action.pool_index = resolve(s, pool_names_, "pool");
    } else if (key == "return") {
      actions.push_back(&s);
      l.has_action = true;
      l.action.kind = Action::Kind::Static;
      readReturn(s, "\"return\" of " + context, &l.action.response);
    } else if (key == "tls") {
      readTls(s, "tls of " + context, &l.tls);
    } else if (key == "http2") {
      readHttp2(s, "http2 of " + context, &l.http2);
    } else if (!readLimit(s, &l.limits)) {
      r_.unknown(s, context, kKnown);
    }
  }
  if (listen_setting == nullptr) {
    r_.error(g, "missing \"listen\" in " + context);
  }
  if (actions.empty()) {
    r_.error(g, context + " needs one of \"routes\", \"pool\" or \"return\"");
  } else if (actions.size() > 1) {
    r_.error(*actions[1], context + " has more than one of \"routes\", \"pool\" and \"return\"; " +
                              "keep exactly one");
  }
  if (name_setting == nullptr) {
    l.name = l.listen;
  }
  for (size_t j = 0; j < c_.listeners.size(); ++j) {
    const Listener& other = c_.listeners[j];
    if (name_setting != nullptr && listener_name_lines_[j] != 0 && other.name == l.name) {
      r_.error(*name_setting, "duplicate listener name " + quoted(l.name) + " (first on line " +
                                  std::to_string(listener_name_lines_[j]) + ")");
    }
    if (listen_setting != nullptr && l.address.length() != 0 && other.address == l.address) {
      r_.error(*listen_setting, "listen address " + quoted(l.listen) +
                                    " is already used by listener " + quoted(other.name) +
                                    " (line " + std::to_string(other.line) + ")");
    }
  }
  listener_name_lines_.push_back(
      name_setting != nullptr ? static_cast<int>(name_setting->getSourceLine()) : 0);
  c_.listeners.push_back(std::move(l));
}

void Loader::readReturn(const Setting& g, const std::string& context, StaticResponse* out) {
  if (!r_.expectGroup(g, "\"return\"")) {
    return;
  }
  const Setting* body = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "status") {
      r_.getInt(s, 200, 599, &out->status);
    } else if (key == "headers") {
      readHeaders(s, out);
    } else if (key == "body") {
      body = &s;
      r_.getString(s, &out->body);
    } else {
      r_.unknown(s, context, schema::kReturn);
    }
  }
  if (body != nullptr && !out->body.empty() && (out->status == 204 || out->status == 304)) {
    r_.error(*body, "a " + std::to_string(out->status) + " response cannot have a body");
  }
}

void Loader::readHeaders(const Setting& g, StaticResponse* out) {
  if (!r_.expectGroup(g, "\"headers\"")) {
    return;
  }
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& h = g[i];
    std::string name = h.getName();
    std::string lower = lowercase(name);
    if (!schema::isToken(name)) {
      r_.error(h, "header name " + quoted(name) + " is not a valid HTTP token");
      continue;
    }
    if (lower == "content-length" || lower == "transfer-encoding") {
      r_.error(h, "header " + quoted(name) + " is set by lb itself; remove it");
      continue;
    }
    std::vector<const Setting*> values;
    if (h.getType() == Setting::TypeArray) {
      for (int j = 0; j < h.getLength(); ++j) {
        values.push_back(&h[j]);
      }
    } else if (h.getType() == Setting::TypeString) {
      values.push_back(&h);
    } else {
      r_.error(h, "header " + quoted(name) + " must be a string or an array of strings, got " +
                      schema::typeName(h));
      continue;
    }
    for (const Setting* v : values) {
      std::string value;
      if (!r_.getString(*v, &value)) {
        continue;
      }
      if (hasControl(value)) {
        r_.error(*v,
                 "header " + quoted(name) + " must not contain CR, LF or other control characters");
        continue;
      }
      out->headers.emplace_back(name, std::move(value));
    }
  }
}

void Loader::readRouteTable(const Setting& g, int index) {
  // Every element takes its slot, so that indices match the names collected up front.
  c_.routes.emplace_back();
  RouteTable& t = c_.routes.back();
  t.line = static_cast<int>(g.getSourceLine());
  if (!r_.expectGroup(g, "route table " + std::to_string(index + 1))) {
    return;
  }
  std::string context = contextOf("route table", g, index, "name");
  const Setting* name_setting = nullptr;
  const Setting* rules = nullptr;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "name") {
      name_setting = &s;
      if (r_.getString(s, &t.name) && t.name.empty()) {
        r_.error(s, "\"name\" must not be empty");
      }
    } else if (key == "rules") {
      rules = &s;
      if (!r_.expectList(s, "\"rules\"")) {
        continue;
      }
      for (int j = 0; j < s.getLength(); ++j) {
        std::string rule_context = "rule " + std::to_string(j + 1) + " of " + context;
        RouteRule rule;
        rule.line = static_cast<int>(s[j].getSourceLine());
        if (r_.expectGroup(s[j], rule_context)) {
          readRule(s[j], rule_context, &rule);
        }
        t.rules.push_back(std::move(rule));
      }
    } else {
      r_.unknown(s, context, schema::kRouteTable);
    }
  }
  if (name_setting == nullptr) {
    r_.error(g, "missing \"name\" in " + context);
  } else if (auto it = route_names_.find(t.name); it != route_names_.end() && it->second < index) {
    r_.error(*name_setting, "duplicate route table name " + quoted(t.name) + " (first on line " +
                                std::to_string(c_.routes[it->second].line) + ")");
  }
  if (rules == nullptr || (rules->isList() && rules->getLength() == 0)) {
    r_.error(rules != nullptr ? *rules : g, context + " has no rules");
  }
}

void Loader::readRule(const Setting& g, const std::string& context, RouteRule* rule) {
  std::vector<const Setting*> actions;
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "host") {
      std::string host;
      if (!r_.getString(s, &host)) {
        continue;
      }
      bool ok = std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view(".-_[]:").find(c) != std::string_view::npos;
      });
      if (!ok) {
        r_.error(s, "\"host\" must be a host name such as \"api.example.com\" (no port, no " +
                        std::string("wildcard), got ") + quoted(host));
        continue;
      }
      rule->host = lowercase(host);
    } else if (key == "path_prefix") {
      if (r_.getString(s, &rule->path_prefix) && !rule->path_prefix.empty() &&
          (!rule->path_prefix.starts_with('/') || hasControl(rule->path_prefix) ||
           rule->path_prefix.find(' ') != std::string::npos)) {
        r_.error(s, "\"path_prefix\" must start with \"/\" and hold no spaces, got " +
                        quoted(rule->path_prefix));
      }
    } else if (key == "pool") {
      actions.push_back(&s);
      rule->action.kind = Action::Kind::Pool;
      r_.getString(s, &rule->action.pool);
      rule->action.pool_index = resolve(s, pool_names_, "pool");
    } else if (key == "return") {
      actions.push_back(&s);
      rule->action.kind = Action::Kind::Static;
      readReturn(s, "\"return\" of " + context, &rule->action.response);
    } else {
      r_.unknown(s, context, schema::kRule);
    }
  }
  if (actions.empty()) {
    r_.error(g, context + " needs \"pool\" or \"return\"");
  } else if (actions.size() > 1) {
    r_.error(*actions[1], context + " has both \"pool\" and \"return\"; keep one");
  }
}

}  // namespace lb::config::detail
