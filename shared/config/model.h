#pragma once

// The validated configuration: plain structs, filled by load.cc from a libconfig file.
// Every field has the default documented in man/lb.conf.5. After loading, every cross-reference
// is resolved to an index, so workers never look names up on a request's path.
//
// The master loads the config; workers get a copy through fork(), so these types never cross a
// process boundary as bytes and may hold std::string and std::vector.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shared/os/socket_address.h"

namespace lb::tls {
class ServerContext;
class ClientContext;
}  // namespace lb::tls

namespace lb::config {

enum class LogLevel : uint8_t { Debug, Info, Notice, Warn, Error, Crit, Alert, Emerg };
// How new connections are spread over the workers (worker/net/spread.h).
enum class AcceptSpread : uint8_t {
  Auto,  // by counts; connections that come and go to one worker while it has room
  Even,  // by counts only
};
enum class Algorithm : uint8_t {
  RoundRobin,  // smooth weighted round robin
  LeastConn,   // weighted least connections
  LeastTime,   // weighted least response time (EWMA in shared memory / weight)
  PeakEwma,    // peak EWMA with power of two choices
  Random,      // weighted random
  IpHash,      // client address hash
  Hash,        // consistent hashing (Maglev) on Pool::hash_key
};
enum class Protocol : uint8_t { Http };

// A fixed response lb answers itself: static sites, health endpoints, maintenance pages.
struct StaticResponse {
  int status = 200;
  // Sent as given, in order. lb adds Content-Length (and Content-Type: text/plain if absent).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// What a route rule (or a listener without routes) does with a request.
struct Action {
  enum class Kind : uint8_t { Pool, Static };
  Kind kind = Kind::Pool;
  std::string pool;         // Kind::Pool: the pool's name
  int pool_index = -1;      // resolved index into Config::pools
  StaticResponse response;  // Kind::Static
};

struct RouteRule {
  std::string host;         // "" = any host; compared case-insensitively, port ignored
  std::string path_prefix;  // "" = any path
  Action action;
  int line = 0;
};

// Rules are tried in order; the first match wins. A request that matches none gets 404.
struct RouteTable {
  std::string name;
  std::vector<RouteRule> rules;
  int line = 0;
};

// Client-side limits and timeouts. Set in the top-level "http" group; a listener may override
// each one in its own group.
struct ClientLimits {
  uint32_t header_timeout_ms = 60000;     // client_header_timeout_ms: whole request head
  uint32_t body_timeout_ms = 60000;       // client_body_timeout_ms: between two body reads
  uint32_t keepalive_timeout_ms = 75000;  // keepalive_timeout_ms: idle between requests; 0 = off
  uint32_t send_timeout_ms = 60000;       // send_timeout_ms: client not reading our response
  uint32_t tunnel_timeout_ms = 3600000;   // tunnel_timeout_ms: a WebSocket tunnel idle
  uint32_t max_header_size = 16384;       // client_max_header_size: request line + headers
  uint64_t max_body_size = 1048576;       // client_max_body_size; 0 = unlimited
  uint32_t keepalive_requests = 10000;    // keepalive_requests per connection; 0 = unlimited
  // request_buffering: a Content-Length body arrives (as far as the request buffer holds)
  // before a backend is chosen, so a slow upload holds no backend connection meanwhile.
  bool request_buffering = true;
  // reset_timedout_connection: a client cut for not reading its response gets an RST, and the
  // bytes it left unread are dropped at once instead of waiting in the kernel (nginx's).
  bool reset_timedout_connection = false;
};

// One certificate of a TLS listener: a PEM certificate chain and its private key. The names
// it serves are those of the certificate itself (DNS subjectAltNames, else the CN), exact or
// wildcard ("*.example.com"); two certificates with the same names (RSA and ECDSA) are offered
// side by side and the client's signature algorithms choose.
struct TlsCertificate {
  std::string cert;           // path of the PEM chain, leaf first
  std::string key;            // path of the PEM private key
  std::string ocsp_response;  // path of a DER OCSP response to staple; "" = none
  int line = 0;
};

// TLS termination on a listener ("tls" group). Off when `certificates` is empty.
struct ListenerTls {
  enum class VerifyClient : uint8_t { Off, Optional, On };
  std::vector<TlsCertificate> certificates;  // the first one is the default (no or unknown SNI)
  std::vector<std::string> protocols = {"TLSv1.2", "TLSv1.3"};
  // TLS 1.2 cipher list (OpenSSL syntax); TLS 1.3 ciphersuites; key exchange groups.
  std::string ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
  std::string ciphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
      "TLS_CHACHA20_POLY1305_SHA256";
  std::string groups = "X25519:P-256:P-384";
  // Protocols offered, in preference order; "h2" only when http2 is enabled on the listener.
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  bool session_tickets = true;
  uint32_t ticket_key_rotation_s = 3600;  // ticket keys (shared by all workers) change this often
  uint32_t session_cache = 20480;         // sessions cached per worker; 0 = no cache
  uint32_t session_timeout_s = 300;       // a session (ticket or cached) resumes this long
  VerifyClient verify_client = VerifyClient::Off;
  std::string client_ca;  // PEM CA certificates client certificates must chain to
  uint32_t verify_depth = 1;
  // Request header that carries the verified client certificate's subject to the backends
  // ("" = none). A client's own header of that name is always removed.
  std::string client_subject_header;
  int line = 0;

