#pragma once

// One accepted client connection speaking HTTP/1.1, and the exchange it proxies.
//
// The connection itself is small (an idle keep-alive client holds a uv_tcp_t and a few words);
// everything a request needs -- parsers, head arenas, I/O buffers, iovecs -- lives in an Exchange
// taken from a per-worker free list when bytes arrive and given back when the connection is idle
// again.
//
// Flow: read -> llhttp (paused at the end of the head) -> route -> balancer -> upstream (idle or
// new) -> head + body streamed with writev, one buffer in flight per direction (backpressure both
// ways) -> response parsed (paused at the end of its head), head rewritten, body streamed ->
// finish: access log, upstream back to its idle list, next pipelined request or keep-alive.
// All of it runs on the worker's loop; no exceptions.

#include <llhttp.h>
#include <uv.h>

#include <cstdint>
#include <string>

#include "shared/config/model.h"
#include "worker/context.h"
#include "worker/http1/headers.h"
#include "worker/net/conn_state.h"
#include "worker/proxy/iov.h"
#include "worker/timer_queue.h"

namespace lb::worker {

class UpstreamConn;
struct ClientTls;
namespace http2 {
class Session;
struct Stream;
}  // namespace http2

inline constexpr int kMaxIov = 48;
// Backends one request may try (retries is at most 7), breaker refusals included.
inline constexpr int kMaxTried = 8;
// After our last byte, unread client input is drained this long so that closing never turns it
// into an RST that could destroy the response in flight (nginx's lingering_timeout).
inline constexpr uint32_t kLingerMs = 5000;
// The lingering close of an idle connection a drain closes (drain.cc): a client that reads our
// FIN closes at once, so a short wait is enough (a request that crossed it is read and dropped).
inline constexpr uint32_t kDrainLingerMs = 1000;

// RFC 9110 9.2.2: a request that may be sent twice with the effect of once.
inline bool idempotent(uint8_t method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
      return true;
    default:
      return false;
  }
}

// Where a paused parser stopped.
enum class Pause : uint8_t { None, HeadComplete, MessageComplete, IovFull };

struct Exchange {
  // Client side.
  llhttp_t req;
  Pause req_pause = Pause::None;
  char* in_buf = nullptr;  // client read buffer, [in_start, in_end) not yet parsed
  uint32_t in_start = 0;
  uint32_t in_end = 0;
  http1::HeadArena req_head;
  char* req_head_mem = nullptr;
  bool req_head_heap = false;
  bool req_chunked = false;
  bool req_has_body = false;
  bool req_done = false;
  bool expect_continue = false;
  bool head_request = false;
  bool client_keepalive = false;
  bool in_head = true;        // parsing a request head (not its body)
  bool discard_body = false;  // static response: the request body is read and dropped
  bool buffering = false;     // the body is awaited before a backend is chosen (bufferBody)
  // While a chunked body is awaited, its end is looked for by a copy of the request parser
  // (in `look`) that runs ahead over what is held (bytes after in_start), forwarding nothing.
  enum class BodyScan : uint8_t { Off, Scanning, Done, Invalid, TooLarge };
  BodyScan body_scan = BodyScan::Off;
  uint32_t body_scanned = 0;
  uint32_t scan_body_bytes = 0;  // body bytes (chunk data) the copy went over
  int error_status = 0;          // set by a parser callback that refuses the request
  bool in_parse = false;
  // After a pause at the end of a head the parser must run once more even with no new bytes:
  // that run is what ends a message without a body.
  bool req_kick = false;
  bool client_eof = false;      // the client half-closed after its request head
  bool refused = false;         // lb refused the request (4xx): its input may go on
  uint32_t method_pending = 0;  // bytes of a method llhttp does not know, before its SP came
  char in_before = '\n';        // last non-blank byte before in_buf's start (obs-fold check)
  char rbuf_before = '\n';
  bool resp_kick = false;  // inside parseRequest's loop: callees must not re-enter it
  bool stale_retry_done = false;
  bool up_bytes_in = false;  // the current attempt's backend sent something
  // The backend closed while bytes it sent before wait to be parsed (a client write in
  // flight): the close is taken once they are (parseResponse).
  bool up_eof = false;
  bool cut = false;           // the client connection closes on a response cut short (cutClient)
  bool skip_interim = false;  // a 1xx response is being skipped
  // Why a response callback refused the response: llhttp reports only "User callback error".
  const char* resp_refusal = nullptr;
  const char* req_refusal = nullptr;  // why a callback refused the request with 400
  int req_fields = 0;              // fields of the request head; those after them are its trailers
  int resp_fields = 0;             // the same for the response
  bool req_trailers_lost = false;  // trailers past the arena are dropped, not an error
  bool resp_trailers_lost = false;
  bool upgrade = false;         // the request asks to switch protocols, and may (tunnel.cc)
  bool tunnel = false;          // the backend switched: the connection is a byte tunnel
  bool tunnel_eof = false;      // one side closed: the tunnel ends once the other has it all
  uint32_t tunnel_in_end = 0;   // in_buf bytes up to here are in the write to the backend
  uint32_t tunnel_out_end = 0;  // rbuf bytes up to here are in the write to the client
  const config::StaticResponse* static_resp = nullptr;  // answered once the body is read
  int local_status = 0;                                 // error answered once the body is read
  uint64_t req_content_length = 0;
  uint64_t req_body_bytes = 0;
  uint64_t start_ms = 0;

