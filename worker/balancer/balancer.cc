#include "worker/balancer/balancer.h"

#include "worker/balancer/least_conn.h"
#include "worker/balancer/round_robin.h"

namespace lb::worker {

BalancerPtr makeBalancer(const config::Pool& pool, shm::Segment* segment) {
  switch (pool.algorithm) {
    case config::Algorithm::LeastConn:
      return std::make_unique<LeastConnBalancer>(pool, segment);
    case config::Algorithm::RoundRobin:
      break;
  }
  return std::make_unique<RoundRobinBalancer>(pool, segment);
}

}  // namespace lb::worker
