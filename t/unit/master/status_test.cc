// lb status: the table and JSON forms of the worker slots.

#include "master/status.h"

#include <catch2/catch.hpp>

namespace lb::master {
namespace {

WorkerRow row(pid_t pid, uint64_t requests, uint64_t ok, uint64_t tls, uint64_t failed) {
  WorkerRow r;
  r.pid = pid;
  r.generation = 2;
  r.accepted = requests / 2;
  r.connections = 1;
  r.requests = requests;
  r.counters[static_cast<size_t>(shm::Counter::Status2xx)] = ok;
  r.counters[static_cast<size_t>(shm::Counter::Status5xx)] = requests - ok;
  r.counters[static_cast<size_t>(shm::Counter::TlsHandshakes)] = tls;
  r.counters[static_cast<size_t>(shm::Counter::TlsHandshakeFailed)] = failed;
  r.counters[static_cast<size_t>(shm::Counter::H2Connections)] = tls / 2;
  r.counters[static_cast<size_t>(shm::Counter::H2Streams)] = requests / 2;
  r.counters[static_cast<size_t>(shm::Counter::H2Resets)] = failed;
  return r;
}

}  // namespace

TEST_CASE("status: one line per worker and a total", "[master][admin]") {
  std::string t = formatStatusTable({row(101, 10, 9, 4, 1), row(102, 6, 6, 2, 0)}, 100, 2);
  INFO(t);
  CHECK(t.rfind("master 100, generation 2\n", 0) == 0);
  CHECK(t.find("\n    101    2         5     1        10       0         9       0       0       1"
               "         4        0           1         2           5          1\n") !=
        std::string::npos);
  CHECK(t.find("\n  total              8     2        16       0        15       0       0       1"
               "         6        0           1         3           8          1\n") !=
        std::string::npos);
}

TEST_CASE("status: the JSON form names every counter", "[master][admin]") {
  std::string j = formatStatusJson({row(101, 10, 9, 4, 1)}, 100, 2);
  INFO(j);
  CHECK(j.rfind("{\"master_pid\": 100, \"generation\": 2, \"workers\": [\n", 0) == 0);
  CHECK(j.find("{\"pid\": 101, \"generation\": 2, \"accepted\": 5, \"connections\": 1, "
               "\"requests\": 10, \"1xx\": 0, \"2xx\": 9") != std::string::npos);
  CHECK(j.find("\"tls_handshakes\": 4, \"tls_resumed\": 0, \"tls_failed\": 1, \"405\": 0, "
               "\"501\": 0, \"505\": 0, \"h2_connections\": 2, \"h2_streams\": 5, "
               "\"h2_resets\": 1}\n]}\n") != std::string::npos);
  CHECK(formatStatusJson({}, 7, 1) ==
        "{\"master_pid\": 7, \"generation\": 1, \"workers\": [\n]}\n");
}

}  // namespace lb::master
