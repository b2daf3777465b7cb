// TLS from lb to its backends (a pool's tls group), against nginx as the TLS backend: the
// certificate verified against a CA, by name (SNI sent) or by address (no SNI), a client
// certificate shown to a backend that requires one, a wrong CA or name failing like a refused
// connect (502, the reason logged, another backend tried), kept-alive TLS connections carrying
// many requests, new connections resuming the last session, bodies both ways, health checks
// over TLS, and a missing CA refused by `lb -t` and at reload. Certificates are made for each
// test with the openssl command; nginx answers with what it saw ($ssl_server_name,
// $connection, $ssl_session_reused, the client certificate).

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"
#include "e2e/harness/pki.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

namespace lb::e2e {
namespace {

// A CA and, signed by it, a backend certificate for api.internal and 127.0.0.1 and a client
// certificate for lb; a second CA with a backend certificate of its own (a backend lb must not
// trust). EC keys: quick to make.
struct TestPki : Pki {
  explicit TestPki(const std::string& d) : Pki(d) {
    ca("ca", "lb test CA");
    ca("other-ca", "someone else's CA");
    make("backend", "ca", "api.internal", "DNS:api.internal,IP:127.0.0.1");
    make("client", "ca", "lb client", "");
    make("stranger", "other-ca", "api.internal", "DNS:api.internal,IP:127.0.0.1");
  }
};

// What the nginx backends answer: the TLS facts of the connection a request came on.
const std::string kFacts =
    "sni=[$ssl_server_name] conn=$connection reused=$ssl_session_reused "
    "proto=$ssl_protocol verify=$ssl_client_verify client=[$ssl_client_s_dn]\\n";

// nginx as TLS backends: one process without a master (so one connection counter), listening
// on `ports`, one server block each, from `servers` with @PORT_n@ and @DIR@ replaced.
class Nginx {
 public:
  Nginx(const std::string& dir, const std::vector<int>& ports, std::string servers) : dir_(dir) {
    for (size_t i = 0; i < ports.size(); ++i) {
      replaceAll(servers, "@PORT_" + std::to_string(i) + "@", std::to_string(ports[i]));
    }
    replaceAll(servers, "@DIR@", dir_);
    writeFile(dir_ + "/nginx.conf",
              "daemon off;\nmaster_process off;\nworker_processes 1;\npid " + dir_ +
                  "/nginx.pid;\nerror_log " + dir_ + "/nginx-error.log info;\n" +
                  "events { worker_connections 256; }\n"
                  "http {\n"
                  "  log_format facts '$server_port $request_length $status $ssl_session_reused';\n"
                  "  access_log " +
                  dir_ + "/nginx-access.log facts;\n" + "  client_body_temp_path " + dir_ +
                  "/body;\n  proxy_temp_path " + dir_ + "/proxy;\n  fastcgi_temp_path " + dir_ +
                  "/fastcgi;\n  uwsgi_temp_path " + dir_ + "/uwsgi;\n  scgi_temp_path " + dir_ +
                  "/scgi;\n  default_type text/plain;\n  client_max_body_size 16m;\n"
                  "  keepalive_requests 1000;\n" +
                  servers + "}\n");
    pid_ = spawnProcess({findProgram("nginx"), "-p", dir_ + "/", "-c", dir_ + "/nginx.conf", "-e",
                         dir_ + "/nginx-error.log"},
                        dir_ + "/nginx.out");
    REQUIRE(pid_ > 0);
    for (int port : ports) {
      INFO(readFile(dir_ + "/nginx.out") + readFile(dir_ + "/nginx-error.log"));
      REQUIRE(waitUntil([&] { return connectTcp(port, 1s).valid(); }, 10s));
    }
  }
  ~Nginx() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!waitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 5s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  std::string accessLog() const { return readFile(dir_ + "/nginx-access.log"); }

