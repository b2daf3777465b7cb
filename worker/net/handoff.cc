#include "worker/net/handoff.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/log/log.h"
#include "worker/net/spread.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker {
namespace handoff {
namespace {

// A burst of messages is taken a few at a time so that the loop serves its own connections in
// between; the poll stays readable and brings the rest on the next turn. With siblings, one per
// wake-up: every worker of the generation is woken for a message and the first to read takes
// it, so small batches taken one at a time spread the connections (as the acceptor does).
constexpr int kMessagesPerWakeAlone = 16;
constexpr int kMessagesPerWakeShared = 1;
// Connections a worker with siblings puts into one message: the receiving worker adopts a
// message whole, so this bounds how unevenly one reload can spread them.
constexpr size_t kSendBatchShared = 16;
// ENOBUFS and ETOOMANYREFS (too many descriptors in flight for this user) do not end with the
// socket becoming writable, so a timer tries again.
constexpr uint64_t kRetryMs = 20;

constexpr size_t kControlSize = CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage);

void closeAll(const int* fds, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    ::close(fds[i]);
  }
}

bool knownAddress(const uint8_t* bytes, uint16_t len) {
  sa_family_t family;
  std::memcpy(&family, bytes, sizeof(family));
  return (family == AF_INET && len == sizeof(sockaddr_in)) ||
         (family == AF_INET6 && len == sizeof(sockaddr_in6));
}

}  // namespace

size_t encode(const HandoffItem* items, size_t n, char* out) {
  WireHeader h{kWireMagic, kWireVersion, static_cast<uint16_t>(n)};
  std::memcpy(out, &h, sizeof(h));
  size_t off = sizeof(h);
  for (size_t i = 0; i < n; ++i) {
    WireEntry e{};
    socklen_t len = std::min<socklen_t>(items[i].listener.length(), kWireAddressSize);
    e.address_length = static_cast<uint16_t>(len);
    e.requests = items[i].requests;
    e.idle_since_ms = items[i].idle_since_ms;
    std::memcpy(e.address, items[i].listener.sockaddr_ptr(), len);
    std::memcpy(out + off, &e, sizeof(e));
    off += sizeof(e);
  }
  return off;
}

Result<size_t> decode(const char* data, size_t len, size_t nfds, HandoffItem* out) {
  WireHeader h;
  if (len < sizeof(h)) {
    return unexpected(Error{"message of " + std::to_string(len) + " bytes has no header"});
  }
  std::memcpy(&h, data, sizeof(h));
  if (h.magic != kWireMagic || (h.version != kWireVersion && h.version != kWireVersionV1)) {
    return unexpected(Error{"unknown message (magic " + std::to_string(h.magic) + ", version " +
                            std::to_string(h.version) + ")"});
  }
  if (h.count == 0 || h.count > kMaxFdsPerMessage || h.count != nfds) {
    return unexpected(Error{"message names " + std::to_string(h.count) + " connections but " +
                            std::to_string(nfds) + " descriptors came with it"});
  }
  const bool v1 = h.version == kWireVersionV1;
  const size_t entry_size = v1 ? sizeof(WireEntryV1) : sizeof(WireEntry);
  if (len != sizeof(h) + h.count * entry_size) {
    return unexpected(Error{"message of " + std::to_string(len) + " bytes for " +
                            std::to_string(h.count) + " connections"});
  }
  for (size_t i = 0; i < h.count; ++i) {
    WireEntry e{};
    const char* at = data + sizeof(h) + i * entry_size;
    if (v1) {
      WireEntryV1 old;
      std::memcpy(&old, at, sizeof(old));
      e.address_length = old.address_length;
      e.requests = old.requests;
      std::memcpy(e.address, old.address, sizeof(e.address));
    } else {
      std::memcpy(&e, at, sizeof(e));
    }
    if (!knownAddress(e.address, e.address_length)) {
      return unexpected(Error{"connection " + std::to_string(i) + " has a listener address of " +
                              std::to_string(e.address_length) + " bytes lb does not know"});
    }
    out[i].listener = os::SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(e.address),
                                                      static_cast<socklen_t>(e.address_length));
    out[i].requests = e.requests;
    out[i].idle_since_ms = e.idle_since_ms;
  }
  return static_cast<size_t>(h.count);
}

