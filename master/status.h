#pragma once

// `lb status`: the running instance's worker processes (and checker) as the shared-memory
// worker slots show them: pid, generation, connections, requests, responses by class and TLS
// handshakes, read without disturbing anything.

#include <sys/types.h>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "master/cli.h"
#include "shared/shm/layout.h"

namespace lb::master {

struct WorkerRow {
  pid_t pid = 0;
  uint64_t generation = 0;
  uint64_t accepted = 0;    // client connections accepted
  int64_t connections = 0;  // client connections open now
  uint64_t requests = 0;
  std::array<uint64_t, static_cast<size_t>(shm::Counter::kCount)> counters{};
};

// Every worker slot in use, in slot order.
std::vector<WorkerRow> workerRows(const shm::Segment& segment);
// The name of a counter in the JSON form: "2xx", "502", "tls_handshakes", ...
const char* counterName(shm::Counter c);

// A header line "master PID, generation N", one line per row and a total line, in columns
// PID GEN ACCEPTED OPEN REQUESTS 1XX 2XX 3XX 4XX 5XX TLS RESUMED TLS-FAILED.
std::string formatStatusTable(const std::vector<WorkerRow>& rows, int master_pid,
                              uint64_t generation);
// {"master_pid": N, "generation": N, "workers": [ {...}, ... ]}, one worker per line, every
// counter by its counterName().
std::string formatStatusJson(const std::vector<WorkerRow>& rows, int master_pid,
                             uint64_t generation);

// `lb status [--json]`: exit 0, or 1 with the reason on `err` (lb not running, ...).
int showStatus(const Options& options, std::FILE* out, std::FILE* err);

}  // namespace lb::master