 private:
  static void replaceAll(std::string& s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
      s.replace(at, from.size(), to);
    }
  }
  std::string dir_;
  pid_t pid_ = -1;
};

// A TLS server block on @PORT_n@ with `cert` (a Pki name), answering kFacts; `extra` goes into
// the server block.
std::string server(int n, const std::string& cert, const std::string& extra = "") {
  return "  server {\n    listen 127.0.0.1:@PORT_" + std::to_string(n) +
         "@ ssl;\n    ssl_certificate @DIR@/" + cert + ".pem;\n    ssl_certificate_key @DIR@/" +
         cert + ".key;\n    ssl_protocols TLSv1.2 TLSv1.3;\n    " + extra +
         "\n    location /big { alias @DIR@/big.bin; }\n"
         "    location /upload/ { root @DIR@/uploads; dav_methods PUT; create_full_put_path on; "
         "}\n    location / { return 200 \"" +
         kFacts + "\"; }\n  }\n";
}

// The value of `key=` in a kFacts body.
std::string fact(const std::string& body, const std::string& key) {
  size_t at = body.find(key + "=");
  if (at == std::string::npos) {
    return "(no " + key + ")";
  }
  at += key.size() + 1;
  size_t end = body[at] == '[' ? body.find(']', at) + 1 : body.find_first_of(" \n", at);
  return body.substr(at, end - at);
}

std::string tlsPool(const std::string& name, int port, const std::string& tls,
                    const std::string& extra = "") {
  return poolBlock(name, {"127.0.0.1:" + std::to_string(port)}, "tls = { " + tls + " }; " + extra);
}

// A listener on @PORT_0@ routing Host "<pool>.test" to each pool.
std::string routedConfig(const std::vector<std::pair<std::string, std::string>>& pools) {
  std::string rules;
  std::string blocks;
  for (size_t i = 0; i < pools.size(); ++i) {
    rules += (i ? ", " : "") + std::string("{ host = \"") + pools[i].first + ".test\"; pool = \"" +
             pools[i].first + "\"; }";
    blocks += (i ? ",\n  " : "  ") + pools[i].second;
  }
  return "listeners = ( { name = \"web\"; listen = \"127.0.0.1:@PORT_0@\"; routes = \"r\"; } );\n"
         "routes = ( { name = \"r\"; rules = ( " +
         rules + " ); } );\npools = (\n" + blocks + "\n);\n";
}

std::string quotedPath(const Pki& pki, const std::string& name) {
  return "\"" + pki.path(name) + "\"";
}

// One worker in front of the TLS backend on `port`, taking bodies of up to 64 MiB and trying no
// other backend; returns the worker's pid.
std::vector<pid_t> startForUploads(LbInstance& lb, const Pki& pki, int port) {
  lb.start(singlePoolConfig({"127.0.0.1:" + std::to_string(port)},
                            "tls = { ca = " + quotedPath(pki, "ca.pem") + "; }; retries = 0;", "",
                            "http = { client_max_body_size = \"64m\"; };"),
           {.workers = 1});
  std::vector<pid_t> workers = lb.workerPids();
  REQUIRE(workers.size() == 1);
  return workers;
}

// A TLS backend written with OpenSSL for what nginx will not do: it answers every connection
// with a body delimited by the close ("first part"), waits for go(), sends "second part" and
// ends the connection with a close_notify, or, when `close_notify` is false, with a bare FIN
// (what an attacker who can forge a FIN, or a crashing backend, leaves).
class CloseDelimitedTlsBackend {
 public:
  // `middle` bytes ('m') go between the two parts, after go().
  CloseDelimitedTlsBackend(const Pki& pki, bool close_notify, size_t middle = 0)
      : close_notify_(close_notify), middle_(middle) {
    listener_ = listenTcp(0, 16, &port_);
    REQUIRE(listener_.valid());
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_ != nullptr);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, pki.path("backend.pem").c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, pki.path("backend.key").c_str(), SSL_FILETYPE_PEM) ==
            1);
    thread_ = std::thread([this] { serve(); });
  }
  ~CloseDelimitedTlsBackend() {
    stop_ = true;
    go();
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  CloseDelimitedTlsBackend(const CloseDelimitedTlsBackend&) = delete;
  CloseDelimitedTlsBackend& operator=(const CloseDelimitedTlsBackend&) = delete;

  int port() const { return port_; }
  void go() { go_ = true; }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      UniqueFd fd(::accept(listener_.get(), nullptr, nullptr));
      if (!fd.valid()) {
        continue;
      }
      ++connections_;
      timeval tv{10, 0};
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd.get());
      std::string head;
      char buf[4096];
      while (SSL_accept(ssl) == 1 && head.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        head.append(buf, static_cast<size_t>(n));
      }
      if (head.find("\r\n\r\n") != std::string::npos) {
        const std::string first = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part\n";
        SSL_write(ssl, first.data(), static_cast<int>(first.size()));
        waitUntil([&] { return go_.load(); }, 10s);
        go_ = false;
        for (size_t sent = 0; sent < middle_;) {
          const std::string block(std::min<size_t>(middle_ - sent, 1 << 20), 'm');
          if (SSL_write(ssl, block.data(), static_cast<int>(block.size())) <= 0) {
            break;
          }
          sent += block.size();
        }
        if (close_notify_) {
          const std::string second = "second part\n";
          SSL_write(ssl, second.data(), static_cast<int>(second.size()));
          SSL_shutdown(ssl);
        }
      }
      SSL_free(ssl);  // fd closes with the UniqueFd: a FIN, no alert unless shut down above
    }
  }

  const bool close_notify_;
  const size_t middle_;
  UniqueFd listener_;
  int port_ = 0;
  SSL_CTX* ctx_ = nullptr;
  std::atomic<bool> go_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST_CASE(
    "tls upstream: verified by CA and name, SNI sent, client certificate shown, bodies "
    "both ways",
    "[tls]") {
  LbInstance lb;
  TestPki pki(lb.dir());
  const int port = freePort();
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); i += 4093) {
    big[i] = static_cast<char>('a' + i % 26);
  }
  writeFile(lb.file("big.bin"), big);
  Nginx nginx(lb.dir(), {port},
              server(0, "backend", "ssl_verify_client on; ssl_client_certificate @DIR@/ca.pem;"));
  lb.start(singlePoolConfig(
               {"127.0.0.1:" + std::to_string(port)},
               "tls = { ca = " + quotedPath(pki, "ca.pem") +
                   "; server_name = \"api.internal\"; cert = " + quotedPath(pki, "client.pem") +
                   "; key = " + quotedPath(pki, "client.key") + "; };",
               "", "http = { client_max_body_size = \"4m\"; };"),
           {.workers = 1});
  auto r = get(lb.port(0), "/facts");
  INFO(describe(r));
  INFO(lb.diagnostics());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(fact(r->body.data, "sni") == "[api.internal]");
  CHECK(fact(r->body.data, "verify") == "SUCCESS");
  CHECK(fact(r->body.data, "client") == "[O=lb tests,CN=lb client]");

  // A response larger than every buffer on the way, decrypted into lb's response buffer as
  // the client reads; a request body encrypted on its way out.
  auto whole = get(lb.port(0), "/big");
  REQUIRE(whole);
  CHECK(whole->status == 200);
  CHECK(whole->body.length() == big.size());
  CHECK(whole->body.data == big);
  std::string upload(3 * 1024 * 1024 + 5, 'u');
  for (size_t i = 0; i < upload.size(); i += 1021) {
    upload[i] = static_cast<char>('A' + i % 26);
  }
  auto put = fetch(lb.port(0), buildRequest("PUT", "/upload/file.bin", {}, upload));
  INFO(describe(put));
  REQUIRE(put);
  CHECK(put->status == 201);
  CHECK(readFile(lb.file("uploads/upload/file.bin")) == upload);
}

