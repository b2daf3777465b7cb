#pragma once

// Fixed-size I/O buffers recycled per worker. A connection holds a buffer only while bytes are in
// flight; an idle keep-alive connection holds none, which is what keeps an idle client connection
// a few hundred bytes. Runs on one worker's loop; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lb::worker {

inline constexpr uint32_t kBufferSize = 16384;

class BufferPool {
 public:
  explicit BufferPool(size_t max_free = 256) : max_free_(max_free) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A kBufferSize block; never null (allocation failure aborts, as for any heap exhaustion).
  char* get();
  // Gives a block back; keeps up to max_free blocks for reuse, frees the rest.
  void put(char* block);
  size_t freeCount() const { return free_.size(); }

 private:
  std::vector<char*> free_;
  size_t max_free_;
};

}  // namespace lb::worker
