// RFC 9113 section 8 on lb's HTTP/2 downstream: a request that breaks a rule of HTTP/2 messages,
// or that HTTP/1.1 could not carry unchanged, never reaches the backend; the client gets a stream
// error or a 400 on that stream, and the connection goes on serving. The valid cases that need
// translation (te: trailers, several cookie fields, a body without content-length, trailers) reach
// the backend as the equivalent HTTP/1.1. And the HTTP/2-to-HTTP/1.1 downgrade never lets a
// request smuggle a second one past lb.

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

using namespace std::string_literals;

struct Case {
  std::string what;
  HeaderList fields;  // the whole header block, pseudo-headers included, sent with END_STREAM
};

HeaderList base(const std::string& path = "/bad") {
  return H2Client::requestFields("GET", path);
}

HeaderList with(HeaderList fields, const HeaderList& extra) {
  fields.insert(fields.end(), extra.begin(), extra.end());
  return fields;
}

// Every case on its own connection to one lb: the request is refused on its stream (RST_STREAM
// or a 400 response), then a valid request on the same connection is served; the backend sees
// the valid requests only.
void expectRefused(const std::vector<Case>& cases) {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& k = cases[i];
    INFO("case: " << k.what);
    H2Client c(lb.port(0));
    REQUIRE(c.handshake());
    int32_t id = c.startRequest(k.fields);
    REQUIRE(id != 0);
    bool done = c.waitDone(id, 5s);
    const H2StreamResult& r = c.result(id);
    INFO(describe(r) << "; " << (c.goaway() ? "GOAWAY " + h2::errorName(c.goaway()->error) : "")
                     << " " << c.error());
    CHECK(done);
    CHECK((r.reset.has_value() || r.status == 400));
    if (r.status != 0) {
      CHECK(r.status == 400);
    }
    // A stream error, not a connection error: the connection still serves.
    std::string ok_path = "/ok/" + std::to_string(i);
    H2StreamResult ok = c.request("GET", ok_path);
    INFO("follow-up: " << describe(ok) << " " << c.error());
    CHECK(ok.status == 200);
    CHECK_FALSE(c.goaway().has_value());
  }
  auto seen = up.received();
  CHECK(seen.size() == cases.size());
  for (const auto& r : seen) {
    INFO("the backend got: " << r.head);
    CHECK(r.target.starts_with("/ok/"));
  }
}

// A frame that RFC 9113 makes a connection error: GOAWAY with `code`, and lb serves the next
// connection. `send` gets a handshaken client.
void expectConnectionError(const std::function<void(H2Client&)>& send,
                           uint32_t code = h2::kProtocolError) {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  send(c);
  c.waitFor([&] { return c.goaway().has_value(); }, 5s);
  INFO(c.error());
  REQUIRE(c.goaway());
  CHECK(h2::errorName(c.goaway()->error) == h2::errorName(code));
  H2Client next(lb.port(0));
  REQUIRE(next.handshake());
  CHECK(next.request("GET", "/next").status == 200);
}

TEST_CASE("a stream id below one already used is a connection error", "[http2][rfc9113]") {
  // RFC 9113 5.1.1: stream 5 opens, so 1 and 3 can never be opened.
  expectConnectionError([](H2Client& c) {
    REQUIRE(c.sendHeaders(5, H2Client::requestFields("GET", "/five"), true));
    REQUIRE(c.sendHeaders(3, H2Client::requestFields("GET", "/three"), true));
  });
}

TEST_CASE("trailers on an open stream below the newest are no stream id error",
          "[http2][rfc9113]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  int32_t first = c.startRequest(H2Client::requestFields("POST", "/first"), "abc", false);
  REQUIRE(first == 1);
  H2StreamResult second = c.request("GET", "/second");
  CHECK(second.status == 200);
  REQUIRE(c.sendHeaders(first, {{"x-trailer", "1"}}, true));
  CHECK(c.waitDone(first, 5s));
  CHECK(c.result(first).status == 200);
  CHECK_FALSE(c.goaway().has_value());
}

