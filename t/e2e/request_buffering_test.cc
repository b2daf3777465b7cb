// request_buffering (on by default): a request with a body, Content-Length or chunked, reaches
// no backend until its body is in lb, as far as the request buffer holds. A slow or stalled
// upload, or one the client abandons, never holds a backend connection; a body larger than the
// buffer goes on streaming once the buffer is full. HTTP/2 uploads are buffered the same way.

#include <algorithm>

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

// How long a backend connection that must not come is waited for.
constexpr auto kNoBackend = 500ms;

std::string head(const std::string& path, size_t length, const std::string& extra = "") {
  return "POST " + path +
         " HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         extra + "\r\n";
}

TEST_CASE("a slow upload reaches no backend until its body is complete", "[buffering]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  std::string body = pattern(0, 4000);
  HttpClient c(lb.port(0));
  REQUIRE(c.send(head("/slow", body.size()) + body.substr(0, 1000)));
  CHECK_FALSE(waitUntil([&] { return up.connections() > 0; }, kNoBackend));
  REQUIRE(c.send(body.substr(1000, 2000)));
  CHECK_FALSE(waitUntil([&] { return up.connections() > 0; }, kNoBackend));
  REQUIRE(c.send(body.substr(3000)));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == body);
  CHECK(up.connections() == 1);
}

