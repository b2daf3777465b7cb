#pragma once

// Requests waiting for a backend connection. When every backend a request may use is at
// max_connections (counted across all workers), the request waits in its worker's queue for
// the pool, first in, first out, instead of failing at once: a short burst is smoothed out and
// the backends are never pushed past their limit.
//
// A connection given back in this worker wakes the queue at once; one given back by another
// worker is noticed by polling every kQueuePollMs while requests wait (the count lives in
// shared memory, and a worker cannot be woken by another one cheaply). The wait's timeout is
// the client connection's own timer.

#include <cstdint>

#include <uv.h>

#include "worker/intrusive_list.h"

namespace lb::worker {

class ClientConn;

// Embedded in a ClientConn: its place in a queue.
struct QueueLink {
  QueueLink* prev = nullptr;
  QueueLink* next = nullptr;
  ClientConn* owner = nullptr;
  bool queued = false;
};

inline constexpr uint64_t kQueuePollMs = 5;

class RequestQueue {
 public:
  // `capacity` requests at most; the timer starts on `loop` at the first push.
  RequestQueue(uv_loop_t* loop, uint32_t capacity) : loop_(loop), capacity_(capacity) {}
  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  bool full() const { return size_ >= capacity_; }
  uint32_t size() const { return size_; }
  // Appends `link` (not queued); false when the queue is full.
  bool push(QueueLink* link);
  // Takes `link` out, wherever it is; a no-op when it is not queued.
  void remove(QueueLink* link);
  // A connection of the pool was given back: the waiters try again on the next loop turn.
  void wake();
  // Closes the timer (the worker's loop is ending).
  void close();

 private:
  static void onTimer(uv_timer_t* t);
  void schedule(uint64_t ms);

  uv_loop_t* loop_;
  uint32_t capacity_;
  uint32_t size_ = 0;
  IntrusiveList<QueueLink> list_;
  uv_timer_t timer_{};
  bool timer_ready_ = false;
  bool timer_closed_ = false;
};

}  // namespace lb::worker
