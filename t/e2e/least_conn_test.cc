// least_conn steers new requests away from a busy backend. The in-flight counts live in shared
// memory, so this holds across workers: requests on new connections may land on either worker.

#include "e2e/harness/e2e.h"

#include <memory>

namespace lb::e2e {
namespace {

TEST_CASE("least_conn sends new requests to the backend that is not busy",
          "[balancer][least_conn]") {
  auto gate_a = std::make_shared<Gate>();
  auto gate_b = std::make_shared<Gate>();
  FakeUpstream a("A", upstream::gated(gate_a, upstream::named()));
  FakeUpstream b("B", upstream::gated(gate_b, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}, "algorithm = \"least_conn\";"));

  // Two requests held in flight: least_conn puts the second where the first is not.
  HttpClient first(lb.port(0));
  REQUIRE(first.send(buildRequest("GET", "/held-1")));
  REQUIRE(waitUntil([&] { return a.requests() + b.requests() == 1; }, 5s));
  HttpClient second(lb.port(0));
  REQUIRE(second.send(buildRequest("GET", "/held-2")));
  REQUIRE(waitUntil([&] { return a.requests() + b.requests() == 2; }, 5s));
  CHECK(a.requests() == 1);
  CHECK(b.requests() == 1);

  // Release B: A stays busy with one request, B is idle. Every new request must go to B.
  gate_b->open();
  auto r = second.read();
  INFO(describe(r, second.error()));
  REQUIRE(r);
  CHECK(r->body.data == "B");
  int to_b = 0;
  for (int i = 0; i < 20; ++i) {
    auto rr = get(lb.port(0), "/next/" + std::to_string(i));
    INFO("request " << i << ": " << describe(rr));
    REQUIRE(rr);
    to_b += rr->body.data == "B";
  }
  CHECK(to_b == 20);
  CHECK(a.requests() == 1);

  // Release A: its held request completes normally.
  gate_a->open();
  r = first.read();
  INFO(describe(r, first.error()));
  REQUIRE(r);
  CHECK(r->body.data == "A");
}

TEST_CASE("least_conn balances concurrent slow requests evenly", "[balancer][least_conn]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream a("A", upstream::gated(gate, upstream::named()));
  FakeUpstream b("B", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(singlePoolConfig({a.address(), b.address()}, "algorithm = \"least_conn\";"));

  // Ten requests held one after the other: with counts shared across workers they alternate.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<HttpClient>(lb.port(0)));
    REQUIRE(clients.back()->send(buildRequest("GET", "/held")));
    REQUIRE(waitUntil([&] { return a.requests() + b.requests() == i + 1; }, 5s));
  }
  CHECK(a.requests() == 5);
  CHECK(b.requests() == 5);
  gate->open();
  for (auto& c : clients) {
    auto r = c->read();
    INFO(describe(r, c->error()));
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

}  // namespace
}  // namespace lb::e2e
