#pragma once

// Bounded waiting: every wait in the e2e suite polls a condition until a deadline, so a test
// never depends on a fixed sleep and never hangs when the condition does not come true.

#include <chrono>
#include <cstdint>
#include <thread>

namespace lb::e2e {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

inline Deadline deadlineIn(milliseconds d) {
  return Clock::now() + d;
}

inline milliseconds remaining(Deadline d) {
  auto left = std::chrono::duration_cast<milliseconds>(d - Clock::now());
  return left.count() > 0 ? left : 0ms;
}

// Evaluates `cond` every `interval` until it holds (true) or `timeout` passes (false). `cond`
// is evaluated once more at the deadline, so a slow last step still counts.
template <typename Cond>
bool waitUntil(Cond&& cond, milliseconds timeout, milliseconds interval = 10ms) {
  Deadline end = deadlineIn(timeout);
  while (true) {
    if (cond()) {
      return true;
    }
    if (Clock::now() >= end) {
      return cond();
    }
    std::this_thread::sleep_for(std::min(interval, remaining(end) + 1ms));
  }
}

// Milliseconds since `start`, for timing assertions and INFO messages.
inline long long elapsedMs(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

// Waits until `counter` stops changing for `quiet` (bounded by `timeout`); returns its value.
template <typename F>
uint64_t settle(F counter, milliseconds quiet, milliseconds timeout) {
  uint64_t last = counter();
  Clock::time_point changed = Clock::now();
  waitUntil(
      [&] {
        uint64_t now = counter();
        if (now != last) {
          last = now;
          changed = Clock::now();
        }
        return Clock::now() - changed >= quiet;
      },
      timeout);
  return last;
}

}  // namespace lb::e2e
