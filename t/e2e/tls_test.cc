// TLS termination with real clients (openssl s_client, curl): certificates chosen by SNI, RSA
// and ECDSA side by side, sessions resumed on either worker, OCSP stapling, client
// certificates, TLS 1.2/1.3 limits, proxying over TLS, and bad certificates refused at `lb -t`
// and at reload while the running generation keeps serving. Certificates are made for each
// test with the openssl command, signed by a throwaway CA.

#include "e2e/harness/e2e.h"
#include "e2e/harness/pki.h"

#include <algorithm>
#include <filesystem>
#include <thread>

namespace lb::e2e {
namespace {

// A CA and certificates in `dir`: def (default.test), a-rsa and a-ec (a.test), b (*.b.test),
// client (a client certificate), with a.ocsp, an OCSP response for a-rsa.
struct TestPki : Pki {
  explicit TestPki(const std::string& d) : Pki(d) {
    ca("ca", "lb test CA", true);
    make("def", "ca", "default.test", "DNS:default.test", true);
    make("a-rsa", "ca", "a.test", "DNS:a.test", true);
    make("a-ec", "ca", "a.test", "DNS:a.test");
    make("b", "ca", "b.test", "DNS:*.b.test", true);
    make("client", "ca", "client one", "", true);
    auto r = runCommand({"openssl", "x509", "-in", path("a-rsa.pem"), "-noout", "-serial"}, 30s);
    REQUIRE(r.exit_code == 0);
    std::string serial = r.out.substr(r.out.find('=') + 1);
    serial.erase(serial.find_last_not_of("\n") + 1);
    writeFile(path("index.txt"), "V\t301231235959Z\t\t" + serial + "\tunknown\t/CN=a.test\n");
    run({"openssl", "ocsp", "-index", path("index.txt"), "-rsigner", path("ca.pem"), "-rkey",
         path("ca.key"), "-CA", path("ca.pem"), "-issuer", path("ca.pem"), "-cert",
         path("a-rsa.pem"), "-respout", path("a.ocsp"), "-ndays", "1"});
  }
};

// A TLS listener on @PORT_0@ in front of `backend`, with `tls_extra` in its tls group.
std::string tlsConfig(const Pki& pki, const std::string& backend, const std::string& tls_extra = "",
                      const std::string& certificates = "") {
  std::string certs = certificates.empty() ? pki.cert("def") + ", " + pki.cert("a-rsa") + ", " +
                                                 pki.cert("a-ec") + ", " + pki.cert("b")
                                           : certificates;
  return "listeners = ( { name = \"tls\"; listen = \"127.0.0.1:@PORT_0@\"; pool = \"p\";\n"
         "  tls = { certificates = ( " +
         certs + " ); " + tls_extra + " }; } );\n" + "pools = ( " + poolBlock("p", {backend}) +
         " );\n";
}

// `openssl s_client` to the listener; stdin `input` (an HTTP request, say). Output and errors
// together.
std::string sClient(int port, std::vector<std::string> args, const std::string& input = "") {
  std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                   "127.0.0.1:" + std::to_string(port), "-ign_eof"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv, 20s, input.empty() ? "Q\n" : input);
  return r.out + r.err;
}

std::string subjectOf(const std::string& out) {
  size_t at = out.find("subject=");
  return at == std::string::npos ? "" : out.substr(at, out.find('\n', at) - at);
}

const std::string kGet = "GET /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";

TEST_CASE("tls: the certificate is chosen by SNI, exact before wildcard, else the default",
          "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()));
  const int port = lb.port(0);
  CHECK(subjectOf(sClient(port, {"-servername", "a.test"})).find("CN = a.test") !=
        std::string::npos);
  CHECK(subjectOf(sClient(port, {"-servername", "x.b.test"})).find("CN = b.test") !=
        std::string::npos);
  CHECK(subjectOf(sClient(port, {"-servername", "nope.test"})).find("CN = default.test") !=
        std::string::npos);
  CHECK(subjectOf(sClient(port, {"-noservername"})).find("CN = default.test") != std::string::npos);
  // RSA and ECDSA for the same name: the client's signature algorithms choose.
  std::string ec = sClient(port, {"-servername", "a.test", "-sigalgs", "ECDSA+SHA256"});
  CHECK(ec.find("Peer signature type: ECDSA") != std::string::npos);
  std::string rsa = sClient(port, {"-servername", "a.test", "-sigalgs", "RSA-PSS+SHA256"});
  CHECK(rsa.find("Peer signature type: RSA-PSS") != std::string::npos);
}

TEST_CASE("tls: a session resumes on either worker, TLS 1.3 tickets and TLS 1.2", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()), {.workers = 2});
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    INFO(version);
    const std::string sess = lb.file("sess" + version);
    std::string first = sClient(lb.port(0), {version, "-sess_out", sess}, kGet);
    REQUIRE(first.find("New, TLSv1.") != std::string::npos);
    // 2 workers share one accept queue: 8 connections land on both (or the keys are shared
    // by luck 1 time in 256).
    int reused = 0;
    for (int i = 0; i < 8; ++i) {
      std::string again = sClient(lb.port(0), {version, "-sess_in", sess}, kGet);
      reused += again.find("Reused, TLSv1.") != std::string::npos ? 1 : 0;
      CHECK(again.find("HTTP/1.1 200 OK") != std::string::npos);
    }
    CHECK(reused == 8);
  }
}

