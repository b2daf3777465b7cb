#include "master/cli.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lb::master {
namespace {

constexpr std::string_view kDefault = "/usr/local/etc/lb/lb.conf";

Result<Options> parse(std::vector<std::string_view> words) {
  words.insert(words.begin(), "lb");
  return parseCommandLine(words, kDefault);
}

Options ok(std::vector<std::string_view> words) {
  auto r = parse(std::move(words));
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  return *r;
}

std::string fails(std::vector<std::string_view> words) {
  auto r = parse(std::move(words));
  REQUIRE_FALSE(r);
  return r.error().message;
}

}  // namespace

TEST_CASE("cli: no options runs the master on the default config", "[master]") {
  Options o = ok({});
  CHECK(o.action == Action::Run);
  CHECK(o.config_file == kDefault);
  CHECK_FALSE(o.foreground);
}

TEST_CASE("cli: -c takes the next word or an attached value", "[master]") {
  CHECK(ok({"-c", "/etc/a.conf"}).config_file == "/etc/a.conf");
  CHECK(ok({"-c/etc/b.conf"}).config_file == "/etc/b.conf");
  CHECK(ok({"-c", "a.conf", "-c", "b.conf"}).config_file == "b.conf");  // the last one wins
  CHECK(fails({"-c"}) == "option \"-c\" requires a file name");
  CHECK(fails({"-c", ""}) == "option \"-c\" requires a file name");
}

TEST_CASE("cli: -F keeps the master in the foreground", "[master]") {
  Options o = ok({"-F", "-c", "x.conf"});
  CHECK(o.action == Action::Run);
  CHECK(o.foreground);
  CHECK(o.config_file == "x.conf");
}

TEST_CASE("cli: -t and -T test the configuration", "[master]") {
  CHECK(ok({"-t"}).action == Action::Test);
  CHECK(ok({"-T"}).action == Action::TestDump);
  CHECK(ok({"-t", "-T"}).action == Action::TestDump);  // -T is -t plus the dump
  Options o = ok({"-t", "-c", "f.conf"});
  CHECK(o.config_file == "f.conf");
}

TEST_CASE("cli: -s accepts exactly the four signal names", "[master]") {
  struct Case {
    std::string_view name;
    ControlSignal sig;
    int signo;
  };
  for (const Case& c :
       {Case{"stop", ControlSignal::Stop, SIGTERM}, Case{"quit", ControlSignal::Quit, SIGQUIT},
        Case{"reopen", ControlSignal::Reopen, SIGUSR1},
        Case{"reload", ControlSignal::Reload, SIGHUP}}) {
    Options o = ok({"-s", c.name});
    CHECK(o.action == Action::Signal);
    CHECK(o.signal == c.sig);
    CHECK(controlSignalNumber(o.signal) == c.signo);
    CHECK(controlSignalName(o.signal) == c.name);
    CHECK(ok({std::string("-s") + std::string(c.name)}).signal == c.sig);
  }
  CHECK(fails({"-s", "restart"}) ==
        "invalid signal \"restart\" (expected stop, quit, reopen or reload)");
  CHECK(fails({"-s", "STOP"}).find("invalid signal") == 0);
  CHECK(fails({"-s"}) == "option \"-s\" requires a signal name");
}

TEST_CASE("cli: -s with -c names the instance", "[master]") {
  Options o = ok({"-s", "reload", "-c", "/tmp/x.conf"});
  CHECK(o.action == Action::Signal);
  CHECK(o.signal == ControlSignal::Reload);
  CHECK(o.config_file == "/tmp/x.conf");
}

TEST_CASE("cli: -v and -V print versions, -V wins", "[master]") {
  CHECK(ok({"-v"}).action == Action::Version);
  CHECK(ok({"-V"}).action == Action::VersionBuild);
  CHECK(ok({"-v", "-V"}).action == Action::VersionBuild);
  CHECK(ok({"--version"}).action == Action::Version);
  CHECK(ok({"-v", "-t"}).action == Action::Version);
}

TEST_CASE("cli: --plan goes with -t", "[master]") {
  Options o = ok({"-t", "--plan", "-c", "/x.conf"});
  CHECK(o.action == Action::Test);
  CHECK(o.plan);
  CHECK(o.config_file == "/x.conf");
  CHECK_FALSE(ok({"-t"}).plan);
  CHECK(fails({"--plan"}) == "option --plan goes with -t only");
  CHECK(fails({"-T", "--plan"}) == "option --plan goes with -t only");
}

TEST_CASE("cli: -h wins over every other option", "[master]") {
  CHECK(ok({"-h"}).action == Action::Help);
  CHECK(ok({"-?"}).action == Action::Help);
  CHECK(ok({"--help"}).action == Action::Help);
  CHECK(ok({"-t", "-s", "stop", "-h"}).action == Action::Help);
  CHECK(ok({"-v", "-h"}).action == Action::Help);
}

