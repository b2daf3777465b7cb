#include "master/status.h"

#include <algorithm>
#include <iterator>

#include "master/control.h"
#include "shared/config/load.h"
#include "shared/shm/segment.h"

namespace lb::master {
namespace {

uint64_t counter(const WorkerRow& r, shm::Counter c) {
  return r.counters[static_cast<size_t>(c)];
}

std::string cell(uint64_t v, size_t width) {
  std::string s = std::to_string(v);
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::vector<WorkerRow> workerRows(const shm::Segment& segment) {
  std::vector<WorkerRow> rows;
  for (const shm::WorkerSlot& slot : segment.workers) {
    const pid_t pid = slot.pid.load(std::memory_order_relaxed);
    if (pid == 0) {
      continue;
    }
    WorkerRow r;
    r.pid = pid;
    r.generation = slot.generation.load(std::memory_order_relaxed);
    r.accepted = slot.accepted.load(std::memory_order_relaxed);
    r.connections = slot.active_connections.load(std::memory_order_relaxed);
    r.requests = slot.requests.load(std::memory_order_relaxed);
    for (size_t i = 0; i < r.counters.size(); ++i) {
      r.counters[i] = slot.counters[i].load(std::memory_order_relaxed);
    }
    rows.push_back(r);
  }
  return rows;
}

const char* counterName(shm::Counter c) {
  static const char* const kNames[] = {"1xx",         "2xx",        "3xx",
                                       "4xx",         "5xx",        "400",
                                       "404",         "408",        "413",
                                       "414",         "431",        "502",
                                       "503",         "504",        "tls_handshakes",
                                       "tls_resumed", "tls_failed", "405",
                                       "501",         "505",        "h2_connections",
                                       "h2_streams",  "h2_resets"};
  static_assert(std::size(kNames) == static_cast<size_t>(shm::Counter::kCount));
  return kNames[static_cast<size_t>(c)];
}

std::string formatStatusTable(const std::vector<WorkerRow>& rows, int master_pid,
                              uint64_t generation) {
  using shm::Counter;
  std::string out =
      "master " + std::to_string(master_pid) + ", generation " + std::to_string(generation) + "\n";
  out +=
      "    PID  GEN  ACCEPTED  OPEN  REQUESTS     1XX       2XX     3XX     4XX     5XX"
      "       TLS  RESUMED  TLS-FAILED        H2  H2-STREAMS  H2-RESETS\n";
  WorkerRow total;
  auto line = [&](const WorkerRow& r, const std::string& pid, const std::string& gen) {
    out += pid + gen + cell(r.accepted, 10) +
           cell(static_cast<uint64_t>(std::max<int64_t>(0, r.connections)), 6) +
           cell(r.requests, 10) + cell(counter(r, Counter::Status1xx), 8) +
           cell(counter(r, Counter::Status2xx), 10) + cell(counter(r, Counter::Status3xx), 8) +
           cell(counter(r, Counter::Status4xx), 8) + cell(counter(r, Counter::Status5xx), 8) +
           cell(counter(r, Counter::TlsHandshakes), 10) + cell(counter(r, Counter::TlsResumed), 9) +
           cell(counter(r, Counter::TlsHandshakeFailed), 12) +
           cell(counter(r, Counter::H2Connections), 10) + cell(counter(r, Counter::H2Streams), 12) +
           cell(counter(r, Counter::H2Resets), 11) + "\n";
  };
  for (const WorkerRow& r : rows) {
    line(r, cell(static_cast<uint64_t>(r.pid), 7), cell(r.generation, 5));
    total.accepted += r.accepted;
    total.connections += r.connections;
    total.requests += r.requests;
    for (size_t i = 0; i < total.counters.size(); ++i) {
      total.counters[i] += r.counters[i];
    }
  }
  line(total, "  total", "     ");
  return out;
}

std::string formatStatusJson(const std::vector<WorkerRow>& rows, int master_pid,
                             uint64_t generation) {
  std::string out = "{\"master_pid\": " + std::to_string(master_pid) +
                    ", \"generation\": " + std::to_string(generation) + ", \"workers\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const WorkerRow& r = rows[i];
    out += "  {\"pid\": " + std::to_string(r.pid) +
           ", \"generation\": " + std::to_string(r.generation) +
           ", \"accepted\": " + std::to_string(r.accepted) +
           ", \"connections\": " + std::to_string(r.connections) +
           ", \"requests\": " + std::to_string(r.requests);
    for (size_t c = 0; c < r.counters.size(); ++c) {
      out += std::string(", \"") + counterName(static_cast<shm::Counter>(c)) +
             "\": " + std::to_string(r.counters[c]);
    }
    out += i + 1 < rows.size() ? "},\n" : "}\n";
  }
  return out + "]}\n";
}

int showStatus(const Options& options, std::FILE* out, std::FILE* err) {
  auto config = config::loadConfig(options.config_file);
  if (!config) {
    for (const auto& e : config.error()) {
      std::fprintf(err, "lb: %s\n", e.toString().c_str());
    }
    std::fprintf(err, "lb: configuration file %s has errors: cannot find the running instance\n",
                 options.config_file.c_str());
    return 1;
  }
  auto instance = attachRunning(config->pid);
  if (!instance) {
    std::fprintf(err, "lb: %s\n", instance.error().message.c_str());
    return 1;
  }
  const shm::Segment& segment = *instance->segment->get();
  const uint64_t generation = segment.header.generation.load();
  std::vector<WorkerRow> rows = workerRows(segment);
  std::string text = options.json ? formatStatusJson(rows, instance->pid, generation)
                                  : formatStatusTable(rows, instance->pid, generation);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  return 0;
}

}  // namespace lb::master