// A TLS 1.3 client uses each ticket once (RFC 8446 C.4): unless every resumption brings a new
// ticket, every other connection is a full handshake.
TEST_CASE("tls: every TLS 1.3 resumption brings a fresh ticket, so a chain of them resumes",
          "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()));
  std::string in = lb.file("sess-0");
  std::string first = sClient(lb.port(0), {"-tls1_3", "-sess_out", in}, kGet);
  REQUIRE(first.find("New, TLSv1.3") != std::string::npos);
  for (int i = 1; i <= 4; ++i) {
    INFO("resumption " << i);
    std::string name = "sess-";
    name += std::to_string(i);
    std::string out = lb.file(name);
    std::string again =
        sClient(lb.port(0), {"-tls1_3", "-msg", "-sess_in", in, "-sess_out", out}, kGet);
    CHECK(again.find("Reused, TLSv1.3") != std::string::npos);
    CHECK(again.find("NewSessionTicket") != std::string::npos);
    CHECK(again.find("HTTP/1.1 200 OK") != std::string::npos);
    REQUIRE(std::filesystem::exists(out));
    in = out;
  }
}

TEST_CASE("tls: OCSP stapling, protocol limits and ALPN", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address(), "protocols = [ \"TLSv1.3\" ];",
                     pki.cert("a-rsa", " ocsp_response = \"" + pki.path("a.ocsp") + "\";")));
  std::string stapled = sClient(lb.port(0), {"-status", "-servername", "a.test"});
  CHECK(stapled.find("OCSP Response Status: successful") != std::string::npos);
  CHECK(stapled.find("Cert Status: good") != std::string::npos);
  std::string old = sClient(lb.port(0), {"-tls1_2"});
  CHECK(old.find("New, TLSv1.2") == std::string::npos);
  std::string alpn = sClient(lb.port(0), {"-alpn", "h2,http/1.1"});
  CHECK(alpn.find("ALPN protocol: h2") != std::string::npos);
  std::string h1 = sClient(lb.port(0), {"-alpn", "http/1.1"});
  CHECK(h1.find("ALPN protocol: http/1.1") != std::string::npos);
}

TEST_CASE("tls: requests are proxied over TLS, bodies intact, X-Forwarded-Proto https", "[tls]") {
  FakeUpstream up("up", upstream::echo());
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()), {.workers = 2});
  const std::string url = "https://a.test:" + std::to_string(lb.port(0));
  const std::string resolve = "a.test:" + std::to_string(lb.port(0)) + ":127.0.0.1";
  std::string body(1000 * 1000, 'x');  // within client_max_body_size
  for (size_t i = 0; i < body.size(); i += 4093) {
    body[i] = static_cast<char>('a' + i % 26);
  }
  writeFile(lb.file("body.bin"), body);
  auto r = runCommand(
      {"curl", "-sS", "--cacert", pki.path("ca.pem"), "--resolve", resolve, "--data-binary",
       "@" + lb.file("body.bin"), "-o", lb.file("out.bin"), "-w", "%{http_code}", url + "/upload"},
      30s);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "200");
  CHECK(readFile(lb.file("out.bin")) == body);
  auto last = up.lastRequest();
  REQUIRE(last);
  CHECK(last->headers.value("X-Forwarded-Proto") == "https");
  // Keep-alive and pipelining inside one TLS session: three requests in one write.
  std::string three;
  for (int i = 0; i < 3; ++i) {
    three += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: a.test\r\n" +
             (i == 2 ? "Connection: close\r\n" : "") + "\r\n";
  }
  std::string out = sClient(lb.port(0), {"-quiet", "-servername", "a.test"}, three);
  size_t count = 0;
  for (size_t at = out.find("HTTP/1.1 200 OK"); at != std::string::npos;
       at = out.find("HTTP/1.1 200 OK", at + 1)) {
    ++count;
  }
  CHECK(count == 3);
}

