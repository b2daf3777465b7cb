#include "master/pidfile.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace lb::master {
namespace {

// A fresh directory per test, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lb-pidfile-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A pid that certainly belonged to a process that is gone now.
pid_t deadPid() {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return pid;
}

// A child that sleeps until killed; killed and reaped by the destructor.
class Child {
 public:
  explicit Child(const char* exec_path = nullptr) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      if (exec_path != nullptr) {
        ::execl(exec_path, exec_path, "30", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      for (;;) {
        ::pause();
      }
    }
  }
  ~Child() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

}  // namespace

TEST_CASE("pidfile: write then read round-trips, no temporary left behind", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");
  REQUIRE(writePidFile(path, 4242));
  CHECK(readText(path) == "4242\n");
  auto pid = readPidFile(path);
  REQUIRE(pid);
  CHECK(*pid == 4242);
  CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);

  REQUIRE(writePidFile(path, 17));  // overwrites
  CHECK(readText(path) == "17\n");
}

TEST_CASE("pidfile: write into a missing directory names the file", "[master]") {
  TempDir dir;
  auto r = writePidFile(dir.file("no/such/dir/lb.pid"), 1);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("no/such/dir/lb.pid.tmp") != std::string::npos);
  CHECK(r.error().message.find("No such file or directory") != std::string::npos);
}

TEST_CASE("pidfile: read errors are clear", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");

  auto missing = readPidFile(path);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == "open() \"" + path + "\" failed: No such file or directory");

  writeText(path, "");
  auto empty = readPidFile(path);
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message == "pid file \"" + path + "\" is empty");

  for (const char* bad : {"abc\n", "12ab\n", "-5\n", "0\n", "99999999999999999999\n", "1 2\n"}) {
    writeText(path, bad);
    auto r = readPidFile(path);
    INFO(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("does not hold a valid pid") != std::string::npos);
  }

  writeText(path, "  \n");
  CHECK_FALSE(readPidFile(path));
  writeText(path, "123");  // no newline is fine
  REQUIRE(readPidFile(path));
  CHECK(*readPidFile(path) == 123);
}

TEST_CASE("pidfile: remove only deletes our own pid", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");
  REQUIRE(writePidFile(path, 1000));
  removePidFile(path, 1001);  // a successor's file stays
  CHECK(::access(path.c_str(), F_OK) == 0);
  removePidFile(path, 1000);
  CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("pidfile: absent, garbled and dead pids are not running", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");
  const std::string comm = processName(::getpid());
  REQUIRE_FALSE(comm.empty());

  CHECK(checkPidFile(path, comm).status == PidFileStatus::Absent);

  writeText(path, "garbage\n");
  PidFileCheck garbled = checkPidFile(path, comm);
  CHECK(garbled.status == PidFileStatus::Stale);
  CHECK(garbled.pid == 0);

  pid_t dead = deadPid();
  REQUIRE(writePidFile(path, dead));
  PidFileCheck stale = checkPidFile(path, comm);
  CHECK(stale.status == PidFileStatus::Stale);
  CHECK(stale.pid == dead);
  CHECK(stale.reason == "process " + std::to_string(dead) + " is not running");
  CHECK_FALSE(processAlive(dead));

  REQUIRE(writePidFile(path, ::getpid()));
  CHECK(checkPidFile(path, comm).status == PidFileStatus::Stale);  // our own pid: old life
}

TEST_CASE("pidfile: a live process of our kind is running", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");
  const std::string comm = processName(::getpid());
  Child child;  // a fork without exec keeps our command name
  REQUIRE(processAlive(child.pid()));
  REQUIRE(writePidFile(path, child.pid()));
  PidFileCheck check = checkPidFile(path, comm);
  CHECK(check.status == PidFileStatus::Running);
  CHECK(check.pid == child.pid());
}

TEST_CASE("pidfile: a live process of another name is a reused pid", "[master]") {
  TempDir dir;
  std::string path = dir.file("lb.pid");
  const std::string comm = processName(::getpid());
  Child child("/bin/sleep");
  // The name changes at execve(); wait for it with a deadline instead of sleeping.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (processName(child.pid()) != "sleep" && std::chrono::steady_clock::now() < deadline) {
    ::usleep(1000);
  }
  REQUIRE(processName(child.pid()) == "sleep");
  REQUIRE(writePidFile(path, child.pid()));
  PidFileCheck check = checkPidFile(path, comm);
  CHECK(check.status == PidFileStatus::Stale);
  CHECK(check.reason.find("\"sleep\"") != std::string::npos);
}

}  // namespace lb::master
