#pragma once

// Marks memory lb keeps for reuse (spare objects, free blocks) as unusable under
// AddressSanitizer, so that a use through a stale pointer is reported as after a free.
// Nothing in other builds.

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace lb::worker {

inline void poisonMemory(const void* p, size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void unpoisonMemory(const void* p, size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace lb::worker
