#include "worker/http1/headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "worker/http1/appender.h"

namespace lb::worker::http1 {

bool HeadArena::append(Span* s, const char* p, size_t n) {
  if (n > cap_ - used_) {
    overflow_ = true;
    return false;
  }
  // Pieces of one element arrive consecutively, so the span just grows.
  if (s->len == 0) {
    s->off = used_;
  }
  std::memcpy(buf_ + used_, p, n);
  used_ += static_cast<uint32_t>(n);
  s->len += static_cast<uint32_t>(n);
  return true;
}

bool HeadArena::appendUrl(const char* p, size_t n) {
  return append(&url_, p, n);
}
bool HeadArena::appendStatus(const char* p, size_t n) {
  return append(&status_, p, n);
}

bool HeadArena::appendName(const char* p, size_t n) {
  if (!in_name_) {
    if (count_ == kMaxHeaders) {
      too_many_ = true;
      return false;
    }
    fields_[count_++] = {};
    in_name_ = true;
  }
  return append(&fields_[count_ - 1].name, p, n);
}

bool HeadArena::appendValue(const char* p, size_t n) {
  return append(&fields_[count_ - 1].value, p, n);
}

std::string_view HeadArena::find(std::string_view name) const {
  for (int i = 0; i < count_; ++i) {
    if (equalsIgnoreCase(this->name(i), name)) {
      return value(i);
    }
  }
  return {};
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) {
      continue;
    }
    unsigned char lx = x | 0x20;
    if (lx != (y | 0x20) || lx < 'a' || lx > 'z') {
      return false;
    }
  }
  return true;
}

bool isHopByHop(std::string_view n) {
  switch (n.size()) {
    case 2:
      return equalsIgnoreCase(n, "te");
    case 7:
      return equalsIgnoreCase(n, "upgrade") || equalsIgnoreCase(n, "trailer");
    case 10:
      return equalsIgnoreCase(n, "connection") || equalsIgnoreCase(n, "keep-alive");
    case 14:
      return equalsIgnoreCase(n, "content-length");
    case 16:
      return equalsIgnoreCase(n, "proxy-connection");
    case 17:
      return equalsIgnoreCase(n, "transfer-encoding");
    default:
      return false;
  }
}

bool followsObsFold(const char* buf_begin, const char* at, size_t n, char before) {
  if (buf_begin == nullptr) {
    return false;
  }
  // An empty value ("X-Empty:" then CRLF) comes as a zero-length piece right after the line's
  // CRLF: no fold. A fold's piece starts after the whitespace that opens its line.
  if (n == 0 && (at == buf_begin || at[-1] == '\n')) {
    return false;
  }
  const char* q = at;
  while (q > buf_begin && (q[-1] == ' ' || q[-1] == '\t')) {
    --q;
  }
  return (q > buf_begin ? q[-1] : before) == '\n';
}

char lastNonBlank(const char* begin, const char* end, char fallback) {
  while (end > begin) {
    --end;
    if (*end != ' ' && *end != '\t') {
      return *end;
    }
  }
  return fallback;
}

