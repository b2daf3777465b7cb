// Run-time control of backends on a segment the test creates: the rows `lb backends` shows,
// their table and JSON forms, writing admin_state / admin_weight, what a reload's slot
// assignment does to those fields, who may attach, and the commands end to end through a pid
// file naming a stand-in master.

#include "master/admin.h"

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "master/control.h"
#include "master/pidfile.h"
#include "shared/config/load.h"
#include "shared/shm/segment.h"
#include "unit/master/capture.h"

namespace lb::master {
namespace {

constexpr char kTwoPools[] = R"(
  listeners = ( { listen = "127.0.0.1:1"; pool = "app"; } );
  pools = (
    { name = "app"; backends = ( { address = "10.0.0.1:80"; weight = 3; },
                                 { address = "10.0.0.2:80"; } ); },
    { name = "api"; backends = ( { address = "[::1]:8080"; weight = 2; } ); }
  );
)";

config::Config mustLoad(const std::string& text) {
  auto c = config::loadConfigFromString(text, "test.conf");
  INFO((c ? std::string() : c.error()[0].toString()));
  REQUIRE(c);
  return std::move(*c);
}

// A segment of its own, with the slots of `config` assigned as the master does at start.
class TestSegment {
 public:
  explicit TestSegment(config::Config& config) {
    static int counter = 0;
    name_ = "lb.unit-admin." + std::to_string(::getpid()) + "." + std::to_string(++counter);
    auto seg = shm::SharedSegment::create(name_);
    INFO((seg ? std::string() : seg.error().message));
    REQUIRE(seg);
    segment_ = std::move(*seg);
    REQUIRE(segment_->assignSlots(config));
  }
  ~TestSegment() { shm::SharedSegment::remove(name_); }
  shm::Segment& operator*() { return *segment_->get(); }
  shm::SharedSegment& shared() { return *segment_; }
  shm::BackendSlot& slot(const config::Config& c, size_t pool, size_t backend) {
    return segment_->get()->backends[c.pools[pool].backends[backend].slot];
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::unique_ptr<shm::SharedSegment> segment_;
};

AdminCommand command(const std::string& backend, AdminOp op, int weight = 0) {
  return AdminCommand{backend, op, weight};
}

AdminChange mustApply(shm::Segment& segment, const AdminCommand& cmd,
                      const config::Config* running) {
  auto change = applyAdminCommand(segment, cmd, running);
  INFO((change ? std::string() : change.error().message));
  REQUIRE(change);
  return *change;
}

}  // namespace

TEST_CASE("admin: rows follow the running config and read every counter", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  shm::BackendSlot& a1 = seg.slot(c, 0, 0);
  a1.active = 3;
  a1.requests = 120;
  a1.failures = 4;
  a1.connections = 9;
  a1.bytes_sent = 1000;
  a1.bytes_received = 2000;
  a1.ewma_us16 = 1500 * 16;
  a1.health = static_cast<uint32_t>(shm::HealthState::Down);
  a1.health_changed_ms = 1000;
  seg.slot(c, 0, 1).admin_state = static_cast<uint32_t>(shm::AdminState::Draining);
  seg.slot(c, 1, 0).admin_weight = 50;

  auto rows = backendRows(*seg, &c, 4000);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].pool == "app");
  CHECK(rows[0].address == "10.0.0.1:80");
  CHECK(rows[0].config_weight == 3);
  CHECK(rows[0].effectiveWeight() == 3);
  CHECK(rows[0].active == 3);
  CHECK(rows[0].requests == 120);
  CHECK(rows[0].failures == 4);
  CHECK(rows[0].connections == 9);
  CHECK(rows[0].bytes_sent == 1000);
  CHECK(rows[0].bytes_received == 2000);
  CHECK(rows[0].ewma_us == 1500);
  CHECK(rows[0].health == shm::HealthState::Down);
  CHECK(rows[0].health_age_ms == 3000);
  CHECK(rows[1].address == "10.0.0.2:80");
  CHECK(rows[1].state == shm::AdminState::Draining);
  CHECK(rows[1].config_weight == 1);
  CHECK(rows[2].pool == "api");
  CHECK(rows[2].address == "[::1]:8080");
  CHECK(rows[2].config_weight == 2);
  CHECK(rows[2].admin_weight == 50);
  CHECK(rows[2].effectiveWeight() == 50);

  // Without the running configuration: every slot in use, by key, weights unknown.
  auto bare = backendRows(*seg, nullptr, 4000);
  REQUIRE(bare.size() == 3);
  CHECK(bare[0].pool == "api");
  CHECK(bare[0].address == "[::1]:8080");
  CHECK(bare[0].config_weight == -1);
  CHECK(bare[0].effectiveWeight() == 50);
  CHECK(bare[1].address == "10.0.0.1:80");
  CHECK(bare[1].effectiveWeight() == -1);
}

