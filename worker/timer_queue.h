#pragma once

// Connection timeouts without a uv_timer per connection (152 bytes each, and a heap operation per
// re-arm). Every timeout of one duration goes into one FIFO queue: since all its entries share the
// duration, appending keeps the queue sorted by deadline, and arming, re-arming and cancelling
// are O(1) list operations on a node embedded in the connection. One repeating uv_timer per
// worker expires the heads of all queues.

#include <cstdint>
#include <vector>

#include <uv.h>

#include "worker/intrusive_list.h"

namespace lb::worker {

class TimerQueue;

struct TimerNode {
  using Callback = void (*)(TimerNode* node);
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  TimerQueue* queue = nullptr;  // null when not armed
  uint64_t deadline = 0;
  Callback on_timeout = nullptr;
  void* data = nullptr;  // the owner, for the callback

  bool armed() const { return queue != nullptr; }
};

class TimerQueue {
 public:
  explicit TimerQueue(uint32_t duration_ms) : duration_ms_(duration_ms) {}
  uint32_t duration() const { return duration_ms_; }
  void push(TimerNode* node, uint64_t now);
  void remove(TimerNode* node);
  // Fires every node whose deadline has passed. A callback may re-arm or free its node.
  void expire(uint64_t now);
  bool empty() const { return list_.empty(); }

 private:
  uint32_t duration_ms_;
  IntrusiveList<TimerNode> list_;
};

class Timers {
 public:
  // Starts the tick on `loop` (every tick_ms).
  void start(uv_loop_t* loop, uint32_t tick_ms);
  void stop();
  // Arms `node` to fire `duration_ms` from now; re-arms if already armed. duration 0 = disarm.
  void arm(TimerNode* node, uint32_t duration_ms);
  void disarm(TimerNode* node);

 private:
  static void onTick(uv_timer_t* t);
  TimerQueue* queueFor(uint32_t duration_ms);

  uv_timer_t timer_{};
  uv_loop_t* loop_ = nullptr;
  std::vector<TimerQueue*> queues_;
};

}  // namespace lb::worker