  // Upstream side.
  UpstreamConn* up = nullptr;
  int pool = -1;
  int backend = -1;
  int tried[kMaxTried];  // backends tried or refused by their breaker: never picked again
  int ntried = 0;
  int attempts = 0;      // backends the request was sent to (or a connect was started to)
  bool holding = false;  // a balancer connection count is taken for `backend`
  // The attempt on `backend` has not reported its outcome to passive health and the breaker
  // yet; `probe` when it holds one of the breaker's half-open probe places.
  bool attempt_open = false;
  bool probe = false;
  bool up_head_sent = false;
  uint64_t up_start_ms = 0;
  uint64_t up_start_us = 0;  // uv_hrtime of up_start_ms, for a balancer that records times
  char* up_head = nullptr;   // the rewritten request head
  uint32_t up_head_len = 0;
  bool body_ok = false;  // the head is dealt with: body bytes may be parsed and forwarded
  uv_buf_t up_iov[kMaxIov];
  int up_iovcnt = 0;
  bool up_write_pending = false;
  char up_chunk[kMaxIov / 3 + 1][20];
  int up_nchunk = 0;

  // Response.
  llhttp_t resp;
  char* rbuf = nullptr;  // response read buffer, [rbuf_start, rbuf_end) not yet parsed
  uint32_t rbuf_start = 0;
  uint32_t rbuf_end = 0;
  Pause resp_pause = Pause::None;
  // A copy of a parser that runs ahead of it. The request's while request_buffering holds a
  // chunked body (bufferBody), before any backend; the response's in lookAhead, with how far
  // into rbuf it has read, valid while a client write holds the real parser back (nothing
  // moves in rbuf then). The two never overlap.
  llhttp_t look;
  uint32_t look_end = 0;
  bool look_valid = false;
  http1::HeadArena resp_head;
  char* resp_head_mem = nullptr;
  int status = 0;  // status sent to the client
  int upstream_status = 0;
  int fail_status = 0;  // 502/504 of the last failed backend, answered when retries run out
  bool resp_head_done = false;
  bool resp_done = false;
  bool resp_chunk_out = false;  // lb chunks the body for the client
  bool resp_close_after = false;
  bool resp_started = false;  // a byte of the response went to the client
  bool logged = false;        // in the access log and the status counters
  uint64_t resp_bytes = 0;    // bytes written to the client
  uint64_t up_header_ms = 0;
  char* cl_head = nullptr;  // the rewritten response head
  uv_buf_t cl_iov[kMaxIov];
  int cl_iovcnt = 0;
  bool cl_write_pending = false;
  TurnNode cl_turn;  // cl_iov waits for the end of the loop turn (worker/turn_queue.h)
  uv_write_t cl_wreq;
  char cl_chunk[kMaxIov / 3 + 1][20];
  int cl_nchunk = 0;