TEST_CASE("the largest stream id is served, and then a lower one is an error", "[http2][rfc9113]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  const int32_t last = 0x7fffffff;  // 2^31 - 1 (RFC 9113 5.1.1)
  REQUIRE(c.sendHeaders(last, H2Client::requestFields("GET", "/last"), true));
  CHECK(c.waitDone(last, 5s));
  INFO(describe(c.result(last)) << " " << c.error());
  CHECK(c.result(last).status == 200);
  REQUIRE(c.sendHeaders(3, H2Client::requestFields("GET", "/three"), true));
  c.waitFor([&] { return c.goaway().has_value(); }, 5s);
  REQUIRE(c.goaway());
  CHECK(h2::errorName(c.goaway()->error) == h2::errorName(h2::kProtocolError));
}

TEST_CASE("PRIORITY on stream 0 is a connection error", "[http2][rfc9113]") {
  // RFC 9113 6.3, though lb, like RFC 9113, takes no priorities.
  expectConnectionError([](H2Client& c) {
    REQUIRE(c.sendFrame(h2::kPriority, 0, 0, std::string("\0\0\0\1\x0f", 5)));
  });
}

TEST_CASE("PRIORITY making a stream depend on itself is an error", "[http2][rfc9113]") {
  // RFC 7540 5.3.1. nghttp2 skips PRIORITY payloads when, as here, RFC 7540 priorities are off.
  expectConnectionError([](H2Client& c) {
    REQUIRE(c.sendFrame(h2::kPriority, 0, 3, std::string("\0\0\0\3\x0f", 5)));
  });
}

TEST_CASE("DATA or HEADERS on a stream both sides ended is a connection error STREAM_CLOSED",
          "[http2][rfc9113]") {
  // RFC 9113 5.1: nghttp2 keeps no closed streams here, so lb remembers the last few.
  for (bool headers : {false, true}) {
    INFO((headers ? "HEADERS" : "DATA"));
    expectConnectionError(
        [&](H2Client& c) {
          REQUIRE(c.request("GET", "/done").status == 200);
          if (headers) {
            REQUIRE(c.sendHeaders(1, {{"x-late", "1"}}, true));
          } else {
            REQUIRE(c.sendData(1, "late", true));
          }
        },
        h2::kStreamClosed);
  }
}

TEST_CASE("DATA after the client's own RST_STREAM is a connection error STREAM_CLOSED",
          "[http2][rfc9113]") {
  expectConnectionError(
      [](H2Client& c) {
        int32_t id = c.startRequest(H2Client::requestFields("POST", "/upload"), "abc", false);
        REQUIRE(c.sendRst(id, h2::kCancel));
        REQUIRE(c.ping());  // the reset is processed first
        REQUIRE(c.sendData(id, "more", true));
      },
      h2::kStreamClosed);
  // The reset and the DATA in one write: lb still sees them in order.
  expectConnectionError(
      [](H2Client& c) {
        int32_t id = c.startRequest(H2Client::requestFields("POST", "/upload"), "abc", false);
        std::string rst("\0\0\0\x08", 4);
        REQUIRE(c.sendRaw(H2Client::frame(h2::kRstStream, 0, id, rst) +
                          H2Client::frame(h2::kData, 1, id, "more")));
      },
      h2::kStreamClosed);
}

TEST_CASE("DATA the client sent before it saw lb's RST_STREAM is ignored", "[http2][rfc9113]") {
  // lb answers 413 at once and resets the upload (RFC 9113 8.1); the client's DATA already on
  // its way is no error (5.1: frames after a RST_STREAM one sent are ignored).
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "client_max_body_size = \"1k\";"), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  HeaderList fields = H2Client::requestFields("POST", "/big");
  fields.push_back({"content-length", "4096"});
  int32_t id = c.startRequest(fields, "", false);
  REQUIRE(c.waitDone(id, 5s));
  CHECK(c.result(id).status == 413);
  REQUIRE(c.sendData(id, std::string(100, 'x'), false));
  REQUIRE(c.sendData(id, "end", true));
  H2StreamResult next = c.request("GET", "/next");
  INFO(describe(next) << " " << c.error());
  CHECK(next.status == 200);
  CHECK_FALSE(c.goaway().has_value());
}

