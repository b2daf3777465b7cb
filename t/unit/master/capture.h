#pragma once

// What a short-lived command (control.h, admin.h) prints to a FILE*, for the master tests.

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace lb::master {

class Capture {
 public:
  Capture() : file_(std::tmpfile()) { REQUIRE(file_ != nullptr); }
  ~Capture() { std::fclose(file_); }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) {
      out.append(buf, n);
    }
    return out;
  }

 private:
  std::FILE* file_;
};

}  // namespace lb::master
