#include "e2e/harness/lb_instance.h"

#include <signal.h>
#include <sys/wait.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "e2e/harness/net.h"

namespace lb::e2e {

namespace {

const char* const kSanitizerMarks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                       "runtime error:"};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

std::string tail(const std::string& text, size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

}  // namespace

std::string lbBinary() {
  const char* env = std::getenv("LB_E2E_BINARY");
  return env != nullptr && *env != '\0' ? env : LB_BINARY;
}

const char* stopHowName(StopResult::How how) {
  switch (how) {
    case StopResult::How::NotRunning:
      return "not running";
    case StopResult::How::ExitedAlone:
      return "exited by itself";
    case StopResult::How::Quit:
      return "SIGQUIT";
    case StopResult::How::Term:
      return "SIGTERM";
    case StopResult::How::Kill:
      return "SIGKILL";
  }
  return "?";
}

LbInstance::LbInstance() = default;

LbInstance::~LbInstance() {
  try {
    if (pid_ > 0) {
      StopResult r = stop();
      INFO("teardown: lb stopped by " << stopHowName(r.how) << " after " << r.ms << " ms");
      CHECK(r.workers_gone);
    }
    checkLogs();
  } catch (...) {
    // A destructor must not throw; a failed CHECK has been recorded already.
  }
}

int LbInstance::port(int n) {
  auto it = ports_.find(n);
  if (it != ports_.end()) {
    return it->second;
  }
  int p = freePort();
  ports_[n] = p;
  return p;
}

void LbInstance::setPort(int n, int port) {
  ports_[n] = port;
}

std::string LbInstance::expand(const std::string& text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = text.find('@', pos);
    if (at == std::string::npos) {
      break;
    }
    out.append(text, pos, at - pos);
    size_t end = text.find('@', at + 1);
    std::string name = end == std::string::npos ? "" : text.substr(at + 1, end - at - 1);
    bool is_port =
        name.size() > 5 && name.starts_with("PORT_") &&
        std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (name == "DIR") {
      out += dir();
      pos = end + 1;
    } else if (is_port) {
      out += std::to_string(port(std::stoi(name.substr(5))));
      pos = end + 1;
    } else {
      out += '@';
      pos = at + 1;
    }
  }
  out.append(text, std::min(pos, text.size()), std::string::npos);
  return out;
}

std::string LbInstance::configText(const std::string& body, const LbOptions& options) {
  std::string pre = "# written by the e2e harness\n";
  pre += "worker_processes = " + std::to_string(options.workers) + ";\n";
  pre += "daemon = false;\n";
  pre += "pid = \"@DIR@/lb.pid\";\n";
  pre += "error_log = { path = \"@DIR@/error.log\"; level = \"" + options.log_level + "\"; };\n";
  if (options.access_log) {
    pre += "access_log = { path = \"@DIR@/access.log\"; };\n";
  }
  return expand(pre + body);
}

std::string LbInstance::writeConfig(const std::string& body, const LbOptions& options) {
  config_ = configText(body, options);
  writeFile(configPath(), config_);
  return configPath();
}

std::vector<int> LbInstance::listenerPorts() const {
  // Every `listen = "host:port"` of the config (the port is what follows the last colon).
  std::vector<int> out;
  for (size_t at = config_.find("listen"); at != std::string::npos;
       at = config_.find("listen", at + 1)) {
    size_t p = config_.find_first_not_of(" \t", at + 6);
    if (p == std::string::npos || config_[p] != '=') {
      continue;
    }
    p = config_.find_first_not_of(" \t", p + 1);
    if (p == std::string::npos || config_[p] != '"') {
      continue;
    }
    size_t close = config_.find('"', p + 1);
    std::string value = config_.substr(p + 1, close - p - 1);
    size_t colon = value.rfind(':');
    if (colon != std::string::npos && colon + 1 < value.size()) {
      out.push_back(std::atoi(value.c_str() + colon + 1));
    }
  }
  return out;
}

void LbInstance::start(const std::string& body, const LbOptions& options) {
  writeConfig(body, options);
  std::string why;
  bool up = startProcess(options, &why);
  INFO(why);
  INFO("config:\n" << config_);
  INFO(diagnostics());
  REQUIRE(up);
}

bool LbInstance::startProcess(const LbOptions& options, std::string* why) {
  pid_ = spawnProcess({lbBinary(), "-F", "-c", configPath()}, file("lb.out"));
  if (pid_ < 0) {
    *why = "cannot spawn " + lbBinary();
    return false;
  }
  std::vector<int> ports = listenerPorts();
  std::string stage = "pid file";
  bool up = waitUntil(
      [&] {
        if (!running()) {
          return true;
        }
        std::string pidfile = readFile(file("lb.pid"));
        if (std::atoi(pidfile.c_str()) != pid_) {
          stage = "pid file " + file("lb.pid") + " holding pid " + std::to_string(pid_);
          return false;
        }
        for (int p : ports) {
          if (!connectTcp(p, 200ms).valid()) {
            stage = "listener port " + std::to_string(p) + " accepting";
            return false;
          }
        }
        if (options.workers > 0 && workerPids().size() < static_cast<size_t>(options.workers)) {
          stage = std::to_string(options.workers) + " worker processes";
          return false;
        }
        return true;
      },
      options.start_timeout);
  if (!running()) {
    *why = "lb exited during start-up";
    return false;
  }
  if (!up) {
    *why = "lb did not come up within " + std::to_string(options.start_timeout.count()) +
           " ms: waiting for " + stage;
    return false;
  }
  return true;
}

