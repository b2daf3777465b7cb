#pragma once

// HTTP/2 messages to and from the HTTP/1.1 the rest of the worker speaks.
//
// A request's HEADERS become an HTTP/1.1 head that the exchange then parses with llhttp like any
// other request, so an HTTP/2 request meets every HTTP/1.1 rule and limit on its way to a
// backend. What RFC 9113 (section 8) forbids and HTTP/1.1 cannot express is refused here, before
// any text is written: a field value with CR, LF or NUL, leading or trailing whitespace, a
// request target with spaces or controls, userinfo in :authority, a Host that differs from
// :authority, a :scheme other than http or https.
//
// A response head lb wrote as HTTP/1.1 text (proxied, static or an error page) becomes the
// :status and the lowercase fields of a HEADERS frame, connection-specific fields dropped.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lb::worker::http2 {

// A request head as nghttp2 hands its fields over (names are lowercase; nghttp2's HTTP
// messaging has already refused connection-specific fields, bad pseudo-headers and names that
// are not tokens).
struct RequestHead {
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::string host;
  std::string cookie;    // every cookie field, joined with "; " (RFC 9113 8.2.3)
  std::string fields;    // "name: value\r\n" lines of the other fields
  size_t list_size = 0;  // RFC 9113 / RFC 7541 header list size: name + value + 32 per field
  bool has_content_length = false;
  bool zero_length = false;  // content-length: 0
  bool has_host = false;
  bool expect_continue = false;
  int status = 0;      // the request is refused with this status (400, 431); 0 = fine so far
  std::string reason;  // why, for the log

  // Back to empty; the largest strings keep a small buffer for the stream's next request.
  void clear();
};

// Empties `s` and hands over its buffer when it is small (at most 4 KiB), else frees it: what
// a recycled stream keeps for its next request.
std::string takeSmallBuffer(std::string& s);

// Adds one request field (pseudo-headers included). Past `max_list_size` the head is refused with
// 431; fields that cannot be forwarded as HTTP/1.1 refuse it with 400.
void addRequestField(RequestHead* head, std::string_view name, std::string_view value,
                     size_t max_list_size);

// The HTTP/1.1 request head for `head`, appended to `out`: the request line, Host, the fields,
// and "transfer-encoding: chunked" when a body follows without content-length (`*chunked` is
// set then: DATA frames become chunks, END_STREAM the last chunk). False with head->status and
// head->reason set when the request cannot be forwarded.
bool buildRequestHead(RequestHead* head, bool body_follows, std::string* out, bool* chunked);

// Adds one trailer field to `out` as an HTTP/1.1 trailer line. False when it cannot be
// forwarded (pseudo-header, bad value); the trailer is then dropped.
bool addTrailerField(std::string_view name, std::string_view value, std::string* out);

// The fields of an HTTP/1.1 response head (status line to the blank line) as HTTP/2 fields.
// `store` keeps the lowercase names the entries point into; `*head_len` is the head's length
// with its blank line. False when `text` does not hold a complete head.
struct ResponseFields {
  std::vector<nghttp2_nv> nv;
  std::string store;
  std::vector<size_t> name_offsets;  // scratch, kept for its capacity
  int status = 0;
};
bool responseFields(std::string_view text, ResponseFields* out, size_t* head_len);
// Trailer lines ("name: value\r\n" each) as HTTP/2 fields, the same way.
bool trailerFields(std::string_view lines, ResponseFields* out);

// Connection-specific fields (RFC 9113 8.2.2) an HTTP/2 message never carries.
bool isConnectionSpecific(std::string_view lowercase_name);

}  // namespace lb::worker::http2
