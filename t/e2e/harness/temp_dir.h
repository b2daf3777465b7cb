#pragma once

// A scratch directory per test, like nginx-tests' $t->testdir(): created under /tmp, removed
// when the test case passed and kept (its path printed) when it failed, so the logs and the
// config of a failing run can be read afterwards.

#include <string>

namespace lb::e2e {

class TempDir {
 public:
  // Creates /tmp/lb-e2e-XXXXXX. Throws std::runtime_error if mkdtemp fails.
  TempDir();
  // Registers the directory for removal at the end of the current test case (kept on failure);
  // does not remove it here, because the test's verdict is not known yet.
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string file(const std::string& name) const;

 private:
  std::string path_;
};

// Whole-file helpers; readFile returns "" when the file does not exist.
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);
bool fileExists(const std::string& path);
// Removes a directory tree (best effort).
void removeTree(const std::string& path);

}  // namespace lb::e2e