TEST_CASE("cli: flags can be clustered, an argument ends the cluster", "[master]") {
  Options o = ok({"-Ftc", "c.conf"});
  CHECK(o.foreground);
  CHECK(o.action == Action::Test);
  CHECK(o.config_file == "c.conf");
  Options o2 = ok({"-Fcfile.conf"});
  CHECK(o2.foreground);
  CHECK(o2.config_file == "file.conf");
}

TEST_CASE("cli: bad usage is refused with a one-line reason", "[master]") {
  CHECK(fails({"-x"}) == "invalid option: \"-x\"");
  CHECK(fails({"-Fx"}) == "invalid option: \"-x\"");
  CHECK(fails({"--frobnicate"}) == "invalid option: \"--frobnicate\"");
  CHECK(fails({"lb.conf"}) == "unknown command \"lb.conf\" (expected backends, backend or status)");
  CHECK(fails({"-"}) == "invalid option: \"-\"");
  CHECK(fails({"-t", "-s", "reload"}) == "options -t/-T and -s cannot be combined");
  CHECK(fails({"-T", "-s", "stop"}) == "options -t/-T and -s cannot be combined");
}

TEST_CASE("cli: backends prints the table, --json the machine-readable form", "[master][admin]") {
  Options o = ok({"backends"});
  CHECK(o.action == Action::Backends);
  CHECK_FALSE(o.json);
  CHECK(o.config_file == kDefault);
  // -c and --json go anywhere around the command word.
  Options j = ok({"-c", "/etc/lb.conf", "backends", "--json"});
  CHECK(j.action == Action::Backends);
  CHECK(j.json);
  CHECK(j.config_file == "/etc/lb.conf");
  CHECK(ok({"--json", "backends", "-c/x.conf"}).config_file == "/x.conf");
  CHECK(fails({"backends", "app"}) == "command \"backends\" takes no argument, got \"app\"");
  CHECK(fails({"--json"}) == "option --json goes with the backends and status commands only");
  CHECK(fails({"-t", "--json"}) == "option --json goes with the backends and status commands only");
  CHECK(fails({"backend", "a/b", "drain", "--json"}) ==
        "option --json goes with the backends and status commands only");
}

TEST_CASE("cli: status prints the workers, --json the machine-readable form", "[master][admin]") {
  CHECK(ok({"status"}).action == Action::Status);
  Options j = ok({"status", "--json", "-c", "/etc/lb.conf"});
  CHECK(j.action == Action::Status);
  CHECK(j.json);
  CHECK(j.config_file == "/etc/lb.conf");
  CHECK(fails({"status", "now"}) == "command \"status\" takes no argument, got \"now\"");
}

TEST_CASE("cli: backend POOL/ADDRESS drain, disable, enable", "[master][admin]") {
  struct Case {
    std::string_view word;
    AdminOp op;
  };
  for (const Case& c : {Case{"drain", AdminOp::Drain}, Case{"disable", AdminOp::Disable},
                        Case{"enable", AdminOp::Enable}}) {
    Options o = ok({"backend", "app/10.0.0.1:8080", c.word, "-c", "f.conf"});
    CHECK(o.action == Action::Backend);
    CHECK(o.admin.backend == "app/10.0.0.1:8080");
    CHECK(o.admin.op == c.op);
    CHECK(adminOpName(c.op) == c.word);
    CHECK(o.config_file == "f.conf");
  }
  // IPv6 addresses and pool names with dots are just part of the key.
  CHECK(ok({"backend", "api.v2/[::1]:80", "disable"}).admin.backend == "api.v2/[::1]:80");
}

TEST_CASE("cli: backend POOL/ADDRESS weight N|default", "[master][admin]") {
  Options o = ok({"backend", "app/10.0.0.1:8080", "weight", "5"});
  CHECK(o.action == Action::Backend);
  CHECK(o.admin.op == AdminOp::Weight);
  CHECK(o.admin.weight == 5);
  CHECK(ok({"backend", "p/a:1", "weight", "1"}).admin.weight == 1);
  CHECK(ok({"backend", "p/a:1", "weight", "1000"}).admin.weight == 1000);
  CHECK(ok({"backend", "p/a:1", "weight", "default"}).admin.weight == 0);
  CHECK(ok({"backend", "p/a:1", "weight", "0"}).admin.weight == 0);
  CHECK(ok({"-c", "x", "backend", "p/a:1", "weight", "7", "-c", "y"}).config_file == "y");

  const std::string bad = " (expected 1..1000, or default or 0 for the configured weight)";
  CHECK(fails({"backend", "p/a:1", "weight", "1001"}) == "invalid weight \"1001\"" + bad);
  // The word after "weight" is its value even when it looks like an option.
  CHECK(fails({"backend", "p/a:1", "weight", "-5"}) == "invalid weight \"-5\"" + bad);
  CHECK(fails({"backend", "p/a:1", "weight", "+5"}) == "invalid weight \"+5\"" + bad);
  CHECK(fails({"backend", "p/a:1", "weight", "5x"}) == "invalid weight \"5x\"" + bad);
  CHECK(fails({"backend", "p/a:1", "weight", ""}) == "invalid weight \"\"" + bad);
  CHECK(fails({"backend", "p/a:1", "weight", "99999999999"}) ==
        "invalid weight \"99999999999\"" + bad);
  CHECK(fails({"backend", "p/a:1", "weight"}) ==
        "\"weight\" requires a value: 1..1000, or default");
}

