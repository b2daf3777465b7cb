#include "worker/proxy/request_queue.h"

#include "worker/proxy/client_conn.h"

namespace lb::worker {

bool RequestQueue::push(QueueLink* link) {
  if (link->queued || full() || timer_closed_) {
    return false;
  }
  if (!timer_ready_) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timer_ready_ = true;
  }
  list_.pushBack(link);
  link->queued = true;
  ++size_;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
    schedule(kQueuePollMs);
  }
  return true;
}

void RequestQueue::remove(QueueLink* link) {
  if (!link->queued) {
    return;
  }
  list_.remove(link);
  link->queued = false;
  --size_;
}

void RequestQueue::wake() {
  if (!list_.empty()) {
    schedule(0);
  }
}

void RequestQueue::close() {
  if (timer_ready_ && !timer_closed_) {
    timer_closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }
}

void RequestQueue::schedule(uint64_t ms) {
  if (timer_ready_ && !timer_closed_) {
    uv_timer_start(&timer_, &RequestQueue::onTimer, ms, 0);
  }
}

// The oldest waiter tries first; the others wait behind it so that order is kept, except that
// one which leaves (served, answered or gone) lets the next one try in the same turn.
void RequestQueue::onTimer(uv_timer_t* t) {
  auto* q = static_cast<RequestQueue*>(t->data);
  while (!q->list_.empty()) {
    QueueLink* first = q->list_.front();
    first->owner->retryQueued();
    if (q->list_.front() == first) {
      break;  // still no room
    }
  }
  if (!q->list_.empty()) {
    q->schedule(kQueuePollMs);
  }
}

}  // namespace lb::worker