IoResult sendBatch(int sock, const HandoffItem* items, size_t n, int* err) {
  char data[kMaxMessageSize];
  alignas(cmsghdr) char control[kControlSize];
  n = std::min<size_t>(n, kMaxFdsPerMessage);
  iovec iov{data, encode(items, n, data)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
  auto* fds = reinterpret_cast<int*>(CMSG_DATA(cm));
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(fds + i, &items[i].fd, sizeof(int));
  }
  ssize_t r;
  do {
    r = ::sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r >= 0) {
    // A SOCK_SEQPACKET message goes whole or not at all.
    return IoResult::Ok;
  }
  *err = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == ENOMEM ||
      errno == ETOOMANYREFS) {
    return IoResult::Again;
  }
  return IoResult::Error;
}

IoResult recvBatch(int sock, HandoffItem* out, size_t* n, std::string* why) {
  char data[kMaxMessageSize];
  alignas(cmsghdr) char control[kControlSize];
  iovec iov{data, sizeof(data)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r;
  do {
    r = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  *n = 0;
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return IoResult::Again;
    }
    *why = std::string("recvmsg: ") + std::strerror(errno);
    return IoResult::Error;
  }
  int fds[kMaxFdsPerMessage];
  size_t nfds = 0;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* p = reinterpret_cast<const unsigned char*>(CMSG_DATA(cm));
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, p + i * sizeof(int), sizeof(int));
      if (nfds < kMaxFdsPerMessage) {
        fds[nfds++] = fd;
      } else {
        ::close(fd);  // cannot happen with a control buffer of this size; never leak one
      }
    }
  }
  if (r == 0 && nfds == 0) {
    return IoResult::Closed;
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    closeAll(fds, nfds);
    *why = "control data truncated (more than " + std::to_string(kMaxFdsPerMessage) +
           " descriptors), " + std::to_string(nfds) + " that arrived closed";
    return IoResult::Rejected;
  }
  if ((msg.msg_flags & MSG_TRUNC) != 0) {
    closeAll(fds, nfds);
    *why = "message larger than " + std::to_string(kMaxMessageSize) + " bytes";
    return IoResult::Rejected;
  }
  auto count = decode(data, static_cast<size_t>(r), nfds, out);
  if (!count) {
    closeAll(fds, nfds);
    *why = count.error().message;
    return IoResult::Rejected;
  }
  for (size_t i = 0; i < *count; ++i) {
    out[i].fd = fds[i];
  }
  *n = *count;
  return IoResult::Ok;
}

}  // namespace handoff

namespace {

void setNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) {
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
}

// A connection handed over from a listener the new configuration removed: it gets a FIN at
// once, its input is read and dropped until the client closes or kLingerMs pass, and only then
// is it closed, so a request that was on its way never turns into a reset.
class Linger {
 public:
  static void start(uv_loop_t* loop, int fd) {
    auto* l = new Linger();
    l->fd_ = fd;
    ::shutdown(fd, SHUT_WR);
    if (uv_poll_init(loop, &l->poll_, fd) != 0) {
      ::close(fd);
      delete l;
      return;
    }
    uv_timer_init(loop, &l->timer_);
    l->poll_.data = l;
    l->timer_.data = l;
    uv_poll_start(&l->poll_, UV_READABLE, &Linger::onReadable);
    uv_timer_start(&l->timer_, &Linger::onTimer, kLingerMs, 0);
  }

 private:
  static void onReadable(uv_poll_t* p, int status, int) {
    auto* l = static_cast<Linger*>(p->data);
    char buf[4096];
    for (;;) {
      ssize_t n = status < 0 ? 0 : ::read(l->fd_, buf, sizeof buf);
      if (n > 0) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
      }
      l->finish();  // end of file or an error: nothing more will come
      return;
    }
  }
  static void onTimer(uv_timer_t* t) { static_cast<Linger*>(t->data)->finish(); }
  static void onClosed(uv_handle_t* h) {
    auto* l = static_cast<Linger*>(h->data);
    if (++l->closed_ == 2) {
      ::close(l->fd_);  // after libuv let go of it
      delete l;
    }
  }
  void finish() {
    if (finishing_) {
      return;
    }
    finishing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &Linger::onClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Linger::onClosed);
  }

  uv_poll_t poll_{};
  uv_timer_t timer_{};
  int fd_ = -1;
  int closed_ = 0;
  bool finishing_ = false;
};

}  // namespace