TEST_CASE("an uppercase field name is refused", "[http2][rfc9113]") {
  expectRefused({{"X-Upper", with(base(), {{"X-Upper", "1"}})},
                 {"Host", with(base(), {{"Host", "lb.test"}})}});
}

TEST_CASE("connection-specific fields are refused", "[http2][rfc9113]") {
  std::vector<Case> cases;
  for (const char* name :
       {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    std::string value = name == "transfer-encoding"s ? "chunked"
                        : name == "upgrade"s         ? "websocket"
                        : name == "connection"s      ? "close"
                                                     : "timeout=5";
    cases.push_back({name, with(base(), {{name, value}})});
  }
  expectRefused(cases);
}

TEST_CASE("te other than trailers is refused", "[http2][rfc9113]") {
  expectRefused({{"te: gzip", with(base(), {{"te", "gzip"}})},
                 {"te: trailers, gzip", with(base(), {{"te", "trailers, gzip"}})}});
}

TEST_CASE("a request without :method, :scheme or :path is refused", "[http2][rfc9113]") {
  expectRefused({
      {"no :method", {{":scheme", "http"}, {":authority", "lb.test"}, {":path", "/bad"}}},
      {"no :scheme", {{":method", "GET"}, {":authority", "lb.test"}, {":path", "/bad"}}},
      {"no :path", {{":method", "GET"}, {":scheme", "http"}, {":authority", "lb.test"}}},
      {"empty :path",
       {{":method", "GET"}, {":scheme", "http"}, {":authority", "lb.test"}, {":path", ""}}},
  });
}

TEST_CASE("a duplicate, misplaced or unknown pseudo-header is refused", "[http2][rfc9113]") {
  expectRefused({
      {"duplicate :path", with(base(), {{":path", "/other"}})},
      {"duplicate :method",
       {{":method", "GET"},
        {":method", "POST"},
        {":scheme", "http"},
        {":authority", "lb.test"},
        {":path", "/bad"}}},
      {"pseudo-header after a field",
       {{":method", "GET"},
        {":scheme", "http"},
        {"x-a", "1"},
        {":authority", "lb.test"},
        {":path", "/bad"}}},
      {"unknown pseudo-header", with(base(), {{":foo", "bar"}})},
      {"response pseudo-header in a request", with(base(), {{":status", "200"}})},
  });
}

TEST_CASE("CR, LF or NUL in a field value is refused", "[http2][rfc9113]") {
  expectRefused({
      {"CR", with(base(), {{"x-a", "a\rb"}})},
      {"LF", with(base(), {{"x-a", "a\nb"}})},
      {"NUL", with(base(), {{"x-a", "a\0b"s}})},
      {"CR LF in :authority",
       {{":method", "GET"},
        {":scheme", "http"},
        {":authority", "lb.test\r\nx-b: 1"},
        {":path", "/bad"}}},
  });
}

TEST_CASE("whitespace at either end of a field value is refused", "[http2][rfc9113]") {
  expectRefused({
      {"leading space", with(base(), {{"x-a", " a"}})},
      {"trailing space", with(base(), {{"x-a", "a "}})},
      {"leading tab", with(base(), {{"x-a", "\ta"}})},
      {"trailing tab", with(base(), {{"x-a", "a\t"}})},
  });
}

TEST_CASE("a host differing from :authority is refused", "[http2][rfc9113]") {
  expectRefused({{"host other.test", with(base(), {{"host", "other.test"}})}});
}

TEST_CASE("userinfo in :authority is refused", "[http2][rfc9113]") {
  expectRefused({
      {"user@",
       {{":method", "GET"},
        {":scheme", "http"},
        {":authority", "user@lb.test"},
        {":path", "/bad"}}},
      {"user:password@",
       {{":method", "GET"},
        {":scheme", "http"},
        {":authority", "user:secret@lb.test"},
        {":path", "/bad"}}},
  });
}

TEST_CASE("a :path not starting with / is refused", "[http2][rfc9113]") {
  expectRefused({
      {"relative", base("bad")},
      {"absolute-form", base("http://lb.test/bad")},
      {"asterisk with GET", base("*")},
  });
}

// ---- content-length ---------------------------------------------------------------------

// A POST whose content-length does not match its DATA: refused on its stream, and the backend
// never gets a complete request (it may have seen the head before lb saw the mismatch). Each
// frame goes out once the backend got what lb forwarded of the previous ones (bounded waits), so
// lb never sees the whole request in one read.
void expectLengthMismatch(const std::string& length, const std::vector<std::string>& frames) {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  int32_t id = c.nextStreamId();
  REQUIRE(c.sendHeaders(id, H2Client::requestFields("POST", "/cl", {{"content-length", length}}),
                        false));
  up.waitForRequests(1, 2s);
  uint64_t sent = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    REQUIRE(c.sendData(id, frames[i], i + 1 == frames.size()));
    sent += frames[i].size();
    if (sent == std::stoull(length)) {
      waitUntil([&] { return up.lastRequest() && up.lastRequest()->complete; }, 2s);
    }
  }
  bool done = c.waitDone(id, 5s);
  const H2StreamResult& r = c.result(id);
  INFO("content-length " << length << ": " << describe(r) << "; " << c.error());
  CHECK(done);
  CHECK((r.reset.has_value() || r.status == 400));
  CHECK(r.status != 200);
  // The connection still serves, and the backend never saw the POST complete.
  H2StreamResult ok = c.request("GET", "/ok");
  CHECK(ok.status == 200);
  for (const auto& seen : up.received()) {
    INFO("the backend got: " << seen.head << "[" << seen.body.length() << " body bytes]");
    if (seen.target == "/cl") {
      CHECK_FALSE(seen.complete);
    }
  }
}

