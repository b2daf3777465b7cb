#include "master/control.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "master/pidfile.h"
#include "shared/shm/segment.h"
#include "unit/master/capture.h"

namespace lb::master {
namespace {

// A temporary directory with a config whose pid file lives inside it.
class Instance {
 public:
  Instance() {
    char tmpl[] = "/tmp/lb-control-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    writeConfig("pid = \"" + pidPath() +
                "\";\n"
                "listeners = ( { listen = \"127.0.0.1:1\"; return = { status = 204; }; } );\n");
  }
  ~Instance() {
    int rc = std::system(("rm -rf '" + dir_ + "'").c_str());
    (void)rc;
  }
  void writeConfig(const std::string& text) { std::ofstream(configPath()) << text; }
  std::string configPath() const { return dir_ + "/lb.conf"; }
  std::string pidPath() const { return dir_ + "/lb.pid"; }

  Options options(Action action, ControlSignal sig = ControlSignal::Stop) const {
    Options o;
    o.action = action;
    o.config_file = configPath();
    o.signal = sig;
    return o;
  }

 private:
  std::string dir_;
};

}  // namespace

TEST_CASE("control: -t on a good file reports success on stderr", "[master]") {
  Instance lb;
  Capture out, err;
  CHECK(testConfig(lb.options(Action::Test), false, out.file(), err.file()) == 0);
  CHECK(err.text() == "lb: configuration file " + lb.configPath() + " test is successful\n");
  CHECK(out.text().empty());
}

TEST_CASE("control: -T also prints the effective config on stdout", "[master]") {
  Instance lb;
  Capture out, err;
  CHECK(testConfig(lb.options(Action::TestDump), true, out.file(), err.file()) == 0);
  CHECK(err.text().find("test is successful") != std::string::npos);
  std::string dump = out.text();
  CHECK(dump.find("pid = \"" + lb.pidPath() + "\"") != std::string::npos);
  CHECK(dump.find("worker_shutdown_timeout_ms") != std::string::npos);  // a default, filled in
}

TEST_CASE("control: -t on a bad file prints file:line errors and fails", "[master]") {
  Instance lb;
  lb.writeConfig("listeners = ( { listen = \"127.0.0.1:1\"; pool = \"nope\"; } );\n");
  Capture out, err;
  CHECK(testConfig(lb.options(Action::Test), false, out.file(), err.file()) == 1);
  std::string text = err.text();
  CHECK(text.rfind("lb: " + lb.configPath() + ":1: ", 0) == 0);
  CHECK(text.find("nope") != std::string::npos);
  CHECK(text.find("test failed") != std::string::npos);
  CHECK(out.text().empty());
}

TEST_CASE("control: -s without a pid file says lb is not running", "[master]") {
  Instance lb;
  Capture err;
  CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Reload), err.file()) == 1);
  CHECK(err.text() == "lb: signal \"reload\" not sent: pid file \"" + lb.pidPath() +
                          "\" does not exist (is lb running?)\n");
}

TEST_CASE("control: -s refuses garbled pid files and dead pids", "[master]") {
  Instance lb;
  std::ofstream(lb.pidPath()) << "not a pid\n";
  Capture garbled;
  CHECK(signalMaster(lb.options(Action::Signal), garbled.file()) == 1);
  CHECK(garbled.text().find("does not hold a valid pid") != std::string::npos);

  pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) {
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  REQUIRE(writePidFile(lb.pidPath(), dead));
  Capture stale;
  CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Quit), stale.file()) == 1);
  CHECK(stale.text() == "lb: signal \"quit\" not sent: no process with pid " +
                            std::to_string(dead) + " (stale pid file \"" + lb.pidPath() + "\")\n");
}

TEST_CASE("control: -s refuses a config with errors", "[master]") {
  Instance lb;
  lb.writeConfig("pid = 5;\n");
  Capture err;
  CHECK(signalMaster(lb.options(Action::Signal), err.file()) == 1);
  CHECK(err.text().find("has errors") != std::string::npos);
}

TEST_CASE("control: -s sends the mapped signal to the live master", "[master]") {
  Instance lb;
  // The "master": a forked copy of this process (same command name) waiting for SIGHUP.
  sigset_t hup, old;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  REQUIRE(sigprocmask(SIG_BLOCK, &hup, &old) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    int sig = 0;
    sigwait(&hup, &sig);
    ::_exit(sig == SIGHUP ? 42 : 1);
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  REQUIRE(writePidFile(lb.pidPath(), pid));

  Capture err;
  // No shared memory: the signal still goes, but with no verdict to read the reload may have
  // failed, and a script must not go on as if it had not.
  CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Reload), err.file()) == 1);
  CHECK(err.text().find("signal sent to master") != std::string::npos);
  CHECK(err.text().find("its verdict cannot be read") != std::string::npos);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
}

