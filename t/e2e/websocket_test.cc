// WebSocket through lb with real peers (node's "ws", t/e2e/tools/ws.js): the handshake is
// forwarded with its Upgrade, the 101 turns the connection into a tunnel, and small, 1 MiB and
// fragmented messages echo intact on many connections at once, in plain and over TLS. A refused
// handshake is an ordinary response; a silent tunnel closes after tunnel_timeout_ms; a reload
// leaves open tunnels working until worker_shutdown_timeout_ms, then closes them.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <thread>

#include "e2e/harness/e2e.h"
#include "e2e/harness/pki.h"

namespace lb::e2e {
namespace {

const std::string kTool = std::string(LB_TEST_DATA_DIR) + "/../e2e/tools/ws.js";

// node finds Debian's node-ws through NODE_PATH.
std::vector<std::string> node(std::vector<std::string> args) {
  ::setenv("NODE_PATH", "/usr/share/nodejs", 0);
  args.insert(args.begin(), {findProgram("node"), kTool});
  return args;
}

// The echo server of ws.js, stopped with the test.
class WsServer {
 public:
  explicit WsServer(const std::string& dir) : dir_(dir) {
    pid_ = spawnProcess(node({"server", dir + "/ws.port"}), dir + "/ws.out");
    REQUIRE(pid_ > 0);
    INFO(readFile(dir + "/ws.out"));
    REQUIRE(waitUntil([&] { return !readFile(dir + "/ws.port").empty(); }, 10s));
    address_ = "127.0.0.1:" + readFile(dir + "/ws.port");
  }
  ~WsServer() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!waitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 5s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  const std::string& address() const { return address_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  std::string address_;
};

std::string wsUrl(int port, const std::string& path = "/") {
  return "ws://127.0.0.1:" + std::to_string(port) + path;
}

TEST_CASE("websocket: messages small, 1 MiB and fragmented echo on 20 tunnels at once",
          "[websocket]") {
  LbInstance lb;
  WsServer ws(lb.dir());
  lb.start(singlePoolConfig({ws.address()}), {.workers = 2});
  auto r = runCommand(node({"client", wsUrl(lb.port(0)), "--connections", "20"}), 60s);
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"ok\":20") != std::string::npos);
  // One access log line per tunnel, status 101, once it ended.
  CHECK(waitUntil(
      [&] {
        auto lines = lb.accessLogLines();
        return std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
                 return l.find("\"GET / HTTP/1.1\" 101 ") != std::string::npos;
               }) == 20;
      },
      10s));
}

TEST_CASE("websocket: a tunnel through TLS", "[websocket][tls]") {
  LbInstance lb;
  WsServer ws(lb.dir());
  Pki pki(lb.dir());
  pki.ca("ca", "lb test CA");
  pki.make("a", "ca", "a.test", "DNS:a.test,IP:127.0.0.1");
  lb.start(
      "listeners = ( { listen = \"127.0.0.1:@PORT_0@\"; pool = \"p\";\n"
      "  tls = { certificates = ( " +
      pki.cert("a") + " ); }; } );\npools = ( " + poolBlock("p", {ws.address()}) + " );\n");
  auto r = runCommand(node({"client", "wss://127.0.0.1:" + std::to_string(lb.port(0)) + "/", "--ca",
                            pki.path("ca.pem"), "--connections", "5"}),
                      60s);
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"ok\":5") != std::string::npos);
}

TEST_CASE("websocket: a refused handshake is an ordinary response", "[websocket]") {
  LbInstance lb;
  WsServer ws(lb.dir());
  lb.start(singlePoolConfig({ws.address()}));
  auto r = runCommand(node({"client", wsUrl(lb.port(0), "/reject")}), 30s);
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("Unexpected server response: 403") != std::string::npos);
  CHECK(waitUntil(
      [&] { return lb.accessLog().find("\"GET /reject HTTP/1.1\" 403") != std::string::npos; },
      5s));
}

TEST_CASE("websocket: a silent tunnel closes after tunnel_timeout_ms", "[websocket]") {
  LbInstance lb;
  WsServer ws(lb.dir());
  lb.start(singlePoolConfig({ws.address()}, "", "", "http = { tunnel_timeout_ms = 700; };"));
  auto r = runCommand(node({"idle", wsUrl(lb.port(0))}), 30s);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"close\":1006") != std::string::npos);  // closed under it, no close frame
  int lived = std::atoi(r.out.substr(r.out.find("\"lived_ms\":") + 11).c_str());
  CHECK(lived >= 650);
  CHECK(lived < 5000);
  CHECK(waitUntil(
      [&] { return lb.errorLog().find("idle for 700 ms, closing") != std::string::npos; }, 5s));
}

TEST_CASE("websocket: a reload leaves tunnels working until worker_shutdown_timeout_ms",
          "[websocket][reload]") {
  LbInstance lb;
  WsServer ws(lb.dir());
  lb.start("worker_shutdown_timeout_ms = 3000;\n" + singlePoolConfig({ws.address()}));
  const std::string ready = lb.dir() + "/ready";
  const std::string go = lb.dir() + "/go";
  CommandResult held;
  std::thread client([&] { held = runCommand(node({"hold", wsUrl(lb.port(0)), ready, go}), 30s); });
  REQUIRE(waitUntil([&] { return !readFile(ready).empty(); }, 10s));
  auto reload = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(reload.describe());
  CHECK(reload.exit_code == 0);
  // A new tunnel goes to the new generation while the old one still works.
  auto fresh = runCommand(node({"client", wsUrl(lb.port(0)), "--big", "1000"}), 30s);
  writeFile(go, "go");
  client.join();
  INFO(held.describe() << fresh.describe());
  CHECK(fresh.exit_code == 0);
  REQUIRE(held.exit_code == 0);
  CHECK(held.out.find("\"echoes\":[\"before\",\"after\"]") != std::string::npos);
  CHECK(held.out.find("\"close\":1006") != std::string::npos);
  int after = std::atoi(held.out.substr(held.out.find("\"after_go_ms\":") + 14).c_str());
  CHECK(after < 4000);  // closed by the old worker's shutdown timeout, not by the client's
}

}  // namespace
}  // namespace lb::e2e
