#pragma once

// The error log: "2026/11/26 23:59:00 [error] [1234] message". One write(2) per line on an
// O_APPEND descriptor, so lines of the master and every worker never interleave. Reopened on
// USR1 (logrotate). Safe to call from the master loop and from a worker loop; not from a
// signal handler.

#include <cstdarg>
#include <string>

#include "shared/config/model.h"
#include "shared/util/result.h"

namespace lb::log {

using Level = config::LogLevel;

// Opens `path` ("stderr" for standard error) and sets the threshold. On failure the previous
// destination stays.
Result<void> open(const std::string& path, Level level);
// Reopens the current file (USR1). Returns false and keeps the old descriptor on failure.
bool reopen();
// The role printed after the pid: "master", "worker 0", "checker". Empty by default.
void setRole(const std::string& role);
// The descriptor the log writes to, so a child can keep it across exec-less fork.
int fd();

bool enabled(Level level);
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void vwrite(Level level, const char* fmt, va_list ap);

const char* levelName(Level level);
// "debug", "info", ... -> Level. Returns false for an unknown name.
bool parseLevel(const std::string& name, Level* out);

}  // namespace lb::log

#define LB_LOG(level, ...)                  \
  do {                                      \
    if (::lb::log::enabled(level)) {        \
      ::lb::log::write(level, __VA_ARGS__); \
    }                                       \
  } while (0)
#define LB_DEBUG(...) LB_LOG(::lb::log::Level::Debug, __VA_ARGS__)
#define LB_INFO(...) LB_LOG(::lb::log::Level::Info, __VA_ARGS__)
#define LB_NOTICE(...) LB_LOG(::lb::log::Level::Notice, __VA_ARGS__)
#define LB_WARN(...) LB_LOG(::lb::log::Level::Warn, __VA_ARGS__)
#define LB_ERROR(...) LB_LOG(::lb::log::Level::Error, __VA_ARGS__)
#define LB_CRIT(...) LB_LOG(::lb::log::Level::Crit, __VA_ARGS__)
#define LB_ALERT(...) LB_LOG(::lb::log::Level::Alert, __VA_ARGS__)
#define LB_EMERG(...) LB_LOG(::lb::log::Level::Emerg, __VA_ARGS__)