TEST_CASE("admin: the table aligns columns and shows EWMA in us, ms or s", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  seg.slot(c, 0, 0).requests = 1234567;
  seg.slot(c, 0, 0).active = 12;
  seg.slot(c, 0, 0).ewma_us16 = 16 * 850;
  seg.slot(c, 0, 1).ewma_us16 = 16 * 12345;
  seg.slot(c, 0, 1).admin_state = static_cast<uint32_t>(shm::AdminState::Disabled);
  seg.slot(c, 1, 0).ewma_us16 = 16 * 12'500'000ULL;
  seg.slot(c, 1, 0).admin_weight = 1000;
  seg.slot(c, 1, 0).health = static_cast<uint32_t>(shm::HealthState::Down);
  seg.slot(c, 1, 0).passive_until_ms = 500;  // down by the checks: that is what HEALTH says
  seg.slot(c, 1, 0).breaker_state = static_cast<uint32_t>(shm::BreakerState::HalfOpen);
  seg.slot(c, 0, 1).passive_until_ms = 200;  // passive health holds it out until then
  seg.slot(c, 0, 1).breaker_state = static_cast<uint32_t>(shm::BreakerState::Open);

  // Two spaces between columns; numbers right-aligned.
  const std::string expected[] = {
      "POOL  ADDRESS      WEIGHT  EFFECTIVE  STATE     HEALTH  BREAKER    ACTIVE  REQUESTS  "
      "FAILURES"
      "    EWMA",
      "app   10.0.0.1:80       3          3  enabled   up      closed         12   1234567         "
      "0"
      "   850us",
      "app   10.0.0.2:80       1          1  disabled  failed  open            0         0         "
      "0"
      "  12.3ms",
      "api   [::1]:8080        2       1000  enabled   down    half-open       0         0         "
      "0"
      "   12.5s",
  };
  std::string joined;
  for (const std::string& line : expected) {
    joined += line + "\n";
  }
  CHECK(formatBackendTable(backendRows(*seg, &c, 100)) == joined);
  // Once the passive period is over, health reads "up" again.
  CHECK(formatBackendTable(backendRows(*seg, &c, 200)).find("disabled  up      open") !=
        std::string::npos);
  CHECK(formatBackendTable({}) ==
        "POOL  ADDRESS  WEIGHT  EFFECTIVE  STATE  HEALTH  BREAKER  ACTIVE  REQUESTS  FAILURES  "
        "EWMA\n");
  // Unknown weights and no response yet.
  CHECK(formatBackendTable(backendRows(*seg, nullptr, 0))
            .find("api   [::1]:8080        -       1000") != std::string::npos);
}