TEST_CASE("with Expect: 100-continue lb asks for the body before it picks a backend",
          "[buffering][expect]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  HttpClient c(lb.port(0));
  REQUIRE(c.send(head("/expect", 5, "Expect: 100-continue\r\n")));
  auto interim = c.read();
  INFO(describe(interim, c.error()));
  REQUIRE(interim);
  CHECK(interim->status == 100);
  CHECK(up.connections() == 0);
  REQUIRE(c.send("hello"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  std::string seen_head = seen->head;
  std::transform(seen_head.begin(), seen_head.end(), seen_head.begin(), ::tolower);
  CHECK(seen_head.find("\nexpect:") == std::string::npos);  // asked once, by lb
}

TEST_CASE("a buffered upload that stalls gets 408 and no backend sees it", "[buffering][408]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "client_body_timeout_ms = 300;"), {.workers = 1});

  HttpClient c(lb.port(0));
  REQUIRE(c.send(head("/stall", 100) + "only part"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(up.connections() == 0);
  // Counted when the exchange ends, which is after the answer left: the client may be first.
  CHECK(waitUntil([&] { return lb.statusTotal("4xx") == 1; }, 3s));
}

TEST_CASE("a request abandoned while lb waits for its body is logged 499 and reaches no backend",
          "[buffering][logs]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});
  {
    HttpClient c(lb.port(0));
    REQUIRE(c.send(head("/abandoned", 100) + "ab"));
  }  // the client closes in the middle of its body
  std::string line;
  waitUntil(
      [&] {
        for (const auto& l : lb.accessLogLines()) {
          if (l.find("POST /abandoned") != std::string::npos) {
            line = l;
            return true;
          }
        }
        return false;
      },
      5s);
  INFO("access log:\n" << lb.accessLog());
  REQUIRE_FALSE(line.empty());
  CHECK(line.find(" 499 ") != std::string::npos);
  CHECK(up.connections() == 0);
}

TEST_CASE("a body larger than the request buffer streams once the buffer is full",
          "[buffering][body]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  std::string body = pattern(7, 200000);
  HttpClient c(lb.port(0));
  REQUIRE(c.send(head("/big", body.size()) + body.substr(0, 40000)));
  // The backend has the request before the client is done. (Its byte count is taken once a
  // body is read whole, so the request count tells.)
  REQUIRE(waitUntil([&] { return up.requests() == 1; }, 5s));
  REQUIRE(c.send(body.substr(40000)));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("X-Body-Checksum") == checksumHex(body));
}

std::string chunkedHead(const std::string& path, const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n" + extra +
         "\r\n";
}

TEST_CASE("a chunked upload reaches no backend until its last chunk", "[buffering][chunked]") {
  // Its end is only known by its framing: lb looks for it in what it holds, piece by piece,
  // through a chunk extension, a size split across reads, and a trailer field.
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  HttpClient c(lb.port(0));
  const std::vector<std::string> pieces = {
      chunkedHead("/chunked"), "5;name=v",  "alue\r\nhel", "lo\r\n0",
      "c\r\n, world 0123",     "\r\n0\r\n", "X-Sum: 1\r\n"};
  for (const std::string& piece : pieces) {
    REQUIRE(c.send(piece));
    CHECK_FALSE(waitUntil([&] { return up.connections() > 0; }, 100ms));
  }
  REQUIRE(c.send("\r\n"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello, world 0123");
  auto seen = up.lastRequest();
  REQUIRE(seen);
  CHECK(seen->complete);
  CHECK(up.connections() == 1);

  // The next request on the connection, sent with the last chunk, is its own.
  REQUIRE(c.send(chunkedHead("/again") +
                 "2\r\nok\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: lb.test\r\n\r\n"));
  auto again = c.read();
  INFO(describe(again, c.error()));
  REQUIRE(again);
  CHECK(again->body.data == "ok");
  auto after = c.read();
  REQUIRE(after);
  CHECK(after->status == 200);
  CHECK(up.requests() == 3);
}

TEST_CASE("a stalled, malformed or too large chunked upload reaches no backend",
          "[buffering][chunked][408]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "",
                            "client_body_timeout_ms = 300; client_max_body_size = \"2k\";"),
           {.workers = 1});

  HttpClient stalled(lb.port(0));
  REQUIRE(stalled.send(chunkedHead("/stall") + "10\r\nonly part"));
  auto r = stalled.read();
  INFO(describe(r, stalled.error()));
  REQUIRE(r);
  CHECK(r->status == 408);

  // A chunk size that is no hex number: the parser has the body at once and refuses it.
  HttpClient bad(lb.port(0));
  REQUIRE(bad.send(chunkedHead("/bad") + "5\r\nhello\r\nzz\r\n"));
  auto b = bad.read();
  INFO(describe(b, bad.error()));
  REQUIRE(b);
  CHECK(b->status == 400);
  CHECK(bad.waitClosed(5s));

  // The same in the read that fills the request buffer: the part of it the parser's copy has
  // not seen yet is looked at before the buffer counts as full.
  HttpClient late(lb.port(0));
  REQUIRE(late.send(chunkedHead("/late") + "5\r\nhello\r\n"));
  REQUIRE(late.send("zz\r\n" + std::string(20000, 'z')));
  auto l = late.read();
  INFO(describe(l, late.error()));
  REQUIRE(l);
  CHECK(l->status == 400);

  // Past client_max_body_size within the buffer: 413.
  std::string chunks;
  for (int i = 0; i < 30; ++i) {
    chunks += "64\r\n" + std::string(100, 'c') + "\r\n";
  }
  HttpClient large(lb.port(0));
  REQUIRE(large.send(chunkedHead("/large") + chunks + "0\r\n\r\n"));
  auto g = large.read();
  INFO(describe(g, large.error()));
  REQUIRE(g);
  CHECK(g->status == 413);
  CHECK(up.connections() == 0);
}

TEST_CASE("a chunked upload larger than the request buffer streams once the buffer is full",
          "[buffering][chunked][body]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  std::string body = pattern(3, 100000);
  std::string framed;
  for (size_t at = 0; at < body.size(); at += 1000) {
    framed += "3e8\r\n" + body.substr(at, 1000) + "\r\n";
  }
  HttpClient c(lb.port(0));
  REQUIRE(c.send(chunkedHead("/big") + framed.substr(0, 40000)));
  // The backend has the request before the client is done.
  REQUIRE(waitUntil([&] { return up.requests() == 1; }, 5s));
  REQUIRE(c.send(framed.substr(40000) + "0\r\n\r\n"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("X-Body-Checksum") == checksumHex(body));
}

TEST_CASE("with request_buffering off a chunked upload streams from its first chunk",
          "[buffering][chunked]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}, "", "request_buffering = false;"), {.workers = 1});

  HttpClient c(lb.port(0));
  REQUIRE(c.send(chunkedHead("/chunked") + "5\r\nhello\r\n"));
  REQUIRE(waitUntil([&] { return up.connections() > 0; }, 5s));
  REQUIRE(c.send("0\r\n\r\n"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello");
}

TEST_CASE("an HTTP/2 upload reaches no backend until its body is complete", "[buffering][http2]") {
  // With content-length, and without (it goes to the backend chunked, held until END_STREAM).
  for (bool with_length : {true, false}) {
    INFO("content-length: " << with_length);
    FakeUpstream up("echo", upstream::echo());
    LbInstance lb;
    lb.start(singlePoolConfig({up.address()}), {.workers = 1});

    H2Client c(lb.port(0));
    REQUIRE(c.handshake());
    HeaderList fields = H2Client::requestFields("POST", "/h2");
    if (with_length) {
      fields.push_back({"content-length", "10"});
    }
    int32_t id = c.startRequest(fields, "01234", false);
    REQUIRE(id != 0);
    CHECK_FALSE(waitUntil([&] { return up.connections() > 0; }, kNoBackend));
    REQUIRE(c.sendData(id, "56789", true));
    REQUIRE(c.waitDone(id, 5s));
    const H2StreamResult& r = c.result(id);
    INFO(describe(r) << " " << c.error());
    CHECK(r.status == 200);
    CHECK(r.body.data == "0123456789");
    CHECK(up.connections() == 1);
  }
}

}  // namespace
}  // namespace lb::e2e
