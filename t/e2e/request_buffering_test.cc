// request_buffering (on by default): a request with a Content-Length body reaches no backend
// until its body is in lb, as far as the request buffer holds. A slow or stalled upload, or one
// the client abandons, never holds a backend connection; a body larger than the buffer goes on
// streaming once the buffer is full. HTTP/2 uploads are buffered the same way.

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
  // The backend has the request (and the buffer's worth of body) before the client is done.
  REQUIRE(waitUntil([&] { return up.bytesReceived() >= 16384; }, 5s));
  REQUIRE(c.send(body.substr(40000)));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("X-Body-Checksum") == checksumHex(body));
}

TEST_CASE("a chunked upload is streamed, not buffered", "[buffering][chunked]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  HttpClient c(lb.port(0));
  REQUIRE(
      c.send("POST /chunked HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n"));
  REQUIRE(waitUntil([&] { return up.connections() > 0; }, 5s));
  REQUIRE(c.send("0\r\n\r\n"));
  auto r = c.read();
  INFO(describe(r, c.error()));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.data == "hello");
}

TEST_CASE("an HTTP/2 upload reaches no backend until its body is complete", "[buffering][http2]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}), {.workers = 1});

  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  HeaderList fields = H2Client::requestFields("POST", "/h2");
  fields.push_back({"content-length", "10"});
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

}  // namespace
}  // namespace lb::e2e