Result<void> Handoff::start(WorkerContext* ctx, int in_fd, int out_fd) {
  ctx_ = ctx;
  in_fd_ = in_fd;
  out_fd_ = out_fd;
  uv_timer_init(ctx->loop, &flush_timer_);
  flush_timer_.data = this;
  uv_timer_init(ctx->loop, &yield_timer_);
  yield_timer_.data = this;
  timer_open_ = true;
  if (out_fd_ >= 0) {
    setNonBlocking(out_fd_);
  }
  if (in_fd_ >= 0) {
    setNonBlocking(in_fd_);
    int rc = uv_poll_init(ctx->loop, &in_poll_, in_fd_);
    if (rc != 0) {
      return unexpected(Error{std::string("cannot poll the handoff channel: ") + uv_strerror(rc)});
    }
    in_poll_.data = this;
    in_open_ = true;
    receiving_ = true;
    uv_poll_start(&in_poll_, UV_READABLE, &Handoff::onReadable);
  }
  return {};
}

bool Handoff::beginSending() {
  if (out_fd_ < 0 || failed_ || closed_) {
    return false;
  }
  sending_ = true;
  return true;
}

bool Handoff::push(int fd, const os::SocketAddress& listener, uint32_t requests,
                   uint64_t idle_since_ms) {
  if (!sending() || closed_ || listener.length() == 0 ||
      listener.length() > handoff::kWireAddressSize) {
    return false;
  }
  HandoffItem item;
  item.fd = fd;
  item.listener = listener;
  item.requests = requests;
  item.idle_since_ms = idle_since_ms;
  queue_.push_back(item);
  if (!out_polling_) {
    scheduleFlush(0);
  }
  return true;
}

void Handoff::scheduleFlush(uint64_t delay_ms) {
  if (flush_scheduled_ || closed_) {
    return;
  }
  flush_scheduled_ = true;
  uv_timer_start(&flush_timer_, &Handoff::onFlushTimer, delay_ms, 0);
}

void Handoff::onFlushTimer(uv_timer_t* t) {
  auto* self = static_cast<Handoff*>(t->data);
  self->flush_scheduled_ = false;
  self->flush();
}

void Handoff::onWritable(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<Handoff*>(poll->data);
  if (status < 0) {
    self->fail(-status);
    return;
  }
  self->flush();
}

void Handoff::flush() {
  if (closed_ || failed_) {
    return;
  }
  const size_t batch_max =
      ctx_->config->worker_processes > 1 ? handoff::kSendBatchShared : handoff::kMaxFdsPerMessage;
  while (!queue_.empty()) {
    size_t n = std::min(queue_.size(), batch_max);
    HandoffItem batch[handoff::kMaxFdsPerMessage];
    std::copy_n(queue_.begin(), n, batch);
    int err = 0;
    handoff::IoResult r = handoff::sendBatch(out_fd_, batch, n, &err);
    if (r == handoff::IoResult::Ok) {
      // The message holds the sockets now: closing these copies sends no FIN.
      for (size_t i = 0; i < n; ++i) {
        ::close(batch[i].fd);
      }
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      sent_ += n;
      continue;
    }
    if (r == handoff::IoResult::Again) {
      if (err != EAGAIN && err != EWOULDBLOCK) {
        scheduleFlush(handoff::kRetryMs);
        return;
      }
      if (!out_open_) {
        int rc = uv_poll_init(ctx_->loop, &out_poll_, out_fd_);
        if (rc != 0) {
          fail(-rc);
          return;
        }
        out_poll_.data = this;
        out_open_ = true;
      }
      if (!out_polling_) {
        uv_poll_start(&out_poll_, UV_WRITABLE, &Handoff::onWritable);
        out_polling_ = true;
      }
      return;
    }
    fail(err);
    return;
  }
  if (out_polling_) {
    uv_poll_stop(&out_poll_);
    out_polling_ = false;
  }
  queueDrained();
}

// The next generation cannot be reached: what was queued comes back to this worker, which closes
// it the safe way (after a grace window, spread out, lingering), as it does for a plain stop.
void Handoff::fail(int err) {
  failed_ = true;
  if (out_polling_) {
    uv_poll_stop(&out_poll_);
    out_polling_ = false;
  }
  LB_ERROR("worker %d: the handoff channel failed (%s): %zu idle connections are closed instead",
           ctx_->index, std::strerror(err), queue_.size());
  while (!queue_.empty()) {
    size_t n = std::min<size_t>(queue_.size(), handoff::kMaxFdsPerMessage);
    HandoffItem batch[handoff::kMaxFdsPerMessage];
    std::copy_n(queue_.begin(), n, batch);
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    adopt(batch, n);
  }
  queueDrained();
}

void Handoff::queueDrained() {
  if (ctx_->on_connection_closed != nullptr) {
    ctx_->on_connection_closed(ctx_);  // for the worker a connection that left is a closed one
  }
}

