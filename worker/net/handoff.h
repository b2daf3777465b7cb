#pragma once

// Idle keep-alive client connections leave a draining worker for the next generation instead of
// being closed, so a reload closes no client connection at all: closing an "idle" connection
// races with the request its client may be sending at that moment, passing it on does not. Bytes
// a client sent before the handoff wait in the socket's receive queue and are read by the worker
// that adopts it.
//
// The channel is one SOCK_SEQPACKET socketpair for the master's whole life (inherited across a
// binary upgrade), and every worker holds both ends: a worker that drains for a reload (SIGUSR2)
// sends on one end (WorkerInit::handoff_out_fd), the workers still serving receive on the other
// (handoff_in_fd) until they drain in turn. So a connection that goes idle late in a long drain
// still finds a reader, however many generations came and went since.
// Each message carries up to kMaxFdsPerMessage descriptors (SCM_RIGHTS) and, per descriptor, the
// address of the listener it came from and the requests it has carried (handoff_wire.h). Every
// worker of the next generation polls the same end and the kernel gives each message to one of
// them; with several workers, messages are small (16) and a worker with clearly more
// connections than a sibling leaves the next one to it, so one reload does not pile every
// connection onto one worker. Nothing here ever blocks the loop: a full channel queues the
// descriptors until it is writable again, a broken one gives them back to this worker, which
// closes them safely.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "shared/os/socket_address.h"
#include "shared/util/result.h"
#include "worker/context.h"
#include "worker/net/handoff_wire.h"

namespace lb::worker {

// One connection on the wire. `fd` belongs to whoever holds the item.
struct HandoffItem {
  int fd = -1;
  os::SocketAddress listener;  // the configured address of the listener it was accepted on
  uint32_t requests = 0;
  uint64_t idle_since_ms = 0;  // uv_now() of the last response; 0: unknown (a version 1 sender)
};

namespace handoff {

// The payload of one message for items[0, n), 1 <= n <= kMaxFdsPerMessage, written to `out`
// (kMaxMessageSize bytes). Returns its length. Descriptors are not part of the payload.
size_t encode(const HandoffItem* items, size_t n, char* out);

// Checks and decodes a payload that arrived with `nfds` descriptors into out[0, count) (their
// `fd` fields are left alone). Refuses (error text) a wrong magic, version or length, a count
// that is not `nfds` or above kMaxFdsPerMessage, and an address that is not IPv4 or IPv6.
Result<size_t> decode(const char* data, size_t len, size_t nfds, HandoffItem* out);

enum class IoResult { Ok, Again, Closed, Rejected, Error };

// Sends items[0, n) as one message on `sock` without blocking. Ok: the descriptors are in the
// message (the caller still owns and must close its own copies). Again (EAGAIN, ENOBUFS,
// ETOOMANYREFS): nothing was sent, try later. Error: nothing was sent and *err holds errno.
IoResult sendBatch(int sock, const HandoffItem* items, size_t n, int* err);

// Receives one message without blocking (MSG_CMSG_CLOEXEC). Ok: out[0, *n) are connections the
// caller now owns. Again: nothing there. Closed: every sender is gone. Rejected: a truncated
// or malformed message, whose descriptors were closed; *why says what was wrong. Error: *why.
IoResult recvBatch(int sock, HandoffItem* out, size_t* n, std::string* why);

}  // namespace handoff

// A worker's two ends of the handoff channel. One per worker; runs on its loop.
class Handoff {
 public:
  Handoff() = default;
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  // Starts receiving on `in_fd` (connections of the previous generation, each adopted as an
  // idle client connection on the listener of this config with the same address, or closed if
  // there is none) and keeps `out_fd` for a later beginSending(). Either may be -1. Both are
  // made non-blocking. Fails only if libuv refuses the descriptor.
  Result<void> start(WorkerContext* ctx, int in_fd, int out_fd);

  // Draining for a reload: from now on idle connections are handed off. False (and nothing
  // changes) when there is no channel to send on, so the caller falls back to closing.
  bool beginSending();
  // True while handing off is on and the channel has not failed: idle connections go to the
  // next generation, busy ones stay keep-alive to follow them once idle.
  bool sending() const { return sending_ && !failed_; }

  // Queues one connection's descriptor (ownership passes here) for the next message; messages
  // go out from the loop, so connections handed in one turn travel together. False when not
  // sending(): the caller keeps the descriptor.
  bool push(int fd, const os::SocketAddress& listener, uint32_t requests, uint64_t idle_since_ms);
  // Descriptors queued and not yet sent. The worker must not exit while there are any.
  size_t queued() const { return queue_.size(); }
  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }

  // Receiving stops while the worker is at worker_connections, so a sibling with room takes
  // the next message. The worker calls this when a connection closes: it resumes below it.
  void resumeReceiving();
  // The worker drains: it takes no more connections from the channel, for good.
  void stopReceiving();

  // The worker stops: closes the handles and any descriptor still queued (the shutdown timeout
  // passed with the channel full). Idempotent.
  void close();

 private:
  static void onReadable(uv_poll_t* poll, int status, int events);
  static void onWritable(uv_poll_t* poll, int status, int events);
  static void onFlushTimer(uv_timer_t* t);
  static void onYieldTimer(uv_timer_t* t);
  enum class Pause : uint8_t { None, Full, Yield };
  void pauseReceiving(Pause why);
  void resumeAfter(Pause why);
  void receive();
  void adopt(HandoffItem* items, size_t n);
  void flush();
  void scheduleFlush(uint64_t delay_ms);
  void fail(int err);
  void queueDrained();

  WorkerContext* ctx_ = nullptr;
  int in_fd_ = -1;
  int out_fd_ = -1;
  uv_poll_t in_poll_{};
  uv_poll_t out_poll_{};
  uv_timer_t flush_timer_{};
  uv_timer_t yield_timer_{};
  bool in_open_ = false;  // in_poll_ initialized and not closed
  bool receiving_ = false;
  Pause in_paused_ = Pause::None;
  bool out_open_ = false;
  bool out_polling_ = false;
  bool timer_open_ = false;
  bool flush_scheduled_ = false;
  bool sending_ = false;
  bool failed_ = false;
  bool closed_ = false;
  std::deque<HandoffItem> queue_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
};

}  // namespace lb::worker
