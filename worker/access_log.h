#pragma once

// The access log: one line per request, buffered per worker and written with one write(2) when
// the buffer fills or on the flush tick, so logging costs no syscall per request. Reopened on
// USR1. Format (nginx "combined"-like, with upstream facts):
//   127.0.0.1 - - [26/Nov/2026:23:59:00 +0000] "GET / HTTP/1.1" 200 612 "127.0.0.1:8081" 200
//   0.003 0.002
// (client, time, request line, status, response bytes, upstream address, upstream status,
// request time s, upstream time s; "-" where there was no upstream).

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/util/result.h"

namespace lb::worker {

struct AccessEntry {
  uint8_t peer_family = 0;
  const uint8_t* peer_addr = nullptr;
  std::string_view method;
  std::string_view url;
  int http_minor = 1;  // 20 for HTTP/2
  int status = 0;
  uint64_t bytes = 0;
  std::string_view upstream;  // empty: none
  int upstream_status = 0;
  int64_t request_ms = 0;
  int64_t upstream_ms = -1;
};

class AccessLog {
 public:
  ~AccessLog();
  Result<void> open(const std::string& path);
  void write(const AccessEntry& e);
  void flush();
  // USR1: flush, then reopen the same path.
  void reopen();

 private:
  int fd_ = -1;
  std::string path_;
  std::string buf_;
  int64_t time_sec_ = -1;
  char time_str_[40] = {};
};

}  // namespace lb::worker
