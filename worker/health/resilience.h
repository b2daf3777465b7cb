#pragma once

// The per-backend and per-pool rules that keep traffic away from failing backends and stop
// retries from amplifying an outage: passive health, the circuit breaker, the retry budget and
// slow start. All state lives in shared memory and changes with atomics only, so a breaker that
// opens in one worker is open in every worker; each rule is a few compare-and-swaps, cheap on a
// request's path. Times are CLOCK_MONOTONIC milliseconds (the same clock in every process).
//
// A worker asks before sending (passiveAvailable, breaker::available / admit) and reports the
// outcome after (passiveRecord, breaker::record); the retry budget is asked before a retry.

#include <cstdint>

#include "shared/config/model.h"
#include "shared/shm/layout.h"

namespace lb::worker {

uint64_t monotonicMs();

// Passive health. False while the backend is out after too many consecutive failures.
bool passiveAvailable(const shm::BackendSlot& s, uint64_t now_ms);
// Records one outcome of real traffic. True when this failure took the backend out (log it).
bool passiveRecord(shm::BackendSlot& s, const config::PassiveHealth& cfg, bool failed,
                   uint64_t now_ms);

namespace breaker {

// Whether a request may go to the backend, without claiming anything (for a balancer's
// eligibility test): closed, open past open_ms, or half-open with a free probe place.
bool available(const shm::BackendSlot& s, const config::CircuitBreaker& cfg, uint64_t now_ms);

enum class Admit : uint8_t { Yes, Probe, No };
// Claims the right to send: Yes (closed or disabled), Probe (one of the half-open probe places,
// taken; record() must follow with probe = true), No.
Admit admit(shm::BackendSlot& s, const config::CircuitBreaker& cfg, uint64_t now_ms);

enum class Transition : uint8_t { None, Opened, Closed };
// Records an outcome. A probe's success counts toward closing (and sets recovered_ms when it
// closes), its failure opens again; while closed, `failures` consecutive failures open it.
Transition record(shm::BackendSlot& s, const config::CircuitBreaker& cfg, bool success, bool probe,
                  uint64_t now_ms);

// Gives back a probe place taken by admit() whose request ended without an outcome (the client
// went away first).
void abandon(shm::BackendSlot& s);

}  // namespace breaker

// Counts a request of the pool in the budget's current window.
void budgetCountRequest(shm::PoolSlot& p, const config::RetryBudget& cfg, uint64_t now_ms);
// Takes one retry from the budget: true when retries so far in the window stay within
// min_retries + percent % of the requests; the retry is then counted.
bool budgetTakeRetry(shm::PoolSlot& p, const config::RetryBudget& cfg, uint64_t now_ms);

// The weight of a backend `since_ms` after it came back: ramps linearly from 1/10 of `weight`
// (at least 1) to `weight` over slow_start_ms; `weight` itself when slow start is off or over.
uint32_t slowStartWeight(uint32_t weight, uint64_t since_ms, uint64_t now_ms,
                         uint32_t slow_start_ms);
// When backend `s` last came back into rotation, the `since_ms` of slowStartWeight(): a health
// check marked it up or its breaker closed (recovered_ms), or its passive fail timeout ran out
// before `now_ms`; 0 = it never was out.
uint64_t slowStartSince(const shm::BackendSlot& s, uint64_t now_ms);

}  // namespace lb::worker
