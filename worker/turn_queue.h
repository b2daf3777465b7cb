#pragma once

// Work put off to the end of the loop turn: the writes a turn's events produce leave together,
// after every event of the turn was read. A backend or client then wakes once for a batch of
// responses or requests instead of once per write, and lb is not preempted by each peer it wakes
// while it still has events to read.
//
// A node is embedded in its owner (no allocation); queueing and cancelling are O(1). The queue
// runs after the poll phase (uv_check) and, for work queued outside it (timers, close callbacks),
// before the loop would block (uv_prepare).

#include <uv.h>

#include "worker/intrusive_list.h"

namespace lb::worker {

struct TurnNode {
  using Callback = void (*)(TurnNode* node);
  TurnNode* prev = nullptr;
  TurnNode* next = nullptr;
  Callback run = nullptr;
  void* data = nullptr;  // the owner, for the callback
  bool queued = false;
};

class TurnQueue {
 public:
  void init(uv_loop_t* loop);
  void close();
  // `node->run` is called once at the end of this loop turn; queueing it again before is a no-op.
  void push(TurnNode* node);
  // The owner goes away, or did the work itself.
  void cancel(TurnNode* node);
  bool empty() const { return list_.empty(); }
  // Runs everything queued, and what that queues in turn.
  void runAll();

 private:
  static void onCheck(uv_check_t* h);
  static void onPrepare(uv_prepare_t* h);
  void start();
  void stop();

  uv_check_t check_{};
  uv_prepare_t prepare_{};
  IntrusiveList<TurnNode> list_;
  bool ready_ = false;
  bool active_ = false;
};

}  // namespace lb::worker