TEST_CASE(
    "tls upstream: a wrong CA or name fails like a refused connect, an address verifies "
    "without SNI",
    "[tls]") {
  LbInstance lb;
  TestPki pki(lb.dir());
  const int good = freePort();
  const int stranger = freePort();
  const int plain = freePort();
  Nginx nginx(lb.dir(), {good, stranger, plain},
              server(0, "backend") + server(1, "stranger") +
                  "  server { listen 127.0.0.1:@PORT_2@; location / { return 200; } }\n");
  const std::string ca = "ca = " + quotedPath(pki, "ca.pem") + ";";
  // A backend that accepts connections and never says a word; one that speaks plain HTTP.
  int silent = 0;
  UniqueFd silent_fd = listenTcp(0, 16, &silent);
  REQUIRE(silent_fd.valid());
  lb.start(routedConfig({
               {"silent", tlsPool("silent", silent, ca, "connect_timeout_ms = 300; retries = 0;")},
               {"plain", tlsPool("plain", plain, ca, "retries = 0;")},
               {"byaddress", tlsPool("byaddress", good, ca)},
               {"wrongca", tlsPool("wrongca", stranger, ca)},
               {"wrongname", tlsPool("wrongname", good, ca + " server_name = \"db.internal\";")},
               {"unverified", tlsPool("unverified", stranger, "verify = false;")},
               {"retried", poolBlock("retried",
                                     {"127.0.0.1:" + std::to_string(stranger),
                                      "127.0.0.1:" + std::to_string(good)},
                                     "tls = { " + ca + " }; retries = 1;")},
           }),
           {.workers = 1});
  INFO(lb.diagnostics());
  auto byaddress = get(lb.port(0), "/", "byaddress.test");
  REQUIRE(byaddress);
  CHECK(byaddress->status == 200);
  CHECK(fact(byaddress->body.data, "sni") == "[]");

  auto wrongca = get(lb.port(0), "/", "wrongca.test");
  REQUIRE(wrongca);
  CHECK(wrongca->status == 502);
  const std::string host = "127.0.0.1:" + std::to_string(stranger);
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("[error]") != std::string::npos &&
               lb.errorLog().find("upstream TLS handshake with " + host +
                                  " failed: certificate verify failed (unable to get local "
                                  "issuer certificate)") != std::string::npos;
      },
      5s));

  auto wrongname = get(lb.port(0), "/", "wrongname.test");
  REQUIRE(wrongname);
  CHECK(wrongname->status == 502);
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("upstream TLS handshake with 127.0.0.1:" + std::to_string(good) +
                                  " failed: certificate verify failed (hostname mismatch)") !=
               std::string::npos;
      },
      5s));

  // verify = false: encrypted, unauthenticated.
  auto unverified = get(lb.port(0), "/", "unverified.test");
  REQUIRE(unverified);
  CHECK(unverified->status == 200);

  // The handshake is part of the connect, under connect_timeout_ms.
  auto hung = get(lb.port(0), "/", "silent.test");
  REQUIRE(hung);
  CHECK(hung->status == 504);
  CHECK(lb.errorLog().find("upstream timed out connecting to 127.0.0.1:" +
                           std::to_string(silent)) != std::string::npos);
  auto refused = get(lb.port(0), "/", "plain.test");
  REQUIRE(refused);
  CHECK(refused->status == 502);
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("upstream TLS handshake with 127.0.0.1:" + std::to_string(plain) +
                                  " failed: ") != std::string::npos;
      },
      5s));

  // The handshake failure is the first backend's failure: the request goes to the second.
  for (int i = 0; i < 4; ++i) {
    auto retried = get(lb.port(0), "/", "retried.test");
    REQUIRE(retried);
    CHECK(retried->status == 200);
  }
}

