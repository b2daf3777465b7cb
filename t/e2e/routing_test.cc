// Routing by Host and path prefix (first matching rule wins, host compared case-insensitively
// without the port and a trailing dot), 404 when no rule matches, and static responses lb answers
// itself, from a route rule or a whole listener.

#include "e2e/harness/e2e.h"

namespace lb::e2e {
namespace {

std::string routingConfig(const FakeUpstream& api, const FakeUpstream& web) {
  return R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    routes = "main"; } );
    routes = ( { name = "main"; rules = (
      { host = "a.test"; path_prefix = "/api/"; pool = "api"; },
      { path_prefix = "/static"; return = { status = 200; body = "s"; }; },
      { host = "b.test"; pool = "web"; }
    ); } );
    pools = ( )" +
         poolBlock("api", {api.address()}) + ", " + poolBlock("web", {web.address()}) + " );\n";
}

// GET `path` with Host `host`; returns "status body".
std::string answer(int port, const std::string& path, const std::string& host) {
  auto r = get(port, path, host);
  return r ? std::to_string(r->status) + " " + r->body.data : "no response";
}

TEST_CASE("requests are routed by Host and path prefix", "[routing]") {
  FakeUpstream api("api"), web("web");
  LbInstance lb;
  lb.start(routingConfig(api, web));
  int p = lb.port(0);

  CHECK(answer(p, "/api/users", "a.test") == "200 api");
  CHECK(answer(p, "/api/", "a.test") == "200 api");
  // Host: case-insensitive, port ignored.
  CHECK(answer(p, "/api/x", "A.Test") == "200 api");
  CHECK(answer(p, "/api/x", "a.test:" + std::to_string(p)) == "200 api");
  // A fully qualified name, with its root dot, is the same name.
  CHECK(answer(p, "/api/x", "a.test.") == "200 api");
  CHECK(answer(p, "/api/x", "a.test.:" + std::to_string(p)) == "200 api");
  // Prefix, not substring or directory-insensitive match.
  CHECK(answer(p, "/apix", "b.test") == "200 web");
  CHECK(answer(p, "/api", "b.test") == "200 web");
  CHECK(answer(p, "/api/x", "b.test") == "200 web");
  // The static rule applies to any host.
  CHECK(answer(p, "/static/logo.png", "a.test") == "200 s");
  CHECK(answer(p, "/static", "zzz.test") == "200 s");
  // The upstream sees the original path.
  auto seen = api.lastRequest();
  REQUIRE(seen);
  CHECK(seen->target == "/api/x");
}

TEST_CASE("404 when no route matches", "[routing][errors]") {
  FakeUpstream api("api"), web("web");
  LbInstance lb;
  lb.start(routingConfig(api, web));

  for (auto [path, host] : {std::pair{"/", "c.test"}, {"/api/x", "c.test"}, {"/other", "a.test"}}) {
    auto r = get(lb.port(0), path, host);
    INFO(path << " on " << host << ": " << describe(r));
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body.length() > 0);
  }
  CHECK(api.requests() == 0);
  CHECK(web.requests() == 0);
}

TEST_CASE("a listener with a static response answers it itself", "[routing][static]") {
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "health"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    return = { status = 203; headers = { X-A = "1"; X-Served-By = "lb"; };
                               body = "static body\n"; }; } );
  )");

  HttpClient c(lb.port(0));
  for (std::string method : {"GET", "POST"}) {
    auto r = c.roundTrip(buildRequest(method, "/anything", {}, method == "POST" ? "ignored" : ""));
    INFO(method << ": " << describe(r, c.error()));
    REQUIRE(r);
    CHECK(r->status == 203);
    CHECK(r->header("X-A") == "1");
    CHECK(r->header("X-Served-By") == "lb");
    CHECK(r->body.data == "static body\n");
    CHECK(r->header("Content-Length") == "12");
  }
  auto head = c.roundTrip(buildRequest("HEAD", "/"), {.head_request = true});
  INFO(describe(head, c.error()));
  REQUIRE(head);
  CHECK(head->status == 203);
  CHECK(c.stream().buffer().empty());
  // The connection is still in sync after HEAD.
  auto after = c.roundTrip(buildRequest("GET", "/"));
  REQUIRE(after);
  CHECK(after->body.data == "static body\n");
}

TEST_CASE("a static maintenance page from a route rule", "[routing][static]") {
  FakeUpstream web("web");
  LbInstance lb;
  lb.start(R"(
    listeners = ( { name = "web"; listen = "127.0.0.1:@PORT_0@"; protocol = "http";
                    routes = "main"; } );
    routes = ( { name = "main"; rules = (
      { path_prefix = "/maintenance"; return = { status = 503;
          headers = { Retry-After = "120"; Content-Type = "text/html"; };
          body = "<h1>down</h1>"; }; },
      { pool = "web"; }
    ); } );
    pools = ( )" +
           poolBlock("web", {web.address()}) + R"( );
  )");

  auto r = get(lb.port(0), "/maintenance/now");
  INFO(describe(r));
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->header("Retry-After") == "120");
  CHECK(r->header("Content-Type") == "text/html");
  CHECK(r->body.data == "<h1>down</h1>");
  auto w = get(lb.port(0), "/other");
  REQUIRE(w);
  CHECK(w->body.data == "web");
  CHECK(web.requests() == 1);
}

}  // namespace
}  // namespace lb::e2e
