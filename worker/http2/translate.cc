// HTTP/2 fields to an HTTP/1.1 request head and an HTTP/1.1 response head to HTTP/2 fields.

#include "worker/http2/translate.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <span>

#include "worker/http1/headers.h"

namespace lb::worker::http2 {
namespace {

using http1::isToken;

// RFC 9110 5.5 field-value, with RFC 9113 8.2.1's ban on whitespace at either end.
bool validValue(std::string_view v) {
  if (!v.empty() &&
      (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t')) {
    return false;
  }
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

// origin-form or asterisk-form, visible ASCII only (no fragment).
bool validPath(std::string_view p, std::string_view method) {
  if (p == "*") {
    return method == "OPTIONS";
  }
  if (p.empty() || p.front() != '/') {
    return false;
  }
  return std::all_of(p.begin(), p.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f && c != '#';
  });
}

void refuse(RequestHead* h, int status, std::string reason) {
  if (h->status == 0) {
    h->status = status;
    h->reason = std::move(reason);
  }
}

}  // namespace

std::string takeSmallBuffer(std::string& s) {
  std::string kept;
  if (s.capacity() <= 4096) {
    kept.swap(s);
    kept.clear();
  }
  return kept;
}

void RequestHead::clear() {
  std::string keep_fields = takeSmallBuffer(fields);
  std::string keep_path = takeSmallBuffer(path);
  // A fresh object, not an assignment: assigning an empty string keeps the old buffer.
  this->~RequestHead();
  new (this) RequestHead();
  fields.swap(keep_fields);
  path.swap(keep_path);
}

bool isConnectionSpecific(std::string_view n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
         n == "transfer-encoding" || n == "upgrade" || n == "te";
}

void addRequestField(RequestHead* h, std::string_view name, std::string_view value,
                     size_t max_list_size) {
  h->list_size += name.size() + value.size() + 32;
  if (h->list_size > max_list_size) {
    refuse(h, 431, "its header list is larger than " + std::to_string(max_list_size) + " bytes");
    return;
  }
  if (h->status != 0) {
    return;
  }
  if (!validValue(value)) {
    refuse(h, 400, "field \"" + std::string(name) + "\" has a value HTTP/1.1 cannot carry");
    return;
  }
  if (!name.empty() && name.front() == ':') {
    std::string* slot = name == ":method"      ? &h->method
                        : name == ":scheme"    ? &h->scheme
                        : name == ":authority" ? &h->authority
                        : name == ":path"      ? &h->path
                                               : nullptr;
    if (slot == nullptr) {
      refuse(h, 400, "unknown pseudo-header \"" + std::string(name) + "\"");
    } else {
      slot->assign(value);
    }
    return;
  }
  if (!isToken(name) ||
      std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    refuse(h, 400, "field name \"" + std::string(name) + "\" is not a lowercase token");
    return;
  }
  if (isConnectionSpecific(name)) {
    if (name == "te" && value == "trailers") {
      return;  // the only TE HTTP/2 allows; hop-by-hop for the backend
    }
    refuse(h, 400, "connection-specific field \"" + std::string(name) + "\"");
    return;
  }
  if (name == "host") {
    if (h->has_host) {
      refuse(h, 400, "more than one host field");
      return;
    }
    h->has_host = true;
    h->host.assign(value);
    return;
  }
  if (name == "cookie") {
    if (!h->cookie.empty()) {
      h->cookie += "; ";
    }
    h->cookie += value;
    return;
  }
  if (name == "content-length") {
    h->has_content_length = true;
    h->zero_length = value == "0";
  } else if (name == "expect") {
    h->expect_continue = true;
  }
  h->fields.append(name).append(": ").append(value).append("\r\n");
}

bool buildRequestHead(RequestHead* h, bool body_follows, std::string* out, bool* chunked) {
  *chunked = false;
  if (h->status != 0) {
    return false;
  }
  if (h->method == "CONNECT") {
    refuse(h, 501, "CONNECT is not supported");
    return false;
  }
  if (!isToken(h->method)) {
    refuse(h, 400, "invalid :method");
    return false;
  }
  if (h->scheme != "http" && h->scheme != "https") {
    refuse(h, 400, "\":scheme\" is not http or https");
    return false;
  }
  if (!validPath(h->path, h->method)) {
    refuse(h, 400, "invalid :path");
    return false;
  }
  std::string_view authority = h->authority;
  if (authority.empty()) {
    if (!h->has_host) {
      refuse(h, 400, "neither :authority nor host");
      return false;
    }
    authority = h->host;
  } else if (h->has_host && h->host != h->authority) {
    refuse(h, 400, "host differs from :authority");
    return false;
  }
  // The same uri-host [":" port] an HTTP/1.1 Host must be, without userinfo (RFC 9113 8.3.1).
  if (!http1::validHost(authority)) {
    refuse(h, 400, "invalid :authority");
    return false;
  }
  out->reserve(out->size() + h->method.size() + h->path.size() + authority.size() +
               h->cookie.size() + h->fields.size() + 80);
  out->append(h->method).append(" ").append(h->path).append(" HTTP/1.1\r\nhost: ");
  out->append(authority).append("\r\n");
  if (!h->cookie.empty()) {
    out->append("cookie: ").append(h->cookie).append("\r\n");
  }
  out->append(h->fields);
  if (body_follows && !h->has_content_length) {
    out->append("transfer-encoding: chunked\r\n");
    *chunked = true;
  }
  out->append("\r\n");
  return true;
}

bool addTrailerField(std::string_view name, std::string_view value, std::string* out) {
  if (name.empty() || name.front() == ':' || !isToken(name) || !validValue(value) ||
      isConnectionSpecific(name) || name == "content-length" || name == "host") {
    return false;
  }
  out->append(name).append(": ").append(value).append("\r\n");
  return true;
}

namespace {

// "Name: value\r\n" lines (each ending with CRLF) as HTTP/2 fields after those already in
// `out`: lowercase names kept in out->store, connection-specific ones dropped. `status` is put
// first as :status when it is not empty.
bool appendFields(std::string_view lines, std::string_view status, ResponseFields* out) {
  // Names go in as offsets into `store`, which may move while it grows, and become pointers
  // at the end.
  out->nv.clear();
  out->name_offsets.clear();
  out->store.assign(status);
  size_t pos = 0;
  while (pos < lines.size()) {
    size_t eol = lines.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      return false;
    }
    std::string_view line = lines.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return false;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    size_t off = out->store.size();
    out->store.append(name);
    for (char& c : std::span(out->store).subspan(off)) {
      c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (isConnectionSpecific(std::string_view(out->store).substr(off))) {
      out->store.resize(off);
      continue;
    }
    out->name_offsets.push_back(off);
    out->nv.push_back(
        nghttp2_nv{nullptr, const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                   name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  auto* store = reinterpret_cast<uint8_t*>(out->store.data());
  for (size_t i = 0; i < out->nv.size(); ++i) {
    out->nv[i].name = store + out->name_offsets[i];
  }
  if (!status.empty()) {
    static const char kStatus[] = ":status";
    out->nv.insert(out->nv.begin(),
                   nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(kStatus)), store, 7,
                              status.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return true;
}

}  // namespace

bool responseFields(std::string_view text, ResponseFields* out, size_t* head_len) {
  size_t end = text.find("\r\n\r\n");
  if (end == std::string_view::npos || text.size() < 12 || !text.starts_with("HTTP/1.")) {
    return false;
  }
  *head_len = end + 4;
  std::string_view code = text.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  out->status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
  size_t first = text.find("\r\n") + 2;
  return appendFields(text.substr(first, end + 2 - first), code, out);
}

bool trailerFields(std::string_view lines, ResponseFields* out) {
  out->status = 0;
  return appendFields(lines, "", out);
}

}  // namespace lb::worker::http2
