// The Catch2 listener below needs the reporter interfaces, which catch.hpp only declares on
// request.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "e2e/harness/temp_dir.h"

#include <ftw.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace lb::e2e {

namespace {

std::mutex g_mutex;
std::vector<std::string> g_pending;  // directories of the running test case

int removeEntry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

// Decides the fate of the test case's directories once Catch2 knows the verdict.
class TempDirListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    std::vector<std::string> dirs;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      dirs.swap(g_pending);
    }
    bool failed = stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0;
    for (const auto& d : dirs) {
      if (failed || std::getenv("LB_E2E_KEEP") != nullptr) {
        std::cerr << "e2e: kept test directory " << d << "\n";
      } else {
        removeTree(d);
      }
    }
  }
};

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/lb-e2e-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_pending.push_back(path_);
}

std::string TempDir::file(const std::string& name) const {
  return path_ + "/" + name;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

bool fileExists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

void removeTree(const std::string& path) {
  ::nftw(path.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace lb::e2e

// The registration macro pastes the type into an identifier, so it needs an unqualified name.
using LbE2eTempDirListener = lb::e2e::TempDirListener;
CATCH_REGISTER_LISTENER(LbE2eTempDirListener)