TEST_CASE("DATA shorter than content-length never reaches the backend as a complete request",
          "[http2][rfc9113][content-length]") {
  expectLengthMismatch("10", {"hello"});
  expectLengthMismatch("10", {"hello", "", "abc"});
}

TEST_CASE("DATA longer than content-length never reaches the backend as a complete request",
          "[http2][rfc9113][content-length]") {
  expectLengthMismatch("3", {"hello"});
}

// A request whose DATA runs past its content-length is malformed (RFC 9113 8.1.1) and must not
// be forwarded: lb holds the request's last byte until END_STREAM, so the backend never gets a
// complete request. With "content-length: 0" and DATA the head alone would be complete.
TEST_CASE("DATA beyond content-length after the declared length arrived is not forwarded",
          "[http2][rfc9113][content-length]") {
  SECTION("content-length 0") {
    expectLengthMismatch("0", {"x"});
  }
  SECTION("content-length 3, then more DATA") {
    expectLengthMismatch("3", {"abc", "de"});
  }
}

// ---- valid requests that need translating -----------------------------------------------

TEST_CASE("te: trailers is accepted", "[http2][rfc9113]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  H2StreamResult r = c.request("GET", "/te", {{"te", "trailers"}});
  INFO(describe(r) << "; " << c.error());
  CHECK(r.status == 200);
  CHECK(r.body.data == "A");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->target == "/te");
}

TEST_CASE("cookie fields are joined into one for the backend", "[http2][rfc9113]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  H2StreamResult r =
      c.request("GET", "/cookies", {{"cookie", "a=1"}, {"x-b", "2"}, {"cookie", "b=2"}});
  INFO(describe(r) << "; " << c.error());
  CHECK(r.status == 200);
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("the backend got: " << seen->head);
  CHECK(seen->headers.count("cookie") == 1);
  CHECK(seen->headers.value("cookie") == "a=1; b=2");
  CHECK(seen->headers.value("x-b") == "2");
}

TEST_CASE("a body without content-length reaches the backend chunked and exact",
          "[http2][rfc9113][body]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  // Several DATA frames, one of them empty, and bytes that look like chunk framing.
  std::string body = pattern(0, 40000) + "0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
  int32_t id = c.nextStreamId();
  REQUIRE(c.sendHeaders(id, H2Client::requestFields("POST", "/upload"), false));
  REQUIRE(c.sendData(id, body.substr(0, 1000), false));
  REQUIRE(c.sendData(id, "", false));
  REQUIRE(c.sendData(id, body.substr(1000), true));
  REQUIRE(c.waitDone(id));
  const H2StreamResult& r = c.result(id);
  INFO(describe(r) << "; " << c.error());
  CHECK(r.status == 200);
  CHECK(r.header("x-request-chunked") == "1");
  CHECK(r.header("x-body-length") == std::to_string(body.size()));
  CHECK(r.header("x-body-checksum") == checksumHex(body));
  auto seen = up.received();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].chunked);
  CHECK(seen[0].complete);
  CHECK(seen[0].body.checksum() == checksumHex(body));
}

