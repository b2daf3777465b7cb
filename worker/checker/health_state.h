#pragma once

// The fall/rise rule of active health checks, kept free of I/O so it is unit-tested on its own:
// a backend that is up goes down after `fall` consecutive failed checks, one that is down comes
// back after `rise` consecutive passed checks (HAProxy's and nginx plus's rule). A result of the
// other kind starts the streak again.

#include <cstdint>

namespace lb::worker {

class HealthTracker {
 public:
  HealthTracker(bool up, uint32_t fall, uint32_t rise) : up_(up), fall_(fall), rise_(rise) {}

  enum class Change : uint8_t { None, WentUp, WentDown };

  // Records one check's result; says whether the backend's state changed because of it.
  Change record(bool passed);

  bool up() const { return up_; }
  // Consecutive results that count toward the next change (passes while down, failures while
  // up), or toward staying (the other kind).
  uint32_t streak() const { return streak_; }

 private:
  bool up_;
  uint32_t fall_;
  uint32_t rise_;
  uint32_t streak_ = 0;  // consecutive results of the kind that would change the state
};

}  // namespace lb::worker
