#include "worker/net/spread.h"

#include <algorithm>

namespace lb::worker {
namespace {

constexpr int64_t kMargin = 2;

}  // namespace

bool siblingHasRoom(const WorkerContext& ctx) {
  if (ctx.config->worker_processes < 2 || ctx.segment == nullptr || ctx.slot == nullptr) {
    return false;
  }
  int64_t mine = ctx.slot->active_connections.load(std::memory_order_relaxed);
  uint64_t gen = ctx.slot->generation.load(std::memory_order_relaxed);
  uint32_t high = std::min<uint32_t>(
      ctx.segment->header.worker_slots_high.load(std::memory_order_relaxed), shm::kMaxWorkers);
  for (uint32_t i = 0; i < high; ++i) {
    const shm::WorkerSlot& w = ctx.segment->workers[i];
    if (&w == ctx.slot || w.pid.load(std::memory_order_relaxed) == 0 ||
        w.generation.load(std::memory_order_relaxed) != gen ||
        w.accepting.load(std::memory_order_relaxed) == 0) {
      continue;
    }
    int64_t other = w.active_connections.load(std::memory_order_relaxed);
    if (mine > other + kMargin + other / 8) {
      return true;
    }
  }
  return false;
}

}  // namespace lb::worker