TEST_CASE("admin: the JSON form has one object per backend", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  seg.slot(c, 0, 0).requests = 7;
  seg.slot(c, 0, 0).ewma_us16 = 16 * 2000;
  seg.slot(c, 1, 0).admin_weight = 9;
  seg.slot(c, 1, 0).admin_state = static_cast<uint32_t>(shm::AdminState::Draining);
  std::string json = formatBackendJson(backendRows(*seg, &c, 0), 4242, 3);
  CHECK(json ==
        "{\"master_pid\": 4242, \"generation\": 3, \"backends\": [\n"
        "  {\"pool\": \"app\", \"address\": \"10.0.0.1:80\", \"in_config\": true, \"weight\": 3, "
        "\"admin_weight\": 0, \"effective_weight\": 3, \"state\": \"enabled\", \"health\": "
        "\"up\", \"health_age_ms\": 0, \"passive_failed_ms\": 0, \"breaker\": \"closed\", "
        "\"active\": 0, \"requests\": 7, \"failures\": 0, "
        "\"connections\": 0, \"bytes_sent\": 0, \"bytes_received\": 0, \"ewma_us\": 2000},\n"
        "  {\"pool\": \"app\", \"address\": \"10.0.0.2:80\", \"in_config\": true, \"weight\": 1, "
        "\"admin_weight\": 0, \"effective_weight\": 1, \"state\": \"enabled\", \"health\": "
        "\"up\", \"health_age_ms\": 0, \"passive_failed_ms\": 0, \"breaker\": \"closed\", "
        "\"active\": 0, \"requests\": 0, \"failures\": 0, "
        "\"connections\": 0, \"bytes_sent\": 0, \"bytes_received\": 0, \"ewma_us\": 0},\n"
        "  {\"pool\": \"api\", \"address\": \"[::1]:8080\", \"in_config\": true, \"weight\": 2, "
        "\"admin_weight\": 9, \"effective_weight\": 9, \"state\": \"draining\", \"health\": "
        "\"up\", \"health_age_ms\": 0, \"passive_failed_ms\": 0, \"breaker\": \"closed\", "
        "\"active\": 0, \"requests\": 0, \"failures\": 0, "
        "\"connections\": 0, \"bytes_sent\": 0, \"bytes_received\": 0, \"ewma_us\": 0}\n"
        "]}\n");
  CHECK(formatBackendJson({}, 1, 1) ==
        "{\"master_pid\": 1, \"generation\": 1, \"backends\": []}\n");

  BackendRow odd;
  odd.pool = "p";
  odd.address = "a\"b\\c\x01";
  std::string escaped = formatBackendJson({odd}, 1, 1);
  CHECK(escaped.find("\"address\": \"a\\\"b\\\\c\\u0001\"") != std::string::npos);
  CHECK(escaped.find("\"in_config\": false, \"weight\": null") != std::string::npos);
  CHECK(escaped.find("\"effective_weight\": null") != std::string::npos);
}

TEST_CASE("admin: drain, disable and enable write admin_state and say what changed",
          "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  shm::BackendSlot& s = seg.slot(c, 0, 1);
  s.active = 2;
  s.admin_weight = 4;

  AdminChange d = mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Drain), &c);
  CHECK(s.admin_state.load() == static_cast<uint32_t>(shm::AdminState::Draining));
  CHECK(d.old_state == shm::AdminState::Enabled);
  CHECK(d.new_state == shm::AdminState::Draining);
  CHECK(describeChange(d) ==
        "backend app/10.0.0.2:80: enabled -> draining (no new requests; 2 connections in flight "
        "finish)");
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Drain), &c)) ==
        "backend app/10.0.0.2:80: already draining");

  s.active = 1;
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Disable), &c)) ==
        "backend app/10.0.0.2:80: draining -> disabled (no new requests; 1 connection in flight)");
  CHECK(s.admin_state.load() == static_cast<uint32_t>(shm::AdminState::Disabled));

  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Enable), &c)) ==
        "backend app/10.0.0.2:80: disabled -> enabled (takes new requests again)");
  CHECK(s.admin_state.load() == static_cast<uint32_t>(shm::AdminState::Enabled));
  CHECK(s.admin_weight.load() == 4);  // enable leaves the weight override alone
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Enable), &c)) ==
        "backend app/10.0.0.2:80: already enabled");

  // Enabling a backend the health checks hold down says why it still gets nothing.
  mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Disable), &c);
  s.health = static_cast<uint32_t>(shm::HealthState::Down);
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Enable), &c)) ==
        "backend app/10.0.0.2:80: disabled -> enabled (health checks say it is down: it takes "
        "requests once they pass)");

  // The other slots never moved.
  CHECK(seg.slot(c, 0, 0).admin_state.load() == 0);
  CHECK(seg.slot(c, 1, 0).admin_state.load() == 0);
}

