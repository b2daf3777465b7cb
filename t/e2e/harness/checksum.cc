#include "e2e/harness/checksum.h"

#include <cstdio>

namespace lb::e2e {

void Checksum::update(std::string_view data) {
  uint64_t h = hash_;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  hash_ = h;
  length_ += data.size();
}

std::string Checksum::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash_));
  return buf;
}

std::string checksumHex(std::string_view data) {
  Checksum c;
  c.update(data);
  return c.hex();
}

void fillPattern(uint64_t offset, char* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = patternByte(offset + i);
  }
}

std::string pattern(uint64_t offset, size_t n) {
  std::string s(n, '\0');
  fillPattern(offset, s.data(), n);
  return s;
}

std::string patternChecksumHex(uint64_t n) {
  Checksum c;
  std::string block(1 << 16, '\0');
  for (uint64_t off = 0; off < n; off += block.size()) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(block.size(), n - off));
    fillPattern(off, block.data(), len);
    c.update(std::string_view(block.data(), len));
  }
  return c.hex();
}

}  // namespace lb::e2e
