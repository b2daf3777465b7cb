// lb: the command line. Parses the options and hands over to the master (master.h) or to one of
// the short-lived commands (control.h, admin.h). Nothing here outlives start-up.

#include <cstdio>
#include <string_view>
#include <vector>

#include "master/admin.h"
#include "master/cli.h"
#include "master/control.h"
#include "master/master.h"
#include "master/status.h"

#ifndef LB_DEFAULT_CONF
#error "LB_DEFAULT_CONF must be defined by the build"
#endif

int main(int argc, char** argv) {
  using namespace lb::master;
  std::vector<std::string_view> args(argv, argv + argc);
  auto options = parseCommandLine(args, LB_DEFAULT_CONF);
  if (!options) {
    std::fprintf(stderr, "lb: %s\n\n%s", options.error().message.c_str(),
                 usageText(LB_DEFAULT_CONF).c_str());
    return 1;
  }
  switch (options->action) {
    case Action::Help:
      std::fputs(usageText(LB_DEFAULT_CONF).c_str(), stdout);
      return 0;
    case Action::Version:
    case Action::VersionBuild:
      std::fputs(versionText(options->action == Action::VersionBuild, LB_DEFAULT_CONF).c_str(),
                 stdout);
      return 0;
    case Action::Test:
    case Action::TestDump:
      return testConfig(*options, options->action == Action::TestDump, stdout, stderr);
    case Action::Signal:
      return signalMaster(*options, stderr);
    case Action::Backends:
      return showBackends(*options, stdout, stderr);
    case Action::Backend:
      return controlBackend(*options, stdout, stderr);
    case Action::Status:
      return showStatus(*options, stdout, stderr);
    case Action::Run:
      return runMaster(*options);
  }
  return 1;
}
