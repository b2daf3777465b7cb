// HTTP/2 on client connections: the carrier (the connection that speaks HTTP/2, plain or TLS)
// and stream mode (a ClientConn whose exchange serves one stream of it).
//
// A stream's ClientConn runs the same exchange code as an HTTP/1.1 connection. Its input is the
// HTTP/1.1 request the session made of the stream's frames, copied into the request buffer as
// the exchange reads; its output goes to the session, which takes it into DATA frames as flow
// control allows and only then completes the write, so backpressure holds end to end. It has a
// libuv handle without a socket only so that it is freed the way every ClientConn is: in a
// close callback, never under a caller.

#include <cstring>

#include "shared/log/log.h"
#include "worker/http2/session.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kPrefaceLen = sizeof(kPreface) - 1;

}  // namespace

bool ClientConn::secure() const {
  return stream_ ? secure_ : tls_ != nullptr;
}

int ClientConn::h2cPreface() const {
  const Exchange* ex = ex_;
  size_t n = ex->in_end - ex->in_start;
  if (std::memcmp(ex->in_buf + ex->in_start, kPreface, std::min(n, kPrefaceLen)) != 0) {
    return -1;
  }
  return n >= kPrefaceLen ? 1 : 0;
}

bool ClientConn::startH2() {
  h2s_ = http2::Session::create(ctx_, listener_, this);
  if (h2s_ == nullptr) {
    LB_ERROR("cannot start an HTTP/2 session for %s", peerText().c_str());
    closeNow();
    return false;
  }
  setNoDelay();  // frames of many streams: none may wait on Nagle
  ctx_->count(shm::Counter::H2Connections);
  return true;
}

void ClientConn::h2Input(ssize_t nread) {
  Exchange* ex = ex_;
  if (nread < 0) {
    closeNow();  // the client left: its streams' exchanges stop
    return;
  }
  if (ex == nullptr || ex->in_end == ex->in_start) {
    return;
  }
  const char* data = ex->in_buf + ex->in_start;
  size_t n = ex->in_end - ex->in_start;
  // nghttp2 keeps what it needs of a frame cut by the read: the buffer is free again.
  ex->in_start = ex->in_end = 0;
  if (!h2s_->receive(data, n) || closing_) {
    return;
  }
  uint32_t idle_ms = h2IdleMs();
  if (h2s_->openStreams() == 0) {
    idle_timer_ = true;
    armClientTimer(idle_ms);
  } else if (uint64_t began = h2s_->headStartedMs(); began != 0) {
    // A header block cut short: client_header_timeout_ms from its start, however slowly the
    // rest trickles in (slowloris over HTTP/2).
    uint64_t now = uv_now(ctx_->loop);
    uint64_t end = began + listener_->limits.header_timeout_ms;
    idle_timer_ = true;
    armClientTimer(static_cast<uint32_t>(end > now ? end - now : 1));
  } else if (idle_timer_) {
    idle_timer_ = false;  // the streams time themselves; a stuck write keeps its timer
    ctx_->timers.disarm(&timer_);
  }
}