TEST_CASE("tls upstream: kept-alive TLS connections carry many requests, new ones resume",
          "[tls]") {
  LbInstance lb;
  TestPki pki(lb.dir());
  const int port = freePort();
  Nginx nginx(lb.dir(), {port}, server(0, "backend"));
  const std::string ca = "ca = " + quotedPath(pki, "ca.pem") + ";";
  lb.start(
      routedConfig({
          {"kept", tlsPool("kept", port, ca)},
          {"tls13", tlsPool("tls13", port, ca + " protocols = [ \"TLSv1.3\" ];", "keepalive = 0;")},
          {"tls12", tlsPool("tls12", port, ca + " protocols = [ \"TLSv1.2\" ];", "keepalive = 0;")},
          {"fresh", tlsPool("fresh", port, ca + " session_reuse = false;", "keepalive = 0;")},
      }),
      {.workers = 1});
  INFO(lb.diagnostics());
  // Ten requests on one client connection, and five more on new client connections: one
  // upstream TLS connection serves them all.
  HttpClient client(lb.port(0));
  REQUIRE(client.connected());
  std::set<std::string> connections;
  for (int i = 0; i < 10; ++i) {
    auto r = client.roundTrip(buildRequest("GET", "/k" + std::to_string(i), {}, "", "kept.test"));
    INFO(describe(r, client.error()));
    REQUIRE(r);
    CHECK(r->status == 200);
    connections.insert(fact(r->body.data, "conn"));
  }
  for (int i = 0; i < 5; ++i) {
    auto r = get(lb.port(0), "/n" + std::to_string(i), "kept.test");
    REQUIRE(r);
    connections.insert(fact(r->body.data, "conn"));
  }
  CHECK(connections.size() == 1);

  // Without keep-alive every request has its own upstream connection; all but the first
  // resume the session, with TLS 1.3 tickets and with TLS 1.2.
  for (const std::string pool : {"tls13", "tls12"}) {
    INFO(pool);
    std::vector<std::string> reused;
    std::set<std::string> conns;
    for (int i = 0; i < 4; ++i) {
      auto r = get(lb.port(0), "/", pool + ".test");
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(fact(r->body.data, "proto") == (pool == "tls13" ? "TLSv1.3" : "TLSv1.2"));
      reused.push_back(fact(r->body.data, "reused"));
      conns.insert(fact(r->body.data, "conn"));
    }
    CHECK(conns.size() == 4);
    CHECK(reused == std::vector<std::string>{".", "r", "r", "r"});
  }
  for (int i = 0; i < 3; ++i) {
    auto r = get(lb.port(0), "/", "fresh.test");
    REQUIRE(r);
    CHECK(fact(r->body.data, "reused") == ".");
  }
}

