#include "shared/config/load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <vector>

#include "shared/config/loader.h"
#include "shared/config/schema.h"
#include "shared/log/log.h"

namespace lb::config {

using libconfig::Setting;
using schema::member;
using schema::quoted;
using schema::Reader;

std::string ConfigError::toString() const {
  if (line > 0) {
    return file + ":" + std::to_string(line) + ": " + message;
  }
  return file + ": " + message;
}

namespace detail {

Config Loader::load(const Setting& root) {
  c_.worker_processes = -1;  // -1: not set, "auto" applies
  collectNames(root);
  // Listeners start from the http group's limits, wherever in the file it is.
  if (const Setting* http = member(root, "http")) {
    readHttp(*http);
  }
  for (int i = 0; i < root.getLength(); ++i) {
    const Setting& s = root[i];
    std::string_view key = s.getName();
    if (key == "worker_processes") {
      readWorkerProcesses(s);
    } else if (key == "daemon") {
      r_.getBool(s, &c_.daemon);
    } else if (key == "pid") {
      readPath(s, "", &c_.pid);
    } else if (key == "worker_shutdown_timeout_ms") {
      r_.getInt(s, 0, kMaxMs, &c_.worker_shutdown_timeout_ms);
    } else if (key == "worker_connections") {
      r_.getInt(s, 1, 1048576, &c_.worker_connections);
    } else if (key == "reload_timeout_ms") {
      r_.getInt(s, 1, kMaxMs, &c_.reload_timeout_ms);
    } else if (key == "max_draining_generations") {
      r_.getInt(s, 1, 64, &c_.max_draining_generations);
    } else if (key == "drain_window_ms") {
      r_.getInt(s, 0, kMaxMs, &c_.drain_window_ms);
    } else if (key == "accept_spread") {
      std::string how;
      if (r_.getString(s, &how)) {
        if (how == "auto") {
          c_.accept_spread = AcceptSpread::Auto;
        } else if (how == "even") {
          c_.accept_spread = AcceptSpread::Even;
        } else {
          r_.error(s, "unknown accept_spread " + quoted(how) + "; expected \"auto\" or \"even\"");
        }
      }
    } else if (key == "error_log") {
      readErrorLog(s);
    } else if (key == "access_log") {
      readAccessLog(s);
    } else if (key == "http") {
      continue;  // read above
    } else if (key == "listeners") {
      if (r_.expectList(s, "\"listeners\"")) {
        for (int j = 0; j < s.getLength(); ++j) {
          readListener(s[j], j);
        }
        if (s.getLength() == 0) {
          r_.error(s, "\"listeners\" is empty; at least one listener is required");
        }
      }
    } else if (key == "routes") {
      if (r_.expectList(s, "\"routes\"")) {
        for (int j = 0; j < s.getLength(); ++j) {
          readRouteTable(s[j], j);
        }
      }
    } else if (key == "pools") {
      if (r_.expectList(s, "\"pools\"")) {
        for (int j = 0; j < s.getLength(); ++j) {
          readPool(s[j], j);
        }
      }
    } else {
      r_.unknown(s, "", schema::kTopLevel);
    }
  }
  if (member(root, "listeners") == nullptr) {
    r_.errorNoLine("no \"listeners\": at least one listener is required");
  }
  if (c_.worker_processes < 0) {
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    c_.worker_processes = static_cast<int>(std::clamp<long>(cpus, 1, schema::kMaxWorkers));
  }
  return std::move(c_);
}

void Loader::collectNames(const Setting& root) {
  // Names first, so that a listener may name a pool defined further down.
  auto collect = [](const Setting* list, std::map<std::string, int>* names) {
    if (list == nullptr || !list->isList()) {
      return;
    }
    for (int i = 0; i < list->getLength(); ++i) {
      const Setting* name = member((*list)[i], "name");
      if (name != nullptr && name->getType() == Setting::TypeString) {
        names->emplace(name->c_str(), i);
      }
    }
  };
  collect(member(root, "pools"), &pool_names_);
  collect(member(root, "routes"), &route_names_);
}

void Loader::readWorkerProcesses(const Setting& s) {
  if (s.getType() == Setting::TypeString && std::string_view(s.c_str()) == "auto") {
    c_.worker_processes = -1;
  } else if (s.getType() == Setting::TypeInt || s.getType() == Setting::TypeInt64) {
    r_.getInt(s, 1, schema::kMaxWorkers, &c_.worker_processes);
  } else {
    std::string got = s.getType() == Setting::TypeString ? quoted(s.c_str()) : schema::typeName(s);
    r_.error(s, "\"worker_processes\" must be \"auto\" or an integer between 1 and " +
                    std::to_string(schema::kMaxWorkers) + ", got " + got);
  }
}

void Loader::readPath(const Setting& s, std::string_view special, std::string* out) {
  std::string path;
  if (!r_.getString(s, &path)) {
    return;
  }
  if (path.starts_with('/') || (!special.empty() && path == special)) {
    *out = path;
    return;
  }
  // A daemon runs in "/", so a relative path would silently move.
  std::string alternative = special.empty() ? "" : quoted(special) + " or ";
  r_.error(
      s, quoted(s.getName()) + " must be " + alternative + "an absolute path, got " + quoted(path));
}

void Loader::readErrorLog(const Setting& g) {
  if (!r_.expectGroup(g, "\"error_log\"")) {
    return;
  }
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    std::string_view key = s.getName();
    if (key == "path") {
      readPath(s, "stderr", &c_.error_log.path);
    } else if (key == "level") {
      std::string level;
      if (r_.getString(s, &level) && !log::parseLevel(level, &c_.error_log.level)) {
        r_.error(s, "unknown error_log level " + quoted(level) +
                        "; expected debug, info, notice, warn, error, crit, alert or emerg");
      }
    } else {
      r_.unknown(s, "error_log", schema::kErrorLog);
    }
  }
}

void Loader::readAccessLog(const Setting& g) {
  if (!r_.expectGroup(g, "\"access_log\"")) {
    return;
  }
  for (int i = 0; i < g.getLength(); ++i) {
    const Setting& s = g[i];
    if (std::string_view(s.getName()) == "path") {
      readPath(s, "off", &c_.access_log.path);
      if (c_.access_log.path == "off") {
        c_.access_log.path.clear();
      }
    } else {
      r_.unknown(s, "access_log", schema::kAccessLog);
    }
  }
}

void Loader::readHttp(const Setting& g) {
  if (!r_.expectGroup(g, "\"http\"")) {
    return;
  }
  for (int i = 0; i < g.getLength(); ++i) {
    if (!readLimit(g[i], &c_.http)) {
      r_.unknown(g[i], "http", schema::kLimits);
    }
  }
}

bool Loader::readLimit(const Setting& s, ClientLimits* limits) {
  std::string_view key = s.getName();
  if (key == "client_header_timeout_ms") {
    r_.getInt(s, 1, kMaxMs, &limits->header_timeout_ms);
  } else if (key == "client_body_timeout_ms") {
    r_.getInt(s, 1, kMaxMs, &limits->body_timeout_ms);
  } else if (key == "keepalive_timeout_ms") {
    r_.getInt(s, 0, kMaxMs, &limits->keepalive_timeout_ms);
  } else if (key == "send_timeout_ms") {
    r_.getInt(s, 1, kMaxMs, &limits->send_timeout_ms);
  } else if (key == "tunnel_timeout_ms") {
    r_.getInt(s, 1, kMaxMs, &limits->tunnel_timeout_ms);
  } else if (key == "client_max_header_size") {
    uint64_t v = 0;
    if (r_.getSize(s, kMinHeaderSize, kMaxHeaderSize, &v)) {
      limits->max_header_size = static_cast<uint32_t>(v);
    }
  } else if (key == "client_max_body_size") {
    r_.getSize(s, 0, UINT64_MAX, &limits->max_body_size);
  } else if (key == "keepalive_requests") {
    r_.getInt(s, 0, kMaxInt, &limits->keepalive_requests);
  } else if (key == "request_buffering") {
    r_.getBool(s, &limits->request_buffering);
  } else if (key == "reset_timedout_connection") {
    r_.getBool(s, &limits->reset_timedout_connection);
  } else {
    return false;
  }
  return true;
}

}  // namespace detail