int ClientConn::h2Write(std::string* data) {
  if (closing_) {
    return -1;
  }
  uv_buf_t b = uv_buf_init(data->data(), static_cast<unsigned>(data->size()));
  if (tls_ != nullptr) {
    if (!tlsWrite(&b, 1)) {
      return -1;
    }
    data->clear();
    if (tlsFlush()) {
      return 1;
    }
    return closing_ ? -1 : 0;  // onTlsWritten tells the session
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  int n = uv_try_write(stream, &b, 1);
  if (n >= 0 && static_cast<size_t>(n) == data->size()) {
    return 1;
  }
  if (n < 0 && n != UV_EAGAIN) {
    closeNow();
    return -1;
  }
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  b.base += done;
  b.len -= static_cast<unsigned>(done);
  h2s_->wreq.data = this;
  if (uv_write(&h2s_->wreq, stream, &b, 1, &ClientConn::onH2Written) != 0) {
    closeNow();
    return -1;
  }
  idle_timer_ = false;
  armClientTimer(listener_->limits.send_timeout_ms);  // a client that stops reading is cut
  return 0;
}

void ClientConn::onH2Written(uv_write_t* req, int status) {
  auto* c = static_cast<ClientConn*>(req->data);
  if (c->closing_ || c->h2s_ == nullptr) {
    return;
  }
  if (status < 0) {
    c->closeNow();
    return;
  }
  c->ctx_->timers.disarm(&c->timer_);
  c->h2s_->onWritten(0);
}

uint32_t ClientConn::h2IdleMs() const {
  return listener_->limits.keepalive_timeout_ms != 0 ? listener_->limits.keepalive_timeout_ms
                                                     : listener_->limits.header_timeout_ms;
}

void ClientConn::h2Idle() {
  if (!idle_timer_ && !closing_ && !h2s_->writePending()) {
    idle_timer_ = true;
    armClientTimer(h2IdleMs());
  }
}

void ClientConn::h2Finished() {
  if (!closing_) {
    lingeringClose(kDrainLingerMs);
  }
}

ClientConn* ClientConn::openStream(ClientConn* carrier, http2::Stream* st) {
  WorkerContext* ctx = carrier->ctx_;
  auto* c = new ClientConn(ctx, carrier->listener_);
  uv_tcp_init(ctx->loop, &c->tcp_);  // no socket: the handle is only closed, to free `c`
  c->tcp_.data = c;
  c->stream_ = true;
  c->h2st_ = st;
  c->secure_ = carrier->tls_ != nullptr;
  c->peer_family_ = carrier->peer_family_;
  std::memcpy(c->peer_addr_, carrier->peer_addr_, sizeof c->peer_addr_);
  c->peer_port_ = carrier->peer_port_;
  c->nodelay_ = true;
  c->reading_ = true;
  c->sm_.transition(ConnState::ReadingRequest);
  c->armClientTimer(carrier->listener_->limits.body_timeout_ms);
  return c;
}

void ClientConn::h2Feed() {
  http2::Stream* st = h2st_;
  while (st != nullptr && reading_ && !closing_ && h2st_ == st && st->in_off < st->in.size()) {
    uv_buf_t space = inputSpace();
    if (space.len == 0) {
      reading_ = false;  // the request buffer is full; parsing on makes room (startReading)
      return;
    }
    size_t avail = st->in.size() - st->in_off;
    if (!st->in_ended && !st->chunked) {
      // The body's last byte waits for END_STREAM: DATA beyond content-length (which nghttp2
      // answers with a reset) must not leave a complete request at the backend. The head
      // itself goes at once (an Expect: 100-continue waits on it).
      uint64_t limit = std::max<uint64_t>(st->head_len, st->total_in - 1);
      avail = static_cast<size_t>(std::min<uint64_t>(avail, limit - st->delivered));
      if (avail == 0) {
        return;
      }
    }
    size_t n = std::min<size_t>(space.len, avail);
    std::memcpy(space.base, st->in.data() + st->in_off, n);
    st->in_off += n;
    st->delivered += n;
    if (st->in_off == st->in.size()) {
      st->in.clear();
      st->in_off = 0;
    }
    st->session->consumed(st, n);
    onInput(static_cast<ssize_t>(n));
  }
}

void ClientConn::h2WriteDone() {
  if (ex_ != nullptr && ex_->cl_write_pending) {
    clientWriteDone(0);
  }
}

void ClientConn::h2Abort() {
  h2st_ = nullptr;
  closeNow();
}

bool ClientConn::h2Flush() {
  Exchange* ex = ex_;
  http2::Stream* st = h2st_;
  if (st == nullptr) {
    closeNow();
    return false;
  }
  h2Trailers();
  if (!st->head_sent) {
    if (!st->session->submitResponse(st, ex->cl_iov, ex->cl_iovcnt, ex->resp_done)) {
      closeNow();
      return false;
    }
    if (ex->cl_head != nullptr && ex->cl_iov[0].base == ex->cl_head) {
      // nghttp2 copied the fields and no body piece points into the head: its block is free.
      ctx_->buffers.put(ex->cl_head);
      ex->cl_head = nullptr;
    }
    releaseRequestBuffers();
  } else {
    st->session->submitData(st, ex->cl_iov, ex->cl_iovcnt, ex->resp_done);
  }
  // Complete once the session took the pieces (h2WriteDone), never within this call.
  ex->cl_write_pending = true;
  armClientTimer(listener_->limits.send_timeout_ms);
  return false;
}

// Once the whole request is with the backend and its response has begun, no retry will send it
// again: the stream's request buffers go back to the pool while the client reads the response.
// Many streams waiting on a slow reader would otherwise hold two blocks each for nothing.
void ClientConn::releaseRequestBuffers() {
  Exchange* ex = ex_;
  if (!ex->req_done || ex->up_write_pending || ex->up_iovcnt != 0 || ex->in_start != ex->in_end) {
    return;
  }
  ctx_->buffers.put(ex->in_buf);
  ex->in_buf = nullptr;
  ex->in_start = ex->in_end = 0;
  ctx_->buffers.put(ex->up_head);
  ex->up_head = nullptr;
  ex->up_head_len = 0;
}

// The backend's trailers go to the stream once the response is complete.
void ClientConn::h2Trailers() {
  Exchange* ex = ex_;
  if (h2st_ != nullptr && ex->resp_done && ex->resp_head_done && !ex->resp_trailers_lost &&
      ex->resp_fields < ex->resp_head.count()) {
    h2st_->session->setTrailers(h2st_, http1::trailerLines(ex->resp_head, ex->resp_fields));
  }
}

void ClientConn::h2Finish() {
  if (ex_ != nullptr) {
    h2Trailers();
  }
  if (http2::Stream* st = h2st_) {
    h2st_ = nullptr;
    st->session->detach(st, ex_ != nullptr && ex_->resp_done);
  }
  closeNow();
}

}  // namespace lb::worker