bool keepAlive(const llhttp_t* p) {
  return llhttp_should_keep_alive(p) != 0 && (p->flags & F_CONNECTION_CLOSE) == 0;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

namespace {

// Whether `match` holds for a token of the comma-separated values of the `field` fields.
template <typename F>
bool anyListToken(const HeadArena& head, std::string_view field, F&& match) {
  for (int i = 0; i < head.count(); ++i) {
    if (!equalsIgnoreCase(head.name(i), field)) {
      continue;
    }
    std::string_view v = head.value(i);
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view tok = trimOws(v.substr(0, comma));
      if (!tok.empty() && match(tok)) {
        return true;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool isUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

bool isSubDelim(char c) {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

// *( unreserved / sub-delims / extra ). RFC 3986 allows %XX in a reg-name too, but a DNS name
// never needs one, and "%61dmin.example" is "admin.example" to a server that decodes it and
// another name to a route that does not: such a Host is refused.
bool allNameChars(std::string_view s, std::string_view extra) {
  for (char c : s) {
    if (!isUnreserved(c) && !isSubDelim(c) && extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// The inside of an IP-literal's brackets: IPv6address or IPvFuture. An IPv6 zone ID (RFC 6874)
// names an interface of the sender's host only, so no request to a server carries one.
bool validIpLiteral(std::string_view in) {
  if (!in.empty() && (in.front() == 'v' || in.front() == 'V')) {
    size_t dot = in.find('.');
    if (dot == std::string_view::npos || dot == 1 || dot + 1 == in.size()) {
      return false;
    }
    for (char c : in.substr(1, dot - 1)) {
      if (!isHexDigit(c)) {
        return false;
      }
    }
    return allNameChars(in.substr(dot + 1), ":");
  }
  char text[INET6_ADDRSTRLEN];
  if (in.empty() || in.size() >= sizeof(text)) {
    return false;
  }
  std::memcpy(text, in.data(), in.size());
  text[in.size()] = '\0';
  in6_addr out;
  return inet_pton(AF_INET6, text, &out) == 1;
}

}  // namespace

bool validHost(std::string_view host) {
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || !validIpLiteral(host.substr(1, close - 1))) {
      return false;
    }
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return false;
    }
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    // reg-name or IPv4address; an "http" URI's host is never empty (RFC 9110 4.2.1).
    size_t colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
    }
    if (name.empty() || !allNameChars(name, "")) {
      return false;
    }
  }
  // port = *DIGIT, so "example.com:" is allowed; a number past 65535 names no port.
  uint32_t value = 0;
  for (char c : port) {
    if (!isDigit(c)) {
      return false;
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (value > 65535) {
      return false;
    }
  }
  return true;
}

bool isTchar(char c) {
  return isUnreserved(c) || std::string_view("!#$%&'*+^`|").find(c) != std::string_view::npos;
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTchar);
}

MethodToken methodToken(std::string_view piece, size_t at) {
  size_t start = at;  // llhttp may have taken the start of the method before stopping
  while (start > 0 && isTchar(piece[start - 1])) {
    --start;
  }
  for (size_t i = start; i < piece.size(); ++i) {
    if (piece[i] == ' ') {
      return i > start ? MethodToken::Yes : MethodToken::No;
    }
    if (!isTchar(piece[i])) {
      return MethodToken::No;
    }
  }
  return MethodToken::Undecided;
}

bool onlyChunkedCoding(const HeadArena& head) {
  return !anyListToken(head, "transfer-encoding",
                       [](std::string_view t) { return !equalsIgnoreCase(t, "chunked"); });
}

bool isConnectionToken(const HeadArena& head, std::string_view name) {
  return anyListToken(head, "connection",
                      [&](std::string_view t) { return equalsIgnoreCase(t, name); });
}

bool connectionNamesFields(const HeadArena& head) {
  return anyListToken(head, "connection", [](std::string_view t) { return !isHopByHop(t); });
}

namespace {

// Fields lb sets or removes in heads are never let in through trailers, where a backend that
// merges trailers into the head would take them as lb's.
bool forwardableTrailer(std::string_view n, std::string_view also_drop) {
  return !isHopByHop(n) && !equalsIgnoreCase(n, "host") &&
         !equalsIgnoreCase(n, "x-forwarded-for") && !equalsIgnoreCase(n, "x-forwarded-proto") &&
         !equalsIgnoreCase(n, "x-forwarded-host") &&
         (also_drop.empty() || !equalsIgnoreCase(n, also_drop));
}

}  // namespace

std::string_view lastChunk(HeadArena& h, int from, std::string_view also_drop) {
  static constexpr std::string_view kBare = "0\r\n\r\n";
  if (from >= h.count()) {
    return kBare;
  }
  uint32_t room = 0;
  char* mem = h.spare(&room);
  Appender out(mem, room);
  out << "0\r\n";
  for (int i = from; i < h.count(); ++i) {
    if (forwardableTrailer(h.name(i), also_drop)) {
      out.header(h.name(i), h.value(i));
    }
  }
  out << "\r\n";
  return out.ok() ? std::string_view(mem, out.size()) : kBare;
}

std::string trailerLines(const HeadArena& h, int from, std::string_view also_drop) {
  std::string lines;
  for (int i = from; i < h.count(); ++i) {
    if (forwardableTrailer(h.name(i), also_drop)) {
      lines.append(h.name(i)).append(": ").append(h.value(i)).append("\r\n");
    }
  }
  return lines;
}

}  // namespace lb::worker::http1
