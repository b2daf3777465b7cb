#include "worker/timer_queue.h"

namespace lb::worker {

void TimerQueue::push(TimerNode* node, uint64_t now) {
  node->queue = this;
  node->deadline = now + duration_ms_;
  list_.pushBack(node);
}

void TimerQueue::remove(TimerNode* node) {
  list_.remove(node);
  node->queue = nullptr;
}

void TimerQueue::expire(uint64_t now) {
  while (!list_.empty() && list_.front()->deadline <= now) {
    TimerNode* n = list_.front();
    remove(n);
    n->on_timeout(n);
  }
}

void Timers::start(uv_loop_t* loop, uint32_t tick_ms) {
  loop_ = loop;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, &Timers::onTick, tick_ms, tick_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void Timers::stop() {
  if (loop_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    loop_ = nullptr;
  }
  for (TimerQueue* q : queues_) {
    delete q;
  }
  queues_.clear();
}

void Timers::onTick(uv_timer_t* t) {
  auto* self = static_cast<Timers*>(t->data);
  uint64_t now = uv_now(self->loop_);
  // Index loop: a callback may arm a node in a queue that does not exist yet.
  for (size_t i = 0; i < self->queues_.size(); ++i) {
    self->queues_[i]->expire(now);
  }
}

TimerQueue* Timers::queueFor(uint32_t duration_ms) {
  for (TimerQueue* q : queues_) {
    if (q->duration() == duration_ms) {
      return q;
    }
  }
  queues_.push_back(new TimerQueue(duration_ms));
  return queues_.back();
}

void Timers::arm(TimerNode* node, uint32_t duration_ms) {
  disarm(node);
  if (duration_ms == 0) {
    return;
  }
  queueFor(duration_ms)->push(node, uv_now(loop_));
}

void Timers::disarm(TimerNode* node) {
  if (node->queue != nullptr) {
    node->queue->remove(node);
  }
}

}  // namespace lb::worker