TEST_CASE("admin: weight N overrides the configured weight, default goes back", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  shm::BackendSlot& s = seg.slot(c, 0, 0);

  AdminChange w = mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 10), &c);
  CHECK(s.admin_weight.load() == 10);
  CHECK(w.old_weight == 0);
  CHECK(w.new_weight == 10);
  CHECK(w.config_weight == 3);
  CHECK(describeChange(w) == "backend app/10.0.0.1:80: weight 3 (configured) -> 10");
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 10), &c)) ==
        "backend app/10.0.0.1:80: weight is already 10");
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 0), &c)) ==
        "backend app/10.0.0.1:80: weight 10 -> 3 (configured)");
  CHECK(s.admin_weight.load() == 0);

  // A weight change keeps the admin state, and says so.
  mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Drain), &c);
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 1), &c)) ==
        "backend app/10.0.0.1:80: weight 3 (configured) -> 1 (it stays draining)");
  CHECK(s.admin_state.load() == static_cast<uint32_t>(shm::AdminState::Draining));

  // Without the running configuration the configured weight is not known by number.
  CHECK(describeChange(mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 0), nullptr)) ==
        "backend app/10.0.0.1:80: weight 1 -> the configured weight (it stays draining)");
}

TEST_CASE("admin: an unknown backend changes nothing and names the known ones", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  auto same_pool = applyAdminCommand(*seg, command("app/10.0.0.3:80", AdminOp::Disable), &c);
  REQUIRE_FALSE(same_pool);
  CHECK(same_pool.error().message ==
        "unknown backend \"app/10.0.0.3:80\": the backends of pool \"app\" are: "
        "app/10.0.0.1:80, app/10.0.0.2:80");
  auto no_pool = applyAdminCommand(*seg, command("web/10.0.0.1:80", AdminOp::Weight, 5), &c);
  REQUIRE_FALSE(no_pool);
  CHECK(no_pool.error().message ==
        "unknown backend \"web/10.0.0.1:80\": there is no pool \"web\"; known backends: "
        "api/[::1]:8080, app/10.0.0.1:80, app/10.0.0.2:80");
  // Address spelled differently from the configuration: the key is compared as written.
  CHECK_FALSE(applyAdminCommand(*seg, command("api/::1:8080", AdminOp::Drain), &c));
  for (const auto& row : backendRows(*seg, &c, 0)) {
    CHECK(row.state == shm::AdminState::Enabled);
    CHECK(row.admin_weight == 0);
  }
}

TEST_CASE("admin: a long list of known backends is cut", "[master][admin]") {
  std::string backends;
  for (int i = 1; i <= 25; ++i) {
    backends += (i == 1 ? "" : ", ") + std::string("{ address = \"10.0.1.") + std::to_string(i) +
                ":80\"; }";
  }
  config::Config c = mustLoad(
      "listeners = ( { listen = \"127.0.0.1:1\"; pool = \"big\"; } );\n"
      "pools = ( { name = \"big\"; backends = ( " +
      backends + " ); } );\n");
  TestSegment seg(c);
  auto r = applyAdminCommand(*seg, command("big/10.0.9.9:80", AdminOp::Drain), &c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find(" and 5 more (see lb backends)") != std::string::npos);
}