void Handoff::onReadable(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<Handoff*>(poll->data);
  if (status < 0) {
    LB_ERROR("worker %d: polling the handoff channel failed: %s", self->ctx_->index,
             uv_strerror(status));
    uv_poll_stop(poll);
    self->receiving_ = false;
    return;
  }
  self->receive();
}

void Handoff::onYieldTimer(uv_timer_t* t) {
  auto* self = static_cast<Handoff*>(t->data);
  self->resumeAfter(Pause::Yield);
}

void Handoff::receive() {
  const int per_wake = ctx_->config->worker_processes > 1 ? handoff::kMessagesPerWakeShared
                                                          : handoff::kMessagesPerWakeAlone;
  for (int i = 0; i < per_wake && receiving_ && in_paused_ == Pause::None; ++i) {
    if (ctx_->connections >= ctx_->config->worker_connections) {
      pauseReceiving(Pause::Full);
      return;
    }
    if (siblingHasRoom(*ctx_)) {
      pauseReceiving(Pause::Yield);
      uv_timer_start(&yield_timer_, &Handoff::onYieldTimer, kLeaveToSiblingMs, 0);
      return;
    }
    HandoffItem items[handoff::kMaxFdsPerMessage];
    size_t n = 0;
    std::string why;
    switch (handoff::recvBatch(in_fd_, items, &n, &why)) {
      case handoff::IoResult::Ok:
        received_ += n;
        adopt(items, n);
        break;
      case handoff::IoResult::Again:
        return;
      case handoff::IoResult::Rejected:
        LB_ERROR("worker %d: refused a handoff message: %s", ctx_->index, why.c_str());
        break;
      case handoff::IoResult::Closed:
        // Every sender is gone (end of file stays readable): nothing more will come.
        stopReceiving();
        return;
      case handoff::IoResult::Error:
        LB_ERROR("worker %d: receiving on the handoff channel failed: %s", ctx_->index,
                 why.c_str());
        uv_poll_stop(&in_poll_);
        receiving_ = false;
        return;
    }
  }
}

void Handoff::adopt(HandoffItem* items, size_t n) {
  size_t unmatched = 0;
  std::string address;
  for (size_t i = 0; i < n; ++i) {
    const auto& listeners = ctx_->config->listeners;
    auto it = std::find_if(listeners.begin(), listeners.end(), [&](const config::Listener& l) {
      return l.address == items[i].listener;
    });
    if (it == listeners.end()) {
      // The listener was removed by the reload: this connection has nowhere to go.
      ++unmatched;
      address = items[i].listener.toString();
      Linger::start(ctx_->loop, items[i].fd);
      continue;
    }
    ClientConn::adopt(ctx_, &*it, items[i].fd, items[i].requests, items[i].idle_since_ms);
  }
  if (unmatched > 0) {
    LB_WARN(
        "worker %d: %zu connections handed over from listener %s, which this configuration "
        "does not have, closed after a lingering close",
        ctx_->index, unmatched, address.c_str());
  }
}

void Handoff::pauseReceiving(Pause why) {
  if (receiving_ && in_paused_ == Pause::None) {
    uv_poll_stop(&in_poll_);
    in_paused_ = why;
  }
}

void Handoff::resumeReceiving() {
  resumeAfter(Pause::Full);
}

void Handoff::stopReceiving() {
  if (receiving_) {
    uv_poll_stop(&in_poll_);
    uv_timer_stop(&yield_timer_);
    receiving_ = false;
  }
}

// Only the pause `why` ends here: a connection closing does not cut a yield short.
void Handoff::resumeAfter(Pause why) {
  if (!receiving_ || closed_ || in_paused_ != why) {
    return;
  }
  if (ctx_->connections >= ctx_->config->worker_connections) {
    in_paused_ = Pause::Full;  // a yield that ends with the worker full waits for room
    return;
  }
  in_paused_ = Pause::None;
  uv_poll_start(&in_poll_, UV_READABLE, &Handoff::onReadable);
}

void Handoff::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  receiving_ = false;
  if (in_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&in_poll_), nullptr);
    in_open_ = false;
  }
  if (out_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&out_poll_), nullptr);
    out_open_ = false;
    out_polling_ = false;
  }
  if (timer_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&yield_timer_), nullptr);
    timer_open_ = false;
  }
  if (!queue_.empty()) {
    LB_WARN(
        "worker %d: %zu connections could not be handed to the next generation in time, "
        "closed",
        ctx_->index, queue_.size());
    for (const HandoffItem& item : queue_) {
      ::close(item.fd);
    }
    queue_.clear();
  }
}

}  // namespace lb::worker
