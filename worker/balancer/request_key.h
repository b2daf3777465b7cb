#pragma once

// What the proxy tells a balancer about a request (PickInput): the hash of the pool's key for
// ip_hash and hash, and the backend its sticky cookie names; and the sticky cookie lb sets on a
// response. Everything reads the parsed request head in place: no allocation.

#include <cstdint>
#include <string_view>

#include "shared/config/model.h"
#include "worker/balancer/balancer.h"
#include "worker/http1/appender.h"
#include "worker/http1/headers.h"

namespace lb::worker {

// The client of a request, as the proxy knows it: AF_INET with 4 address bytes, AF_INET6 with
// 16, anything else with none.
struct ClientAddress {
  uint8_t family = 0;
  const uint8_t* bytes = nullptr;
};

// The value of cookie `name` in the request's Cookie header(s) (RFC 6265 5.4: "a=1; b=2"),
// surrounding double quotes removed; empty if absent. The first one wins.
std::string_view findCookie(const http1::HeadArena& head, std::string_view name);

// The hash of the client's address: all of it, or with `ip_hash` only the first three octets of
// an IPv4 address (nginx's ip_hash: one /24 to one backend).
uint64_t clientHash(const ClientAddress& client, bool ip_hash);

// The sticky cookie's value for a backend id: 16 lowercase hex digits. `out` must hold 16.
void formatStickyValue(uint64_t id, char* out);
// The id in a sticky cookie's value; false if it is not 16 hex digits.
bool parseStickyValue(std::string_view value, uint64_t* id);

// The PickInput for a request to `pool` balanced by `balancer`: the key hash when the
// algorithm uses one, the sticky backend when the pool has sticky sessions, and `now_ms`.
// `path` is the request target's path and query (hash_key "uri").
PickInput pickInputFor(const config::Pool& pool, const Balancer& balancer,
                       const http1::HeadArena& head, std::string_view path,
                       const ClientAddress& client, uint64_t now_ms);

// True when the response to `head` must set the sticky cookie for backend `backend_index`: the
// pool has sticky sessions and the request did not already carry that backend's cookie.
bool needsStickyCookie(const config::Pool& pool, const Balancer& balancer,
                       const http1::HeadArena& head, int backend_index);

// Appends "Set-Cookie: NAME=ID; Path=/; HttpOnly[; Max-Age=N]\r\n" for backend `backend_index`.
void appendStickyCookie(http1::Appender& out, const config::Sticky& sticky,
                        const Balancer& balancer, int backend_index);

}  // namespace lb::worker
