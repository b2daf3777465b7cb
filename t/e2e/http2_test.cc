// HTTP/2 with real clients (curl, nghttp, h2load): h2c by prior knowledge and h2 over TLS by
// ALPN, requests reaching HTTP/1.1 backends, 64 MiB bodies both ways checksummed, bodies of
// unknown length sent on chunked, many concurrent streams on one connection, and a reload that
// lets streams in flight finish while the client is told to go with GOAWAY.

#include <fstream>
#include <thread>

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"
#include "e2e/harness/pki.h"

namespace lb::e2e {
namespace {

constexpr uint64_t kBig = 64ull << 20;

std::string url(int port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

// curl over h2c; `extra` before the URL. Returns the result (stdout: what -w prints).
CommandResult curlH2c(const std::vector<std::string>& extra, const std::string& target,
                      const std::string& input = "") {
  std::vector<std::string> argv = {"curl", "-sS", "--http2-prior-knowledge", "--max-time", "60"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(target);
  return runCommand(argv, 90s, input);
}

// A plain listener on @PORT_0@ and a TLS one on @PORT_1@ (certificate for a.test), both in front
// of `backend`.
std::string twoListeners(const Pki& pki, const std::string& backend) {
  return "listeners = (\n"
         "  { name = \"plain\"; listen = \"127.0.0.1:@PORT_0@\"; pool = \"p\"; },\n"
         "  { name = \"tls\"; listen = \"127.0.0.1:@PORT_1@\"; pool = \"p\";\n"
         "    tls = { certificates = ( " +
         pki.cert("a") + " ); }; }\n);\n" + "pools = ( " + poolBlock("p", {backend}) + " );\n";
}

void writePattern(const std::string& path, uint64_t n) {
  std::ofstream out(path, std::ios::binary);
  std::string block;
  for (uint64_t off = 0; off < n; off += 1 << 20) {
    block = pattern(off, static_cast<size_t>(std::min<uint64_t>(1 << 20, n - off)));
    out.write(block.data(), static_cast<std::streamsize>(block.size()));
  }
}

TEST_CASE("http2: h2c and h2 over TLS reach the backend as HTTP/1.1 requests", "[http2]") {
  FakeUpstream up("up", upstream::echo());
  LbInstance lb;
  Pki pki(lb.dir());
  pki.ca("ca", "lb test CA");
  pki.make("a", "ca", "a.test", "DNS:a.test");
  lb.start(twoListeners(pki, up.address()), {.workers = 2});

  auto plain = curlH2c({"-o", "/dev/null", "-w", "%{http_version} %{http_code}", "-H",
                        "X-Test: one", "-b", "a=1", "-b", "b=2"},
                       url(lb.port(0), "/plain?q=1"));
  INFO(plain.describe());
  CHECK(plain.out == "2 200");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->version == "HTTP/1.1");
  CHECK(seen->method == "GET");
  CHECK(seen->target == "/plain?q=1");
  CHECK(seen->headers.value("Host") == "127.0.0.1:" + std::to_string(lb.port(0)));
  CHECK(seen->headers.value("X-Test") == "one");
  CHECK(seen->headers.value("X-Forwarded-Proto") == "http");

  const std::string tls_url = "https://a.test:" + std::to_string(lb.port(1)) + "/secure";
  auto secure = runCommand({"curl", "-sS", "--http2", "--cacert", pki.path("ca.pem"), "--resolve",
                            "a.test:" + std::to_string(lb.port(1)) + ":127.0.0.1", "-d", "hello",
                            "-w", " %{http_version} %{http_code}", tls_url},
                           60s);
  INFO(secure.describe());
  CHECK(secure.out == "hello 2 200");
  seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->method == "POST");
  CHECK(seen->headers.value("Host") == "a.test:" + std::to_string(lb.port(1)));
  CHECK(seen->headers.value("X-Forwarded-Proto") == "https");
  CHECK(seen->headers.value("Content-Length") == "5");
  CHECK(waitUntil(
      [&] { return lb.accessLog().find("\"POST /secure HTTP/2.0\" 200") != std::string::npos; },
      5s));
  // lb status counts both connections and their one stream each.
  CHECK(lb.statusTotal("h2_connections") == 2);
  CHECK(lb.statusTotal("h2_streams") == 2);
  CHECK(lb.statusTotal("h2_resets") == 0);
}

TEST_CASE("http2: a 64 MiB upload and a 64 MiB download arrive intact", "[http2][large]") {
  FakeUpstream sink("sink", upstream::sink());
  FakeUpstream big("big", upstream::stream(kBig, false));
  LbInstance lb;
  lb.start(
      "http = { client_max_body_size = \"100m\"; };\n"
      "listeners = ( { listen = \"127.0.0.1:@PORT_0@\"; routes = \"r\"; } );\n"
      "routes = ( { name = \"r\"; rules = ( { path_prefix = \"/up\"; pool = \"sink\"; },\n"
      "  { pool = \"big\"; } ); } );\n"
      "pools = ( " +
      poolBlock("sink", {sink.address()}, "read_timeout_ms = 30000;") + ", " +
      poolBlock("big", {big.address()}, "read_timeout_ms = 30000;") + " );\n");
  const std::string file = lb.dir() + "/up.bin";
  writePattern(file, kBig);

  auto up = curlH2c({"--data-binary", "@" + file}, url(lb.port(0), "/up"));
  INFO(up.describe());
  CHECK(up.out == std::to_string(kBig) + " " + patternChecksumHex(kBig));
  auto seen = sink.lastRequest();
  REQUIRE(seen);
  CHECK(seen->complete);
  CHECK(seen->headers.value("Content-Length") == std::to_string(kBig));

  const std::string out = lb.dir() + "/down.bin";
  auto down = curlH2c({"-o", out, "-D", lb.dir() + "/down.head", "-w", "%{http_version}"},
                      url(lb.port(0), "/big"));
  INFO(down.describe());
  CHECK(down.out == "2");
  std::string body = readFile(out);
  CHECK(body.size() == kBig);
  std::string head = readFile(lb.dir() + "/down.head");
  CHECK(head.find("x-body-checksum: " + checksumHex(body)) != std::string::npos);
}

TEST_CASE("http2: a body of unknown length goes to the backend chunked", "[http2]") {
  FakeUpstream up("up", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  std::string body = pattern(0, 300000);
  // From stdin curl knows no length: the request has no content-length.
  auto r = curlH2c({"-T", "-", "-o", "/dev/null", "-D", "-"}, url(lb.port(0), "/stream"), body);
  INFO(r.describe());
  CHECK(r.out.find("HTTP/2 200") != std::string::npos);
  CHECK(r.out.find("x-request-chunked: 1") != std::string::npos);
  CHECK(r.out.find("x-body-checksum: " + checksumHex(body)) != std::string::npos);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->chunked);
  CHECK(seen->complete);
  CHECK(seen->method == "PUT");
}

TEST_CASE("http2: a backend's trailers reach the client as trailing HEADERS", "[http2]") {
  // With a body (DATA, then the trailers' HEADERS with END_STREAM) and without one.
  for (const auto& [body, chunks] :
       std::vector<std::pair<std::string, std::string>>{{"hello", "5\r\nhello\r\n"}, {"", ""}}) {
    FakeUpstream up("trailers",
                    upstream::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                                  "0\r\nGrpc-Status: 0\r\n\r\n"));
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}));
    auto r = runCommand({"nghttp", "-v", url(lb.port(0), "/t")}, 30s);
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    size_t trailer = r.out.find("recv (stream_id=13) grpc-status: 0");
    REQUIRE(trailer != std::string::npos);
    CHECK(r.out.find("; END_STREAM", trailer) != std::string::npos);
    if (!body.empty()) {
      size_t data = r.out.find("recv DATA frame <length=5");
      REQUIRE(data != std::string::npos);
      CHECK(data < trailer);
    }
  }
}

