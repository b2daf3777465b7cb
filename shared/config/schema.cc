#include "shared/config/schema.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>
#include <vector>

namespace lb::config::schema {

namespace {

constexpr uint64_t kKiB = 1024;

// Levenshtein distance, for "did you mean" on a misspelt directive.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// How a setting is named in messages: "\"weight\"", or "element 2 of \"X-Foo\"" in an array.
std::string label(const libconfig::Setting& s) {
  if (s.getName() != nullptr) {
    return quoted(s.getName());
  }
  std::string out = "element " + std::to_string(s.getIndex() + 1);
  if (!s.isRoot() && s.getParent().getName() != nullptr) {
    out += " of " + quoted(s.getParent().getName());
  }
  return out;
}

bool isIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '*';
}
bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '*';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

std::string_view closest(std::string_view name, std::span<const std::string_view> known) {
  // Only a close match: a typo, not a different word ("code" is not "body").
  std::string_view best;
  size_t best_distance = std::max<size_t>(1, name.size() / 3) + 1;
  for (std::string_view k : known) {
    size_t d = editDistance(name, k);
    if (d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  return best;
}

const char* typeName(const libconfig::Setting& s) {
  switch (s.getType()) {
    case libconfig::Setting::TypeInt:
    case libconfig::Setting::TypeInt64:
      return "an integer";
    case libconfig::Setting::TypeFloat:
      return "a float";
    case libconfig::Setting::TypeString:
      return "a string";
    case libconfig::Setting::TypeBoolean:
      return "a boolean";
    case libconfig::Setting::TypeGroup:
      return "a group";
    case libconfig::Setting::TypeArray:
      return "an array";
    case libconfig::Setting::TypeList:
      return "a list";
    default:
      return "nothing";
  }
}

bool parseSize(std::string_view text, uint64_t* out) {
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        multiplier = kKiB;
        break;
      case 'm':
      case 'M':
        multiplier = kKiB * kKiB;
        break;
      case 'g':
      case 'G':
        multiplier = kKiB * kKiB * kKiB;
        break;
      default:
        break;
    }
    if (multiplier != 1) {
      text.remove_suffix(1);
    }
  }
  if (text.empty() || text.size() > 19) {
    return false;
  }
  uint64_t value = 0;
  for (char c : text) {
    if (!isDigit(c)) {
      return false;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT64_MAX / multiplier) {
    return false;
  }
  *out = value * multiplier;
  return true;
}

std::string formatSize(uint64_t value) {
  static constexpr struct {
    uint64_t unit;
    char suffix;
  } kUnits[] = {{kKiB * kKiB * kKiB, 'g'}, {kKiB * kKiB, 'm'}, {kKiB, 'k'}};
  if (value != 0) {
    for (const auto& u : kUnits) {
      if (value % u.unit == 0) {
        return std::to_string(value / u.unit) + u.suffix;
      }
    }
  }
  return std::to_string(value);
}

std::string quoted(std::string_view s) {
  // Appended piecewise: `"\"" + std::string(s)` trips a false -Wrestrict in g++ 12 (PR 105651).
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  out += s;
  out += '"';
  return out;
}

std::string alternatives(std::span<const std::string_view> names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += i == 0 ? "" : i + 1 == names.size() ? " or " : ", ";
    out += quoted(names[i]);
  }
  return out;
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool hasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (name.starts_with('/') || dir.empty() || dir == ".") {
    return name;
  }
  return dir.ends_with('/') ? dir + name : dir + "/" + name;
}

bool isToken(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

std::string_view algorithmName(Algorithm a) {
  auto i = static_cast<size_t>(a);
  return i < std::size(kAlgorithms) ? kAlgorithms[i] : "round_robin";
}

bool parseAlgorithm(std::string_view name, Algorithm* out) {
  for (size_t i = 0; i < std::size(kAlgorithms); ++i) {
    if (kAlgorithms[i] == name) {
      *out = static_cast<Algorithm>(i);
      return true;
    }
  }
  return false;
}

bool parseHashKey(std::string_view text, HashKey* out) {
  if (text == "client") {
    *out = {HashKey::Kind::ClientAddress, ""};
    return true;
  }
  if (text == "uri") {
    *out = {HashKey::Kind::Uri, ""};
    return true;
  }
  for (auto [prefix, kind] : {std::pair{std::string_view("header:"), HashKey::Kind::Header},
                              std::pair{std::string_view("cookie:"), HashKey::Kind::Cookie}}) {
    if (text.starts_with(prefix) && isToken(text.substr(prefix.size()))) {
      *out = {kind, std::string(text.substr(prefix.size()))};
      return true;
    }
  }
  return false;
}

std::string hashKeyText(const HashKey& key) {
  switch (key.kind) {
    case HashKey::Kind::Uri:
      return "uri";
    case HashKey::Kind::Header:
      return "header:" + key.name;
    case HashKey::Kind::Cookie:
      return "cookie:" + key.name;
    case HashKey::Kind::ClientAddress:
      break;
  }
  return "client";
}

Reader::Reader(std::string file, std::string include_dir)
    : file_(std::move(file)), include_dir_(std::move(include_dir)) {}

std::string Reader::fileOf(const libconfig::Setting& s) const {
  const char* f = s.getSourceFile();
  if (f == nullptr || file_ == f) {
    return file_;
  }
  // libconfig records an @include'd file by the name written in the directive.
  return joinPath(include_dir_, f);
}

void Reader::error(const libconfig::Setting& at, std::string message) {
  errors_.push_back({fileOf(at), static_cast<int>(at.getSourceLine()), std::move(message)});
}

void Reader::errorNoLine(std::string message) {
  errors_.push_back({file_, 0, std::move(message)});
}

void Reader::unknown(const libconfig::Setting& s, const std::string& context,
                     std::span<const std::string_view> known) {
  std::string name = s.getName() != nullptr ? s.getName() : "";
  std::string message = "unknown directive \"" + name + "\"";
  if (!context.empty()) {
    message += " in " + context;
  }
  std::string_view best = closest(name, known);
  if (!best.empty()) {
    message += "; did you mean \"" + std::string(best) + "\"?";
  }
  error(s, std::move(message));
}

bool Reader::getString(const libconfig::Setting& s, std::string* out) {
  if (s.getType() != libconfig::Setting::TypeString) {
    error(s, label(s) + " must be a string, got " + typeName(s));
    return false;
  }
  *out = s.c_str();
  return true;
}

bool Reader::getBool(const libconfig::Setting& s, bool* out) {
  if (s.getType() != libconfig::Setting::TypeBoolean) {
    error(s, label(s) + " must be true or false, got " + typeName(s));
    return false;
  }
  *out = static_cast<bool>(s);
  return true;
}

bool Reader::getInt(const libconfig::Setting& s, int64_t min, int64_t max, int64_t* out) {
  int64_t v = 0;
  if (s.getType() == libconfig::Setting::TypeInt) {
    v = static_cast<int>(s);
  } else if (s.getType() == libconfig::Setting::TypeInt64) {
    v = static_cast<long long>(s);
  } else {
    error(s, label(s) + " must be an integer, got " + typeName(s));
    return false;
  }
  if (v < min || v > max) {
    error(s, label(s) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                 ", got " + std::to_string(v));
    return false;
  }
  *out = v;
  return true;
}

bool Reader::getSize(const libconfig::Setting& s, uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  std::string shown;
  if (s.getType() == libconfig::Setting::TypeInt || s.getType() == libconfig::Setting::TypeInt64) {
    int64_t i = s.getType() == libconfig::Setting::TypeInt ? static_cast<int>(s)
                                                           : static_cast<long long>(s);
    if (i < 0) {
      error(s, label(s) + " must not be negative, got " + std::to_string(i));
      return false;
    }
    v = static_cast<uint64_t>(i);
    shown = std::to_string(v);
  } else if (s.getType() == libconfig::Setting::TypeString) {
    shown = quoted(s.c_str());
    if (!parseSize(s.c_str(), &v)) {
      error(s, label(s) + " must be a size such as 1048576, \"16k\" or \"1m\", got " + shown);
      return false;
    }
  } else {
    error(s, label(s) + " must be an integer or a size string such as \"16k\", got " + typeName(s));
    return false;
  }
  if (v < min || v > max) {
    error(s, label(s) + " must be between " + formatSize(min) + " and " + formatSize(max) +
                 ", got " + shown);
    return false;
  }
  *out = v;
  return true;
}

bool Reader::expectGroup(const libconfig::Setting& s, std::string_view what) {
  if (s.getType() == libconfig::Setting::TypeGroup) {
    return true;
  }
  error(s, std::string(what) + " must be a group { ... }, got " + typeName(s));
  return false;
}

bool Reader::expectList(const libconfig::Setting& s, std::string_view what) {
  if (s.getType() == libconfig::Setting::TypeList) {
    return true;
  }
  error(s, std::string(what) + " must be a list ( { ... }, ... ), got " + typeName(s));
  return false;
}

const libconfig::Setting* member(const libconfig::Setting& group, std::string_view name) {
  if (!group.isGroup()) {
    return nullptr;
  }
  for (int i = 0; i < group.getLength(); ++i) {
    const libconfig::Setting& s = group[i];
    if (s.getName() != nullptr && name == s.getName()) {
      return &s;
    }
  }
  return nullptr;
}

bool checkIntegerLiterals(const std::string& text, const std::string& file,
                          const std::string& include_dir, ConfigErrors* errors, int depth) {
  // A small lexer for libconfig's syntax, just enough to find integer literals outside
  // strings, comments and names.
  size_t before = errors->size();
  const size_t n = text.size();
  int line = 1;
  size_t i = 0;
  auto at = [&](size_t k) { return k < n ? text[k] : '\0'; };
  while (i < n) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '#' || (c == '/' && at(i + 1) == '/')) {
      while (i < n && text[i] != '\n') {
        ++i;
      }
    } else if (c == '/' && at(i + 1) == '*') {
      i += 2;
      while (i < n && !(text[i] == '*' && at(i + 1) == '/')) {
        line += text[i] == '\n' ? 1 : 0;
        ++i;
      }
      i += 2;
    } else if (c == '"') {
      for (++i; i < n && text[i] != '"'; ++i) {
        if (text[i] == '\\') {
          ++i;
        }
        line += at(i) == '\n' ? 1 : 0;
      }
      ++i;
    } else if (c == '@' && text.compare(i, 8, "@include") == 0) {
      size_t q = text.find('"', i);
      size_t end = q == std::string::npos ? std::string::npos : text.find('"', q + 1);
      if (end == std::string::npos) {
        return errors->size() == before;  // libconfig reports the broken directive
      }
      std::string name = text.substr(q + 1, end - q - 1);
      std::string path = joinPath(include_dir, name);
      std::ifstream in(path);
      if (in && depth < 10) {
        std::ostringstream content;
        content << in.rdbuf();
        checkIntegerLiterals(content.str(), path, include_dir, errors, depth + 1);
      }
      i = end + 1;
    } else if (isIdentStart(c)) {
      while (i < n && isIdentChar(text[i])) {
        ++i;
      }
    } else if (isDigit(c) || c == '.') {
      size_t start = i;
      bool hex = c == '0' && (at(i + 1) == 'x' || at(i + 1) == 'X');
      i += hex ? 2 : 0;
      while (i < n &&
             (isDigit(text[i]) || (hex && std::isxdigit(static_cast<unsigned char>(text[i]))))) {
        ++i;
      }
      if (c == '.' || (!hex && (at(i) == '.' || at(i) == 'e' || at(i) == 'E'))) {
        while (i < n && (isDigit(text[i]) ||
                         std::string_view(".eE+-").find(text[i]) != std::string_view::npos)) {
          ++i;
        }
        continue;  // a float
      }
      if (at(i) == 'L') {
        continue;  // a 64-bit literal: libconfig reads it exactly
      }
      std::string digits = text.substr(start, i - start);
      bool negative = start > 0 && text[start - 1] == '-';
      uint64_t limit = negative ? 2147483648ULL : 2147483647ULL;
      std::string body = hex ? digits.substr(2) : digits;
      body.erase(0, std::min(body.find_first_not_of('0'), body.size()));
      bool too_big = body.size() > (hex ? 8 : 10) ||
                     (!body.empty() && std::stoull(body, nullptr, hex ? 16 : 10) > limit);
      if (too_big) {
        std::string shown = (negative ? "-" : "") + digits;
        errors->push_back({file, line,
                           "integer " + shown + " does not fit in 32 bits; write " + shown +
                               "L for a 64-bit integer"});
      }
    } else {
      ++i;
    }
  }
  return errors->size() == before;
}

}  // namespace lb::config::schema
