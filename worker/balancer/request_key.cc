#include "worker/balancer/request_key.h"

#include <sys/socket.h>

#include "worker/balancer/hash.h"

namespace lb::worker {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Cookie `name` in one Cookie header value; false if it is not there.
bool cookieIn(std::string_view header, std::string_view name, std::string_view* value) {
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = trim(header.substr(0, end));
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) {
      continue;
    }
    std::string_view v = trim(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    *value = v;
    return true;
  }
  return false;
}

// The key of a request for hash_key: empty with has_key false when the request lacks it.
uint64_t keyHash(const config::HashKey& key, const http1::HeadArena& head, std::string_view path,
                 const ClientAddress& client, bool* has_key) {
  std::string_view text;
  switch (key.kind) {
    case config::HashKey::Kind::ClientAddress:
      *has_key = true;
      return clientHash(client, false);
    case config::HashKey::Kind::Uri:
      *has_key = true;
      return hash64(path);
    case config::HashKey::Kind::Header:
      for (int i = 0; i < head.count(); ++i) {
        if (http1::equalsIgnoreCase(head.name(i), key.name)) {
          *has_key = true;
          return hash64(head.value(i));
        }
      }
      break;
    case config::HashKey::Kind::Cookie:
      text = findCookie(head, key.name);
      if (!text.empty()) {
        *has_key = true;
        return hash64(text);
      }
      break;
  }
  *has_key = false;
  return 0;
}

// The backend the request's sticky cookie names, or -1.
int stickyBackendOf(const config::Sticky& sticky, const Balancer& balancer,
                    const http1::HeadArena& head) {
  uint64_t id = 0;
  std::string_view value = findCookie(head, sticky.cookie);
  if (value.empty() || !parseStickyValue(value, &id)) {
    return -1;
  }
  return balancer.stickyBackend(id);
}

}  // namespace

std::string_view findCookie(const http1::HeadArena& head, std::string_view name) {
  std::string_view value;
  for (int i = 0; i < head.count(); ++i) {
    if (head.name(i).size() == 6 && http1::equalsIgnoreCase(head.name(i), "cookie") &&
        cookieIn(head.value(i), name, &value)) {
      return value;
    }
  }
  return {};
}

uint64_t clientHash(const ClientAddress& client, bool ip_hash) {
  size_t len = 0;
  if (client.bytes != nullptr && client.family == AF_INET) {
    len = ip_hash ? 3 : 4;
  } else if (client.bytes != nullptr && client.family == AF_INET6) {
    len = 16;
  }
  return hash64(std::string_view(reinterpret_cast<const char*>(client.bytes), len));
}

void formatStickyValue(uint64_t id, char* out) {
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[id & 0xf];
    id >>= 4;
  }
}

bool parseStickyValue(std::string_view value, uint64_t* id) {
  if (value.size() != 16) {
    return false;
  }
  uint64_t v = 0;
  for (char c : value) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  *id = v;
  return true;
}

PickInput pickInputFor(const config::Pool& pool, const Balancer& balancer,
                       const http1::HeadArena& head, std::string_view path,
                       const ClientAddress& client, uint64_t now_ms) {
  PickInput in;
  in.now_ms = now_ms;
  if (pool.algorithm == config::Algorithm::IpHash) {
    in.key_hash = clientHash(client, true);
    in.has_key = true;
  } else if (pool.algorithm == config::Algorithm::Hash) {
    in.key_hash = keyHash(pool.hash_key, head, path, client, &in.has_key);
  }
  if (pool.sticky.enabled) {
    in.sticky = stickyBackendOf(pool.sticky, balancer, head);
  }
  return in;
}

bool needsStickyCookie(const config::Pool& pool, const Balancer& balancer,
                       const http1::HeadArena& head, int backend_index) {
  return pool.sticky.enabled && backend_index >= 0 &&
         stickyBackendOf(pool.sticky, balancer, head) != backend_index;
}

void appendStickyCookie(http1::Appender& out, const config::Sticky& sticky,
                        const Balancer& balancer, int backend_index) {
  char value[16];
  formatStickyValue(balancer.stickyId(backend_index), value);
  out << "Set-Cookie: " << sticky.cookie << "=" << std::string_view(value, sizeof(value))
      << "; Path=/; HttpOnly";
  if (sticky.max_age_s > 0) {
    out << "; Max-Age=" << static_cast<uint64_t>(sticky.max_age_s);
  }
  out << "\r\n";
}

}  // namespace lb::worker