TEST_CASE("http2: an idle connection is closed keepalive_timeout_ms after its last stream",
          "[http2]") {
  FakeUpstream up("up");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "", "http = { keepalive_timeout_ms = 600; };"));
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  auto start = Clock::now();
  H2StreamResult r = c.request("GET", "/one");
  CHECK(r.status == 200);
  CHECK(c.waitClosed(5s));
  CHECK(elapsedMs(start) >= 550);
  REQUIRE(c.goaway());
  CHECK(c.goaway()->error == 0);
}

TEST_CASE("http2: Expect 100-continue with a content-length gets its 100 at once", "[http2]") {
  FakeUpstream up("up", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  // curl waits a second for the 100 before it sends the body anyway.
  auto r = curlH2c(
      {"-H", "Expect: 100-continue", "--data-binary", "hello", "-w", " %{http_code} %{time_total}"},
      url(lb.port(0), "/expect"));
  INFO(r.describe());
  CHECK(r.out.starts_with("hello 200 "));
  CHECK(std::atof(r.out.substr(10).c_str()) < 0.8);
}

TEST_CASE("http2: many concurrent streams on one connection are all served", "[http2]") {
  FakeUpstream a("a");
  FakeUpstream b("b");
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}));
  auto r =
      runCommand({"h2load", "-n", "3000", "-c", "1", "-m", "100", url(lb.port(0), "/many")}, 60s);
  INFO(r.describe());
  CHECK(r.out.find("3000 succeeded, 0 failed, 0 errored") != std::string::npos);
  CHECK(r.out.find("status codes: 3000 2xx") != std::string::npos);
  CHECK(a.requests() + b.requests() == 3000);
  CHECK(a.requests() == 1500);  // round robin, stream by stream
}

TEST_CASE("http2: a reload lets streams in flight finish and sends GOAWAY", "[http2][reload]") {
  auto gate = std::make_shared<Gate>();
  Handler held_only = [gate, held = upstream::gated(gate, upstream::named()),
                       named = upstream::named()](Exchange& ex) {
    (ex.request().target == "/held" ? held : named)(ex);
  };
  FakeUpstream up("up", held_only);
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  CommandResult held;
  std::thread client([&] { held = runCommand({"nghttp", "-v", url(lb.port(0), "/held")}, 30s); });
  REQUIRE(waitUntil([&] { return up.requests() == 1; }, 10s));
  auto started = Clock::now();
  auto old_workers = lb.workerPids();
  auto reload = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(reload.describe());
  CHECK(reload.exit_code == 0);
  // New connections are served by the new generation while the old stream waits.
  auto fresh = curlH2c({"-o", "/dev/null", "-w", "%{http_code}"}, url(lb.port(0), "/fresh"));
  gate->open();
  client.join();
  INFO(held.describe());
  CHECK(fresh.out == "200");
  CHECK(held.exit_code == 0);
  CHECK(held.out.find("recv GOAWAY frame") != std::string::npos);
  CHECK(held.out.find(":status: 200") != std::string::npos);
  CHECK(held.out.find("\nup") != std::string::npos);
  CHECK(elapsedMs(started) < 8000);  // well before worker_shutdown_timeout_ms cut it
  for (pid_t p : old_workers) {
    CHECK(waitUntil([&] { return !processAlive(p); }, 15s));
  }
}

}  // namespace
}  // namespace lb::e2e
