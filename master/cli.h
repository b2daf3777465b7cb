#pragma once

// The command line of lb:
//   lb [-c FILE] [-F] [-t [--plan] | -T] [-s stop|quit|reopen|reload] [-v | -V] [-h]
//   lb backends [--json] [-c FILE]
//   lb status [--json] [-c FILE]
//   lb backend POOL/ADDRESS weight N|default | drain | disable | enable [-c FILE]
// Parsing is pure (no I/O), so every option and every misuse is unit-tested; main() prints.

#include <string>
#include <string_view>
#include <vector>

#include "shared/util/result.h"

namespace lb::master {

// What `lb` was asked to do. Exactly one action per invocation.
enum class Action {
  Run,           // start the master (the default)
  Help,          // -h: usage on stdout, exit 0
  Version,       // -v
  VersionBuild,  // -V: version and build information
  Test,          // -t: load and validate the config, exit 0/1
  TestDump,      // -T: -t, then print the effective config
  Signal,        // -s NAME: signal the running master
  Backends,      // `backends`: print the running instance's backend table
  Backend,       // `backend POOL/ADDRESS OP`: change one backend at run time
  Status,        // `status`: print the running instance's worker processes and counters
};

// The signals `lb -s` sends, by their nginx names.
enum class ControlSignal { Stop, Quit, Reopen, Reload };

// What `lb backend POOL/ADDRESS ...` changes in the backend's shared-memory slot.
enum class AdminOp {
  Weight,   // weight N (1..1000), or weight 0 / default: back to the configured weight
  Drain,    // no new requests; those in flight finish
  Disable,  // no new requests
  Enable,   // clears drain and disable (the weight override stays)
};

struct AdminCommand {
  std::string backend;  // "pool/address", as the configuration writes the address
  AdminOp op = AdminOp::Enable;
  int weight = 0;  // AdminOp::Weight: 1..1000, or 0 for the configured weight
};

inline constexpr int kMaxAdminWeight = 1000;

struct Options {
  Action action = Action::Run;
  std::string config_file;  // -c; the compiled-in default when absent
  bool foreground = false;  // -F
  bool plan = false;        // --plan (with -t): print what a reload to the file would change
  ControlSignal signal = ControlSignal::Stop;  // meaningful for Action::Signal only
  bool json = false;                           // --json (with `backends`): machine-readable output
  AdminCommand admin;                          // meaningful for Action::Backend only
};

// Parses argv (argv[0] is the program name and is skipped). `default_config` is used when -c
// is absent. Flags may be clustered ("-Ft") and an option's argument may be attached ("-cFILE")
// or follow as the next word. Words that are not options form a command ("backends", or
// "backend POOL/ADDRESS OP [N]"); options may come before, between or after its words, and the
// word after "weight" is always its value (so "-5" is a bad weight, not an option). A command
// goes with -c (and `backends` with --json) only. Errors are one line without the "lb: "
// prefix, e.g. "invalid option: \"-x\""; the caller adds the usage text.
Result<Options> parseCommandLine(const std::vector<std::string_view>& args,
                                 std::string_view default_config);

// "stop" -> Stop, ... Returns false for anything else.
bool parseControlSignal(std::string_view name, ControlSignal* out);
// Stop -> "stop", ...
const char* controlSignalName(ControlSignal sig);
// "default" and "0" -> 0 (the configured weight), "1".."1000" -> that number. False for
// anything else (signs, spaces, other words, out of range); `*out` is then untouched.
bool parseAdminWeight(std::string_view text, int* out);
// Drain -> "drain", ...
const char* adminOpName(AdminOp op);

// Stop -> SIGTERM, Quit -> SIGQUIT, Reopen -> SIGUSR1, Reload -> SIGHUP.
int controlSignalNumber(ControlSignal sig);

// The usage text printed by -h (stdout) and after a usage error (stderr). Ends in a newline.
std::string usageText(std::string_view default_config);
// "lb version X\n"; with `build_info` also the compiler, build type and options.
std::string versionText(bool build_info, std::string_view default_config);

}  // namespace lb::master
