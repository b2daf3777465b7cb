#pragma once

// Backend selection, one algorithm per file pair behind this interface (HAProxy's lbprm ops,
// h2o's balancer). A Balancer belongs to one pool in one worker and runs on that worker's loop;
// the state it shares with other workers (active connections, the round-robin position,
// response times, what the operator and the health checks decided) lives in shared memory, so
// every worker decides from the same numbers.
//
// What is common to all algorithms is done here and in backend_set.h: which backends are
// eligible (not draining, disabled, down, or at max_connections), the weights an operator set at
// run time, and sticky sessions, which are tried before the algorithm.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "worker/balancer/backend_set.h"

namespace lb::worker {

// What a pick knows about the request; filled by the proxy (request_key.h), all optional.
struct PickInput {
  // When the request is balanced, CLOCK_MONOTONIC ms (the loop's uv_now): paces the re-reading
  // of run-time weights and ages response times. 0 is a valid time (tests).
  uint64_t now_ms = 0;
  // ip_hash and hash: the hash of the request's key; has_key false when the request has none
  // (hash then spreads such requests over the table).
  uint64_t key_hash = 0;
  bool has_key = false;
  // The backend the request's sticky cookie names (Balancer::stickyBackend), or -1.
  int sticky = -1;
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  // Picks a backend of the pool and takes one of its connections: on success the backend's
  // shared `active` count has been incremented (never past max_connections, also under races
  // with other workers) and its index in Pool::backends is returned. Backends listed in
  // `exclude` (already tried for this request) and ineligible ones are skipped. The sticky
  // backend of `input`, when it can take the request, wins over the algorithm. Returns -1 when
  // no backend can take a connection. Worker loop only; allocates nothing, except when the
  // operator changed a weight and the algorithm rebuilds its table.
  int pick(std::span<const int> exclude, const PickInput& input);
  int pick(std::span<const int> exclude) { return pick(exclude, PickInput{}); }

  // Gives back the connection taken by pick(): decrements the backend's `active`.
  void release(int backend_index) { set_.drop(static_cast<size_t>(backend_index)); }

  // True when the algorithm steers by response time: the proxy then calls recordResponse().
  virtual bool wantsResponseTimes() const { return false; }
  // The time from sending the request head to receiving the response head of one response of
  // `backend_index`, at `now_ms`. A no-op unless wantsResponseTimes().
  virtual void recordResponse(int backend_index, uint64_t micros, uint64_t now_ms) {}

  // Sticky sessions: the opaque id of a backend (a hash of "pool/address", the same in every
  // worker and every lb instance with the same config; it does not reveal the address), and
  // the backend an id names, or -1.
  uint64_t stickyId(int backend_index) const { return sticky_ids_[backend_index]; }
  int stickyBackend(uint64_t id) const;

  size_t size() const { return set_.size(); }
  const BackendSet& backends() const { return set_; }

 protected:
  // `pool` and `segment` must outlive the balancer; Pool::slot and Backend::slot assigned (a
  // backend whose slot is out of range is never picked).
  Balancer(const config::Pool& pool, shm::Segment* segment);

  // The algorithm: same contract as pick(), for a request the sticky cookie did not place.
  // set_ already has the request's time (set_.now()).
  virtual int choose(std::span<const int> exclude, const PickInput& input) = 0;
  // Some effective weight changed (the operator set or cleared one): rebuild what depends on
  // the weights. Rare; may allocate.
  virtual void weightsChanged() {}

  // The pool's shared round-robin counter (or a local one when the pool has no valid slot).
  std::atomic<uint64_t>& sharedPosition() { return *position_; }

  BackendSet set_;

 private:
  std::vector<uint64_t> sticky_ids_;             // per backend
  std::vector<std::pair<uint64_t, int>> by_id_;  // sorted, for stickyBackend()
  std::atomic<uint64_t>* position_;
  std::atomic<uint64_t> local_position_{0};
};

using BalancerPtr = std::unique_ptr<Balancer>;

// The balancer for `pool`'s algorithm. `pool` and `segment` must outlive it; Pool::slot and
// Backend::slot must be assigned.
BalancerPtr makeBalancer(const config::Pool& pool, shm::Segment* segment);

// The key of backend `backend` of `pool` in shared memory, Maglev and sticky ids:
// "pool/address" as written in the config.
std::string backendKey(const config::Pool& pool, const config::Backend& backend);

// A seed that differs between workers and between runs, for the random algorithms.
uint64_t randomSeed();

}  // namespace lb::worker
