#include "worker/net/acceptor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/log/log.h"
#include "worker/net/spread.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker {
namespace {

// Connections taken per wake-up and listener: many for a lone worker (fewer loop turns under
// connection churn), few when workers share the listeners (fairness).
constexpr int kAcceptBatchAlone = 64;
constexpr int kAcceptBatchShared = 2;
// After accept() ran out of descriptors or memory (nginx waits 500 ms).
constexpr uint64_t kAcceptErrorPauseMs = 100;

}  // namespace

Result<void> Acceptor::start(WorkerContext* ctx, const std::vector<int>& fds) {
  ctx_ = ctx;
  fds_ = fds;
  batch_ = ctx->config->worker_processes > 1 ? kAcceptBatchShared : kAcceptBatchAlone;
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    return unexpected(Error{std::string("epoll_create1: ") + std::strerror(errno)});
  }
  for (size_t i = 0; i < fds_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fds_[i], &ev) != 0) {
      return unexpected(Error{"epoll_ctl on listener \"" + ctx->config->listeners[i].name +
                              "\": " + std::strerror(errno)});
    }
  }
  uv_timer_init(ctx->loop, &resume_timer_);
  resume_timer_.data = this;
  if (uv_poll_init(ctx->loop, &poll_, epfd_) != 0) {
    return unexpected(Error{"uv_poll_init failed"});
  }
  poll_.data = this;
  stopped_ = false;
  if (ctx->config->worker_processes > 1 && ctx->segment != nullptr &&
      ctx->config->accept_spread == config::AcceptSpread::Auto) {
    meter_.start(ctx);  // what spreadDecision() reads of the siblings
  }
  resume();
  return {};
}

void Acceptor::pause() {
  if (polling_) {
    uv_poll_stop(&poll_);
    polling_ = false;
    ctx_->slot->accepting.store(0, std::memory_order_relaxed);
  }
}

void Acceptor::resume() {
  if (!polling_ && !stopped_) {
    uv_poll_start(&poll_, UV_READABLE, &Acceptor::onReadable);
    polling_ = true;
    ctx_->slot->accepting.store(1, std::memory_order_relaxed);
  }
}

void Acceptor::sitOut() {
  if (polling_) {
    uv_poll_stop(&poll_);
    polling_ = false;
  }
  uv_timer_start(&resume_timer_, &Acceptor::onResumeTimer, kLeaveToSiblingMs, 0);
}

void Acceptor::stop() {
  if (stopped_) {
    return;
  }
  pause();
  stopped_ = true;
  meter_.stop();
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&resume_timer_), nullptr);
  ::close(epfd_);
  epfd_ = -1;
  for (int fd : fds_) {
    ::close(fd);
  }
  fds_.clear();
}

void Acceptor::onReadable(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<Acceptor*>(poll->data);
  if (status < 0 || self->stopped_) {
    return;
  }
  epoll_event events[16];
  int n = epoll_wait(self->epfd_, events, 16, 0);
  for (int i = 0; i < n && !self->stopped_; ++i) {
    self->acceptOn(static_cast<int>(events[i].data.u32));
  }
}

void Acceptor::onResumeTimer(uv_timer_t* t) {
  auto* self = static_cast<Acceptor*>(t->data);
  if (self->ctx_->connections < self->ctx_->config->worker_connections) {
    self->resume();
  } else if (!self->polling_) {
    // Full after sitting out (which left the slot saying accepting): say so now, or a sibling
    // could leave new connections to a worker that takes none.
    self->ctx_->slot->accepting.store(0, std::memory_order_relaxed);
  }
}

void Acceptor::acceptOn(int index) {
  const config::Listener& listener = ctx_->config->listeners[index];
  // The other workers were woken for the same connection; one of them takes it. This one sits
  // out a few milliseconds: long enough not to spin on a listener that stays readable until the
  // other worker gets to it, short enough that new connections never wait long even if every
  // worker decided to sit out at once (a worker that takes every connection and stops
  // publishing its load soon loses that role: spreadDecision()).
  Spread spread = spreadDecision(*ctx_);
  if (spread == Spread::Leave) {
    sitOut();
    return;
  }
  const int batch = spread == Spread::TakeAll ? kAcceptBatchAlone : batch_;
  for (int i = 0; i < batch; ++i) {
    if (ctx_->connections >= ctx_->config->worker_connections) {
      LB_WARN("%u worker_connections are not enough", ctx_->config->worker_connections);
      pause();
      return;
    }
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int fd = accept4(fds_[index], reinterpret_cast<sockaddr*>(&peer), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
        return;
      }
      // EMFILE/ENFILE/ENOBUFS: the connection stays queued. The listener stays readable, so
      // accepting pauses for a while instead of failing again on every loop turn.
      LB_ERROR("accept() on listener \"%s\" failed: %s; accepting again in %llu ms",
               listener.name.c_str(), std::strerror(errno),
               static_cast<unsigned long long>(kAcceptErrorPauseMs));
      pause();
      uv_timer_start(&resume_timer_, &Acceptor::onResumeTimer, kAcceptErrorPauseMs, 0);
      return;
    }
    ClientConn::accept(ctx_, &listener, index, fd, reinterpret_cast<sockaddr*>(&peer));
  }
}

}  // namespace lb::worker
