#pragma once

// Accepts on the listening sockets inherited from the master.
//
// Every worker shares the same listening sockets. Instead of letting libuv poll each of them
// (which wakes every worker for every connection), the worker registers them in an epoll set of
// its own with EPOLLEXCLUSIVE, so the kernel wakes one waiting worker per connection (as nginx
// does), and libuv polls that one epoll descriptor.

#include <sys/epoll.h>
#include <uv.h>

#include <vector>

#include "shared/config/model.h"
#include "shared/util/result.h"
#include "worker/context.h"

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

  WorkerContext* ctx_ = nullptr;
  std::vector<int> fds_;
  int epfd_ = -1;
  uv_poll_t poll_{};
  bool polling_ = false;
  bool stopped_ = true;
};

}  // namespace lb::worker