  bool enabled() const { return !certificates.empty(); }
};

// HTTP/2 on a listener ("http2" group): by the h2c preface on a plain listener, by ALPN "h2" on
// a TLS one (when "h2" is in tls.alpn).
struct Http2 {
  bool enabled = true;
  uint32_t max_concurrent_streams = 128;
  uint32_t initial_window_size = 262144;  // per stream, request bodies
  // Client stream resets (RST_STREAM) a connection may send: a burst, then so many per second.
  uint32_t max_resets_burst = 200;
  uint32_t max_resets_per_s = 50;
  int line = 0;
};

struct Listener {
  std::string name;
  std::string listen;  // as written
  os::SocketAddress address;
  Protocol protocol = Protocol::Http;
  int backlog = 511;
  // Exactly one of: routes (a route table's name) or an action (pool or static response).
  std::string routes;
  int routes_index = -1;
  bool has_action = false;
  Action action;
  ClientLimits limits;
  ListenerTls tls;
  Http2 http2;
  // Built from `tls` by the master after loading (shared/tls/server_context.h); workers
  // inherit it. Null without TLS.
  std::shared_ptr<const tls::ServerContext> tls_context;
  int line = 0;
};

struct Backend {
  std::string address_text;  // as written, "10.0.0.1:8080"
  os::SocketAddress address;
  int weight = 1;           // 1..1000
  int max_connections = 0;  // 0 = unlimited; counted across all workers
  int line = 0;
  int slot = -1;  // shared-memory backend slot, assigned by the master after loading
};

// What algorithm "hash" hashes a request on.
struct HashKey {
  enum class Kind : uint8_t { ClientAddress, Uri, Header, Cookie };
  Kind kind = Kind::ClientAddress;
  std::string name;  // the header's or cookie's name
};

// Sticky sessions: lb inserts a cookie naming the backend that answered; a request carrying it
// goes to that backend while it is available, else to the pool's algorithm (and gets a new one).
struct Sticky {
  bool enabled = false;
  std::string cookie = "lb_sticky";
  uint32_t max_age_s = 0;  // 0: a session cookie
};

// Active health checks, run by the checker process.
struct HealthCheck {
  enum class Type : uint8_t { None, Tcp, Http };
  Type type = Type::None;
  std::string method = "GET";
  std::string path = "/";
  std::string host;           // Host header; "" = the backend's address
  std::vector<int> expect;    // statuses that pass; empty = any 2xx or 3xx
  std::string body_contains;  // "" = the body is not checked
  uint32_t interval_ms = 5000;
  uint32_t timeout_ms = 2000;
  uint32_t fall = 3;       // consecutive failures that mark a backend down
  uint32_t rise = 2;       // consecutive successes that mark it up again
  bool initial_up = true;  // state of a backend before its first check
  uint32_t jitter_ms = 0;  // each interval varies by up to this much, so checks spread out
  int line = 0;
};

// Passive health: a backend whose real traffic fails `failures` times in a row (connect errors,
// resets, timeouts, invalid responses, and the `statuses` listed) is taken out for
// `fail_timeout_ms`. failures 0 = off (no "passive" group); the group's presence makes it 3.
struct PassiveHealth {
  uint32_t failures = 0;
  uint32_t fail_timeout_ms = 10000;
  std::vector<int> statuses = {500, 502, 503, 504};
};

// One circuit breaker per backend, its state shared by all workers: `failures` consecutive
// failures open it; after `open_ms` it lets `half_open_probes` requests through; when
// `half_open_successes` of them succeed it closes, a failure opens it again.
struct CircuitBreaker {
  bool enabled = false;
  uint32_t failures = 5;
  uint32_t open_ms = 10000;
  uint32_t half_open_probes = 1;
  uint32_t half_open_successes = 1;
  std::vector<int> statuses = {500, 502, 503, 504};  // responses that count as failures
};

// Retries may add at most `percent` % to the requests of a pool over `window_ms` (all workers
// together), plus `min_retries` per window so that a quiet pool can still retry.
struct RetryBudget {
  uint32_t percent = 20;
  uint32_t window_ms = 10000;
  uint32_t min_retries = 10;
};

// Requests that find every candidate at max_connections wait here (per worker) for a free
// connection, at most `timeout_ms`, then get 503. size 0 = no queue.
struct RequestQueue {
  uint32_t size = 0;
  uint32_t timeout_ms = 5000;
};

// TLS from lb to a pool's backends (a pool's "tls" group). Off without the group.
struct PoolTls {
  bool enabled = false;  // the group's presence turns it on
  // The backend's certificate must chain to a CA of `ca` and name `server_name` (or, without
  // one, the backend's IP address); a backend that fails this fails like a refused connect.
  bool verify = true;
  std::string ca;  // PEM CA certificates; "" = the system's default CA store
  uint32_t verify_depth = 1;
  // Sent as SNI and verified; "" = no SNI, the certificate must name the backend's address.
  std::string server_name;
  std::string cert;  // client certificate chain (PEM, leaf first); "" = none
  std::string key;   // its private key
  std::vector<std::string> protocols = {"TLSv1.2", "TLSv1.3"};
  std::string ciphers = "DEFAULT";  // TLS 1.2 cipher list (OpenSSL syntax)
  std::string ciphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
      "TLS_CHACHA20_POLY1305_SHA256";
  // A worker keeps each backend's last session and resumes it on the next connection.
  bool session_reuse = true;
  int line = 0;
};

struct Pool {
  std::string name;
  Algorithm algorithm = Algorithm::RoundRobin;
  HashKey hash_key;  // algorithm "hash"
  Sticky sticky;
  HealthCheck health_check;
  std::vector<Backend> backends;
  int keepalive = 64;                     // idle upstream connections cached per worker
  uint32_t keepalive_timeout_ms = 60000;  // an idle cached connection is closed after this
  uint32_t keepalive_requests = 10000;    // requests per upstream connection; 0 = unlimited
  uint32_t connect_timeout_ms = 5000;
  uint32_t read_timeout_ms = 60000;  // between two reads of the response
  uint32_t send_timeout_ms = 60000;  // between two writes of the request
  // Further backends tried after a failure before any response byte reached the client (the
  // rules are in man/lb.conf.5, "retries").
  int retries = 1;
  std::vector<int> retry_on;  // response statuses (429, 500, 502, 503, 504) retried too
  RetryBudget retry_budget;
  PassiveHealth passive;
  CircuitBreaker circuit_breaker;
  RequestQueue queue;
  uint32_t slow_start_ms = 0;     // a backend that comes back ramps its weight up over this
  bool forwarded_headers = true;  // X-Forwarded-For/-Proto/-Host on requests to the backends
  PoolTls tls;
  // Built from `tls` by the master after loading (shared/tls/client_context.h); workers inherit
  // it. Null without TLS.
  std::shared_ptr<const tls::ClientContext> tls_context;
  int line = 0;
  int slot = -1;  // shared-memory pool slot (round-robin sequence), assigned by the master
};

struct ErrorLog {
  std::string path = "/var/log/lb/error.log";  // "stderr" logs to standard error
  LogLevel level = LogLevel::Notice;
};

struct AccessLog {
  std::string path;  // "" or "off": no access log
};

struct Config {
  std::string file;          // the file it was loaded from
  int worker_processes = 0;  // resolved: "auto" = number of online CPUs
  bool daemon = true;
  std::string pid = "/run/lb.pid";
  uint32_t worker_shutdown_timeout_ms = 10000;  // lb -s quit: in-flight requests get this long
  uint32_t worker_connections = 16384;          // client connections per worker
  uint32_t reload_timeout_ms = 10000;           // a new generation must be ready within this
  uint32_t max_draining_generations = 4;        // older draining generations are stopped
  uint32_t drain_window_ms = 2000;              // a drain's connection closes are spread over this
  AcceptSpread accept_spread = AcceptSpread::Auto;
  ErrorLog error_log;
  AccessLog access_log;
  ClientLimits http;  // defaults for every listener
  std::vector<Listener> listeners;
  std::vector<RouteTable> routes;
  std::vector<Pool> pools;
};

}  // namespace lb::config
