// A malformed request never kills a worker and never disturbs other connections: while 4
// threads send 100 good requests each, another thread sends malformed ones; every good request
// succeeds, every malformed one gets 400, and the workers are the same processes afterwards.

#include "e2e/harness/e2e.h"

#include <atomic>
#include <thread>

namespace lb::e2e {
namespace {

const char* const kMalformed[] = {
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
    "chunked\r\n\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "\x16\x03\x01\x02\x05 not http at all\r\n\r\n",  // a TLS record on a plain port
};

TEST_CASE("malformed requests are answered 400 while concurrent good requests all succeed",
          "[framing][isolation]") {
  FakeUpstream up("echo", upstream::echo());
  LbInstance lb;
  lb.start(singlePoolConfig({up.address()}));
  auto workers_before = lb.workerPids();
  REQUIRE(workers_before.size() == 2);

  std::atomic<int> good_ok{0};
  std::atomic<int> bad_400{0};
  std::atomic<bool> done{false};
  std::vector<std::string> failures[5];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Two threads keep one connection, two open a new one per request.
      std::unique_ptr<HttpClient> c;
      for (int i = 0; i < 100; ++i) {
        if (!c || t % 2 == 1) {
          c = std::make_unique<HttpClient>(lb.port(0));
        }
        std::string body = "t";  // built piecewise: g++ 12 warns wrongly on "t" + string
        body += std::to_string(t) + "-" + std::to_string(i);
        auto r = c->roundTrip(buildRequest("POST", "/good", {}, body));
        if (r && r->status == 200 && r->body.data == body) {
          ++good_ok;
        } else {
          failures[t].push_back(body + ": " + describe(r, c->error()));
          c.reset();
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; !done || i < 50; ++i) {
      if (i >= 500) {
        break;
      }
      HttpClient c(lb.port(0));
      std::string raw = kMalformed[i % std::size(kMalformed)];
      auto r = c.roundTrip(raw, {.timeout = 5s});
      if (r && r->status == 400) {
        ++bad_400;
      } else {
        std::string what = "malformed #";
        what += std::to_string(i % std::size(kMalformed));
        what += ": ";
        what += describe(r, c.error());
        failures[4].push_back(what);
      }
    }
  });
  for (int t = 0; t < 4; ++t) {
    threads[t].join();
  }
  done = true;
  threads[4].join();

  std::string shown;
  for (const auto& list : failures) {
    for (size_t i = 0; i < std::min<size_t>(list.size(), 5); ++i) {
      shown += list[i] + "\n";
    }
  }
  INFO("first failures per thread (4 = the malformed one):\n" << shown);
  CHECK(good_ok == 400);
  CHECK(bad_400 >= 50);
  CHECK(failures[4].empty());
  // No worker died (and was replaced) on the way.
  auto workers_after = lb.workerPids();
  std::sort(workers_before.begin(), workers_before.end());
  std::sort(workers_after.begin(), workers_after.end());
  CHECK(workers_after == workers_before);
  // None of the malformed requests reached the upstream: it saw exactly the good ones.
  CHECK(up.requests() == 400);
}

}  // namespace
}  // namespace lb::e2e
