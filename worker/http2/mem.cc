#include "worker/http2/mem.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "worker/asan.h"

namespace lb::worker::http2 {
namespace {

constexpr size_t kClassSize[] = {64, 128, 256, 512, 1024};
constexpr size_t kClasses = std::size(kClassSize);
constexpr uint32_t kNoClass = UINT32_MAX;
// Free blocks kept per size: about 4 MiB at most over all sizes.
constexpr size_t kMaxFree = 2048;

// In front of every block: its size class and the size asked for (realloc copies that much).
// 16 bytes, so the block after it keeps malloc's alignment.
struct alignas(16) Header {
  uint32_t cls;
  uint32_t unused;
  uint64_t size;
};
static_assert(sizeof(Header) == 16);

// The free blocks of each size class. They go back to malloc when the process exits normally
// (tests); a worker leaves with _exit.
struct FreeLists {
  std::vector<Header*> lists[kClasses];
  ~FreeLists();
};
FreeLists g_free;

uint32_t classOf(size_t n) {
  for (uint32_t i = 0; i < kClasses; ++i) {
    if (n <= kClassSize[i]) {
      return i;
    }
  }
  return kNoClass;
}

// A block of class `cls`, header included (only blocks of a size class are kept free).
size_t blockSize(size_t cls) {
  return sizeof(Header) + kClassSize[cls];
}

void* memMalloc(size_t n, void*) {
  uint32_t cls = classOf(n);
  Header* h = nullptr;
  if (cls != kNoClass && !g_free.lists[cls].empty()) {
    h = g_free.lists[cls].back();
    g_free.lists[cls].pop_back();
    unpoisonMemory(h, blockSize(cls));
  } else {
    if (n > SIZE_MAX - sizeof(Header)) {
      return nullptr;
    }
    h = static_cast<Header*>(std::malloc(sizeof(Header) + (cls == kNoClass ? n : kClassSize[cls])));
    if (h == nullptr) {
      return nullptr;
    }
    h->cls = cls;
  }
  h->size = n;
  return h + 1;
}

void memFree(void* p, void*) {
  if (p == nullptr) {
    return;
  }
  Header* h = static_cast<Header*>(p) - 1;
  if (h->cls != kNoClass && g_free.lists[h->cls].size() < kMaxFree) {
    g_free.lists[h->cls].push_back(h);
    poisonMemory(h, blockSize(h->cls));  // a use after nghttp2 freed it is still reported
    return;
  }
  std::free(h);
}

void* memCalloc(size_t count, size_t size, void* user) {
  if (size != 0 && count > SIZE_MAX / size) {
    return nullptr;
  }
  void* p = memMalloc(count * size, user);
  if (p != nullptr) {
    std::memset(p, 0, count * size);
  }
  return p;
}

void* memRealloc(void* p, size_t n, void* user) {
  if (p == nullptr) {
    return memMalloc(n, user);
  }
  Header* h = static_cast<Header*>(p) - 1;
  if (h->cls != kNoClass && n <= kClassSize[h->cls]) {
    h->size = n;
    return p;
  }
  void* q = memMalloc(n, user);
  if (q == nullptr) {
    return nullptr;  // `p` stays valid, as with realloc
  }
  std::memcpy(q, p, std::min<size_t>(h->size, n));
  memFree(p, user);
  return q;
}

FreeLists::~FreeLists() {
  for (size_t cls = 0; cls < kClasses; ++cls) {
    for (Header* h : lists[cls]) {
      unpoisonMemory(h, blockSize(cls));
      std::free(h);
    }
  }
}

nghttp2_mem g_mem = {nullptr, &memMalloc, &memFree, &memCalloc, &memRealloc};

}  // namespace

nghttp2_mem* workerMem() {
  return &g_mem;
}

size_t workerMemFreeBlocks() {
  size_t n = 0;
  for (const std::vector<Header*>& list : g_free.lists) {
    n += list.size();
  }
  return n;
}

}  // namespace lb::worker::http2
