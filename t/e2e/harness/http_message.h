#pragma once

// HTTP/1.1 message pieces shared by the raw client and the fake upstreams: header lists, bodies
// kept as checksum + length (+ the first bytes), head parsing and chunked decoding.
// Strict on purpose: the fake upstream uses these to check what lb sends, so a malformed message
// from lb is an error, not something to be lenient about.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "e2e/harness/checksum.h"
#include "e2e/harness/net.h"

namespace lb::e2e {

bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string toLower(std::string_view s);
std::string trim(std::string_view s);
// "a, b,c" -> {"a", "b", "c"} (trimmed, empty elements dropped).
std::vector<std::string> splitList(std::string_view s);

// Header fields in arrival order; names compare case-insensitively.
struct Headers {
  std::vector<std::pair<std::string, std::string>> list;

  void add(std::string name, std::string value) {
    list.emplace_back(std::move(name), std::move(value));
  }
  bool has(std::string_view name) const { return count(name) > 0; }
  size_t count(std::string_view name) const;
  // The first value, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  // The first value, or "".
  std::string value(std::string_view name) const { return get(name).value_or(""); }
  std::vector<std::string> all(std::string_view name) const;
  // Every value of `name` joined with ", " (one field, as RFC 9110 section 5.3 combines them).
  std::string joined(std::string_view name) const;
  // True if a comma-separated field (Connection, Transfer-Encoding) has `token`.
  bool hasToken(std::string_view name, std::string_view token) const;
};

// A body as received: its length and checksum always, the bytes themselves up to a limit.
struct Body {
  explicit Body(size_t store_limit = 16u << 20) : store_limit(store_limit) {}
  void append(std::string_view data);
  uint64_t length() const { return sum.length(); }
  std::string checksum() const { return sum.hex(); }

  std::string data;  // the first store_limit bytes
  bool truncated = false;
  size_t store_limit;
  Checksum sum;
};

// Splits a head (start line + fields + empty line, CRLF-terminated) into the start line and the
// fields. Rejects bare LF, obs-fold, whitespace before ':', empty or non-token names and control
// characters in values; `*error` says what was wrong.
bool parseHead(std::string_view head, std::string* start_line, Headers* headers,
               std::string* error);

// Reads a chunked body from `in` into `body` and the trailer fields into `trailers`. IoStatus
// Error with `*error` set on a framing error.
IoStatus readChunked(Stream& in, Deadline deadline, Body* body, Headers* trailers,
                     std::string* error);

// Encodes `data` as chunks of at most `chunk_size` bytes, with the last chunk and no trailers.
std::string chunked(std::string_view data, size_t chunk_size = 4096);

}  // namespace lb::e2e