bool LbInstance::running() {
  if (pid_ <= 0) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    // Reaped here; keep the result for stop()/waitExit() through the pid being gone.
    exited_status_ = status;
    exited_ = true;
    return false;
  }
  return !exited_;
}

void LbInstance::signal(int sig) {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, sig);
  }
}

void LbInstance::reload() {
  signal(SIGHUP);
}

std::vector<pid_t> LbInstance::workerPids() const {
  if (pid_ <= 0 || exited_) {
    return {};
  }
  std::vector<pid_t> kids = childrenOf(pid_);
  auto* self = const_cast<LbInstance*>(this);
  for (pid_t k : kids) {
    auto start = processStartTime(k);
    auto same = [&](const auto& w) { return w.first == k && w.second == start; };
    if (start != 0 && std::none_of(known_workers_.begin(), known_workers_.end(), same)) {
      self->known_workers_.emplace_back(k, start);
    }
  }
  return kids;
}

bool LbInstance::waitForWorkers(size_t n, milliseconds timeout) {
  return waitUntil([&] { return workerPids().size() >= n; }, timeout);
}

std::vector<std::string> LbInstance::accessLogLines() const {
  return lines(accessLog());
}

StopResult LbInstance::finish(int status, StopResult::How how, Clock::time_point since) {
  StopResult r;
  r.how = how;
  r.ms = elapsedMs(since);
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.term_signal = WTERMSIG(status);
  }
  auto alive = [&](const std::pair<pid_t, unsigned long long>& w) {
    return processAlive(w.first) && processStartTime(w.first) == w.second;
  };
  r.workers_gone = waitUntil(
      [&] { return std::none_of(known_workers_.begin(), known_workers_.end(), alive); }, 5s);
  for (const auto& w : known_workers_) {
    if (alive(w)) {
      ::kill(w.first, SIGKILL);  // an orphaned worker of ours; the test fails on it
    }
  }
  known_workers_.clear();
  pid_ = -1;
  exited_ = false;
  return r;
}

StopResult LbInstance::stop(milliseconds quit_grace, milliseconds term_grace) {
  if (pid_ <= 0) {
    return {};
  }
  workerPids();  // remember the current workers, to check they go too
  auto since = Clock::now();
  if (!running()) {
    return finish(exited_status_, StopResult::How::ExitedAlone, since);
  }
  struct Step {
    int sig;
    StopResult::How how;
    milliseconds grace;
  } steps[] = {{SIGQUIT, StopResult::How::Quit, quit_grace},
               {SIGTERM, StopResult::How::Term, term_grace},
               {SIGKILL, StopResult::How::Kill, 10s}};
  for (const auto& step : steps) {
    ::kill(pid_, step.sig);
    if (waitUntil([&] { return !running(); }, step.grace, 5ms)) {
      return finish(exited_status_, step.how, since);
    }
  }
  return finish(0, StopResult::How::Kill, since);
}

std::optional<StopResult> LbInstance::waitExit(milliseconds timeout) {
  if (pid_ <= 0) {
    return StopResult{};
  }
  workerPids();
  auto since = Clock::now();
  if (!waitUntil([&] { return !running(); }, timeout, 5ms)) {
    return std::nullopt;
  }
  return finish(exited_status_, StopResult::How::ExitedAlone, since);
}

CommandResult LbInstance::runLbCommand(const std::vector<std::string>& args, milliseconds timeout) {
  std::vector<std::string> argv = {lbBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeout);
}

std::map<pid_t, uint64_t> LbInstance::statusByWorker(const std::string& field) {
  auto status = runLbCommand({"status", "--json", "-c", configPath()});
  std::map<pid_t, uint64_t> values;
  std::istringstream in(status.out);
  std::string line;
  const std::string key = "\"" + field + "\": ";
  while (std::getline(in, line)) {
    size_t pid = line.find("{\"pid\": ");
    size_t at = line.find(key);
    if (pid != std::string::npos && at != std::string::npos) {
      values[static_cast<pid_t>(std::stol(line.substr(pid + 8)))] =
          std::stoull(line.substr(at + key.size()));
    }
  }
  return values;
}

uint64_t LbInstance::statusTotal(const std::string& field) {
  uint64_t sum = 0;
  for (auto [pid, n] : statusByWorker(field)) {
    sum += n;
  }
  return sum;
}

std::vector<std::string> LbInstance::forbiddenLogLines() const {
  std::vector<std::string> bad;
  for (const auto& source : {file("error.log"), file("lb.out")}) {
    for (const auto& line : lines(readFile(source))) {
      bool sanitizer =
          std::any_of(std::begin(kSanitizerMarks), std::end(kSanitizerMarks),
                      [&](const char* m) { return line.find(m) != std::string::npos; });
      bool severe =
          line.find("[alert]") != std::string::npos || line.find("[emerg]") != std::string::npos;
      bool allowed = std::any_of(allowed_.begin(), allowed_.end(), [&](const std::string& a) {
        return line.find(a) != std::string::npos;
      });
      if (sanitizer || (severe && !allowed)) {
        bad.push_back(source.substr(dir().size() + 1) + ": " + line);
      }
    }
  }
  return bad;
}

void LbInstance::checkLogs() const {
  auto bad = forbiddenLogLines();
  INFO("lines in lb's logs that fail every test ([alert], [emerg], sanitizer reports):");
  for (const auto& line : bad) {
    UNSCOPED_INFO(line);
  }
  CHECK(bad.empty());
}

std::string LbInstance::diagnostics() const {
  return "--- error.log (" + file("error.log") + ") ---\n" + tail(errorLog(), 4000) +
         "\n--- lb stdout/stderr ---\n" + tail(output(), 4000);
}

}  // namespace lb::e2e
