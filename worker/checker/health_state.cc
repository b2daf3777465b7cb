#include "worker/checker/health_state.h"

namespace lb::worker {

HealthTracker::Change HealthTracker::record(bool passed) {
  if (passed == up_) {
    streak_ = 0;  // confirms the current state
    return Change::None;
  }
  ++streak_;
  if (streak_ < (up_ ? fall_ : rise_)) {
    return Change::None;
  }
  up_ = passed;
  streak_ = 0;
  return up_ ? Change::WentUp : Change::WentDown;
}

}  // namespace lb::worker