// What man/lb.8 promises about a reload: the master's slot assignment keeps the slot, and so the
// admin fields, of a backend the new configuration keeps; a removed backend's go with its slot.
TEST_CASE("admin: a reload keeps the changes of kept backends and drops removed ones",
          "[master][admin]") {
  config::Config c1 = mustLoad(kTwoPools);
  TestSegment seg(c1);
  mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Disable), &c1);
  mustApply(*seg, command("app/10.0.0.1:80", AdminOp::Weight, 7), &c1);
  mustApply(*seg, command("app/10.0.0.2:80", AdminOp::Drain), &c1);

  // Generation 2 keeps 10.0.0.1 (with another configured weight), drops 10.0.0.2, adds .3.
  config::Config c2 = mustLoad(R"(
    listeners = ( { listen = "127.0.0.1:1"; pool = "app"; } );
    pools = ( { name = "app"; backends = ( { address = "10.0.0.1:80"; weight = 5; },
                                           { address = "10.0.0.3:80"; } ); } );
  )");
  REQUIRE(seg.shared().assignSlots(c2, /*release_unnamed=*/false));
  CHECK(c2.pools[0].backends[0].slot == c1.pools[0].backends[0].slot);

  auto rows = backendRows(*seg, &c2, 0);
  REQUIRE(rows.size() == 4);  // generation 1 still drains: its removed backends stay listed
  CHECK(rows[0].address == "10.0.0.1:80");
  CHECK(rows[0].state == shm::AdminState::Disabled);
  CHECK(rows[0].config_weight == 5);
  CHECK(rows[0].effectiveWeight() == 7);
  CHECK(rows[1].address == "10.0.0.3:80");
  CHECK(rows[1].state == shm::AdminState::Enabled);
  CHECK(rows[2].pool == "api");
  CHECK(rows[2].config_weight == -1);
  CHECK(rows[3].address == "10.0.0.2:80");
  CHECK(rows[3].state == shm::AdminState::Draining);
  CHECK(formatBackendTable(rows).find("app   10.0.0.2:80       -          -  draining") !=
        std::string::npos);

  // Generation 1 has exited: its slots go. Re-adding 10.0.0.2 later starts it afresh.
  seg.shared().releaseUnused({&c2});
  CHECK(backendRows(*seg, &c2, 0).size() == 2);
  CHECK_FALSE(applyAdminCommand(*seg, command("app/10.0.0.2:80", AdminOp::Enable), &c2));
  config::Config c3 = mustLoad(R"(
    listeners = ( { listen = "127.0.0.1:1"; pool = "app"; } );
    pools = ( { name = "app"; backends = ( { address = "10.0.0.1:80"; weight = 5; },
                                           { address = "10.0.0.2:80"; } ); } );
  )");
  REQUIRE(seg.shared().assignSlots(c3));
  auto after = backendRows(*seg, &c3, 0);
  REQUIRE(after.size() == 2);
  CHECK(after[0].state == shm::AdminState::Disabled);
  CHECK(after[0].effectiveWeight() == 7);
  CHECK(after[1].address == "10.0.0.2:80");
  CHECK(after[1].state == shm::AdminState::Enabled);
  CHECK(after[1].admin_weight == 0);
}

TEST_CASE("admin: only the segment's owner or root can attach to write", "[master][admin]") {
  if (::geteuid() != 0) {
    SUCCEED("needs root to switch to another user");
    return;
  }
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // nobody: not the owner (root), not in its group.
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(3);
    }
    auto attached = shm::SharedSegment::attach(seg.name());
    if (attached) {
      ::_exit(1);
    }
    ::_exit(attached.error().message.find("Permission denied") != std::string::npos ? 0 : 2);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// Every local user could otherwise read the counters and the running configuration.
TEST_CASE("admin: the segment is created 0600 or 0640", "[master][admin]") {
  config::Config c = mustLoad(kTwoPools);
  TestSegment seg(c);
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + seg.name()).c_str(), &st) == 0);
  const unsigned mode = st.st_mode & 07777;
  INFO("mode " << std::oct << mode);
  CHECK((mode == 0600 || mode == 0640));
}

namespace {

// A stand-in master: a forked child that only waits, with a segment named after its pid and a
// pid file naming it, so the commands find it as they find a real one.
class FakeInstance {
 public:
  FakeInstance() {
    char tmpl[] = "/tmp/lb-admin-test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    config_text_ = std::string("pid = \"") + dir_ + "/lb.pid\";\n" + kTwoPools;
    std::ofstream(configPath()) << config_text_;
    config_ = mustLoad(config_text_);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::alarm(20);
      ::pause();
      ::_exit(0);
    }
    auto seg = shm::SharedSegment::create(shm::SharedSegment::nameFor(dir_ + "/lb.pid", pid_));
    REQUIRE(seg);
    segment_ = std::move(*seg);
    REQUIRE(segment_->assignSlots(config_));
    segment_->get()->header.generation = 2;
    REQUIRE(writePidFile(dir_ + "/lb.pid", pid_));
  }
  ~FakeInstance() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    shm::SharedSegment::remove(segment_->name());
    int rc = std::system(("rm -rf '" + dir_ + "'").c_str());
    (void)rc;
  }
  // Publishes the configuration text as the master does after start and every reload.
  void publishConfig() {
    std::string text = config::dumpConfig(config_);
    shm::ConfigText& t = segment_->get()->config;
    t.sequence.fetch_add(1);
    std::memcpy(t.text, text.data(), text.size());
    t.length = static_cast<uint32_t>(text.size());
    t.sequence.fetch_add(1);
  }
  std::string configPath() const { return dir_ + "/lb.conf"; }
  pid_t pid() const { return pid_; }
  shm::Segment& segment() { return *segment_->get(); }
  const config::Config& config() const { return config_; }

 private:
  std::string dir_;
  std::string config_text_;
  config::Config config_;
  pid_t pid_ = -1;
  std::unique_ptr<shm::SharedSegment> segment_;
};