  uv_shutdown_t shutdown_req;
  // Its place in its pool's queue (PoolRuntime::queue) while it waits for a backend. Here rather
  // than in the connection: only a request waits, and an idle connection's bytes are its cost.
  QueueLink queue_link;
};

class ClientConn {
 public:
  // Takes ownership of an accepted, non-blocking socket.
  static void accept(WorkerContext* ctx, const config::Listener* listener, int listener_index,
                     int fd, const sockaddr* peer);
  // Takes ownership of a connection another worker handed over (worker/net/handoff.h) between
  // two requests: it starts idle, under the keep-alive timeout, with `requests` already served
  // on it. Bytes the client sent meanwhile are in the socket and are read at once. On a
  // draining worker it is drained right away like any idle connection.
  static void adopt(WorkerContext* ctx, const config::Listener* listener, int fd, uint32_t requests,
                    uint64_t idle_since_ms);

  // The worker drains (ctx->draining is set). When ctx->handoff is sending, an idle connection
  // is handed to the next generation now, a busy one stays keep-alive and follows once idle.
  // Otherwise a busy one closes after its current response (Connection: close) and an idle one
  // is closed safely: after a grace window of idleness, at a random point of drain_window_ms,
  // with a lingering close so a request that crosses our FIN never turns into an RST.
  void drain();
  // Fast stop.
  void abort();
  static ClientConn* fromHandle(uv_handle_t* h);
  ClientConn* next() const { return next_; }

  // Upstream events (called by UpstreamConn).
  void onUpstreamConnected(UpstreamConn* up);
  void onUpstreamError(UpstreamConn* up, int err);
  void onUpstreamAlloc(uv_buf_t* buf);
  void onUpstreamRead(UpstreamConn* up, ssize_t nread);
  void onUpstreamWritten(int status);
  void onUpstreamTimeout();
  // The request waits in its pool's queue (request_queue.h): try to pick a backend again. It
  // stays queued when every usable backend is still full.
  void retryQueued();
  // tls_conn.cc: OpenSSL holds input for this connection; the worker's idle pass calls this.
  void tlsKicked();
  // "addr:port" of the client, for logs.
  std::string peerText() const;

  // h2_conn.cc: HTTP/2. A connection speaking it carries an http2::Session; each of its streams
  // is a ClientConn in stream mode, whose exchange reads the request from the stream and writes
  // the response to it instead of a socket.
  // A stream's exchange, for `st` of the session on `carrier`.
  static ClientConn* openStream(ClientConn* carrier, http2::Stream* st);
  // Stream mode: take the request bytes the stream holds, as far as the exchange reads.
  void h2Feed();
  // Stream mode: the response pieces handed to the session were all taken.
  void h2WriteDone();
  // Stream mode: the client reset the stream or the connection ends; the exchange stops.
  void h2Abort();
  // Carrier: writes the session's frames. 1 when all left now, 0 when the write completes later
  // (http2::Session::onWritten), -1 when the connection closed.
  int h2Write(std::string* data);
  // Carrier: the session is over (GOAWAY sent, or the client left): the connection closes.
  void h2Finished();
  // Carrier: no stream is open; the keep-alive timeout runs (once armed, it stays).
  void h2Idle();

 private:
  ClientConn(WorkerContext* ctx, const config::Listener* listener);
  // A new connection on `fd`, counted and linked into ctx->clients; nullptr (the descriptor
  // closed, the handle closing) if libuv refuses it.
  static ClientConn* create(WorkerContext* ctx, const config::Listener* listener, int fd);
  void setPeer(const sockaddr* peer);

