#include "worker/net/spread.h"

#include <time.h>

#include <algorithm>
#include <cstdint>

namespace lb::worker {
namespace {

constexpr int64_t kMargin = 2;

bool live(const shm::WorkerSlot& w, uint64_t gen) {
  return w.pid.load(std::memory_order_relaxed) != 0 &&
         w.generation.load(std::memory_order_relaxed) == gen;
}

uint32_t slotsHigh(const WorkerContext& ctx) {
  return std::min<uint32_t>(ctx.segment->header.worker_slots_high.load(std::memory_order_relaxed),
                            shm::kMaxWorkers);
}

// Whether `w` published its load lately (its loop turns).
bool fresh(const shm::WorkerSlot& w) {
  auto at = static_cast<int64_t>(w.load_at_ms.load(std::memory_order_relaxed));
  auto now = static_cast<int64_t>(uv_hrtime() / 1000000);
  return now - at <= static_cast<int64_t>(kLoadStaleMs);
}

bool shared(const WorkerContext& ctx) {
  return ctx.config->worker_processes >= 2 && ctx.segment != nullptr && ctx.slot != nullptr;
}

}  // namespace

bool siblingHasRoom(const WorkerContext& ctx) {
  if (!shared(ctx)) {
    return false;
  }
  int64_t mine = ctx.slot->active_connections.load(std::memory_order_relaxed);
  uint64_t gen = ctx.slot->generation.load(std::memory_order_relaxed);
  uint32_t high = slotsHigh(ctx);
  for (uint32_t i = 0; i < high; ++i) {
    const shm::WorkerSlot& w = ctx.segment->workers[i];
    if (&w == ctx.slot || !live(w, gen) || w.accepting.load(std::memory_order_relaxed) == 0) {
      continue;
    }
    int64_t other = w.active_connections.load(std::memory_order_relaxed);
    if (mine > other + kMargin + other / 8) {
      return true;
    }
  }
  return false;
}

Spread spreadDecision(const WorkerContext& ctx) {
  if (!shared(ctx)) {
    return Spread::Take;
  }
  if (ctx.config->accept_spread == config::AcceptSpread::Even) {
    return siblingHasRoom(ctx) ? Spread::Leave : Spread::Take;
  }
  uint64_t gen = ctx.slot->generation.load(std::memory_order_relaxed);
  uint32_t high = slotsHigh(ctx);
  const shm::WorkerSlot* first = nullptr;  // the lowest accepting slot: the same in every worker
  uint32_t load = 0;
  int64_t fewest = INT64_MAX;  // connections of the accepting sibling of `first` with the fewest
  for (uint32_t i = 0; i < high; ++i) {
    const shm::WorkerSlot& w = ctx.segment->workers[i];
    if (!live(w, gen)) {
      continue;
    }
    load += w.load_permille.load(std::memory_order_relaxed);
    if (w.accepting.load(std::memory_order_relaxed) == 0) {
      continue;
    }
    if (first == nullptr) {
      first = &w;
    } else {
      fewest = std::min<int64_t>(fewest, w.active_connections.load(std::memory_order_relaxed));
    }
  }
  if (first != nullptr && first->churning.load(std::memory_order_relaxed) != 0 &&
      load < kPackLoadPermille && fresh(*first) &&
      (fewest == INT64_MAX ||
       first->active_connections.load(std::memory_order_relaxed) <= fewest + kPackMaxLead)) {
    return first == ctx.slot ? Spread::TakeAll : Spread::Leave;
  }
  return siblingHasRoom(ctx) ? Spread::Leave : Spread::Take;
}

void countClosed(WorkerContext* ctx, uint32_t requests, bool http2, uint64_t ms_since_request) {
  if (requests == 1 && !http2 && ms_since_request < kChurnWithinMs) {
    ++ctx->closes.churned;
  } else if (requests > 0 || http2) {
    ++ctx->closes.kept;
  }
}

void LoadMeter::start(WorkerContext* ctx) {
  ctx_ = ctx;
  uv_timer_init(ctx->loop, &timer_);
  timer_.data = this;
  last_wall_ns_ = uv_hrtime();
  last_cpu_ns_ = threadCpuNs();
  // A slot a dead worker left: nothing of it speaks for this one.
  ctx->slot->load_permille.store(0, std::memory_order_relaxed);
  ctx->slot->churning.store(0, std::memory_order_relaxed);
  ctx->slot->load_at_ms.store(last_wall_ns_ / 1000000, std::memory_order_relaxed);
  uv_timer_start(&timer_, &LoadMeter::onTick, kSpreadTickMs, kSpreadTickMs);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  running_ = true;
}

void LoadMeter::stop() {
  if (!running_) {
    return;
  }
  running_ = false;
  ctx_->slot->load_permille.store(0, std::memory_order_relaxed);
  ctx_->slot->churning.store(0, std::memory_order_relaxed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

uint64_t LoadMeter::threadCpuNs() const {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void LoadMeter::onTick(uv_timer_t* t) {
  auto* self = static_cast<LoadMeter*>(t->data);
  WorkerContext* ctx = self->ctx_;
  uint64_t wall = uv_hrtime();
  uint64_t cpu = self->threadCpuNs();
  uint64_t dwall = std::max<uint64_t>(wall - self->last_wall_ns_, 1);
  uint64_t permille = std::min<uint64_t>((cpu - self->last_cpu_ns_) * 1000 / dwall, 1000);
  self->last_wall_ns_ = wall;
  self->last_cpu_ns_ = cpu;
  CloseSample& s = ctx->closes;
  bool churning = s.churned >= kChurnMin && s.churned >= 3 * s.kept;
  s = CloseSample{};
  ctx->slot->load_permille.store(static_cast<uint32_t>(permille), std::memory_order_relaxed);
  ctx->slot->churning.store(churning ? 1 : 0, std::memory_order_relaxed);
  ctx->slot->load_at_ms.store(wall / 1000000, std::memory_order_relaxed);
}

}  // namespace lb::worker
