#pragma once

// The response-time average of one backend, kept in its shared-memory slot so that every
// worker records into, and decides from, the same number (least_time and peak_ewma).
//
// The value is the time from sending the request head to receiving the response head, in
// microseconds x 16 (BackendSlot::ewma_us16), stamped with the CLOCK_MONOTONIC millisecond of
// the last sample (ewma_stamp_ms; 0 = never measured).
//
// Decay, as documented in lb.conf(5):
//  - a sample moves the average by a share alpha = max(1/16, 1 - 2^(-idle / H)) of the
//    difference, where idle is the time since the previous sample and H = kEwmaHalfLifeMs:
//    under load the average follows the last 16 or so responses, and after a long silence a
//    new sample counts almost alone (Finagle weighs samples by elapsed time the same way);
//  - with `peak`, a sample above the average replaces it at once (Finagle's peak EWMA);
//  - read back, the average is multiplied by 2^(-idle / H): a backend left alone because it was
//    slow looks better and better until it is tried again, instead of never.
// Writers race: the average is updated with a compare-and-swap and the stamp stored after it,
// so a sample may occasionally use a slightly old stamp. Good enough to steer by.

#include <cstdint>

#include "shared/shm/layout.h"

namespace lb::worker {

inline constexpr uint64_t kEwmaHalfLifeMs = 5000;
// Samples are capped at this (about 71 minutes) so that the fixed-point math cannot overflow.
inline constexpr uint64_t kMaxSampleUs = uint64_t{1} << 32;

// 1024 x 2^(-elapsed_ms / kEwmaHalfLifeMs): exact at whole half-lives, linear in between.
uint32_t decayFactor1024(uint64_t elapsed_ms);

// Records a response that took `micros` into `slot`'s average, at `now_ms`. Lock-free; any
// worker, any time.
void recordResponseTime(shm::BackendSlot& slot, uint64_t micros, uint64_t now_ms, bool peak);

// True once some response of `slot` was recorded.
inline bool isMeasured(const shm::BackendSlot& slot) {
  return slot.ewma_stamp_ms.load(std::memory_order_relaxed) != 0;
}

// The average (us x 16) as of `now_ms`, decayed for the time since its last sample; 0 if never
// measured.
uint64_t decayedEwma(const shm::BackendSlot& slot, uint64_t now_ms);

// What a request costs on a backend: its decayed average x (active + 1), at least 1 per request
// once measured (so that a backend that answers in no time still counts its load). A backend
// never measured costs 0 while idle and kUnmeasuredPenalty per request in flight, so that a new
// backend is tried at once but not flooded before its first answer (Finagle's Penalty).
inline constexpr uint64_t kUnmeasuredPenalty = uint64_t{1} << 40;
uint64_t loadCost(const shm::BackendSlot& slot, int64_t active, uint64_t now_ms);

}  // namespace lb::worker