TEST_CASE("cli: backend misuse is refused with a one-line reason", "[master][admin]") {
  const std::string usage =
      "command \"backend\" takes POOL/ADDRESS and one of: weight N, drain, disable, enable";
  CHECK(fails({"backend"}) == usage);
  CHECK(fails({"backend", "app/10.0.0.1:80"}) == usage);
  CHECK(fails({"backend", "10.0.0.1:80", "drain"}) ==
        "backend \"10.0.0.1:80\" must be written POOL/ADDRESS (see lb backends)");
  CHECK(fails({"backend", "/10.0.0.1:80", "drain"}) ==
        "backend \"/10.0.0.1:80\" must be written POOL/ADDRESS (see lb backends)");
  CHECK(fails({"backend", "app/", "drain"}) ==
        "backend \"app/\" must be written POOL/ADDRESS (see lb backends)");
  CHECK(fails({"backend", "app/a:1", "remove"}) ==
        "unknown backend operation \"remove\" (expected weight N, drain, disable or enable)");
  CHECK(fails({"backend", "app/a:1", "drain", "now"}) == "unexpected \"now\" after \"drain\"");
  CHECK(fails({"backend", "app/a:1", "weight", "2", "3"}) == "unexpected \"3\" after \"weight\"");
  CHECK(fails({"backens"}) == "unknown command \"backens\" (expected backends, backend or status)");
  // A command goes with -c only; other options would be silently ignored otherwise.
  CHECK(fails({"-s", "reload", "backends"}) ==
        "option -s cannot be combined with a command (\"backends\")");
  CHECK(fails({"backends", "-t"}) == "option -t cannot be combined with a command (\"backends\")");
  CHECK(fails({"-F", "backend", "a/b", "drain"}) ==
        "option -F cannot be combined with a command (\"backend\")");
  // Help and version still win.
  CHECK(ok({"backends", "-h"}).action == Action::Help);
  CHECK(ok({"backend", "x", "-v"}).action == Action::Version);
}

TEST_CASE("cli: parseAdminWeight", "[master][admin]") {
  int w = 42;
  CHECK_FALSE(parseAdminWeight("1001", &w));
  CHECK_FALSE(parseAdminWeight("-1", &w));
  CHECK_FALSE(parseAdminWeight(" 1", &w));
  CHECK_FALSE(parseAdminWeight("Default", &w));
  CHECK(w == 42);  // untouched on failure
  CHECK(parseAdminWeight("007", &w));
  CHECK(w == 7);
  CHECK(parseAdminWeight("default", &w));
  CHECK(w == 0);
}

TEST_CASE("cli: parseControlSignal rejects unknown names", "[master]") {
  ControlSignal sig = ControlSignal::Quit;
  CHECK_FALSE(parseControlSignal("", &sig));
  CHECK_FALSE(parseControlSignal("term", &sig));
  CHECK(sig == ControlSignal::Quit);  // untouched on failure
  CHECK(parseControlSignal("reopen", &sig));
  CHECK(sig == ControlSignal::Reopen);
}

TEST_CASE("cli: usage and version texts", "[master]") {
  std::string usage = usageText(kDefault);
  CHECK(usage.rfind("Usage: lb [-c FILE] [-F] [-t [--plan] | -T] [-s stop|quit|reopen|reload] [-v "
                    "| -V] [-h]\n",
                    0) == 0);
  CHECK(usage.find(std::string(kDefault)) != std::string::npos);
  for (const char* opt : {"-c FILE", "-F", "-t", "-T", "-s SIGNAL", "-v", "-V", "-h"}) {
    CHECK(usage.find(std::string("  ") + opt) != std::string::npos);
  }
  CHECK(usage.find("\n       lb backends [--json] [-c FILE]\n") != std::string::npos);
  CHECK(usage.find("\n       lb backend POOL/ADDRESS weight N|default | drain | disable | enable "
                   "[-c FILE]\n") != std::string::npos);
  for (const char* cmd :
       {"backends [--json]", "backend POOL/ADDRESS weight N", "backend POOL/ADDRESS drain",
        "backend POOL/ADDRESS disable", "backend POOL/ADDRESS enable"}) {
    CHECK(usage.find(std::string("\n  ") + cmd + "\n") != std::string::npos);
  }
  CHECK(versionText(false, kDefault) == "lb version " LB_VERSION "\n");
  std::string build = versionText(true, kDefault);
  CHECK(build.rfind("lb version " LB_VERSION "\n", 0) == 0);
  CHECK(build.find("built by ") != std::string::npos);
  CHECK(build.find("default-config=" + std::string(kDefault)) != std::string::npos);
}

}  // namespace lb::master
