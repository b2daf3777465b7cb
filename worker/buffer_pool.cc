#include "worker/buffer_pool.h"

#include <cstdlib>
#include <new>

namespace lb::worker {

BufferPool::~BufferPool() {
  for (char* b : free_) {
    std::free(b);
  }
}

char* BufferPool::get() {
  if (!free_.empty()) {
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  void* p = std::malloc(block_size_);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return static_cast<char*>(p);
}

void BufferPool::put(char* block) {
  if (block == nullptr) {
    return;
  }
  if (free_.size() < max_free_) {
    free_.push_back(block);
  } else {
    std::free(block);
  }
}

}  // namespace lb::worker
