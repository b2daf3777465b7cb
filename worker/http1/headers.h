#pragma once

// A parsed message head kept as spans into one arena: llhttp hands names and values in pieces
// that may straddle reads, so they are copied into the arena as they arrive (a head is small;
// bodies are never copied). Also the header rules a proxy applies: hop-by-hop names and the
// tokens of Connection.

#include <llhttp.h>

#include <cstdint>
#include <string_view>

namespace lb::worker::http1 {

inline constexpr int kMaxHeaders = 100;

struct Span {
  uint32_t off = 0;
  uint32_t len = 0;
};

struct HeaderField {
  Span name;
  Span value;
};

// Not owning: the arena is a pool buffer handed in by the connection.
class HeadArena {
 public:
  void reset(char* buf, uint32_t cap) {
    buf_ = buf;
    cap_ = cap;
    used_ = 0;
    count_ = 0;
    url_ = {};
    status_ = {};
    in_name_ = false;
    overflow_ = false;
    too_many_ = false;
  }
  char* buffer() const { return buf_; }

  // llhttp span callbacks. Each returns false when the head would pass the arena's capacity or
  // kMaxHeaders (the caller answers 431 / 414 / 502).
  bool appendUrl(const char* p, size_t n);
  bool appendStatus(const char* p, size_t n);
  bool appendName(const char* p, size_t n);
  bool appendValue(const char* p, size_t n);
  // on_header_field_complete: the next name piece starts a new field.
  void endName() { in_name_ = false; }
  // The field just named has an empty name as sent (": v", no token). A name that found no room
  // is not one: its field stays empty because it was dropped.
  bool lastNameEmpty() const {
    return count_ > 0 && fields_[count_ - 1].name.len == 0 && !overflow_;
  }

  std::string_view str(Span s) const { return {buf_ + s.off, s.len}; }
  std::string_view url() const { return str(url_); }
  std::string_view status() const { return str(status_); }
  int count() const { return count_; }
  std::string_view name(int i) const { return str(fields_[i].name); }
  std::string_view value(int i) const { return str(fields_[i].value); }
  // First value of `name` (case-insensitive); empty if absent.
  std::string_view find(std::string_view name) const;
  bool overflowed() const { return overflow_; }
  // The arena's unused end, for text that lives as long as the head (the last chunk).
  char* spare(uint32_t* len) const {
    *len = cap_ - used_;
    return buf_ + used_;
  }
  bool tooManyHeaders() const { return too_many_; }
  uint32_t used() const { return used_; }

 private:
  bool append(Span* s, const char* p, size_t n);

  char* buf_ = nullptr;
  uint32_t cap_ = 0;
  uint32_t used_ = 0;
  int count_ = 0;
  bool in_name_ = false;
  bool overflow_ = false;
  bool too_many_ = false;
  Span url_;
  Span status_;
  HeaderField fields_[kMaxHeaders];
};

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// The last chunk of a chunked body with the trailer fields [from, count) of `h` that may be
// forwarded (not hop-by-hop, not framing, not Host or X-Forwarded-*, not `also_drop`),
// written into h's spare memory. Without such fields, or without room, the bare "0\r\n\r\n".
std::string_view lastChunk(HeadArena& h, int from, std::string_view also_drop = {});
// The same trailer fields as "name: value\r\n" lines (for HTTP/2 trailers); "" without any.
std::string trailerLines(const HeadArena& h, int from, std::string_view also_drop = {});

// Headers a proxy never forwards (RFC 9110 7.6.1), plus the framing headers lb regenerates.
bool isHopByHop(std::string_view name);

// True if `name` is one of the comma-separated tokens in the Connection header value(s) of
// `head` (RFC 9110 7.6.1: those headers are hop-by-hop too).
bool isConnectionToken(const HeadArena& head, std::string_view name);

// True if the Connection header value(s) of `head` name a field that isHopByHop() does not
// already drop. Most messages say only "keep-alive" or "close", or have no Connection: then
// no field needs isConnectionToken().
bool connectionNamesFields(const HeadArena& head);

// RFC 9112 3.2 with RFC 3986 3.2.2: uri-host [":" port], the form of a Host field value and of
// an absolute-form target's authority. A request with any other gets 400: a Host with a space,
// "@" or "/" in it is read differently by every server that meets it.
bool validHost(std::string_view host);

// RFC 9110 5.6.2: tchar, and token = 1*tchar.
bool isTchar(char c);
bool isToken(std::string_view s);

// Whether llhttp, stopped at `at` in `piece` on a method it does not know, stopped inside a
// token that SP ends: a well-formed method lb cannot forward (llhttp parses only the methods it
// lists) gets 501 (RFC 9110 9.1), not 400. Undecided while only token characters have come, and
// not yet the SP.
enum class MethodToken : uint8_t { Yes, No, Undecided };
MethodToken methodToken(std::string_view piece, size_t at);

// True if every coding the Transfer-Encoding fields of `head` name is "chunked". lb decodes no
// other, and a body forwarded as "chunked" alone would lose what the others meant (RFC 9112 6.1:
// 501 for a coding not understood).
bool onlyChunkedCoding(const HeadArena& head);

// llhttp accepts an obs-fold (a header value continued on a line starting with SP or HTAB) and
// hands the continuation over as more value bytes. RFC 9112 5.2 lets a recipient reject it, and
// passing it on is a smuggling vector, so lb refuses it. True if the value piece [at, at + n)
// follows a line break (only whitespace between), looking back no further than `buf_begin`; when
// the look back reaches it, `before` is the last non-blank byte of the input that came before the
// buffer.
bool followsObsFold(const char* buf_begin, const char* at, size_t n, char before);

// Whether the connection persists after the message llhttp parsed. llhttp lets an HTTP/1.0
// "keep-alive" outweigh a "close" in the same message; here "close" wins, in either version
// (RFC 9112 9.3: the sender will close).
bool keepAlive(const llhttp_t* p);

// `s` without the spaces and tabs at either end (OWS, RFC 9110 5.6.3).
std::string_view trimOws(std::string_view s);

// The last byte of [begin, end) that is not SP or HTAB, or `fallback` if there is none. Kept when a
// parse buffer is recycled, for followsObsFold.
char lastNonBlank(const char* begin, const char* end, char fallback);

}  // namespace lb::worker::http1
