#pragma once

// One lb under test, like nginx-tests' Test::Nginx: a scratch directory, a config written from a
// template (@PORT_n@ and @DIR@ filled in, logs and pid file inside the directory), the master
// started in the foreground and watched by pid, and a teardown that fails the test on any
// [alert] or [emerg] log line or sanitizer report.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "e2e/harness/process.h"
#include "e2e/harness/temp_dir.h"
#include "e2e/harness/wait.h"

namespace lb::e2e {

// The lb binary under test (LB_BINARY, or $LB_E2E_BINARY when set).
std::string lbBinary();

struct LbOptions {
  int workers = 2;         // worker_processes
  bool access_log = true;  // access_log = @DIR@/access.log, else no access_log directive
  std::string log_level = "info";
  milliseconds start_timeout = 20s;
};

struct StopResult {
  enum class How { NotRunning, ExitedAlone, Quit, Term, Kill };
  How how = How::NotRunning;
  int exit_code = -1;        // -1 unless it exited normally
  int term_signal = 0;       // the signal that ended it, if any
  long long ms = 0;          // from the first signal to the exit
  bool workers_gone = true;  // every worker of the master had exited by the end
};
const char* stopHowName(StopResult::How how);

class LbInstance {
 public:
  LbInstance();
  // Stops lb if it still runs, then CHECKs the logs (see checkLogs()).
  ~LbInstance();
  LbInstance(const LbInstance&) = delete;
  LbInstance& operator=(const LbInstance&) = delete;

  const std::string& dir() const { return dir_.path(); }
  std::string file(const std::string& name) const { return dir_.file(name); }

  // The port @PORT_n@ stands for; a free one is picked the first time n is used.
  int port(int n);
  void setPort(int n, int port);
  // `text` with @DIR@ and every @PORT_n@ replaced.
  std::string expand(const std::string& text);
  // The full config: the harness's preamble (worker_processes, daemon = false, pid, error_log,
  // access_log) followed by `body`, expanded.
  std::string configText(const std::string& body, const LbOptions& options = {});
  // Writes configText() to lb.conf and returns its path.
  std::string writeConfig(const std::string& body, const LbOptions& options = {});
  std::string configPath() const { return file("lb.conf"); }

  // writeConfig(), then startProcess(); REQUIREs that lb came up, with its output if not.
  void start(const std::string& body, const LbOptions& options = {});
  // Starts `lb -F -c lb.conf` and waits until the pid file holds its pid, every listener port of
  // the config accepts a connection and the workers exist. False (and `*why`) otherwise.
  bool startProcess(const LbOptions& options, std::string* why);

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  void reload();
  // SIGQUIT; SIGTERM after `quit_grace`; SIGKILL after `term_grace` more. Reaps the master and
  // waits (bounded) for its workers to be gone, killing leftovers.
  StopResult stop(milliseconds quit_grace = 15s, milliseconds term_grace = 5s);
  // Waits for the master to exit on its own (after `lb -s ...`); nullopt if it still runs.
  std::optional<StopResult> waitExit(milliseconds timeout);

  // Children of the master (workers; a checker process would appear here too).
  std::vector<pid_t> workerPids() const;
  bool waitForWorkers(size_t n, milliseconds timeout);

  std::string errorLog() const { return readFile(file("error.log")); }
  std::string accessLog() const { return readFile(file("access.log")); }
  std::vector<std::string> accessLogLines() const;
  // What lb wrote to stdout and stderr.
  std::string output() const { return readFile(file("lb.out")); }

  // Runs the lb binary with `args` and captures its output.
  CommandResult runLbCommand(const std::vector<std::string>& args, milliseconds timeout = 20s);
  // One counter of each worker ("accepted", "h2_streams", "501") from `lb status --json`.
  std::map<pid_t, uint64_t> statusByWorker(const std::string& field);
  // The same counter summed over the workers.
  uint64_t statusTotal(const std::string& field);

  // An [alert]/[emerg] line containing `text` does not fail the test (e.g. the pid of a worker
  // the test killed on purpose). Sanitizer reports are never allowed.
  void allowAlertsContaining(std::string text) { allowed_.push_back(std::move(text)); }
  // Lines of error.log and lb's output that fail a test.
  std::vector<std::string> forbiddenLogLines() const;
  // CHECKs that forbiddenLogLines() is empty.
  void checkLogs() const;
  // Error log and output, for INFO on failures.
  std::string diagnostics() const;

 private:
  StopResult finish(int status, StopResult::How how, Clock::time_point since);
  std::vector<int> listenerPorts() const;

  TempDir dir_;
  std::map<int, int> ports_;
  std::string config_;
  pid_t pid_ = -1;
  bool exited_ = false;  // reaped by running(); exited_status_ holds the wait status
  int exited_status_ = 0;
  std::vector<std::pair<pid_t, unsigned long long>> known_workers_;
  std::vector<std::string> allowed_;
};

}  // namespace lb::e2e