Options adminOptions(const std::string& config, Action action, bool json = false,
                     AdminCommand admin = {}) {
  Options o;
  o.action = action;
  o.config_file = config;
  o.json = json;
  o.admin = std::move(admin);
  return o;
}

}  // namespace

TEST_CASE("admin: lb backends and lb backend find the instance through its pid file",
          "[master][admin]") {
  FakeInstance lb;
  lb.publishConfig();
  lb.segment().backends[lb.config().pools[0].backends[0].slot].requests = 5;

  Capture out, err;
  CHECK(showBackends(adminOptions(lb.configPath(), Action::Backends), out.file(), err.file()) == 0);
  CHECK(err.text().empty());
  std::string table = out.text();
  CHECK(table.rfind("POOL  ADDRESS", 0) == 0);
  INFO(table);
  CHECK(table.find(
            "\napp   10.0.0.1:80       3          3  enabled  up      closed        0         5") !=
        std::string::npos);

  Capture change, change_err;
  CHECK(controlBackend(adminOptions(lb.configPath(), Action::Backend, false,
                                    command("app/10.0.0.1:80", AdminOp::Weight, 8)),
                       change.file(), change_err.file()) == 0);
  CHECK(change.text() == "backend app/10.0.0.1:80: weight 3 (configured) -> 8\n");
  CHECK(change_err.text().empty());

  Capture json, json_err;
  CHECK(showBackends(adminOptions(lb.configPath(), Action::Backends, true), json.file(),
                     json_err.file()) == 0);
  std::string doc = json.text();
  CHECK(doc.rfind("{\"master_pid\": " + std::to_string(lb.pid()) + ", \"generation\": 2", 0) == 0);
  CHECK(doc.find("\"address\": \"10.0.0.1:80\", \"in_config\": true, \"weight\": 3, "
                 "\"admin_weight\": 8, \"effective_weight\": 8") != std::string::npos);

  Capture unknown, unknown_err;
  CHECK(controlBackend(adminOptions(lb.configPath(), Action::Backend, false,
                                    command("app/10.0.0.9:80", AdminOp::Drain)),
                       unknown.file(), unknown_err.file()) == 1);
  CHECK(unknown.text().empty());
  CHECK(unknown_err.text() ==
        "lb: unknown backend \"app/10.0.0.9:80\": the backends of pool \"app\" are: "
        "app/10.0.0.1:80, app/10.0.0.2:80\n");
}

TEST_CASE("admin: without the published configuration weights show as -", "[master][admin]") {
  FakeInstance lb;
  Capture out, err;
  CHECK(showBackends(adminOptions(lb.configPath(), Action::Backends), out.file(), err.file()) == 0);
  CHECK(err.text() ==
        "lb: warning: the running instance has not published its configuration: configured "
        "weights are not shown\n");
  CHECK(out.text().find("app   10.0.0.1:80       -          -  enabled") != std::string::npos);
}

TEST_CASE("admin: the commands fail clearly when lb does not run", "[master][admin]") {
  char tmpl[] = "/tmp/lb-admin-test.XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/lb.conf") << "pid = \"" << dir << "/lb.pid\";\n" << kTwoPools;
  Capture out, err;
  CHECK(showBackends(adminOptions(dir + "/lb.conf", Action::Backends), out.file(), err.file()) ==
        1);
  CHECK(err.text() == "lb: pid file \"" + dir + "/lb.pid\" does not exist (is lb running?)\n");
  CHECK(out.text().empty());

  Capture bad_out, bad_err;
  std::ofstream(dir + "/lb.conf") << "pid = 5;\n";
  CHECK(controlBackend(adminOptions(dir + "/lb.conf", Action::Backend, false,
                                    command("app/10.0.0.1:80", AdminOp::Drain)),
                       bad_out.file(), bad_err.file()) == 1);
  CHECK(bad_err.text().find("has errors: cannot find the running instance") != std::string::npos);
  int rc = std::system(("rm -rf '" + dir + "'").c_str());
  (void)rc;
}

}  // namespace lb::master
