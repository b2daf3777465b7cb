// The command line: `lb -t` on good and bad files (errors name file:line and exit 1), `lb -T`
// prints the effective config, -v/-V and -h, an unknown option. None of these starts a server.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

// A complete, valid config that only needs a directory for its paths.
std::string goodConfig(LbInstance& lb) {
  return lb.configText(R"(
    http = { client_max_body_size = "2m"; };
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    routes = "main"; } );
    routes = ( { name = "main"; rules = ( { path_prefix = "/api/"; pool = "api"; },
                                          { return = { status = 200; body = "ok"; }; } ); } );
    pools = ( { name = "api"; algorithm = "least_conn";
                backends = ( { address = "127.0.0.1:@PORT_1@"; weight = 3; } ); } );
  )");
}

TEST_CASE("lb -t accepts a good config", "[cli]") {
  LbInstance lb;
  std::string path = lb.file("good.conf");
  writeFile(path, goodConfig(lb));
  auto res = lb.runLbCommand({"-t", "-c", path});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  CHECK((res.out + res.err).find("lb: configuration file " + path + " test is successful") !=
        std::string::npos);
  // Testing a config starts nothing: no pid file, the port is still free.
  CHECK_FALSE(fileExists(lb.file("lb.pid")));
  CHECK_FALSE(connectTcp(lb.port(0), 200ms).valid());
}

// Writes `text` to bad.conf, runs lb -t on it, and expects exit 1 with "lb: <file>:<line>:"
// and `message` on stderr.
void expectConfigError(LbInstance& lb, const std::string& text, int line,
                       const std::string& message) {
  std::string path = lb.file("bad.conf");
  writeFile(path, lb.expand(text));
  auto res = lb.runLbCommand({"-t", "-c", path});
  INFO("config:\n" << readFile(path));
  INFO(res.describe());
  CHECK(res.exit_code == 1);
  std::string where = "lb: " + path + ":" + std::to_string(line) + ":";
  CHECK(res.err.find(where) != std::string::npos);
  CHECK(res.err.find(message) != std::string::npos);
  CHECK(res.out.find("test is successful") == std::string::npos);
}

TEST_CASE("lb -t reports a syntax error with file and line", "[cli]") {
  LbInstance lb;
  expectConfigError(lb,
                    "worker_processes = 1;\n"
                    "daemon = false;\n"
                    "listeners = ( { name = \"web\" listen = \"127.0.0.1:1\"; } );\n",
                    3, "");
}

TEST_CASE("lb -t reports an unknown directive with file and line", "[cli]") {
  LbInstance lb;
  expectConfigError(lb,
                    "worker_processes = 1;\n"
                    "pid = \"@DIR@/lb.pid\";\n"
                    "\n"
                    "worker_procesess = 2;\n"
                    "listeners = ( { name = \"s\"; listen = \"127.0.0.1:@PORT_0@\";\n"
                    "  return = { status = 200; }; } );\n",
                    4, "worker_procesess");
}

TEST_CASE("lb -t reports a wrong type with file and line", "[cli]") {
  LbInstance lb;
  expectConfigError(lb,
                    "pid = \"@DIR@/lb.pid\";\n"
                    "listeners = ( { name = \"web\"; listen = \"127.0.0.1:@PORT_0@\";\n"
                    "                pool = \"p\"; } );\n"
                    "pools = ( { name = \"p\";\n"
                    "            backends = ( { address = \"127.0.0.1:@PORT_1@\";\n"
                    "                           weight = \"heavy\"; } ); } );\n",
                    6, "weight");
}

TEST_CASE("lb -t reports a route naming a missing pool", "[cli]") {
  LbInstance lb;
  expectConfigError(lb,
                    "pid = \"@DIR@/lb.pid\";\n"
                    "listeners = ( { name = \"web\"; listen = \"127.0.0.1:@PORT_0@\";\n"
                    "                routes = \"main\"; } );\n"
                    "routes = ( { name = \"main\"; rules = (\n"
                    "  { pool = \"nosuchpool\"; } ); } );\n",
                    5, "nosuchpool");
}

TEST_CASE("lb -t reports a bad listen address", "[cli]") {
  LbInstance lb;
  expectConfigError(lb,
                    "pid = \"@DIR@/lb.pid\";\n"
                    "listeners = ( { name = \"web\"; listen = \"127.0.0.1:99999\";\n"
                    "                return = { status = 200; }; } );\n",
                    2, "99999");
}

TEST_CASE("lb -t on a missing file fails", "[cli]") {
  LbInstance lb;
  std::string path = lb.file("does-not-exist.conf");
  auto res = lb.runLbCommand({"-t", "-c", path});
  INFO(res.describe());
  CHECK(res.exit_code == 1);
  CHECK(res.err.find(path) != std::string::npos);
}

TEST_CASE("lb -T prints the effective config with defaults filled in", "[cli]") {
  LbInstance lb;
  std::string path = lb.file("good.conf");
  writeFile(path, goodConfig(lb));
  auto res = lb.runLbCommand({"-T", "-c", path});
  INFO(res.describe());
  CHECK(res.exit_code == 0);
  // Given values and defaults the file did not set.
  CHECK(res.out.find("least_conn") != std::string::npos);
  CHECK(res.out.find("client_header_timeout_ms") != std::string::npos);
  CHECK(res.out.find("keepalive") != std::string::npos);
  // The dump is itself a valid config.
  std::string dumped = lb.file("dumped.conf");
  std::string text = res.out;
  while (text.starts_with("lb: ")) {  // a status line is not part of the dump
    text.erase(0, text.find('\n') == std::string::npos ? text.size() : text.find('\n') + 1);
  }
  writeFile(dumped, text);
  auto again = lb.runLbCommand({"-t", "-c", dumped});
  INFO("re-testing the dump: " << again.describe());
  CHECK(again.exit_code == 0);
}

TEST_CASE("lb -v and -V print the version, -h the usage", "[cli]") {
  LbInstance lb;
  for (std::string flag : {"-v", "-V"}) {
    auto res = lb.runLbCommand({flag});
    INFO(flag << ": " << res.describe());
    CHECK(res.exit_code == 0);
    CHECK((res.out + res.err).find("lb") != std::string::npos);
    CHECK((res.out + res.err).find(".") != std::string::npos);
  }
  auto help = lb.runLbCommand({"-h"});
  INFO(help.describe());
  CHECK(help.exit_code == 0);
  CHECK((help.out + help.err).find("-c") != std::string::npos);
  CHECK((help.out + help.err).find("-s") != std::string::npos);
}

TEST_CASE("an unknown option is an error", "[cli]") {
  LbInstance lb;
  auto res = lb.runLbCommand({"--no-such-option"});
  INFO(res.describe());
  CHECK(res.exit_code != 0);
  CHECK_FALSE(res.err.empty());
  auto bad_signal = lb.runLbCommand({"-s", "explode", "-c", lb.file("none.conf")});
  INFO(bad_signal.describe());
  CHECK(bad_signal.exit_code != 0);
}

}  // namespace
}  // namespace lb::e2e