TEST_CASE("tls upstream: a backend that refuses an upload before its end and closes", "[tls]") {
  // nginx answers 413 as soon as a body passes its client_max_body_size and closes: lb relays
  // the answer while the client is still sending, drops the rest of the body, and its worker
  // serves on. Sizes and piece lengths vary where the backend's close meets lb's writes.
  LbInstance lb;
  TestPki pki(lb.dir());
  const int port = freePort();
  Nginx nginx(
      lb.dir(), {port},
      server(0, "backend",
             "location /small/ { client_max_body_size 1k; root @DIR@/uploads; dav_methods PUT; }"));
  const std::vector<pid_t> workers = startForUploads(lb, pki, port);
  INFO(lb.diagnostics());
  const std::string piece(16 * 1024 + 3, 'p');
  int answered = 0;
  for (int i = 0; i < 12; ++i) {
    const bool chunked = i % 2 == 1;
    const size_t pieces = 4 + 40 * (i % 3);
    const size_t length = pieces * piece.size();
    HttpClient client(lb.port(0));
    REQUIRE(client.connected());
    const std::string head = "PUT /small/" + std::to_string(i) + " HTTP/1.1\r\nHost: lb.test\r\n" +
                             (chunked ? std::string("Transfer-Encoding: chunked")
                                      : "Content-Length: " + std::to_string(length)) +
                             "\r\n\r\n";
    bool sending = client.send(head, 2s);
    for (size_t k = 0; sending && k < pieces; ++k) {
      if (chunked) {
        sending = client.send("4003\r\n" + piece + "\r\n", 2s);
      } else {
        sending = client.send(piece, 2s);
      }
    }
    if (sending && chunked) {
      client.send("0\r\n\r\n", 2s);
    }
    auto r = client.read({.timeout = 5s});
    INFO("upload " << i << ": " << describe(r, client.error()));
    if (r) {
      CHECK(r->status == 413);
      ++answered;
    }
    auto next = get(lb.port(0), "/facts");
    REQUIRE(next);
    CHECK(next->status == 200);
  }
  // lb drains what the client still sends (a lingering close): every answer arrives.
  CHECK(answered == 12);
  CHECK(lb.workerPids() == workers);
  CHECK(lb.errorLog().find("exited on signal") == std::string::npos);
}