  // client_conn.cc: reading and parsing the request, closing.
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  // The free end of the request buffer (taking an exchange and compacting the buffer first).
  uv_buf_t inputSpace();
  // `nread` request bytes were appended at the end of the buffer, or EOF / an error (< 0), or
  // nothing (0): the reading logic shared by plain and TLS connections.
  void onInput(ssize_t nread);
  static void onClose(uv_handle_t* h);
  static void onTimeout(TimerNode* node);
  static void onShutdown(uv_shutdown_t* req, int status);
  static int onReqMessageBegin(llhttp_t* p);
  static int onReqUrl(llhttp_t* p, const char* at, size_t n);
  static int onReqHeaderField(llhttp_t* p, const char* at, size_t n);
  static int onReqHeaderFieldComplete(llhttp_t* p);
  static int onReqHeaderValue(llhttp_t* p, const char* at, size_t n);
  static int onReqHeadersComplete(llhttp_t* p);
  static int onReqBody(llhttp_t* p, const char* at, size_t n);
  static int onReqChunkHeader(llhttp_t* p);
  static int onReqMessageComplete(llhttp_t* p);
  static const llhttp_settings_t& requestSettings();
  Exchange* exchange();
  void releaseExchange();
  void parseRequest();
  void startReading();
  void stopReading();
  void armClientTimer(uint32_t ms);
  void requestRefused(int status);
  void pendingMethod();
  void closeTimedOut();
  const char* timedOutAction() const {
    return listener_->limits.reset_timedout_connection ? "resetting" : "closing";
  }
  void closeNow();
  // closeNow() for a response cut short: a TLS client gets no close_notify, so that one whose
  // response is delimited by the close (HTTP/1.0) can tell the cut from the end (nginx does
  // the same).
  void cutClient();
  // closeNow(): the response bytes waiting for the end of the loop turn, without waiting.
  void sendBeforeClose();
  // Half-closes, then reads and drops input until the client closes or `linger_ms` passes.
  void lingeringClose(uint32_t linger_ms);
  void resetForNextRequest();
  // drain.cc: handoff, adoption and the safe close of idle connections.
  // Between requests: nothing of a request has been read.
  bool idle() const;
  // The response being built must end the connection because the worker drains and there is
  // no next generation to hand the connection to.
  bool closeForDrain() const;
  // An idle connection of a draining worker: handed off, or its safe close scheduled.
  void drainIdle();
  // Passes the socket to ctx->handoff and closes this handle without FIN. False if it cannot.
  bool handOff();
  void scheduleDrainClose();

  // exchange.cc: routing, backend selection, upstream request.
  void headComplete();
  void routeAndDispatch();
  // request_buffering: true when the request waits for its body before a backend is chosen
  // (the whole body, or a full request buffer); bodyBuffered() says when it has it, and the
  // parser then calls dispatch().
  bool bufferBody();
  bool bodyBuffered();
  // A buffered chunked body the parser's copy already refused gets its 400 here (its 413 when
  // past client_max_body_size), before any backend is chosen; true if it did.
  bool refuseHeldBody();
  void dispatch();
  void selectBackend();
  // Picks a backend not tried yet whose breaker admits the request, and takes one of its
  // connections (and a probe place when `*probe`); -1 when there is none.
  int pickBackend(bool* probe);
  // Sends the request to `backend`, picked by pickBackend().
  void startAttempt(int backend, bool probe);
  // Gives back a backend pickBackend() returned that is not used after all.
  void giveBack(int backend, bool probe);
  void upstreamReady();
  bool buildUpstreamHead();
  // Writes up_iov; true when the kernel took it all at once (no callback will follow).
  bool flushUpstream();
  void afterUpstreamWrite();
  // Arms the backend's read timeout once the whole request is with it. Before, the wait is the
  // client's, which client_body_timeout_ms measures: a client that stalls its upload gets 408,
  // and the backend is not blamed (504, a failure against it) for waiting.
  void awaitUpstream();
  void upstreamFailed(int err, bool timeout);
  void logUpstreamLoss(int err, const char* during);
  // Closes the backend connection of the exchange and forgets what was queued for it, so that
  // no later parse of the request flushes to a connection that is gone.
  void closeUpstream();
  // The response is whole and on its way to the client when its backend closes, resets or
  // stops taking the request body (`err`): only that connection ends.
  void upstreamLostAfterResponse(int err);
  void sendStatic(const config::StaticResponse& r);
  void localResponse(int status);
  void respondLocal();
  void connectBackend(int backend);
  void releaseBackend();
  // retry.cc: what a failed attempt means for the request and for the backend.
  // Reports the outcome of the attempt on ex_->backend to passive health and the breaker:
  // `status` is the response's status, 0 for a failure without one (`reason` says which).
  void recordOutcome(int status, const char* reason);
  // Whether the request may go to another backend after its attempt failed, as far as the
  // request and the pool's retries go; `sent` when the request (head or body) may have reached
  // the backend.
  bool retryAllowed(bool sent) const;
  // Takes one retry from the pool's budget; false (logged) when it is spent.
  bool takeRetry();
  // The upstream side back to before the attempt (its connection already closed or given up).
  void resetAttempt();
  // No backend could be picked: wait in the pool's queue when some backend is only full, else
  // answer. True when the request waits.
  bool waitForBackend();
  void leaveQueue();
  // Joins the pool's queue, or answers 503 when it is full.
  void enqueue();
  // A response head arrived whose status is in the pool's retry_on: true when the request goes
  // to another backend instead (the response is dropped).
  bool retryOnStatus();

