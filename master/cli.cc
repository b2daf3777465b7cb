#include "master/cli.h"

#include <boost/version.hpp>
#include <csignal>

namespace lb::master {
namespace {

// Which action each flag asks for; combined at the end so that "-h" and "-v" win over anything
// (an operator asking for help must get it) and "-t" with "-s" is refused rather than guessed.
struct Requested {
  bool help = false;
  bool version = false;
  bool build_info = false;
  bool test = false;
  bool dump = false;
  bool signal = false;
  bool plan = false;
};

Result<Options> finish(const Requested& req, Options opts) {
  if (req.help) {
    opts.action = Action::Help;
  } else if (req.version) {
    opts.action = req.build_info ? Action::VersionBuild : Action::Version;
  } else if ((req.test || req.dump) && req.signal) {
    return unexpected(Error{"options -t/-T and -s cannot be combined"});
  } else if (req.plan && (!req.test || req.dump)) {
    return unexpected(Error{"option --plan goes with -t only"});
  } else if (req.test || req.dump) {
    opts.action = req.dump ? Action::TestDump : Action::Test;
  } else if (req.signal) {
    opts.action = Action::Signal;
  } else {
    opts.action = Action::Run;
  }
  return opts;
}

}  // namespace

bool parseControlSignal(std::string_view name, ControlSignal* out) {
  if (name == "stop") {
    *out = ControlSignal::Stop;
  } else if (name == "quit") {
    *out = ControlSignal::Quit;
  } else if (name == "reopen") {
    *out = ControlSignal::Reopen;
  } else if (name == "reload") {
    *out = ControlSignal::Reload;
  } else {
    return false;
  }
  return true;
}

const char* controlSignalName(ControlSignal sig) {
  switch (sig) {
    case ControlSignal::Stop:
      return "stop";
    case ControlSignal::Quit:
      return "quit";
    case ControlSignal::Reopen:
      return "reopen";
    case ControlSignal::Reload:
      return "reload";
  }
  return "?";
}

int controlSignalNumber(ControlSignal sig) {
  switch (sig) {
    case ControlSignal::Stop:
      return SIGTERM;
    case ControlSignal::Quit:
      return SIGQUIT;
    case ControlSignal::Reopen:
      return SIGUSR1;
    case ControlSignal::Reload:
      return SIGHUP;
  }
  return SIGTERM;
}

Result<Options> parseCommandLine(const std::vector<std::string_view>& args,
                                 std::string_view default_config) {
  Options opts;
  opts.config_file = std::string(default_config);
  Requested req;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help") {
      req.help = true;
      continue;
    }
    if (arg == "--version") {
      req.version = true;
      continue;
    }
    if (arg == "--plan") {
      req.plan = true;
      opts.plan = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg[1] == '-') {
      return unexpected(Error{"invalid option: \"" + std::string(arg) + "\""});
    }
    // A cluster of flags; an option taking an argument ends the cluster.
    for (size_t j = 1; j < arg.size(); ++j) {
      char c = arg[j];
      switch (c) {
        case 'h':
        case '?':
          req.help = true;
          continue;
        case 'v':
          req.version = true;
          continue;
        case 'V':
          req.version = true;
          req.build_info = true;
          continue;
        case 't':
          req.test = true;
          continue;
        case 'T':
          req.dump = true;
          continue;
        case 'F':
          opts.foreground = true;
          continue;
        case 'c':
        case 's':
          break;
        default:
          return unexpected(Error{std::string("invalid option: \"-") + c + "\""});
      }
      std::string_view value;
      if (j + 1 < arg.size()) {
        value = arg.substr(j + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return unexpected(Error{c == 'c' ? std::string("option \"-c\" requires a file name")
                                         : std::string("option \"-s\" requires a signal name")});
      }
      if (c == 'c') {
        if (value.empty()) {
          return unexpected(Error{"option \"-c\" requires a file name"});
        }
        opts.config_file = std::string(value);
      } else {
        if (!parseControlSignal(value, &opts.signal)) {
          return unexpected(Error{"invalid signal \"" + std::string(value) +
                                  "\" (expected stop, quit, reopen or reload)"});
        }
        req.signal = true;
      }
      break;
    }
  }
  return finish(req, std::move(opts));
}

std::string usageText(std::string_view default_config) {
  std::string text =
      "Usage: lb [-c FILE] [-F] [-t [--plan] | -T] [-s stop|quit|reopen|reload] [-v | -V] [-h]\n"
      "\n"
      "Options:\n"
      "  -c FILE    use configuration file FILE (default: ";
  text += default_config;
  text +=
      ")\n"
      "  -F         keep the master process in the foreground, whatever \"daemon\" says\n"
      "  -t         test the configuration file and exit\n"
      "  --plan     with -t: also print what reloading the running instance to this file\n"
      "             would change (listeners, pools, backends, settings), without applying it\n"
      "  -T         test the configuration file, print the effective configuration, exit\n"
      "  -s SIGNAL  send SIGNAL to the running master process and exit:\n"
      "             stop (TERM, fast stop), quit (QUIT, graceful stop),\n"
      "             reopen (USR1, reopen log files), reload (HUP, reload configuration;\n"
      "             waits for the verdict and exits 1 if the new configuration was refused)\n"
      "  -v         print the version and exit\n"
      "  -V         print the version and build information and exit\n"
      "  -h         print this help and exit\n";
  return text;
}

std::string versionText(bool build_info, std::string_view default_config) {
  std::string text = "lb version " LB_VERSION "\n";
  if (!build_info) {
    return text;
  }
#if defined(__clang__)
  text += "built by clang " __clang_version__;
#elif defined(__GNUC__)
  text += "built by g++ " __VERSION__;
#else
  text += "built by an unknown compiler";
#endif
  text += " (C++ " + std::to_string(__cplusplus) + ")\n";
  text += "built with Boost " + std::to_string(BOOST_VERSION / 100000) + "." +
          std::to_string(BOOST_VERSION / 100 % 1000) + "." + std::to_string(BOOST_VERSION % 100) +
          "\n";
  text += "build options:";
#ifdef NDEBUG
  text += " optimized";
#else
  text += " debug";
#endif
#if defined(__SANITIZE_ADDRESS__)
  text += " sanitize=address,undefined";
#endif
  text += " default-config=";
  text += default_config;
  text += "\n";
  return text;
}

}  // namespace lb::master