// A fake master: takes HUP, then attaches to its segment (named after its own pid, created by
// the test) and writes `result` as the master's reload code does.
pid_t fakeMaster(const std::string& pid_path, shm::ReloadResult result, const char* error) {
  sigset_t hup, old;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  REQUIRE(sigprocmask(SIG_BLOCK, &hup, &old) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    int sig = 0;
    sigwait(&hup, &sig);
    auto seg = shm::SharedSegment::attach(shm::SharedSegment::nameFor(pid_path, ::getpid()));
    if (!seg) {
      ::_exit(3);
    }
    shm::ReloadState& r = (*seg)->get()->reload;
    r.started.fetch_add(1);
    std::snprintf(r.error, sizeof r.error, "%s", error);
    r.generation.store(7);
    r.result.store(static_cast<uint32_t>(result));
    r.finished.store(r.started.load(), std::memory_order_release);
    ::pause();  // stays alive, as a master does, until the test kills it
    ::_exit(0);
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

std::unique_ptr<shm::SharedSegment> segmentOf(const Instance& lb, pid_t pid) {
  auto segment = shm::SharedSegment::create(shm::SharedSegment::nameFor(lb.pidPath(), pid));
  REQUIRE(segment);
  // An earlier reload's verdict must not be taken for this one's.
  shm::ReloadState& r = (*segment)->get()->reload;
  r.started.store(3);
  r.finished.store(3);
  r.result.store(static_cast<uint32_t>(shm::ReloadResult::Failed));
  return std::move(*segment);
}

TEST_CASE("control: -s reload waits for the verdict and prints it", "[master]") {
  Instance lb;
  SECTION("success: generation and exit 0") {
    pid_t pid = fakeMaster(lb.pidPath(), shm::ReloadResult::Succeeded, "");
    auto segment = segmentOf(lb, pid);
    REQUIRE(writePidFile(lb.pidPath(), pid));
    Capture err;
    CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Reload), err.file()) == 0);
    CHECK(err.text() == "lb: reload succeeded: generation 7 serves\n");
    stop(pid);
    shm::SharedSegment::remove(segment->name());
  }
  SECTION("failure: the master's reason and exit 1") {
    pid_t pid = fakeMaster(lb.pidPath(), shm::ReloadResult::Failed, "x.conf:3: unknown directive");
    auto segment = segmentOf(lb, pid);
    REQUIRE(writePidFile(lb.pidPath(), pid));
    Capture err;
    CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Reload), err.file()) == 1);
    CHECK(err.text() ==
          "lb: reload failed: x.conf:3: unknown directive\nlb: generation 7 goes on serving\n");
    stop(pid);
    shm::SharedSegment::remove(segment->name());
  }
}

TEST_CASE("control: -s reload gives up when the master dies without a verdict", "[master]") {
  Instance lb;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    ::pause();  // HUP's default action ends it
    ::_exit(0);
  }
  auto segment = segmentOf(lb, pid);
  REQUIRE(writePidFile(lb.pidPath(), pid));
  Capture err;
  CHECK(signalMaster(lb.options(Action::Signal, ControlSignal::Reload), err.file()) == 1);
  CHECK(err.text().find("exited") != std::string::npos);
  int status = 0;
  ::waitpid(pid, &status, 0);
  shm::SharedSegment::remove(segment->name());
}

}  // namespace lb::master

namespace lb::master {

TEST_CASE("control: attachRunning finds the segment of the pid file's live master",
          "[master][admin]") {
  Instance lb;
  auto missing = attachRunning(lb.pidPath());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message ==
        "pid file \"" + lb.pidPath() + "\" does not exist (is lb running?)");

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    ::pause();
    ::_exit(0);
  }
  REQUIRE(writePidFile(lb.pidPath(), pid));
  auto no_segment = attachRunning(lb.pidPath());
  REQUIRE_FALSE(no_segment);
  CHECK(no_segment.error().message.find("cannot attach shared memory segment") == 0);

  auto segment = segmentOf(lb, pid);
  auto running = attachRunning(lb.pidPath());
  INFO((running ? std::string() : running.error().message));
  REQUIRE(running);
  CHECK(running->pid == pid);
  CHECK(running->segment->name() == segment->name());
  // Both mappings are the same memory.
  segment->get()->header.generation.store(11);
  CHECK(running->segment->get()->header.generation.load() == 11);

  stop(pid);
  auto dead = attachRunning(lb.pidPath());
  REQUIRE_FALSE(dead);
  CHECK(dead.error().message == "no process with pid " + std::to_string(pid) +
                                    " (stale pid file \"" + lb.pidPath() + "\")");
  shm::SharedSegment::remove(segment->name());
}

TEST_CASE("control: readConfigText returns what the master published", "[master][admin]") {
  Instance lb;
  auto segment = segmentOf(lb, ::getpid());
  shm::ConfigText& c = segment->get()->config;
  auto empty = readConfigText(*segment->get());
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message == "the running instance has not published its configuration");

  const std::string text = "pid = \"/x.pid\";\n";
  std::memcpy(c.text, text.data(), text.size());
  c.length.store(static_cast<uint32_t>(text.size()));
  c.sequence.store(2);
  auto read = readConfigText(*segment->get());
  REQUIRE(read);
  CHECK(*read == text);

  c.truncated = 1;
  auto cut = readConfigText(*segment->get());
  REQUIRE_FALSE(cut);
  CHECK(cut.error().message == "the running configuration is too large to read back");
  shm::SharedSegment::remove(segment->name());
}

}  // namespace lb::master
