// man/lb.conf.5 is the contract for operators: it must document every directive the loader
// accepts, in the right context, and no directive the loader would reject.

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>

#include "shared/config/schema.h"

namespace lb::config {
namespace {

const std::string kManPage = LB_TEST_DATA_DIR "/../../man/lb.conf.5";

// Directive names (".It Ic name ...") by subsection (".Ss title").
std::map<std::string, std::set<std::string>> documentedDirectives() {
  std::ifstream in(kManPage);
  REQUIRE(in);
  std::map<std::string, std::set<std::string>> out;
  std::string section;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(".Ss ")) {
      section = line.substr(4);
    } else if (line.starts_with(".Sh ")) {
      section.clear();
    } else if (line.starts_with(".It Ic ") && !section.empty()) {
      std::istringstream words(line.substr(7));
      std::string name;
      words >> name;
      out[section].insert(name);
    }
  }
  return out;
}

std::set<std::string> namesOf(std::span<const std::string_view> names) {
  return {names.begin(), names.end()};
}

TEST_CASE("lb.conf(5) documents exactly the directives of each context", "[config]") {
  auto documented = documentedDirectives();
  const std::map<std::string, std::span<const std::string_view>> contexts = {
      {"Top level", schema::kTopLevel},
      {"error_log", schema::kErrorLog},
      {"access_log", schema::kAccessLog},
      {"http", schema::kLimits},
      {"listeners", schema::kListener},
      {"return", schema::kReturn},
      {"routes", schema::kRouteTable},
      {"rules", schema::kRule},
      {"pools", schema::kPool},
      {"backends", schema::kBackend},
      {"sticky", schema::kSticky},
      {"health_check", schema::kHealthCheck},
      {"retry_budget", schema::kRetryBudget},
      {"passive", schema::kPassive},
      {"circuit_breaker", schema::kCircuitBreaker},
      {"queue", schema::kQueue},
      {"tls", schema::kTls},
      {"certificates", schema::kTlsCertificate},
      {"pool tls", schema::kPoolTls}};
  for (const auto& [context, names] : contexts) {
    INFO("subsection " << context);
    CHECK(documented[context] == namesOf(names));
  }
}

TEST_CASE("lb.conf(5) states the defaults the loader applies", "[config]") {
  std::ifstream in(kManPage);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  // A few defaults that operators look up most; the loader tests pin the same values.
  for (const char* needle :
       {"Default: 60000.\nThe whole request head", "Default: 75000.", "Default: 511.",
        "Default:\n.Qq 16k .", "Default:\n.Qq 1m .", "Default: 16384.", "Default: 10000.",
        "Default:\n.Pa /run/lb.pid .", "Default:\n.Pa /var/log/lb/error.log .", "Default: 5000.",
        "Default: 64.", "Default:\n.Qq round_robin ."}) {
    INFO(needle);
    CHECK(text.str().find(needle) != std::string::npos);
  }
}

}  // namespace
}  // namespace lb::config