TEST_CASE("tls upstream: a backend that drops HTTP/2 uploads mid-body answers each stream 502",
          "[tls][http2]") {
  // nginx's "return 444" closes at once with the body unread, so the kernel resets the
  // connection and lb's next TLS write fails as it is made. Each stream gets its 502, what was
  // queued for the lost connection is never flushed as more DATA comes, and the worker serves on.
  LbInstance lb;
  TestPki pki(lb.dir());
  const int port = freePort();
  Nginx nginx(lb.dir(), {port},
              server(0, "backend", "lingering_close off; location /drop/ { return 444; }"));
  const std::vector<pid_t> workers = startForUploads(lb, pki, port);
  INFO(lb.diagnostics());
  writeFile(lb.file("upload.bin"), std::string(2u << 20, 'u'));
  auto r =
      runCommand({"h2load", "-c", "4", "-m", "8", "-n", "200", "-d", lb.file("upload.bin"), "-H",
                  ":method: PUT", "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/drop/x"},
                 60s);
  INFO(r.describe());
  CHECK(r.out.find("200 done, 0 succeeded, 200 failed, 0 errored, 0 timeout") != std::string::npos);
  CHECK(r.out.find("status codes: 0 2xx, 0 3xx, 0 4xx, 200 5xx") != std::string::npos);
  CHECK(lb.workerPids() == workers);
  CHECK(lb.errorLog().find("exited on signal") == std::string::npos);
  auto next = get(lb.port(0), "/facts");
  REQUIRE(next);
  CHECK(next->status == 200);
}

