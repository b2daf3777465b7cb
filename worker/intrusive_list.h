#pragma once

// A FIFO list threaded through `prev`/`next` members of its nodes, which live inside their
// owners (a connection's timer, its place in a pool's queue, its write waiting for the end of the
// loop turn): no allocation, and an owner leaves the list in O(1) wherever it is.

namespace lb::worker {

template <class Node>
class IntrusiveList {
 public:
  Node* front() const { return head_; }
  bool empty() const { return head_ == nullptr; }

  void pushBack(Node* node) {
    node->next = nullptr;
    node->prev = tail_;
    if (tail_ != nullptr) {
      tail_->next = node;
    } else {
      head_ = node;
    }
    tail_ = node;
  }

  // `node` must be on this list.
  void remove(Node* node) {
    if (node->prev != nullptr) {
      node->prev->next = node->next;
    } else {
      head_ = node->next;
    }
    if (node->next != nullptr) {
      node->next->prev = node->prev;
    } else {
      tail_ = node->prev;
    }
    node->prev = node->next = nullptr;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

}  // namespace lb::worker