  // tunnel.cc: protocol upgrades.
  // The request may switch protocols through the backend (a WebSocket handshake).
  bool upgradeAllowed() const;
  // The backend answered 101 and its head is in cl_iov: the connection becomes a tunnel.
  void startTunnel();
  void tunnelToClient();
  void tunnelToUpstream();
  void tunnelInput(ssize_t nread);
  void tunnelUpstreamRead(ssize_t nread);
  void tunnelWritten();
  void tunnelUpstreamWritten();

  // response.cc: parsing the response and sending it to the client.
  static int onRespStatus(llhttp_t* p, const char* at, size_t n);
  static int onRespHeaderField(llhttp_t* p, const char* at, size_t n);
  static int onRespHeaderFieldComplete(llhttp_t* p);
  static int onRespHeaderValue(llhttp_t* p, const char* at, size_t n);
  static int onRespHeadersComplete(llhttp_t* p);
  static int onRespBody(llhttp_t* p, const char* at, size_t n);
  static int onRespChunkHeader(llhttp_t* p);
  static int onRespMessageComplete(llhttp_t* p);
  static const llhttp_settings_t& responseSettings();
  void parseResponse();
  // The backend closed the connection (EOF) with nothing of its left unparsed.
  void upstreamEnded();
  bool buildClientHead();
  // Writes cl_iov at the end of the loop turn (worker/turn_queue.h): clientWriteDone follows.
  // False, except for an HTTP/2 stream whose session took the bytes at once (h2Flush).
  bool flushClient();
  // The socket write of flushClient(): true when the kernel took it all at once.
  bool sendClientIov();
  static void onTurnWrite(TurnNode* node);
  static void onClientWritten(uv_write_t* req, int status);
  // The response bytes handed to flushClient() are out (status < 0: the write failed).
  void clientWriteDone(int status);
  void sendError(int status);
  // Whether the backend connection can serve another request once this exchange is done with it.
  bool upstreamReusable() const;
  // The response is whole in lb: its backend connection goes back to the pool (or closes) now.
  void releaseUpstream();
  // A client write holds the parser back: whether the bytes read since end the response is
  // learnt without it, and if they do, the backend connection is released at once.
  void lookAhead();
  void finishExchange();
  void abortExchange();
  void writeClient(const char* data, size_t len);
  void setNoDelay();
  void logAccess();
  // Counts the exchange's status in its class and writes its access log line, once.
  void logExchange();