TEST_CASE("tls: client certificates, required and forwarded", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address(),
                     "verify_client = \"on\"; client_ca = \"" + pki.path("ca.pem") +
                         "\"; client_subject_header = \"X-Client-Subject\";"));
  const std::string forged =
      "GET /x HTTP/1.1\r\nHost: a.test\r\nX-Client-Subject: forged\r\n"
      "Connection: close\r\n\r\n";
  std::string without = sClient(lb.port(0), {"-quiet"}, forged);
  CHECK(without.find("HTTP/1.1 200") == std::string::npos);
  CHECK(up.requests() == 0);
  std::string with =
      sClient(lb.port(0),
              {"-quiet", "-cert", pki.path("client.pem"), "-key", pki.path("client.key")}, forged);
  CHECK(with.find("HTTP/1.1 200 OK") != std::string::npos);
  auto last = up.lastRequest();
  REQUIRE(last);
  CHECK(last->headers.value("X-Client-Subject") == "/CN=client one/O=lb tests");
  INFO(lb.diagnostics());
  CHECK(waitUntil(
      [&] { return lb.errorLog().find("TLS handshake with 127.0.0.1:") != std::string::npos; },
      5s));
}

TEST_CASE("tls: a failed handshake disturbs no one else", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()), {.workers = 1});
  // Plain HTTP and garbage to the TLS port, while a TLS client is served. Plain HTTP gets a
  // plaintext 400 that says why, as from nginx; garbage gets the connection closed.
  HttpClient plain(lb.port(0));
  REQUIRE(plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = plain.read({.timeout = 5s});
  INFO(describe(r, plain.error()));
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(r->body.data.find("plain HTTP request was sent to an HTTPS port") != std::string::npos);
  CHECK(plain.waitClosed(5s));
  HttpClient garbage(lb.port(0));
  REQUIRE(garbage.send(std::string("\x01\x02\x03\x04garbage\r\n\r\n")));
  CHECK(garbage.waitClosed(5s));
  std::string ok = sClient(lb.port(0), {"-quiet", "-servername", "a.test"}, kGet);
  CHECK(ok.find("HTTP/1.1 200 OK") != std::string::npos);
  INFO(lb.diagnostics());
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("the client sent plain HTTP; answered 400") != std::string::npos;
      },
      5s));
  // Counted: lb status shows the worker's handshakes and the failed one.
  auto status = lb.runLbCommand({"status", "--json", "-c", lb.configPath()});
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("\"tls_handshakes\": 1,") != std::string::npos);
  // The plain request, and the harness's own probe that the port accepts (a connection closed
  // before its ClientHello, which nginx logs the same way).
  CHECK(status.out.find("\"tls_failed\": 0,") == std::string::npos);
  CHECK(lb.statusTotal("400") == 1);  // the plaintext answer to plain HTTP
  CHECK(lb.statusTotal("4xx") == 1);
  auto table = lb.runLbCommand({"status", "-c", lb.configPath()});
  CHECK(table.out.find("TLS-FAILED") != std::string::npos);
}

TEST_CASE("tls: a bad certificate fails lb -t with its line and refuses a reload", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()));
  // The key of another certificate, and a file that is not there.
  const std::string text = lb.configText(
      tlsConfig(pki, up.address(), "",
                "{ cert = \"" + pki.path("a-rsa.pem") + "\"; key = \"" + pki.path("b.key") +
                    "\"; },\n{ cert = \"" + pki.path("missing.pem") + "\"; key = \"" +
                    pki.path("b.key") + "\"; }"));
  writeFile(lb.configPath(), text);
  auto lineOf = [&](const std::string& needle) {
    size_t at = text.find(needle);
    return std::to_string(1 + std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
  };
  auto t = lb.runLbCommand({"-t", "-c", lb.configPath()});
  INFO(t.describe());
  CHECK(t.exit_code == 1);
  CHECK(t.err.find("lb.conf:" + lineOf("a-rsa.pem") + ": key \"" + pki.path("b.key") +
                   "\" does not match certificate") != std::string::npos);
  CHECK(t.err.find("lb.conf:" + lineOf("missing.pem") + ": cannot read certificate \"" +
                   pki.path("missing.pem") + "\"") != std::string::npos);
  auto reload = lb.runLbCommand({"-s", "reload", "-c", lb.configPath()});
  INFO(reload.describe());
  CHECK(reload.exit_code == 1);
  CHECK(reload.err.find("does not match certificate") != std::string::npos);
  // The running generation serves on.
  std::string ok = sClient(lb.port(0), {"-quiet", "-servername", "a.test"}, kGet);
  CHECK(ok.find("HTTP/1.1 200 OK") != std::string::npos);
  lb.allowAlertsContaining("reload failed");
}

