#pragma once

// Fixed-size I/O buffers recycled per worker. A connection holds a buffer only while bytes are in
// flight; an idle keep-alive connection holds none, which is what keeps an idle client connection
// a few hundred bytes. Runs on one worker's loop; not thread-safe.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lb::worker {

inline constexpr uint32_t kBufferSize = 16384;
// Response read buffers: a typical response (a 16 KiB body and its head) fits in one read and
// goes out in one write.
inline constexpr uint32_t kLargeBufferSize = 65536;

class BufferPool {
 public:
  explicit BufferPool(size_t max_free = 256, uint32_t block_size = kBufferSize)
      : max_free_(max_free), block_size_(block_size) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A block of block_size() bytes; never null (allocation failure aborts, as for any heap
  // exhaustion).
  char* get();
  // Gives a block back; keeps up to max_free blocks for reuse, frees the rest.
  void put(char* block);
  size_t freeCount() const { return free_.size(); }
  uint32_t blockSize() const { return block_size_; }

 private:
  std::vector<char*> free_;
  size_t max_free_;
  uint32_t block_size_;
};

}  // namespace lb::worker
