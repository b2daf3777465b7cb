#pragma once

// The short-lived invocations of lb that do not start a master: `lb -t`, `lb -T` and
// `lb -s SIGNAL`. Each prints its outcome ("lb: ..." on stderr) and returns the exit code.

#include <cstdio>

#include "master/cli.h"

namespace lb::master {

// -t / -T: loads and validates options.config_file. On success prints
// "lb: configuration file FILE test is successful" to `err` and, with `dump`, the effective
// configuration to `out`; returns 0. With options.plan, also prints to `out` what reloading the
// running instance (found by the file's pid path) to this file would change, or returns 1 when
// there is no running instance to compare with. Otherwise prints each error as "lb: file:line:
// message" to `err` and returns 1.
int testConfig(const Options& options, bool dump, std::FILE* out, std::FILE* err);

// -s: loads the config for its pid file path, reads the pid, checks that it names a live
// process with this program's command name and sends the signal (stop=TERM, quit=QUIT,
// reopen=USR1, reload=HUP). Returns 0 once the signal is sent, 1 with a message on `err`
// otherwise (config errors, missing or garbled pid file, dead or foreign pid). A reload waits
// for the master's verdict (up to the new file's reload_timeout_ms + 5 s), prints it and
// returns 1 if the reload failed.
int signalMaster(const Options& options, std::FILE* err);

}  // namespace lb::master
