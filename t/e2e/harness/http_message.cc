#include "e2e/harness/http_message.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace lb::e2e {

namespace {

bool isTchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

constexpr size_t kMaxChunkLine = 4096;

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string item = trim(s.substr(0, comma));
    if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    s.remove_prefix(comma + 1);
  }
  return out;
}

size_t Headers::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(
      list.begin(), list.end(), [&](const auto& h) { return equalsIgnoreCase(h.first, name); }));
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& h : list) {
    if (equalsIgnoreCase(h.first, name)) {
      return h.second;
    }
  }
  return std::nullopt;
}

std::vector<std::string> Headers::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : list) {
    if (equalsIgnoreCase(h.first, name)) {
      out.push_back(h.second);
    }
  }
  return out;
}

std::string Headers::joined(std::string_view name) const {
  std::string out;
  for (const auto& v : all(name)) {
    out += out.empty() ? v : ", " + v;
  }
  return out;
}

bool Headers::hasToken(std::string_view name, std::string_view token) const {
  for (const auto& item : splitList(joined(name))) {
    if (equalsIgnoreCase(item, token)) {
      return true;
    }
  }
  return false;
}

void Body::append(std::string_view chunk) {
  sum.update(chunk);
  size_t room = data.size() < store_limit ? store_limit - data.size() : 0;
  data.append(chunk.substr(0, room));
  truncated = truncated || chunk.size() > room;
}

bool parseHead(std::string_view head, std::string* start_line, Headers* headers,
               std::string* error) {
  headers->list.clear();
  bool first = true;
  while (true) {
    size_t eol = head.find('\n');
    if (eol == std::string_view::npos) {
      *error = "head does not end with an empty line";
      return false;
    }
    if (eol == 0 || head[eol - 1] != '\r') {
      *error = "bare LF in head";
      return false;
    }
    std::string_view line = head.substr(0, eol - 1);
    head.remove_prefix(eol + 1);
    if (first) {
      *start_line = std::string(line);
      first = false;
      continue;
    }
    if (line.empty()) {
      return true;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      *error = "obs-fold line: " + std::string(line);
      return false;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "field without a name: " + std::string(line);
      return false;
    }
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), isTchar)) {
      *error = "bad field name: " + std::string(line);
      return false;
    }
    std::string value = trim(line.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        *error = "control character in field value: " + std::string(name);
        return false;
      }
    }
    headers->add(std::string(name), std::move(value));
  }
}

IoStatus readChunked(Stream& in, Deadline deadline, Body* body, Headers* trailers,
                     std::string* error) {
  std::string line;
  while (true) {
    IoStatus s = in.readUntil("\r\n", kMaxChunkLine, deadline, &line);
    if (s != IoStatus::Ok) {
      if (s == IoStatus::Error) {
        *error = "chunk-size line too long";
      }
      return s;
    }
    std::string_view size_text(line.data(), line.size() - 2);
    size_text = size_text.substr(0, size_text.find(';'));
    while (!size_text.empty() && (size_text.back() == ' ' || size_text.back() == '\t')) {
      size_text.remove_suffix(1);
    }
    if (size_text.empty() || size_text.size() > 15 ||
        !std::all_of(size_text.begin(), size_text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
      *error = "bad chunk size line: " + line.substr(0, line.size() - 2);
      return IoStatus::Error;
    }
    uint64_t size = std::stoull(std::string(size_text), nullptr, 16);
    if (size == 0) {
      break;
    }
    s = in.readExact(size, deadline, [&](std::string_view d) { body->append(d); });
    if (s != IoStatus::Ok) {
      return s;
    }
    s = in.readUntil("\r\n", 2, deadline, &line);
    if (s != IoStatus::Ok || line != "\r\n") {
      *error = "chunk data not followed by CRLF";
      return s == IoStatus::Ok ? IoStatus::Error : s;
    }
  }
  // Trailer section: fields up to an empty line.
  std::string trailer_head = "x\r\n";
  while (true) {
    IoStatus s = in.readUntil("\r\n", kMaxChunkLine, deadline, &line);
    if (s != IoStatus::Ok) {
      return s;
    }
    trailer_head += line;
    if (line == "\r\n") {
      break;
    }
  }
  std::string ignored;
  if (!parseHead(trailer_head, &ignored, trailers, error)) {
    return IoStatus::Error;
  }
  return IoStatus::Ok;
}

std::string chunked(std::string_view data, size_t chunk_size) {
  std::string out;
  char size_line[32];
  while (!data.empty()) {
    size_t n = std::min(chunk_size, data.size());
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
    out += size_line;
    out.append(data.substr(0, n));
    out += "\r\n";
    data.remove_prefix(n);
  }
  out += "0\r\n\r\n";
  return out;
}

}  // namespace lb::e2e
