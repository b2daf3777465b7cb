#include "worker/buffer_pool.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <vector>

namespace lb::worker {
namespace {

TEST_CASE("BufferPool hands out distinct writable blocks of kBufferSize", "[buffer_pool]") {
  BufferPool pool(4);
  std::set<char*> seen;
  std::vector<char*> blocks;
  for (int i = 0; i < 8; ++i) {
    char* b = pool.get();
    REQUIRE(b != nullptr);
    std::memset(b, i, kBufferSize);  // ASan would flag a block shorter than kBufferSize
    CHECK(seen.insert(b).second);
    blocks.push_back(b);
  }
  for (int i = 0; i < 8; ++i) {
    CHECK(blocks[i][0] == i);
    CHECK(blocks[i][kBufferSize - 1] == i);
  }
  for (char* b : blocks) {
    pool.put(b);
  }
}

TEST_CASE("BufferPool reuses the block given back last", "[buffer_pool]") {
  BufferPool pool;
  char* a = pool.get();
  char* b = pool.get();
  CHECK(pool.freeCount() == 0);
  pool.put(a);
  pool.put(b);
  CHECK(pool.freeCount() == 2);
  CHECK(pool.get() == b);
  CHECK(pool.get() == a);
  CHECK(pool.freeCount() == 0);
  pool.put(a);
  pool.put(b);
}

TEST_CASE("BufferPool keeps at most max_free blocks and ignores null", "[buffer_pool]") {
  BufferPool pool(2);
  std::vector<char*> blocks;
  for (int i = 0; i < 5; ++i) {
    blocks.push_back(pool.get());
  }
  pool.put(nullptr);
  CHECK(pool.freeCount() == 0);
  for (char* b : blocks) {
    pool.put(b);
  }
  CHECK(pool.freeCount() == 2);
  // The kept ones are the first two given back.
  char* x = pool.get();
  char* y = pool.get();
  CHECK(((x == blocks[1] && y == blocks[0])));
  CHECK(pool.freeCount() == 0);
  pool.put(x);
  pool.put(y);

  BufferPool none(0);
  char* c = none.get();
  none.put(c);
  CHECK(none.freeCount() == 0);
}

}  // namespace
}  // namespace lb::worker