TEST_CASE("tls: a session from another listener does not skip client verification", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  const std::string certs = pki.cert("a-rsa");
  lb.start(
      "listeners = (\n"
      "  { name = \"open\"; listen = \"127.0.0.1:@PORT_0@\"; pool = \"p\";\n"
      "    tls = { certificates = ( " +
      certs +
      " ); }; },\n"
      "  { name = \"closed\"; listen = \"127.0.0.1:@PORT_1@\"; pool = \"p\";\n"
      "    tls = { certificates = ( " +
      certs +
      " ); verify_client = \"on\";\n"
      "            client_ca = \"" +
      pki.path("ca.pem") +
      "\"; }; } );\n"
      "pools = ( " +
      poolBlock("p", {up.address()}) + " );\n");
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    INFO(version);
    const std::string sess = lb.file("open" + version);
    std::string first = sClient(lb.port(0), {version, "-sess_out", sess}, kGet);
    REQUIRE(first.find("HTTP/1.1 200 OK") != std::string::npos);
    std::string other = sClient(lb.port(1), {version, "-sess_in", sess}, kGet);
    CHECK(other.find("Reused,") == std::string::npos);
    CHECK(other.find("HTTP/1.1 200") == std::string::npos);
  }
  CHECK(up.requests() == 2);
}

TEST_CASE("tls: optional client certificates: forwarded only when verified", "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  pki.run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
           pki.path("stranger.key"), "-out", pki.path("stranger.pem"), "-days", "2", "-subj",
           "/CN=stranger"});
  lb.start(tlsConfig(pki, up.address(),
                     "verify_client = \"optional\"; client_ca = \"" + pki.path("ca.pem") +
                         "\"; client_subject_header = \"X-Client-Subject\";"));
  auto subjectSeen = [&](std::vector<std::string> args) {
    args.push_back("-quiet");
    std::string out = sClient(lb.port(0), args, kGet);
    INFO(out);
    CHECK(out.find("HTTP/1.1 200 OK") != std::string::npos);
    auto last = up.lastRequest();
    return last ? last->headers.value("X-Client-Subject") : std::string("(no request)");
  };
  CHECK(subjectSeen({}) == "");
  CHECK(subjectSeen({"-cert", pki.path("stranger.pem"), "-key", pki.path("stranger.key")}) == "");
  CHECK(subjectSeen({"-cert", pki.path("client.pem"), "-key", pki.path("client.key")}) ==
        "/CN=client one/O=lb tests");
}

TEST_CASE("tls: TLS 1.3 tickets held for the first response leave alone when it is slow", "[tls]") {
  // The ticket waits to share the response's write, but not for as long as the backend takes:
  // a client that opens more connections meanwhile could not resume them.
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("up", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()));
  std::string sess = lb.file("sess");
  std::string out;
  std::thread client([&] { out = sClient(lb.port(0), {"-tls1_3", "-sess_out", sess}, kGet); });
  REQUIRE(up.waitForRequests(1));
  // s_client writes -sess_out when a ticket arrives.
  bool ticket = waitUntil(
      [&] { return std::filesystem::exists(sess) && std::filesystem::file_size(sess) > 0; }, 3s);
  bool still_held = !gate->isOpen();
  gate->open();
  client.join();
  CHECK(ticket);
  CHECK(still_held);
  CHECK(out.find("HTTP/1.1 200 OK") != std::string::npos);
  std::string again = sClient(lb.port(0), {"-tls1_3", "-sess_in", sess}, kGet);
  CHECK(again.find("Reused, TLSv1.3") != std::string::npos);
}

TEST_CASE("tls: a response that ends the connection ends the TLS session with close_notify",
          "[tls]") {
  FakeUpstream up("up");
  LbInstance lb;
  TestPki pki(lb.dir());
  lb.start(tlsConfig(pki, up.address()));
  std::string out = sClient(lb.port(0), {"-servername", "a.test"}, kGet);
  CHECK(out.find("HTTP/1.1 200 OK") != std::string::npos);
  CHECK(out.find("unexpected eof") == std::string::npos);
}

}  // namespace
}  // namespace lb::e2e
