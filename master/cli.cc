#include "master/cli.h"

#include <boost/version.hpp>
#include <charconv>
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
  bool foreground = false;
  bool json = false;
  std::vector<std::string_view> words;  // the command and its arguments, in order
};

const char* const kBackendUsage =
    "command \"backend\" takes POOL/ADDRESS and one of: weight N, drain, disable, enable";

// The words of a command: `backends`, or `backend POOL/ADDRESS OP [N]`.
Result<void> parseCommand(const std::vector<std::string_view>& words, Options* opts) {
  const std::string_view command = words[0];
  if (command == "backends") {
    if (words.size() > 1) {
      return unexpected(
          Error{"command \"backends\" takes no argument, got \"" + std::string(words[1]) + "\""});
    }
    opts->action = Action::Backends;
    return {};
  }
  if (command == "status") {
    if (words.size() > 1) {
      return unexpected(
          Error{"command \"status\" takes no argument, got \"" + std::string(words[1]) + "\""});
    }
    opts->action = Action::Status;
    return {};
  }
  if (command != "backend") {
    return unexpected(Error{"unknown command \"" + std::string(command) +
                            "\" (expected backends, backend or status)"});
  }
  if (words.size() < 3) {
    return unexpected(Error{kBackendUsage});
  }
  AdminCommand& admin = opts->admin;
  admin.backend = std::string(words[1]);
  const size_t slash = admin.backend.find('/');
  if (slash == 0 || slash == std::string::npos || slash + 1 == admin.backend.size()) {
    return unexpected(
        Error{"backend \"" + admin.backend + "\" must be written POOL/ADDRESS (see lb backends)"});
  }
  const std::string_view op = words[2];
  size_t expected_words = 3;
  if (op == "weight") {
    admin.op = AdminOp::Weight;
    expected_words = 4;
    if (words.size() < 4) {
      return unexpected(Error{"\"weight\" requires a value: 1..1000, or default"});
    }
    if (!parseAdminWeight(words[3], &admin.weight)) {
      return unexpected(Error{"invalid weight \"" + std::string(words[3]) +
                              "\" (expected 1..1000, or default or 0 for the configured weight)"});
    }
  } else if (op == "drain") {
    admin.op = AdminOp::Drain;
  } else if (op == "disable") {
    admin.op = AdminOp::Disable;
  } else if (op == "enable") {
    admin.op = AdminOp::Enable;
  } else {
    return unexpected(Error{"unknown backend operation \"" + std::string(op) +
                            "\" (expected weight N, drain, disable or enable)"});
  }
  if (words.size() > expected_words) {
    return unexpected(Error{"unexpected \"" + std::string(words[expected_words]) + "\" after \"" +
                            std::string(op) + "\""});
  }
  opts->action = Action::Backend;
  return {};
}

Result<Options> finish(const Requested& req, Options opts) {
  if (req.help) {
    opts.action = Action::Help;
  } else if (req.version) {
    opts.action = req.build_info ? Action::VersionBuild : Action::Version;
  } else if (!req.words.empty()) {
    // A command reads the running instance and goes with -c only: anything else would be
    // silently ignored, which an operator could mistake for having had an effect.
    const std::string command(req.words[0]);
    const char* other = req.test         ? "-t"
                        : req.dump       ? "-T"
                        : req.signal     ? "-s"
                        : req.plan       ? "--plan"
                        : req.foreground ? "-F"
                                         : nullptr;
    if (other != nullptr) {
      return unexpected(Error{std::string("option ") + other +
                              " cannot be combined with a command (\"" + command + "\")"});
    }
    if (auto parsed = parseCommand(req.words, &opts); !parsed) {
      return unexpected(parsed.error());
    }
    if (req.json && opts.action != Action::Backends && opts.action != Action::Status) {
      return unexpected(Error{"option --json goes with the backends and status commands only"});
    }
  } else if (req.json) {
    return unexpected(Error{"option --json goes with the backends and status commands only"});
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

bool parseAdminWeight(std::string_view text, int* out) {
  if (text == "default") {
    *out = 0;
    return true;
  }
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // from_chars takes a '-' but never a '+' or spaces; a sign is refused explicitly.
  if (text.empty() || text[0] == '-' || ec != std::errc() || end != text.data() + text.size() ||
      value > kMaxAdminWeight) {
    return false;
  }
  *out = value;
  return true;
}

const char* adminOpName(AdminOp op) {
  switch (op) {
    case AdminOp::Weight:
      return "weight";
    case AdminOp::Drain:
      return "drain";
    case AdminOp::Disable:
      return "disable";
    case AdminOp::Enable:
      return "enable";
  }
  return "?";
}

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
  bool weight_value_next = false;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (weight_value_next) {
      req.words.push_back(arg);
      weight_value_next = false;
      continue;
    }
    if (!arg.empty() && arg[0] != '-') {
      req.words.push_back(arg);
      weight_value_next =
          req.words.size() == 3 && req.words[0] == "backend" && req.words[2] == "weight";
      continue;
    }
    if (arg == "--json") {
      req.json = true;
      opts.json = true;
      continue;
    }
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
          req.foreground = true;
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
      "       lb backends [--json] [-c FILE]\n"
      "       lb status [--json] [-c FILE]\n"
      "       lb backend POOL/ADDRESS weight N|default | drain | disable | enable [-c FILE]\n"
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
      "  -h         print this help and exit\n"
      "\n"
      "Commands (for the instance that the -c file's pid file names; they change nothing\n"
      "on disk, and need the rights of the shared-memory segment's owner, or root):\n"
      "  backends [--json]\n"
      "             print every backend: pool, address, configured and effective weight,\n"
      "             admin state, health, active connections, requests, failures, response\n"
      "             time (EWMA); --json prints one JSON document instead\n"
      "  status [--json]\n"
      "             print every worker process: pid, generation, connections, requests,\n"
      "             responses by class, TLS handshakes; --json prints one JSON document\n"
      "  backend POOL/ADDRESS weight N\n"
      "             use weight N (1..1000) instead of the configured one, in every worker\n"
      "             at once; \"weight default\" (or 0) goes back to the configured weight\n"
      "  backend POOL/ADDRESS drain\n"
      "             send it no new requests; those in flight finish\n"
      "  backend POOL/ADDRESS disable\n"
      "             send it no new requests\n"
      "  backend POOL/ADDRESS enable\n"
      "             undo drain and disable\n"
      "             (a reload keeps these changes for every backend the new configuration\n"
      "             keeps; see lb(8))\n";
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
