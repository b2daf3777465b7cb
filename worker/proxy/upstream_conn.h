#pragma once

// A connection from a worker to one backend. It belongs either to a client exchange (owner_ set)
// or to its backend's idle list, where it keeps reading so that a close by the backend is noticed
// at once. Memory is freed in the libuv close callback, never before.
//
// In a pool with a tls group the connection speaks TLS (upstream_tls.cc): the owner is told it
// is connected only once the handshake is done, and sees the same callbacks as on a plain
// connection, with plaintext in its buffers. A failed handshake is a failed connect.

#include <cstdint>

#include <uv.h>

#include "worker/context.h"
#include "worker/timer_queue.h"

namespace lb::worker {

class ClientConn;

// How long an idle upstream connection beyond the pool's keepalive count stays cached.
inline constexpr uint32_t kSurplusIdleMs = 250;
struct UpstreamTls;

class UpstreamConn {
 public:
  // Starts a non-blocking connect to backend `backend` of pool `pool`. The owner is told through
  // ClientConn::onUpstreamConnected / onUpstreamError. Returns nullptr when the connect cannot
  // even start (error in *err, a libuv code).
  static UpstreamConn* connect(WorkerContext* ctx, int pool, int backend, ClientConn* owner,
                               int* err);
  // Takes the most recently used idle connection to that backend, or nullptr.
  static UpstreamConn* takeIdle(WorkerContext* ctx, int pool, int backend, ClientConn* owner);

  // Gives a finished connection back: cached on the idle list when `reusable` and the pool has
  // room, else closed gracefully (FIN).
  void release(bool reusable);
  // Closes now (after an error). Pending writes are cancelled.
  void close();

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  int pool() const { return pool_; }
  int backend() const { return backend_; }
  // True if it came from the idle list, i.e. it served an earlier request.
  bool reused() const { return from_idle_; }
  uint32_t requests() const { return requests_; }
  void countRequest() { ++requests_; }
  // What TLS said when it failed ("TLS handshake with ... failed: ..."), for the owner's one
  // log line about the failure; empty when TLS did not fail.
  std::string tlsFailure() const;
  // A TLS connection whose TCP stream ended without the backend's close_notify: what came
  // last may have been cut by someone who can forge a FIN (RFC 9112 9.8). The reason is kept
  // for tlsFailure(). False on plain TCP.
  bool endedWithoutCloseNotify();
  bool connected() const { return connected_; }

  // Read side, driven by the owner: reads go to the owner's callbacks, into buffers the owner
  // provides (ClientConn::onUpstreamAlloc), so a response buffer outlives this connection when a
  // client write still points into it.
  void startReading();
  void stopReading();

  // Sends `iov`: 1 when all of it went to the kernel at once (no callback follows), 0 when the
  // rest goes out later and ClientConn::onUpstreamWritten follows (the owner keeps the memory
  // valid until then; `iov` may have been advanced past what went out), < 0 a libuv error.
  int send(uv_buf_t* iov, int iovcnt);
  // The exchange gives the connection up without closing it (no more callbacks to it).
  void detach() { owner_ = nullptr; }

  // Timeout of the current phase (connect / send / read): fires ClientConn::onUpstreamTimeout.
  void armTimer(uint32_t ms);
  void disarmTimer();
  TimerNode timer;

  // Closes every idle connection of the worker (graceful stop).
  static void closeAllIdle(WorkerContext* ctx);

 private:
  UpstreamConn(WorkerContext* ctx, int pool, int backend);
  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onClose(uv_handle_t* h);
  static void onWritten(uv_write_t* req, int status);
  // send() without the wait for the end of the loop turn.
  int sendNow(uv_buf_t* iov, int iovcnt);
  static void onTurnWrite(TurnNode* node);
  static void onIdleTimeout(TimerNode* node);
  static void onOwnedTimeout(TimerNode* node);
  void unlinkIdle();

  // upstream_tls.cc: TLS between the socket and the owner.
  // After the TCP connect: the handshake starts; the owner hears of it when it is done.
  void startTls();
  // After the socket's close callback: closes the TLS state's handle, whose close callback
  // frees the TLS state and the connection.
  void closeTls();
  static void onTlsAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onTlsRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  // The handshake, or plaintext into the owner's buffers while it reads (or, idle, checks that
  // nothing but TLS housekeeping arrives).
  void pumpTls();
  // Pumps on the next loop turn if OpenSSL holds input no socket event will announce.
  void kickTls();
  static void onTlsKick(uv_idle_t* h);
  // Ciphertext waiting goes to the socket; 0, or a libuv error.
  int flushTls();
  static void onTlsWritten(uv_write_t* req, int status);
  int sendTls(const uv_buf_t* iov, int iovcnt);
  // A failure outside the owner's writes: the owner hears it as an error, an idle one closes.
  void failTls(int err);
  // The close_notify, best effort, on a connection closing now.
  void tlsGoodbye();
  static void onTlsKickClosed(uv_handle_t* h);

  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;  // here, not in the exchange: a cancelled write outlives the exchange
  TurnNode turn_;         // a send() waiting for the end of the loop turn
  uv_buf_t* turn_iov_ = nullptr;
  int turn_iovcnt_ = 0;
  WorkerContext* ctx_;
  ClientConn* owner_ = nullptr;
  UpstreamConn* idle_next_ = nullptr;
  UpstreamConn* idle_prev_ = nullptr;
  UpstreamTls* tls_ = nullptr;  // pools with TLS only, from the TCP connect on
  int pool_;
  int backend_;
  uint32_t requests_ = 0;
  bool connected_ = false;
  bool idle_ = false;
  bool from_idle_ = false;
  bool closing_ = false;
  bool reading_ = false;
};

}  // namespace lb::worker
