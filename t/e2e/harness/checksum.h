#pragma once

// A deterministic byte pattern and a streaming checksum, so large bodies can be generated,
// forwarded and verified piecewise on both ends without keeping them in memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lb::e2e {

// FNV-1a, 64 bit. Not cryptographic: it only has to notice a lost, duplicated or reordered byte.
class Checksum {
 public:
  void update(std::string_view data);
  uint64_t value() const { return hash_; }
  uint64_t length() const { return length_; }
  // 16 lowercase hex digits.
  std::string hex() const;

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
  uint64_t length_ = 0;
};

std::string checksumHex(std::string_view data);

// Byte `offset` of the pattern. The pattern has no short period, so an offset error shows.
inline char patternByte(uint64_t offset) {
  uint64_t x = offset * 0x9E3779B97F4A7C15ULL;
  return static_cast<char>((x >> 56) ^ (offset >> 10));
}

// Writes `n` pattern bytes starting at pattern offset `offset` into `out`.
void fillPattern(uint64_t offset, char* out, size_t n);
// The pattern bytes [offset, offset + n) as a string.
std::string pattern(uint64_t offset, size_t n);
// Checksum of the first `n` pattern bytes.
std::string patternChecksumHex(uint64_t n);

}  // namespace lb::e2e
