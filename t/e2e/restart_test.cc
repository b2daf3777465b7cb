// A master killed with SIGKILL leaves a pid file and a shared-memory segment behind; neither may
// stop the next start, and its workers must not outlive it (they would hold the ports).

#include "e2e/harness/e2e.h"

#include <dirent.h>
#include <signal.h>

namespace lb::e2e {
namespace {

// The shared-memory segments of master `pid` (named lb.<hash>.<pid>).
std::vector<std::string> segmentsOf(pid_t pid) {
  std::vector<std::string> out;
  const std::string suffix = "." + std::to_string(pid);
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.starts_with("lb.") && name.ends_with(suffix)) {
        out.push_back(name);
      }
    }
    ::closedir(d);
  }
  return out;
}

TEST_CASE("a master killed with SIGKILL does not prevent the next start", "[process]") {
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@";
                    return = { status = 200; body = "up"; }; } );
  )");
  const pid_t killed = lb.pid();
  auto workers = lb.workerPids();
  REQUIRE(segmentsOf(killed).size() == 1);
  REQUIRE(::kill(killed, SIGKILL) == 0);
  REQUIRE(lb.waitExit(5s));
  // Its workers follow it (parent-death signal) and free the port.
  CHECK(waitUntil(
      [&] {
        return std::none_of(workers.begin(), workers.end(),
                            [](pid_t w) { return processAlive(w); });
      },
      5s));
  CHECK(fileExists(lb.file("lb.pid")));   // stale
  CHECK(segmentsOf(killed).size() == 1);  // stale

  std::string why;
  bool started = lb.startProcess(LbOptions{}, &why);
  INFO(why << lb.diagnostics());
  REQUIRE(started);
  CHECK(lb.pid() != killed);
  std::string log = lb.errorLog();
  CHECK(log.find("overwriting stale pid file") != std::string::npos);
  CHECK(log.find("removed 1 shared memory segment left by a master that no longer runs") !=
        std::string::npos);
  CHECK(segmentsOf(killed).empty());
  CHECK(segmentsOf(lb.pid()).size() == 1);
  auto r = get(lb.port(0), "/");
  REQUIRE(r);
  CHECK(r->body.data == "up");
  lb.stop();
  CHECK(segmentsOf(lb.pid()).empty());  // a clean exit removes its own
}

}  // namespace
}  // namespace lb::e2e
