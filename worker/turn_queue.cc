#include "worker/turn_queue.h"

namespace lb::worker {

void TurnQueue::init(uv_loop_t* loop) {
  uv_check_init(loop, &check_);
  uv_prepare_init(loop, &prepare_);
  check_.data = this;
  prepare_.data = this;
  ready_ = true;
}

void TurnQueue::close() {
  if (!ready_) {
    return;
  }
  ready_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
}

void TurnQueue::push(TurnNode* node) {
  if (node->queued) {
    return;
  }
  node->queued = true;
  list_.pushBack(node);
  start();
}

void TurnQueue::cancel(TurnNode* node) {
  if (!node->queued) {
    return;
  }
  node->queued = false;
  list_.remove(node);
}

void TurnQueue::runAll() {
  while (TurnNode* node = list_.front()) {
    cancel(node);
    node->run(node);
  }
  stop();
}

void TurnQueue::start() {
  if (active_ || !ready_) {
    return;
  }
  active_ = true;
  uv_check_start(&check_, &TurnQueue::onCheck);
  uv_prepare_start(&prepare_, &TurnQueue::onPrepare);
}

void TurnQueue::stop() {
  if (!active_) {
    return;
  }
  active_ = false;
  uv_check_stop(&check_);
  uv_prepare_stop(&prepare_);
}

void TurnQueue::onCheck(uv_check_t* h) {
  static_cast<TurnQueue*>(h->data)->runAll();
}

void TurnQueue::onPrepare(uv_prepare_t* h) {
  static_cast<TurnQueue*>(h->data)->runAll();
}

}  // namespace lb::worker
