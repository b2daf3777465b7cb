// least_conn steers new requests away from a busy backend. The in-flight counts live in shared
// memory, so this holds across workers: requests on new connections may land on either worker.

#include "e2e/harness/e2e.h"

#include <map>
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

  // Four requests held in flight, one after the other: least_conn alternates, 2 and 2.
  std::map<std::string, std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 4; ++i) {
    std::string target = "/held-" + std::to_string(i);
    held[target] = std::make_unique<HttpClient>(lb.port(0));
    REQUIRE(held[target]->send(buildRequest("GET", target)));
    REQUIRE(waitUntil([&] { return a.requests() + b.requests() == i + 1; }, 5s));
  }
  CHECK(a.requests() == 2);
  CHECK(b.requests() == 2);

  // Release B: A stays busy with two requests, B becomes idle. Every new request must go to B.
  // (Two, not one, held on A: lb may give B's count back a moment after the client has its
  // response, and a new request in that moment must still see B as less loaded.)
  gate_b->open();
  for (const auto& req : b.received()) {
    auto& c = held[req.target];
    auto r = c->read();
    INFO(req.target << ": " << describe(r, c->error()));
    REQUIRE(r);
    CHECK(r->body.data == "B");
  }
  int to_b = 0;
  for (int i = 0; i < 20; ++i) {
    std::string error;
    auto rr = fetch(lb.port(0), buildRequest("GET", "/next/" + std::to_string(i)), {.timeout = 5s},
                    &error);
    INFO("request " << i << ": " << describe(rr, error));
    REQUIRE(rr);
    to_b += rr->body.data == "B";
  }
  CHECK(to_b == 20);
  CHECK(a.requests() == 2);

  // Release A: its held requests complete normally.
  gate_a->open();
  for (const auto& req : a.received()) {
    auto& c = held[req.target];
    auto r = c->read();
    INFO(req.target << ": " << describe(r, c->error()));
    REQUIRE(r);
    CHECK(r->body.data == "A");
  }
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
