// Request targets in absolute form (RFC 9112 3.2.2): the authority replaces Host, both for
// routing and in the request the backend gets, and the backend sees origin form. (One with
// userinfo is refused: t/e2e/smuggling_test.cc.)

#include <catch2/catch.hpp>
#include <string>

#include "unit/worker/proxy/harness_test.h"

namespace lb::worker::test {
namespace {

TEST_CASE("proxy: an absolute-form target is sent in origin form with its authority as Host",
          "[http1]") {
  Harness h;
  const std::string req =
      "GET http://api.example:8080/v1/items?x=1 HTTP/1.1\r\n"
      "Host: ignored.example\r\n"
      "\r\n";
  const std::string upstream_head =
      "GET /v1/items?x=1 HTTP/1.1\r\n"
      "X-Forwarded-For: 127.0.0.1\r\n"
      "X-Forwarded-Proto: http\r\n"
      "Host: api.example:8080\r\n"
      "X-Forwarded-Host: api.example:8080\r\n"
      "\r\n";
  Peer& c = h.connect("proxy");
  RoundTrip rt = roundTrip(h, c, req, req.size(), kOkResponse, 0);
  REQUIRE(rt.upstream.head == upstream_head);
  REQUIRE(c.in == kOkResponse);
  h.closeClients();
}

TEST_CASE("proxy: an absolute-form target with a query but no path gets the path /", "[http1]") {
  Harness h;
  const std::string req = "GET http://a.example?q=2 HTTP/1.1\r\nHost: a.example\r\n\r\n";
  Peer& c = h.connect("proxy");
  RoundTrip rt = roundTrip(h, c, req, req.size(), kOkResponse, 0);
  REQUIRE(rt.upstream.head.rfind("GET /?q=2 HTTP/1.1\r\nX-Forwarded-For:", 0) == 0);
  h.closeClients();
}

}  // namespace
}  // namespace lb::worker::test
