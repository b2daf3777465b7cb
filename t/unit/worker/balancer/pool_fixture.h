#pragma once

// One pool in a real shared-memory segment, slots assigned as the master does it: what every
// balancer test starts from.

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/segment.h"
#include "worker/balancer/balancer.h"

namespace lb::worker::test {

class PoolFixture {
 public:
  PoolFixture(config::Algorithm algorithm, std::vector<int> weights,
              std::vector<int> max_connections = {})
      : PoolFixture(makePool(algorithm, std::move(weights), std::move(max_connections))) {}

  // A pool as given (tests that set options or addresses), in a segment of its own.
  explicit PoolFixture(config::Pool pool) {
    static std::atomic<int> counter{0};
    name_ = "lb.unit." + std::to_string(::getpid()) + ".pool" + std::to_string(counter++);
    auto seg = shm::SharedSegment::create(name_);
    REQUIRE(seg);
    segment_ = std::move(*seg);
    config_.pools.push_back(std::move(pool));
    auto assigned = segment_->assignSlots(config_);
    REQUIRE(assigned);
  }

  // Pool "pool" with backends 10.0.0.1:80, 10.0.0.2:80, ... of these weights and limits.
  static config::Pool makePool(config::Algorithm algorithm, std::vector<int> weights,
                               std::vector<int> max_connections = {}) {
    config::Pool pool;
    pool.name = "pool";
    pool.algorithm = algorithm;
    for (size_t i = 0; i < weights.size(); ++i) {
      config::Backend b;
      b.address_text = "10.0.0." + std::to_string(i + 1) + ":80";
      b.weight = weights[i];
      b.max_connections = i < max_connections.size() ? max_connections[i] : 0;
      pool.backends.push_back(b);
    }
    return pool;
  }
  ~PoolFixture() { shm::SharedSegment::remove(name_); }
  PoolFixture(const PoolFixture&) = delete;
  PoolFixture& operator=(const PoolFixture&) = delete;

  const config::Pool& pool() const { return config_.pools[0]; }
  shm::Segment* segment() const { return segment_->get(); }
  std::atomic<int32_t>& active(int backend) {
    return segment()->backends[pool().backends[backend].slot].active;
  }
  std::atomic<uint64_t>& requests(int backend) {
    return segment()->backends[pool().backends[backend].slot].requests;
  }
  shm::BackendSlot& slot(int backend) { return segment()->backends[pool().backends[backend].slot]; }
  void setAdmin(int backend, shm::AdminState state) {
    slot(backend).admin_state.store(static_cast<uint32_t>(state));
  }
  void setHealth(int backend, shm::HealthState state) {
    slot(backend).health.store(static_cast<uint32_t>(state));
  }

 private:
  std::string name_;
  std::unique_ptr<shm::SharedSegment> segment_;
  config::Config config_;
};

// `count` picks, each connection given back at once; -1 where none could be taken.
inline std::vector<int> pickReleased(Balancer& bal, size_t count, const PickInput& input = {}) {
  std::vector<int> out;
  for (size_t i = 0; i < count; ++i) {
    int picked = bal.pick({}, input);
    out.push_back(picked);
    if (picked >= 0) {
      bal.release(picked);
    }
  }
  return out;
}

// Lets forked workers start their loops together, so that they really race. Bounded: a
// worker that waits more than five seconds for the others goes on alone.
inline void startTogether(std::atomic<uint64_t>& arrived, uint64_t workers) {
  arrived.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (arrived.load() < workers && std::chrono::steady_clock::now() < deadline) {
  }
}

}  // namespace lb::worker::test
