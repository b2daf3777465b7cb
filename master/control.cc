#include "master/control.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "master/pidfile.h"
#include "shared/config/load.h"

namespace lb::master {
namespace {

void printErrors(const config::ConfigErrors& errors, std::FILE* err) {
  for (const auto& e : errors) {
    std::fprintf(err, "lb: %s\n", e.toString().c_str());
  }
}

}  // namespace

int testConfig(const Options& options, bool dump, std::FILE* out, std::FILE* err) {
  auto config = config::loadConfig(options.config_file);
  if (!config) {
    printErrors(config.error(), err);
    std::fprintf(err, "lb: configuration file %s test failed\n", options.config_file.c_str());
    return 1;
  }
  std::fprintf(err, "lb: configuration file %s test is successful\n", options.config_file.c_str());
  std::fflush(err);
  if (dump) {
    std::string text = config::dumpConfig(*config);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
  }
  return 0;
}

int signalMaster(const Options& options, std::FILE* err) {
  const char* name = controlSignalName(options.signal);
  auto config = config::loadConfig(options.config_file);
  if (!config) {
    printErrors(config.error(), err);
    std::fprintf(err, "lb: signal \"%s\" not sent: configuration file %s has errors\n", name,
                 options.config_file.c_str());
    return 1;
  }
  const std::string& path = config->pid;
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: pid file \"%s\" does not exist (is lb running?)\n",
                 name, path.c_str());
    return 1;
  }
  auto pid = readPidFile(path);
  if (!pid) {
    std::fprintf(err, "lb: signal \"%s\" not sent: %s\n", name, pid.error().message.c_str());
    return 1;
  }
  if (!processAlive(*pid)) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: no process with pid %d (stale pid file \"%s\")\n",
                 name, static_cast<int>(*pid), path.c_str());
    return 1;
  }
  // A pid reused by an unrelated program after lb died must not receive our signal.
  std::string theirs = processName(*pid);
  std::string ours = processName(::getpid());
  if (!theirs.empty() && theirs != ours) {
    std::fprintf(err,
                 "lb: signal \"%s\" not sent: pid %d in \"%s\" is \"%s\", not an lb master "
                 "(stale pid file)\n",
                 name, static_cast<int>(*pid), path.c_str(), theirs.c_str());
    return 1;
  }
  int signo = controlSignalNumber(options.signal);
  if (::kill(*pid, signo) != 0) {
    std::fprintf(err, "lb: signal \"%s\" not sent: kill(%d, SIG%s) failed: %s\n", name,
                 static_cast<int>(*pid), sigabbrev_np(signo), std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace lb::master