  // tls_conn.cc: TLS between the socket and the HTTP code.
  bool startTls();
  void freeTls();
  char* tlsScratch(size_t* size);
  // Ciphertext (or EOF / an error) read from the socket.
  void tlsRead(ssize_t nread);
  // A client that spoke plain HTTP to a TLS listener: a plaintext 400 says so, as nginx does,
  // instead of a TLS alert the client cannot read.
  void plainHttpOnTls();
  // Handshake, then plaintext into the request buffer while there is room and reading is on.
  void tlsPump();
  // Pumps on the next loop turn if OpenSSL holds input a socket event would not announce.
  void kickTls();
  // Encrypts response bytes; false (and closed) on an error.
  bool tlsWrite(const uv_buf_t* iov, int iovcnt);
  // Sends the ciphertext waiting; true when all of it left now, else onTlsWritten follows.
  bool tlsFlush();
  static void onTlsWritten(uv_write_t* req, int status);
  // The session tickets held after a TLS 1.3 handshake waited long enough: they go alone.
  static void onTicketHold(TimerNode* node);
  // A few bytes outside a response (100 Continue), best effort, plain or TLS.
  void writeRaw(const char* data, size_t len);
  // Queues a close_notify; `flush` sends it now, else it goes with the next write.
  void tlsCloseNotify(bool flush = true);
  // close_notify (unless `notify` is false) on a connection closing now (no write in flight),
  // without waiting, after what sendBeforeClose() queued.
  void tlsGoodbye(bool notify);
  bool tlsHandshaking() const;
  // h2_conn.cc.
  // Whether the client connection is TLS (for a stream: its carrier's).
  bool secure() const;
  // A plain listener's first bytes: the HTTP/2 preface (1), a part of it (0: wait), or not (-1).
  int h2cPreface() const;
  // Turns this connection into an HTTP/2 carrier. False (and closed) when it cannot.
  bool startH2();
  void h2Input(ssize_t nread);
  uint32_t h2IdleMs() const;
  // Stream mode flushClient(), after its accounting: the response goes to the session.
  bool h2Flush();
  void releaseRequestBuffers();
  void h2Trailers();
  // Stream mode finishExchange() tail: the stream is left, the ClientConn closes.
  void h2Finish();
  static void onH2Written(uv_write_t* req, int status);
  // The verified client certificate's subject ("" without one).
  const std::string& tlsClientSubject() const;

  uv_tcp_t tcp_;
  WorkerContext* ctx_;
  const config::Listener* listener_;
  Exchange* ex_ = nullptr;
  TimerNode timer_;
  uint64_t idle_since_ = 0;        // loop time the connection last became idle (or was accepted)
  ClientTls* tls_ = nullptr;       // TLS listeners only
  http2::Session* h2s_ = nullptr;  // a carrier of HTTP/2
  http2::Stream* h2st_ = nullptr;  // stream mode, while the stream is attached
  ClientConn* next_ = nullptr;     // WorkerContext::clients
  ClientConn* prev_ = nullptr;
  // The small members last and together: every idle keep-alive connection pays for padding.
  uint32_t requests_ = 0;
  ConnStateMachine sm_;
  bool reading_ = false;
  bool closing_ = false;
  bool draining_ = false;
  bool nodelay_ = false;
  // timer_ measures an idle wait (an adopted connection's keep-alive timeout, a scheduled
  // drain close), so the first byte of a request re-arms it as the header timeout.
  bool idle_timer_ = false;
  bool drain_close_ = false;  // timer_ closes this idle connection for the drain
  bool stream_ = false;       // stream mode (an HTTP/2 stream's exchange)
  bool secure_ = false;       // stream mode: the carrier is TLS
  uint8_t peer_family_ = 0;
  uint16_t peer_port_ = 0;
  uint8_t peer_addr_[16];
};

// An idle keep-alive connection costs its ClientConn (plus malloc's 8-byte header, rounded to 16)
// and a slot in libuv's descriptor table: 400 bytes keep it near 430 per connection, under the
// 480 nginx needs. Growing it is a decision, not an accident.
static_assert(sizeof(ClientConn) <= 400, "ClientConn outgrew its idle-connection budget");

}  // namespace lb::worker