// A body without content-length goes to the backend chunked with its trailers in the last
// chunk (lb.conf(5), "http2").
TEST_CASE("request trailers reach the backend in the last chunk", "[http2][rfc9113][body]") {
  FakeUpstream up("A", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  int32_t id = c.nextStreamId();
  REQUIRE(
      c.sendHeaders(id, H2Client::requestFields("POST", "/trailers", {{"te", "trailers"}}), false));
  REQUIRE(c.sendData(id, "hello world", false));
  REQUIRE(c.sendHeaders(id, {{"x-checksum", "abc"}, {"x-count", "2"}}, true));
  REQUIRE(c.waitDone(id));
  const H2StreamResult& r = c.result(id);
  INFO(describe(r) << "; " << c.error());
  CHECK(r.status == 200);
  CHECK(r.body.data == "hello world");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  INFO("the backend got: " << seen->head);
  CHECK(seen->chunked);
  CHECK(seen->complete);
  CHECK(seen->trailers.value("x-checksum") == "abc");
  CHECK(seen->trailers.value("x-count") == "2");
}

// ---- downgrade smuggling ----------------------------------------------------------------

TEST_CASE("HTTP/2 fields cannot smuggle a second HTTP/1.1 request to the backend",
          "[http2][rfc9113][smuggling]") {
  expectRefused({
      {"CRLF Transfer-Encoding in a value",
       with(base(), {{"x-a", "1\r\nTransfer-Encoding: chunked"}})},
      {"CRLF in a value, then a request",
       with(base(), {{"x-a", "1\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: lb.test\r\n\r\n"}})},
      {"request line in :path", base("/bad HTTP/1.1\r\nhost: lb.test\r\n\r\nGET /smuggled")},
      {"space in :path", base("/bad HTTP/1.1")},
      {"request line in :method",
       {{":method", "GET /smuggled HTTP/1.1\r\nhost: lb.test\r\n\r\nGET"},
        {":scheme", "http"},
        {":authority", "lb.test"},
        {":path", "/bad"}}},
      {"CRLF in a field name", with(base(), {{"x-a\r\ntransfer-encoding", "chunked"}})},
      {"colon in a field name", with(base(), {{"x-a:transfer-encoding", "chunked"}})},
      {"space in a field name", with(base(), {{"transfer-encoding ", "chunked"}})},
  });
}

// Streams are recycled within a worker: a request must carry nothing of the one before it
// (cookies, fields, path) into its HTTP/1.1 head.
TEST_CASE("a reused stream carries nothing of the request before it", "[http2]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  for (int i = 0; i < 20; ++i) {
    HeaderList rich = with(base("/rich/" + std::to_string(i) + "/with/a/longer/path"),
                           {{"cookie", "a=1"}, {"cookie", "b=2"}, {"x-one", "1"}});
    int32_t id = c.startRequest(rich);
    REQUIRE(c.waitDone(id, 5s));
    CHECK(c.result(id).status == 200);
    H2StreamResult plain = c.request("GET", "/plain/" + std::to_string(i));
    CHECK(plain.status == 200);
  }
  auto seen = up.received();
  CHECK(seen.size() == 40);
  for (const auto& r : seen) {
    INFO("the backend got: " << r.head);
    bool rich = r.target.starts_with("/rich/");
    CHECK((r.head.find("cookie: a=1; b=2\r\n") != std::string::npos) == rich);
    CHECK((r.head.find("x-one: 1\r\n") != std::string::npos) == rich);
    CHECK((r.head.find("/with/a/longer/path") != std::string::npos) == rich);
  }
}

}  // namespace
}  // namespace lb::e2e
