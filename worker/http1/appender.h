#pragma once

// Appends text into a fixed buffer and remembers whether it all fit, so a head is built with no
// allocation and checked once at the end.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace lb::worker::http1 {

class Appender {
 public:
  Appender(char* buf, size_t cap) : begin_(buf), p_(buf), end_(buf + cap) {}
  Appender& operator<<(std::string_view s) {
    if (s.empty()) {
      return *this;  // its data() may be null, which memcpy must not see even for 0 bytes
    }
    if (static_cast<size_t>(end_ - p_) < s.size()) {
      ok_ = false;
      return *this;
    }
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  Appender& operator<<(uint64_t v) {
    char tmp[24];
    char* q = tmp + sizeof(tmp);
    do {
      *--q = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    return *this << std::string_view(q, static_cast<size_t>(tmp + sizeof(tmp) - q));
  }
  // A dotted-quad IPv4 address (inet_ntop formats through snprintf, which shows in profiles).
  Appender& ipv4(const uint8_t a[4]) {
    for (int i = 0; i < 4; ++i) {
      if (i > 0) {
        *this << ".";
      }
      *this << static_cast<uint64_t>(a[i]);
    }
    return *this;
  }
  // "name: value\r\n"
  void header(std::string_view name, std::string_view value) {
    *this << name << ": " << value << "\r\n";
  }
  bool ok() const { return ok_; }
  size_t size() const { return static_cast<size_t>(p_ - begin_); }

 private:
  char* begin_;
  char* p_;
  char* end_;
  bool ok_ = true;
};

}  // namespace lb::worker::http1
