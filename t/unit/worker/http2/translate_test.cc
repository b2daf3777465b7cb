// HTTP/2 fields to the HTTP/1.1 request head, with RFC 9113 section 8's refusals, and HTTP/1.1
// response heads and trailers to HTTP/2 fields.

#include "worker/http2/translate.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

namespace lb::worker::http2 {
namespace {

using namespace std::string_literals;

using Fields = std::vector<std::pair<std::string, std::string>>;

RequestHead headOf(const Fields& fields, size_t max = 16384) {
  RequestHead h;
  for (const auto& [n, v] : fields) {
    addRequestField(&h, n, v, max);
  }
  return h;
}

const Fields kGet = {
    {":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "/x?y=1"}};

Fields with(Fields f, const Fields& more) {
  f.insert(f.end(), more.begin(), more.end());
  return f;
}

TEST_CASE("a request becomes an HTTP/1.1 head with Host and joined cookies", "[http2]") {
  RequestHead h = headOf(
      with(kGet, {{"cookie", "a=1"}, {"accept", "*/*"}, {"cookie", "b=2"}, {"te", "trailers"}}));
  std::string out;
  bool chunked = true;
  REQUIRE(buildRequestHead(&h, false, &out, &chunked));
  CHECK_FALSE(chunked);
  CHECK(out == "GET /x?y=1 HTTP/1.1\r\nhost: a.test\r\ncookie: a=1; b=2\r\naccept: */*\r\n\r\n");
}

TEST_CASE("a body without content-length is chunked, with one it is not", "[http2]") {
  RequestHead h = headOf(with(kGet, {}));
  std::string out;
  bool chunked = false;
  REQUIRE(buildRequestHead(&h, true, &out, &chunked));
  CHECK(chunked);
  CHECK(out.ends_with("transfer-encoding: chunked\r\n\r\n"));
  RequestHead l = headOf(with(kGet, {{"content-length", "5"}}));
  out.clear();
  REQUIRE(buildRequestHead(&l, true, &out, &chunked));
  CHECK_FALSE(chunked);
  CHECK(out.find("transfer-encoding") == std::string::npos);
}

TEST_CASE("requests HTTP/1.1 could not carry are refused with their status", "[http2]") {
  struct Case {
    Fields fields;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {with(kGet, {{"x-a", "v\r\nx-b: w"}}), 400},
           {with(kGet, {{"x-a", " padded"}}), 400},
           {with(kGet, {{"x-a", "nul\0"s}}), 400},
           {with(kGet, {{"X-Upper", "v"}}), 400},
           {with(kGet, {{"connection", "close"}}), 400},
           {with(kGet, {{"te", "gzip"}}), 400},
           {with(kGet, {{"host", "b.test"}}), 400},
           {with(kGet, {{":protocol", "websocket"}}), 400},
           {{{":method", "GET"}, {":scheme", "https"}, {":authority", "u@a.test"}, {":path", "/"}},
            400},
           {{{":method", "GET"}, {":scheme", "ftp"}, {":authority", "a.test"}, {":path", "/"}},
            400},
           {{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "x"}},
            400},
           {{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/a b"}}, 400},
           {{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}, 400},
           {{{":method", "CONNECT"}, {":authority", "a.test:443"}}, 501},
       }) {
    RequestHead h = headOf(c.fields);
    std::string out;
    bool chunked = false;
    INFO(c.fields.back().first << ": " << c.fields.back().second);
    CHECK_FALSE(buildRequestHead(&h, false, &out, &chunked));
    CHECK(h.status == c.status);
    CHECK(out.empty());
  }
}

TEST_CASE("a header list past the limit is refused with 431", "[http2]") {
  RequestHead h = headOf(with(kGet, {{"x-big", std::string(200, 'v')}}), 200);
  std::string out;
  bool chunked = false;
  CHECK_FALSE(buildRequestHead(&h, false, &out, &chunked));
  CHECK(h.status == 431);
}

TEST_CASE("a response head becomes :status and lowercase fields without hop-by-hop ones",
          "[http2]") {
  std::string text =
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\nX-Id:  7 \r\n\r\nbody";
  ResponseFields f;
  size_t head_len = 0;
  REQUIRE(responseFields(text, &f, &head_len));
  CHECK(head_len == text.size() - 4);
  CHECK(f.status == 404);
  std::vector<std::string> got;
  for (const nghttp2_nv& nv : f.nv) {
    got.push_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen) + "=" +
                  std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
  }
  CHECK(got == std::vector<std::string>{":status=404", "content-type=text/plain", "x-id=7"});
  CHECK_FALSE(responseFields("HTTP/1.1 200 OK\r\nX: y\r\n", &f, &head_len));
}

TEST_CASE("trailer lines become fields", "[http2]") {
  ResponseFields f;
  REQUIRE(trailerFields("Grpc-Status: 0\r\nGrpc-Message: ok\r\n", &f));
  REQUIRE(f.nv.size() == 2);
  CHECK(std::string(reinterpret_cast<char*>(f.nv[0].name), f.nv[0].namelen) == "grpc-status");
  CHECK(std::string(reinterpret_cast<char*>(f.nv[1].value), f.nv[1].valuelen) == "ok");
}

}  // namespace
}  // namespace lb::worker::http2
