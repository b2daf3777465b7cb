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
  link->prev = tail_;
  link->next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = link;
  } else {
    head_ = link;
  }
  tail_ = link;
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
  if (link->prev != nullptr) {
    link->prev->next = link->next;
  } else {
    head_ = link->next;
  }
  if (link->next != nullptr) {
    link->next->prev = link->prev;
  } else {
    tail_ = link->prev;
  }
  link->prev = link->next = nullptr;
  link->queued = false;
  --size_;
}

void RequestQueue::wake() {
  if (head_ != nullptr) {
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
  while (q->head_ != nullptr) {
    QueueLink* first = q->head_;
    first->owner->retryQueued();
    if (q->head_ == first) {
      break;  // still no room
    }
  }
  if (q->head_ != nullptr) {
    q->schedule(kQueuePollMs);
  }
}

}  // namespace lb::worker