namespace {

std::string lineText(const std::string& text, int line) {
  size_t start = 0;
  for (int i = 1; i < line && start != std::string::npos; ++i) {
    start = text.find('\n', start);
    start = start == std::string::npos ? start : start + 1;
  }
  if (start == std::string::npos || start >= text.size()) {
    return "";
  }
  std::string out = text.substr(start, text.find('\n', start) - start);
  size_t first = out.find_first_not_of(" \t\r");
  if (first == std::string::npos) {
    return "";
  }
  out = out.substr(first, out.find_last_not_of(" \t\r") - first + 1);
  return out.size() > 60 ? out.substr(0, 57) + "..." : out;
}

// Errors in file order: the main file first, each included file after it, each by line; an
// error without a line last.
void sortErrors(const std::string& main_file, ConfigErrors* errors) {
  std::vector<std::string> files{main_file};
  for (const ConfigError& e : *errors) {
    if (std::find(files.begin(), files.end(), e.file) == files.end()) {
      files.push_back(e.file);
    }
  }
  auto key = [&](const ConfigError& e) {
    auto rank = std::find(files.begin(), files.end(), e.file) - files.begin();
    return std::make_pair(e.line == 0 ? INT_MAX : static_cast<int>(rank),
                          e.line == 0 ? INT_MAX : e.line);
  };
  std::stable_sort(errors->begin(), errors->end(),
                   [&](const ConfigError& a, const ConfigError& b) { return key(a) < key(b); });
}

// The one place where libconfig++ may throw: everything it raises becomes a ConfigError.
Result<Config, ConfigErrors> loadText(const std::string& text, const std::string& file,
                                      const std::string& include_dir) {
  libconfig::Config tree;
  tree.setAutoConvert(false);
  if (!include_dir.empty()) {
    tree.setIncludeDir(include_dir.c_str());
  }
  Reader reader(file, include_dir);
  Config config;
  try {
    tree.readString(text);
  } catch (const libconfig::ParseException& e) {
    bool main = e.getFile() == nullptr || file == e.getFile();
    std::string where = main ? file : schema::joinPath(include_dir, e.getFile());
    std::string message = e.getError();
    std::string near = main ? lineText(text, e.getLine()) : "";
    if (!near.empty()) {
      message += " near " + quoted(near);
    }
    return unexpected(ConfigErrors{{where, e.getLine(), message}});
  }
  if (!schema::checkIntegerLiterals(text, file, include_dir, &reader.errors())) {
    return unexpected(std::move(reader.errors()));
  }
  try {
    config = detail::Loader(reader).load(tree.getRoot());
  } catch (const libconfig::ConfigException& e) {
    reader.errorNoLine(std::string("internal error while reading the config: ") + e.what());
  }
  if (!reader.errors().empty()) {
    sortErrors(file, &reader.errors());
    return unexpected(std::move(reader.errors()));
  }
  config.file = file;
  return config;
}

}  // namespace

Result<Config, ConfigErrors> loadConfig(const std::string& path) {
  auto fail = [&](int err) {
    return unexpected(ConfigErrors{{path, 0, std::string("cannot open: ") + std::strerror(err)}});
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(EISDIR);
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail(err);
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : slash == 0 ? "/" : path.substr(0, slash);
  return loadText(text, path, dir);
}

Result<Config, ConfigErrors> loadConfigFromString(const std::string& text,
                                                  const std::string& name) {
  return loadText(text, name, "");
}

}  // namespace lb::config
