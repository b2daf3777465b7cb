#pragma once

// Backend selection, one algorithm per file pair behind this interface (HAProxy's lbprm ops,
// h2o's balancer). A Balancer belongs to one pool in one worker and runs on that worker's loop;
// the state it shares with other workers (active connections, the round-robin position) lives in
// shared memory, so every worker decides from the same numbers.

#include <cstdint>
#include <memory>
#include <span>

#include "shared/config/model.h"
#include "shared/shm/layout.h"

namespace lb::worker {

class Balancer {
 public:
  virtual ~Balancer() = default;

  // Picks a backend of the pool and takes one of its connections: on success the backend's
  // shared `active` count has been incremented (never past max_connections, also under races
  // with other workers) and its index in Pool::backends is returned. Backends listed in
  // `exclude` (already tried for this request) are skipped. Returns -1 when no backend can take
  // a connection.
  virtual int pick(std::span<const int> exclude) = 0;

  // Gives back the connection taken by pick(): decrements the backend's `active`.
  virtual void release(int backend_index) = 0;
};

using BalancerPtr = std::unique_ptr<Balancer>;

// The balancer for `pool`'s algorithm. `pool` and `segment` must outlive it; Pool::slot and
// Backend::slot must be assigned.
BalancerPtr makeBalancer(const config::Pool& pool, shm::Segment* segment);

}  // namespace lb::worker
