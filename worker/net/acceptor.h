#pragma once

// Accepts on the listening sockets inherited from the master.
//
// Every worker shares the same listening sockets; each worker polls them through one epoll set
// of its own (one libuv handle for all listeners). Every worker is woken for a new connection
// and the first to call accept() gets it; taking only a few connections per wake-up when there
// are several workers is what spreads a burst of connections over all of them (taking all that
// are queued would hand a burst to whichever worker woke first). A worker with clearly more
// connections than another leaves a new one to it, except for connections that come and go,
// which one worker takes while it has room (worker/net/spread.h).

#include <sys/epoll.h>
#include <uv.h>

#include <vector>

#include "shared/config/model.h"
#include "shared/util/result.h"
#include "worker/context.h"
#include "worker/net/spread.h"

namespace lb::worker {

class Acceptor {
 public:
  // `fds` is parallel to `ctx->config->listeners`.
  Result<void> start(WorkerContext* ctx, const std::vector<int>& fds);
  // Stops accepting for good and closes this process's copies of the listening sockets (the
  // master and the other workers keep theirs, so no connection is refused).
  void stop();
  // Pauses while the worker is at worker_connections; resumes below it.
  void pause();
  void resume();
  bool stopped() const { return stopped_; }

 private:
  static void onReadable(uv_poll_t* poll, int status, int events);
  void acceptOn(int index);
  // Leaves new connections to a sibling for kLeaveToSiblingMs. The slot still says accepting:
  // the siblings must count this worker, which is back within milliseconds, or the one that
  // takes the rest of a burst meanwhile would see nobody to leave it to and take all of it.
  void sitOut();
  static void onResumeTimer(uv_timer_t* t);
  uv_timer_t resume_timer_{};
  int batch_ = 64;
  LoadMeter meter_;  // with siblings to spread over

  WorkerContext* ctx_ = nullptr;
  std::vector<int> fds_;
  int epfd_ = -1;
  uv_poll_t poll_{};
  bool polling_ = false;
  bool stopped_ = true;
};

}  // namespace lb::worker