TEST_CASE("tls upstream: active health checks run over TLS", "[tls]") {
  LbInstance lb;
  TestPki pki(lb.dir());
  const int good = freePort();
  const int stranger = freePort();
  Nginx nginx(lb.dir(), {good, stranger}, server(0, "backend") + server(1, "stranger"));
  const std::string ca = "ca = " + quotedPath(pki, "ca.pem") + "; server_name = \"api.internal\";";
  const std::string check =
      "health_check = { type = \"http\"; path = \"/health\"; interval_ms = 100; timeout_ms = 80; "
      "fall = 2; rise = 1; };";
  lb.start(routedConfig({{"checked", poolBlock("checked",
                                               {"127.0.0.1:" + std::to_string(good),
                                                "127.0.0.1:" + std::to_string(stranger)},
                                               "tls = { " + ca + " }; " + check)}}),
           {.workers = 1});
  INFO(lb.diagnostics());
  const std::string down = "backend 127.0.0.1:" + std::to_string(stranger) +
                           " in pool checked is DOWN: 2 consecutive failures (TLS handshake: "
                           "certificate verify failed (unable to get local issuer certificate))";
  REQUIRE(waitUntil([&] { return lb.errorLog().find(down) != std::string::npos; }, 10s));
  CHECK(lb.errorLog().find("backend 127.0.0.1:" + std::to_string(good) +
                           " in pool checked is "
                           "DOWN") == std::string::npos);
  // The good backend's checks reached nginx over TLS, with SNI.
  CHECK(waitUntil(
      [&] { return nginx.accessLog().find(std::to_string(good) + " ") != std::string::npos; }, 5s));
  for (int i = 0; i < 6; ++i) {
    auto r = get(lb.port(0), "/", "checked.test");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE("tls upstream: a missing CA or a mismatched key fails lb -t and refuses a reload",
          "[tls]") {
  LbInstance lb;
  TestPki pki(lb.dir());
  const int port = freePort();
  Nginx nginx(lb.dir(), {port}, server(0, "backend"));
  const std::string good = singlePoolConfig({"127.0.0.1:" + std::to_string(port)},
                                            "tls = { ca = " + quotedPath(pki, "ca.pem") + "; };");
  lb.start(good, {.workers = 1});
  // Relative: taken from the config file's directory, and named made absolute.
  const std::string text = lb.configText(singlePoolConfig(
      {"127.0.0.1:" + std::to_string(port)}, "\n  tls = { ca = \"missing-ca.pem\"; };"));
  writeFile(lb.configPath(), text);
  const int line =
      1 + static_cast<int>(std::count(
              text.begin(), text.begin() + static_cast<long>(text.find("tls = {")), '\n'));
  auto t = lb.runLbCommand({"-t", "-c", lb.configPath()});
  INFO(t.describe());
  CHECK(t.exit_code == 1);
  CHECK(t.err.find("lb.conf:" + std::to_string(line) + ": tls of pool \"p\": cannot read ca \"" +
                   lb.file("missing-ca.pem") + "\": No such file or directory") !=
        std::string::npos);
  auto reload = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(reload.describe());
  CHECK(reload.exit_code == 1);
  CHECK(reload.err.find("cannot read ca") != std::string::npos);

  // A client certificate whose key is another one's.
  writeFile(lb.configPath(), lb.configText(singlePoolConfig(
                                 {"127.0.0.1:" + std::to_string(port)},
                                 "tls = { cert = " + quotedPath(pki, "client.pem") +
                                     "; key = " + quotedPath(pki, "backend.key") + "; };")));
  t = lb.runLbCommand({"-t", "-c", lb.configPath()});
  INFO(t.describe());
  CHECK(t.exit_code == 1);
  CHECK(t.err.find("tls of pool \"p\": key \"" + pki.path("backend.key") +
                   "\" does not match certificate \"" + pki.path("client.pem") + "\"") !=
        std::string::npos);

  // The running generation serves on, over TLS.
  auto r = get(lb.port(0), "/");
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(fact(r->body.data, "proto").starts_with("TLSv1."));
  lb.allowAlertsContaining("reload failed");
}

TEST_CASE("tls upstream: a body delimited by the close is whole only with the close_notify",
          "[tls][http2]") {
  // RFC 9112 9.8: over TLS, a response with neither Content-Length nor chunked coding ends with
  // the backend's close_notify; a bare FIN may be a forged one that cut it short. lb relays the
  // whole body as chunked (HTTP/1.1) or with END_STREAM (HTTP/2) after a close_notify, and
  // after a bare FIN cuts the client's response instead: no last chunk, a RST_STREAM.
  LbInstance lb;
  TestPki pki(lb.dir());
  CloseDelimitedTlsBackend clean(pki, true);
  CloseDelimitedTlsBackend cut(pki, false);
  const std::string ca = "ca = " + quotedPath(pki, "ca.pem") + ";";
  // Clients on a plain listener (@PORT_0@) and a TLS one (@PORT_1@).
  std::string config = routedConfig({{"clean", tlsPool("clean", clean.port(), ca, "retries = 0;")},
                                     {"cut", tlsPool("cut", cut.port(), ca, "retries = 0;")}});
  const std::string plain = "routes = \"r\"; } );";
  REQUIRE(config.find(plain) != std::string::npos);
  config.replace(
      config.find(plain), plain.size(),
      "routes = \"r\"; },\n  { name = \"tls\"; listen = \"127.0.0.1:@PORT_1@\"; routes = "
      "\"r\"; tls = { certificates = ( " +
          pki.cert("backend") + " ); }; } );");
  lb.start(config, {.workers = 1});
  INFO(lb.diagnostics());

  // HTTP/1.1: the client reads "first part" before the backend ends the body.
  auto h1 = [&](CloseDelimitedTlsBackend& backend, const std::string& host) {
    HttpClient c(lb.port(0));
    REQUIRE(c.send("GET /part HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"));
    std::string upto;
    REQUIRE(c.stream().readUntil("first part\n", 1 << 16, deadlineIn(5s), &upto) == IoStatus::Ok);
    CHECK(upto.find("Transfer-Encoding: chunked") != std::string::npos);
    backend.go();
    std::string rest;
    c.stream().readToEof(deadlineIn(5s), [&](std::string_view d) { rest.append(d); });
    return upto + rest;
  };
  std::string whole = h1(clean, "clean.test");
  INFO("clean:\n" << whole);
  CHECK(whole.find("second part\n") != std::string::npos);
  CHECK(whole.ends_with("\r\n0\r\n\r\n"));
  std::string cut_short = h1(cut, "cut.test");
  INFO("cut:\n" << cut_short);
  CHECK(cut_short.find("first part\n") != std::string::npos);
  CHECK(cut_short.find("\r\n0\r\n\r\n") == std::string::npos);

  // HTTP/2: END_STREAM after the close_notify, RST_STREAM after a bare FIN.
  auto h2 = [&](CloseDelimitedTlsBackend& backend, const std::string& host) {
    H2Client c(lb.port(0));
    REQUIRE(c.handshake());
    int32_t id = c.startRequest(
        {{":method", "GET"}, {":scheme", "http"}, {":authority", host}, {":path", "/part"}});
    REQUIRE(id != 0);
    REQUIRE(c.waitFor(
        [&] { return c.result(id).body.data.find("first part") != std::string::npos; }, 5s));
    backend.go();
    REQUIRE(c.waitDone(id));
    return c.result(id);
  };
  H2StreamResult ok = h2(clean, "clean.test");
  CHECK(ok.status == 200);
  CHECK(ok.ended);
  CHECK(ok.body.data == "first part\nsecond part\n");
  H2StreamResult reset = h2(cut, "cut.test");
  CHECK(reset.status == 200);
  CHECK_FALSE(reset.ended);
  CHECK(reset.reset.has_value());

  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find(
                   "ended the TLS connection without close_notify in a body "
                   "delimited by the close") != std::string::npos;
      },
      5s));
  // HTTP/1.0 over TLS: the body is delimited by the close on lb's side too, so only lb's
  // close_notify tells the client the response is whole. None comes after a cut.
  auto h10 = [&](CloseDelimitedTlsBackend& backend, const std::string& host, std::string* got) {
    UniqueFd fd = connectTcp(lb.port(1), 5s);
    REQUIRE(fd.valid());
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);  // blocking, bounded:
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd.get());
    REQUIRE(SSL_connect(ssl) == 1);
    const std::string req = "GET /part HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    REQUIRE(SSL_write(ssl, req.data(), static_cast<int>(req.size())) ==
            static_cast<int>(req.size()));
    char buf[4096];
    int n = 0;
    bool told = false;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) {
      got->append(buf, static_cast<size_t>(n));
      if (!told && got->find("first part\n") != std::string::npos) {
        told = true;
        backend.go();
      }
    }
    int why = SSL_get_error(ssl, n);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return why == SSL_ERROR_ZERO_RETURN;  // the end came with a close_notify
  };
  std::string h10_whole, h10_cut;
  CHECK(h10(clean, "clean.test", &h10_whole));
  CHECK(h10_whole.find("first part\nsecond part\n") != std::string::npos);
  CHECK_FALSE(h10(cut, "cut.test", &h10_cut));
  CHECK(h10_cut.find("first part\n") != std::string::npos);

  CHECK(cut.connections() == 3);  // never retried: part of each answer had left
}

TEST_CASE("tls upstream: a body cut by a bare FIN counts for passive health", "[tls][resilience]") {
  // The head was a success for passive health; the cut is recorded over it, and with
  // failures = 1 takes the backend out.
  LbInstance lb;
  TestPki pki(lb.dir());
  CloseDelimitedTlsBackend cut(pki, false);
  lb.start(singlePoolConfig({"127.0.0.1:" + std::to_string(cut.port())},
                            "tls = { ca = " + quotedPath(pki, "ca.pem") +
                                "; }; retries = 0; passive = { failures = 1; fail_timeout_ms = "
                                "60000; };"),
           {.workers = 1});
  INFO(lb.diagnostics());
  HttpClient c(lb.port(0));
  REQUIRE(c.send("GET /part HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
  std::string upto;
  REQUIRE(c.stream().readUntil("first part\n", 1 << 16, deadlineIn(5s), &upto) == IoStatus::Ok);
  cut.go();
  CHECK(c.waitClosed(5s));
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("backend 127.0.0.1:" + std::to_string(cut.port()) +
                                  " in pool p is out for 60000 ms: 1 consecutive failures") !=
               std::string::npos;
      },
      5s));
}

TEST_CASE("tls upstream: a close-delimited body reaches a client reading slowly whole",
          "[tls][large]") {
  // lb stops reading the backend while the client lags, so OpenSSL holds records (the last
  // ones with the close_notify) when the backend's TCP close arrives: the close must wait for
  // them, not be taken for one without close_notify.
  LbInstance lb;
  TestPki pki(lb.dir());
  constexpr size_t kMiddle = 24u << 20;
  CloseDelimitedTlsBackend backend(pki, true, kMiddle);
  backend.go();  // the whole body at once
  lb.start(singlePoolConfig({"127.0.0.1:" + std::to_string(backend.port())},
                            "tls = { ca = " + quotedPath(pki, "ca.pem") + "; }; retries = 0;"),
           {.workers = 1});
  auto r = runCommand(
      {"curl", "-sS", "--limit-rate", "12M", "-o", "/dev/null", "-w",
       "%{http_code} %{size_download}", "http://127.0.0.1:" + std::to_string(lb.port(0)) + "/slow"},
      30s);
  INFO(r.describe() << lb.errorLog());
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        "200 " + std::to_string(kMiddle + std::string("first part\nsecond part\n").size()));
  CHECK(lb.errorLog().find("without close_notify") == std::string::npos);
}

}  // namespace
}  // namespace lb::e2e
