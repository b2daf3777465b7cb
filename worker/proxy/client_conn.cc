// Client side of a connection: accepting, reading, parsing the request, timeouts and closing.

#include "worker/proxy/client_conn.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "shared/log/log.h"
#include "worker/http1/error_pages.h"
#include "worker/http2/session.h"
#include "worker/net/spread.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {
namespace {

ClientConn* self(llhttp_t* p) {
  return static_cast<ClientConn*>(p->data);
}

}  // namespace

ClientConn::ClientConn(WorkerContext* ctx, const config::Listener* listener)
    : ctx_(ctx), listener_(listener) {
  timer_.data = this;
  timer_.on_timeout = &ClientConn::onTimeout;
}

ClientConn* ClientConn::fromHandle(uv_handle_t* h) {
  return static_cast<ClientConn*>(h->data);
}

ClientConn* ClientConn::create(WorkerContext* ctx, const config::Listener* listener, int fd) {
  auto* c = new ClientConn(ctx, listener);
  uv_tcp_init(ctx->loop, &c->tcp_);
  c->tcp_.data = c;
  ++ctx->connections;
  c->next_ = ctx->clients;
  if (ctx->clients != nullptr) {
    ctx->clients->prev_ = c;
  }
  ctx->clients = c;
  ctx->slot->active_connections.fetch_add(1, std::memory_order_relaxed);
  c->idle_since_ = uv_now(ctx->loop);
  if (uv_tcp_open(&c->tcp_, fd) != 0) {
    ::close(fd);
    c->closing_ = true;
    c->sm_.transition(ConnState::Closing);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp_), &ClientConn::onClose);
    return nullptr;
  }
  return c;
}

void ClientConn::setPeer(const sockaddr* peer) {
  if (peer->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(peer);
    peer_family_ = AF_INET;
    std::memcpy(peer_addr_, &in->sin_addr, 4);
    peer_port_ = ntohs(in->sin_port);
  } else if (peer->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(peer);
    peer_family_ = AF_INET6;
    std::memcpy(peer_addr_, &in6->sin6_addr, 16);
    peer_port_ = ntohs(in6->sin6_port);
  }
}

void ClientConn::accept(WorkerContext* ctx, const config::Listener* listener, int, int fd,
                        const sockaddr* peer) {
  ctx->slot->accepted.fetch_add(1, std::memory_order_relaxed);
  ClientConn* c = create(ctx, listener, fd);
  if (c == nullptr) {
    return;
  }
  c->setPeer(peer);
  if (listener->tls_context) {
    if (!c->startTls()) {
      c->closeNow();
      return;
    }
    c->sm_.transition(ConnState::SslHandshaking);
  } else {
    c->sm_.transition(ConnState::ReadingRequest);
  }
  // The handshake and the request head share client_header_timeout_ms.
  c->armClientTimer(listener->limits.header_timeout_ms);
  c->startReading();
}

const llhttp_settings_t& ClientConn::requestSettings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_message_begin = &ClientConn::onReqMessageBegin;
    x.on_url = &ClientConn::onReqUrl;
    x.on_header_field = &ClientConn::onReqHeaderField;
    x.on_header_field_complete = &ClientConn::onReqHeaderFieldComplete;
    x.on_header_value = &ClientConn::onReqHeaderValue;
    x.on_headers_complete = &ClientConn::onReqHeadersComplete;
    x.on_body = &ClientConn::onReqBody;
    x.on_chunk_header = &ClientConn::onReqChunkHeader;
    x.on_message_complete = &ClientConn::onReqMessageComplete;
    return x;
  }();
  return s;
}

Exchange* ClientConn::exchange() {
  if (ex_ != nullptr) {
    return ex_;
  }
  if (!ctx_->free_exchanges.empty()) {
    ex_ = ctx_->free_exchanges.back();
    ctx_->free_exchanges.pop_back();
  } else {
    ex_ = new Exchange;
  }
  Exchange* ex = ex_;
  llhttp_init(&ex->req, HTTP_REQUEST, &requestSettings());
  ex->req.data = this;
  ex->queue_link.owner = this;
  ex->in_buf = nullptr;
  ex->in_start = ex->in_end = 0;
  ex->in_before = ex->rbuf_before = '\n';
  ex->req_head_mem = nullptr;
  ex->up_head = nullptr;
  ex->rbuf = nullptr;
  ex->resp_head_mem = nullptr;
  ex->cl_head = nullptr;
  ex->up = nullptr;
  resetForNextRequest();
  return ex;
}

// Per-request state back to its start; keeps the client buffer and its unparsed bytes.
void ClientConn::resetForNextRequest() {
  Exchange* ex = ex_;
  ex->req_pause = Pause::None;
  ex->req_chunked = ex->req_has_body = ex->req_done = false;
  ex->expect_continue = ex->head_request = ex->client_keepalive = false;
  ex->in_head = true;
  ex->discard_body = ex->buffering = false;
  ex->body_scan = Exchange::BodyScan::Off;
  ex->body_scanned = 0;
  ex->error_status = 0;
  ex->req_body_bytes = 0;
  ex->start_ms = 0;
  ex->logged = false;
  ex->pool = ex->backend = -1;
  ex->ntried = 0;
  ex->attempts = 0;
  ex->holding = false;
  ex->attempt_open = ex->probe = false;
  ex->up_head_sent = false;
  ex->body_ok = false;
  ex->up_start_ms = 0;
  ex->up_head_len = 0;
  ex->up_iovcnt = 0;
  ex->up_write_pending = false;
  ex->up_nchunk = 0;
  ex->resp_pause = Pause::None;
  ex->status = ex->upstream_status = ex->fail_status = 0;
  ex->stale_retry_done = ex->skip_interim = ex->up_bytes_in = false;
  ex->resp_refusal = ex->req_refusal = nullptr;
  ex->upgrade = ex->tunnel = ex->tunnel_eof = false;
  ex->tunnel_in_end = ex->tunnel_out_end = 0;
  ex->req_fields = ex->resp_fields = 0;
  ex->req_trailers_lost = ex->resp_trailers_lost = false;
  ex->static_resp = nullptr;
  ex->local_status = 0;
  ex->req_content_length = 0;
  ex->in_parse = false;
  ex->req_kick = ex->resp_kick = false;
  ex->look_valid = false;
  ex->up_eof = ex->cut = false;
  ex->client_eof = false;
  ex->refused = false;
  ex->method_pending = 0;
  ex->resp_head_done = ex->resp_done = ex->resp_chunk_out = false;
  ex->resp_close_after = ex->resp_started = false;
  ex->resp_bytes = 0;
  ex->up_header_ms = 0;
  ex->cl_iovcnt = 0;
  ex->cl_write_pending = false;
  ex->cl_nchunk = 0;
  ex->rbuf_start = ex->rbuf_end = 0;
  ex->rbuf_before = '\n';
}

// Gives every buffer back and the exchange to the free list: the connection is idle again.
void ClientConn::releaseExchange() {
  Exchange* ex = ex_;
  if (ex == nullptr) {
    return;
  }
  leaveQueue();
  if (ex->up != nullptr) {
    ex->up->close();
    ex->up = nullptr;
  }
  releaseBackend();
  BufferPool& bp = ctx_->buffers;
  bp.put(ex->in_buf);
  if (ex->req_head_heap) {
    std::free(ex->req_head_mem);
    ex->req_head_heap = false;
  } else {
    bp.put(ex->req_head_mem);
  }
  bp.put(ex->up_head);
  ctx_->large_buffers.put(ex->rbuf);
  bp.put(ex->resp_head_mem);
  bp.put(ex->cl_head);
  ex_ = nullptr;
  if (ctx_->free_exchanges.size() < 1024) {
    ctx_->free_exchanges.push_back(ex);
  } else {
    delete ex;
  }
}

void ClientConn::startReading() {
  if (stream_) {
    reading_ = !closing_;
    if (reading_ && h2st_ != nullptr && h2st_->in_off < h2st_->in.size()) {
      h2st_->session->streamReady(h2st_);
    }
    return;
  }
  if (!reading_ && !closing_) {
    reading_ = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &ClientConn::onAlloc, &ClientConn::onRead);
  }
  if (tls_ != nullptr) {
    kickTls();
  }
}

void ClientConn::stopReading() {
  if (stream_) {
    reading_ = false;
    return;
  }
  if (reading_) {
    reading_ = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  }
}

void ClientConn::armClientTimer(uint32_t ms) {
  ctx_->timers.arm(&timer_, ms);
}

void ClientConn::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  ClientConn* c = fromHandle(h);
  if (c->tls_ != nullptr) {
    size_t size = 0;
    char* scratch = c->tlsScratch(&size);
    *buf = uv_buf_init(scratch, static_cast<unsigned>(size));
    return;
  }
  *buf = c->inputSpace();
}

uv_buf_t ClientConn::inputSpace() {
  Exchange* ex = exchange();
  if (ex->in_buf == nullptr) {
    ex->in_buf = ctx_->buffers.get();
    ex->in_start = ex->in_end = 0;
  } else if (ex->up_write_pending) {
    // The write in flight points into the buffer: only the space after in_end is free.
  } else if (ex->in_start == ex->in_end) {
    ex->in_before = http1::lastNonBlank(ex->in_buf, ex->in_buf + ex->in_end, ex->in_before);
    ex->in_start = ex->in_end = 0;
  } else if (ex->in_start > 0) {
    ex->in_before = http1::lastNonBlank(ex->in_buf, ex->in_buf + ex->in_start, ex->in_before);
    std::memmove(ex->in_buf, ex->in_buf + ex->in_start, ex->in_end - ex->in_start);
    ex->in_end -= ex->in_start;
    ex->in_start = 0;
  }
  return uv_buf_init(ex->in_buf + ex->in_end, kBufferSize - ex->in_end);
}

void ClientConn::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  ClientConn* c = fromHandle(reinterpret_cast<uv_handle_t*>(s));
  Exchange* ex = c->ex_;
  if (c->closing_) {
    return;
  }
  if (c->sm_.state() == ConnState::Draining) {
    // Lingering close: input is read and dropped until the client closes or the timer fires.
    if (ex != nullptr) {
      ex->in_start = ex->in_end = 0;
    }
    if (nread < 0) {
      c->closeNow();
    }
    return;
  }
  if (c->tls_ != nullptr) {
    c->tlsRead(nread);
    return;
  }
  c->onInput(nread);
}

void ClientConn::onInput(ssize_t nread) {
  ClientConn* c = this;
  Exchange* ex = ex_;
  if (h2s_ != nullptr) {
    if (nread > 0) {
      ex->in_end += static_cast<uint32_t>(nread);
    }
    h2Input(nread);
    return;
  }
  if (ex != nullptr && ex->tunnel) {
    tunnelInput(nread);
    return;
  }
  if (nread > 0) {
    ex->in_end += static_cast<uint32_t>(nread);
    if (requests_ == 0 && ex->start_ms == 0 && ex->in_start == 0 && tls_ == nullptr && !stream_ &&
        listener_->http2.enabled) {
      int preface = h2cPreface();  // HTTP/2 with prior knowledge (RFC 9113 3.3)
      if (preface == 0) {
        return;  // the first bytes could still be the preface
      }
      if (preface == 1) {
        if (startH2()) {
          h2Input(0);
        }
        return;
      }
    }
    if (c->sm_.state() == ConnState::KeepAlive || c->idle_timer_) {
      if (c->sm_.state() == ConnState::KeepAlive) {
        c->sm_.transition(ConnState::ReadingRequest);
      }
      c->idle_timer_ = false;
      c->armClientTimer(c->listener_->limits.header_timeout_ms);
    }
    c->parseRequest();
    return;
  }
  bool idle = ex == nullptr || (ex->in_start == ex->in_end && ex->start_ms == 0);
  if (nread == 0) {
    if (idle) {
      c->releaseExchange();  // EAGAIN: nothing came after all
    }
    return;
  }
  if (nread == UV_ENOBUFS) {
    c->stopReading();  // the buffer is full: backpressure until the parser catches up
    return;
  }
  // EOF or error. Between requests that is the client's normal way to end keep-alive. The
  // exchange libuv's read made us take goes back at once: when thousands of idle clients leave
  // together, their buffers are reused instead of piling up until the close callbacks run.
  if (idle) {
    c->releaseExchange();
    c->closeNow();
    return;
  }
  if (nread == UV_EOF && ex->buffering) {
    c->closeNow();  // the client's FIN cut the body short before any backend saw the request
    return;
  }
  if (nread == UV_EOF && (ex->req_done || !ex->in_head)) {
    // The client half-closed after sending its request (or at least its head): the response may
    // still go out. A body cut short by the FIN is noticed once the buffer is parsed.
    ex->client_eof = true;
    c->stopReading();
    if (!ex->req_done && ex->body_ok && !ex->up_write_pending && !ex->in_parse) {
      c->parseRequest();
    }
    return;
  }
  c->closeNow();
}

void ClientConn::parseRequest() {
  Exchange* ex = ex_;
  for (;;) {
    ex->in_parse = true;
    while (!closing_ && ex_ == ex && (ex->in_start < ex->in_end || ex->req_kick)) {
      if (ex->req_done || ex->up_write_pending) {
        break;
      }
      if (!ex->in_head && !ex->body_ok) {
        if (ex->buffering && bodyBuffered()) {
          if (ex->body_scan == Exchange::BodyScan::Invalid ||
              ex->body_scan == Exchange::BodyScan::TooLarge) {
            ex->in_parse = false;  // as for any request the parser refuses
            refuseHeldBody();
            return;
          }
          dispatch();
          continue;
        }
        break;  // waiting for the body (request_buffering) or an upstream before reading it
      }
      if (sm_.state() == ConnState::ReadingRequest || sm_.state() == ConnState::KeepAlive) {
        sm_.transition(ConnState::ParsingRequest);
      }
      if (ex->start_ms == 0) {
        ex->start_ms = uv_now(ctx_->loop);
      }
      ex->req_kick = false;
      if (ex->method_pending != 0) {
        ex->in_parse = false;
        pendingMethod();
        return;
      }
      static const char kEmpty[1] = {0};
      const char* p = ex->in_buf != nullptr ? ex->in_buf + ex->in_start : kEmpty;
      size_t n = ex->in_end - ex->in_start;
      llhttp_errno_t err = llhttp_execute(&ex->req, p, n);
      if (err == HPE_OK) {
        ex->in_start = ex->in_end;
        break;
      }
      if (err == HPE_PAUSED) {
        ex->in_start += static_cast<uint32_t>(llhttp_get_error_pos(&ex->req) - p);
        llhttp_resume(&ex->req);
        Pause why = ex->req_pause;
        ex->req_pause = Pause::None;
        if (why == Pause::HeadComplete) {
          ex->req_kick = true;
          headComplete();
          continue;
        }
        if (why == Pause::MessageComplete) {
          ex->req_done = true;
          break;
        }
        if (why == Pause::IovFull) {
          break;  // flushed below; parsing resumes when the write completes
        }
        continue;
      }
      if (err == HPE_PAUSED_UPGRADE) {
        // The previous request asked for an upgrade that lb did not make (h2c, a body, HTTP/1.0:
        // it went out without Upgrade, and RFC 9110 7.8 lets a server ignore one); the
        // connection goes on in HTTP/1.1 and what follows is the next request. An upgrade that
        // was forwarded ends the connection instead (onReqMessageComplete).
        ex->in_start += static_cast<uint32_t>(llhttp_get_error_pos(&ex->req) - p);
        llhttp_resume_after_upgrade(&ex->req);
        continue;
      }
      int status = ex->error_status != 0 ? ex->error_status : 400;
      // A well-formed version llhttp does not speak ("HTTP/1.2", "HTTP/3.0") is no bad request:
      // 505, as lb answers HTTP/2.0 on this parser; a malformed one stays 400.
      if (err == HPE_INVALID_VERSION &&
          std::string_view(llhttp_get_error_reason(&ex->req)) == "Invalid HTTP version") {
        status = 505;
      } else if (err == HPE_INVALID_CONSTANT &&
                 std::string_view(llhttp_get_error_reason(&ex->req)) ==
                     "Invalid method for HTTP/x.x request") {
        status = 501;  // a method llhttp knows for RTSP only (PLAY, DESCRIBE, ...): a token
      } else if (err == HPE_INVALID_METHOD) {
        const char* at = llhttp_get_error_pos(&ex->req);
        http1::MethodToken m =
            at >= p && at < p + n ? http1::methodToken({p, n}, at - p) : http1::MethodToken::No;
        if (m == http1::MethodToken::Yes) {
          status = 501;
        } else if (m == http1::MethodToken::Undecided) {
          // The SP has not come yet: the next bytes tell a method lb does not know from garbage.
          ex->method_pending = static_cast<uint32_t>(n);
          ex->in_start = ex->in_end;
          ex->in_parse = false;
          return;
        }
      }
      const char* why = llhttp_get_error_reason(&ex->req);
      switch (ex->error_status) {  // refused by a callback: llhttp's reason names the callback
        case 414:
          why = "request target longer than client_max_header_size";
          break;
        case 431:
          why = ex->req_head.tooManyHeaders() ? "more than 100 header fields"
                                              : "header fields over client_max_header_size";
          break;
        case 413:
          why = "body over client_max_body_size";
          break;
        case 400:
          why = ex->req_refusal != nullptr ? ex->req_refusal : "obs-fold in a header";
          break;
        default:
          break;
      }
      LB_INFO("client %s sent an invalid request, answered %d: %s (%s)", peerText().c_str(), status,
              why, llhttp_errno_name(err));
      ex->in_parse = false;
      requestRefused(status);
      return;
    }
    if (ex_ != ex) {
      return;
    }
    ex->in_parse = false;
    if (closing_) {
      return;
    }
    if (ex->req_done && (ex->static_resp != nullptr || ex->local_status != 0) &&
        !ex->resp_started && !ex->cl_write_pending) {
      respondLocal();
      return;
    }
    if (ex->up_iovcnt > 0 && !ex->up_write_pending) {
      if (flushUpstream()) {
        if (closing_ || ex_ != ex) {
          return;
        }
        afterUpstreamWrite();
        if (closing_ || ex_ != ex) {
          return;
        }
        if (!ex->req_done && ex->in_start < ex->in_end) {
          continue;  // paused on a full iovec array: parse on
        }
      } else if (closing_ || ex_ != ex) {
        return;
      }
    }
    break;
  }
  if ((!ex->req_done && !ex->in_head && ex->body_ok && !ex->up_write_pending) || ex->buffering) {
    armClientTimer(listener_->limits.body_timeout_ms);
  } else if (!ex->in_head && !ex->cl_write_pending && !ex->queue_link.queued) {
    // Waiting on the backend (connect, a write it has not taken, its response): its own
    // timeouts apply, not the client's. A queued request's timer is the queue's timeout.
    ctx_->timers.disarm(&timer_);
  }
  if (ex->client_eof) {
    if (!ex->req_done && ex->body_ok && !ex->up_write_pending && ex->in_start == ex->in_end) {
      closeNow();  // the client's FIN cut the request body short
    }
    return;
  }
  // Reading stays on (toggling it costs epoll_ctl calls per request); a full buffer stops it
  // (UV_ENOBUFS), which is the backpressure.
  startReading();
}

int ClientConn::onReqMessageBegin(llhttp_t* p) {
  ClientConn* c = self(p);
  Exchange* ex = c->ex_;
  if (ex->req_head_mem == nullptr) {
    uint32_t cap = c->listener_->limits.max_header_size;
    if (cap <= kBufferSize) {
      ex->req_head_mem = c->ctx_->buffers.get();
    } else {
      ex->req_head_mem = static_cast<char*>(std::malloc(cap));
      ex->req_head_heap = true;
    }
  }
  ex->req_head.reset(ex->req_head_mem, c->listener_->limits.max_header_size);
  ex->in_head = true;
  return 0;
}

int ClientConn::onReqUrl(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (!ex->req_head.appendUrl(at, n)) {
    ex->error_status = 414;
    return -1;
  }
  return 0;
}

int ClientConn::onReqHeaderField(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (!ex->in_head) {  // a trailer: one that does not fit is dropped (RFC 9110 6.5.1)
    ex->req_trailers_lost = ex->req_trailers_lost || !ex->req_head.appendName(at, n);
    return 0;
  }
  if (!ex->req_head.appendName(at, n)) {
    ex->error_status = 431;
    return -1;
  }
  return 0;
}

int ClientConn::onReqHeaderFieldComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  ex->req_head.endName();
  if (ex->req_head.lastNameEmpty()) {
    ex->error_status = 400;  // ": v": llhttp takes an empty name (RFC 9110 5.1: a token)
    ex->req_refusal = "an empty header field name";
    return -1;
  }
  return 0;
}

int ClientConn::onReqHeaderValue(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (http1::followsObsFold(ex->in_buf, at, n, ex->in_before)) {
    ex->error_status = 400;
    return -1;
  }
  if (!ex->in_head) {
    ex->req_trailers_lost = ex->req_trailers_lost || !ex->req_head.appendValue(at, n);
    return 0;
  }
  if (!ex->req_head.appendValue(at, n)) {
    ex->error_status = 431;
    return -1;
  }
  return 0;
}

int ClientConn::onReqHeadersComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  ex->req_pause = Pause::HeadComplete;
  ex->in_head = false;
  ex->req_fields = ex->req_head.count();
  return HPE_PAUSED;
}

int ClientConn::onReqBody(llhttp_t* p, const char* at, size_t n) {
  ClientConn* c = self(p);
  Exchange* ex = c->ex_;
  ex->req_body_bytes += n;
  uint64_t max = c->listener_->limits.max_body_size;
  if (max != 0 && ex->req_body_bytes > max) {
    ex->error_status = 413;
    return -1;
  }
  if (ex->discard_body) {
    return 0;
  }
  if (ex->req_chunked) {
    int k = ex->up_nchunk++;
    int len = std::snprintf(ex->up_chunk[k], sizeof(ex->up_chunk[k]), "%zx\r\n", n);
    ex->up_iov[ex->up_iovcnt++] = uv_buf_init(ex->up_chunk[k], static_cast<unsigned>(len));
    ex->up_iov[ex->up_iovcnt++] = uv_buf_init(const_cast<char*>(at), static_cast<unsigned>(n));
    ex->up_iov[ex->up_iovcnt++] = uv_buf_init(const_cast<char*>("\r\n"), 2);
  } else {
    ex->up_iov[ex->up_iovcnt++] = uv_buf_init(const_cast<char*>(at), static_cast<unsigned>(n));
  }
  return 0;
}

int ClientConn::onReqChunkHeader(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  // A chunk adds at most three iovecs, the terminator one more.
  if (!ex->discard_body && ex->up_iovcnt + 4 > kMaxIov) {
    ex->req_pause = Pause::IovFull;
    return HPE_PAUSED;
  }
  return 0;
}

int ClientConn::onReqMessageComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  if (ex->req_chunked && !ex->discard_body) {
    int from = ex->req_trailers_lost ? ex->req_head.count() : ex->req_fields;
    std::string_view last =
        http1::lastChunk(ex->req_head, from, self(p)->listener_->tls.client_subject_header);
    ex->up_iov[ex->up_iovcnt++] =
        uv_buf_init(const_cast<char*>(last.data()), static_cast<unsigned>(last.size()));
  }
  // After an upgrade request that was not switched, the input is not trusted to be HTTP again.
  ex->client_keepalive = http1::keepAlive(p) && !ex->upgrade;
  ex->req_pause = Pause::MessageComplete;
  return HPE_PAUSED;
}

void ClientConn::onTimeout(TimerNode* node) {
  auto* c = static_cast<ClientConn*>(node->data);
  Exchange* ex = c->ex_;
  ConnState s = c->sm_.state();
  if (c->drain_close_ && c->idle()) {
    c->lingeringClose(kDrainLingerMs);  // drain.cc scheduled it
    return;
  }
  if (s == ConnState::WebSocket) {
    LB_INFO("tunnel of %s idle for %u ms, closing", c->peerText().c_str(),
            c->listener_->limits.tunnel_timeout_ms);
    c->closeNow();
    return;
  }
  if (c->h2s_ != nullptr && s != ConnState::Draining) {
    if (c->h2s_->writePending()) {
      LB_INFO("HTTP/2 client %s took nothing for %u ms, %s", c->peerText().c_str(),
              c->listener_->limits.send_timeout_ms, c->timedOutAction());
      c->closeTimedOut();
    } else if (c->h2s_->openStreams() == 0) {
      c->h2s_->idleTimeout();
    } else if (c->h2s_->headStartedMs() != 0) {
      LB_INFO("HTTP/2 client %s did not finish a request's headers within %u ms, closing",
              c->peerText().c_str(), c->listener_->limits.header_timeout_ms);
      c->closeNow();
    }
    c->idle_timer_ = false;
    return;
  }
  if (c->tlsHandshaking()) {
    c->ctx_->count(shm::Counter::TlsHandshakeFailed);
    LB_INFO("TLS handshake with %s failed: not finished within %u ms", c->peerText().c_str(),
            c->listener_->limits.header_timeout_ms);
    c->closeNow();
    return;
  }
  if (ex != nullptr && ex->queue_link.queued) {
    c->leaveQueue();
    LB_WARN("no upstream in pool \"%s\" could take the request within the queue timeout",
            c->ctx_->pools[ex->pool].pool->name.c_str());
    c->localResponse(503);
    return;
  }
  if (s == ConnState::Draining || s == ConnState::KeepAlive || ex == nullptr) {
    c->closeNow();
    return;
  }
  if (ex->cl_write_pending) {
    LB_INFO("client %s timed out reading the response, %s", c->peerText().c_str(),
            c->timedOutAction());
    c->closeTimedOut();
    return;
  }
  if (!ex->resp_started && (ex->in_head || !ex->req_done)) {
    LB_INFO("client %s timed out sending the request", c->peerText().c_str());
    c->requestRefused(408);
    return;
  }
  c->closeNow();
}

// The rest of a method llhttp does not know, up to its SP: 501 if it is a token, else 400.
void ClientConn::pendingMethod() {
  Exchange* ex = ex_;
  int status = 0;
  const char* why = "invalid method";
  for (; ex->in_start < ex->in_end && status == 0; ++ex->in_start) {
    char c = ex->in_buf[ex->in_start];
    if (c == ' ') {
      status = 501;
      why = "a method lb does not forward";
    } else if (!http1::isTchar(c)) {
      status = 400;
    } else if (++ex->method_pending > listener_->limits.max_header_size) {
      status = 400;
      why = "method longer than client_max_header_size";
    }
  }
  if (status != 0) {
    LB_INFO("client %s sent an invalid request, answered %d: %s", peerText().c_str(), status, why);
    requestRefused(status);
  }
}

// Answers `status` to a request lb will not proxy, then closes: the rest of the input cannot be
// trusted to be framed.
void ClientConn::requestRefused(int status) {
  Exchange* ex = ex_;
  if (ex->up != nullptr) {
    releaseBackend();
  }
  closeUpstream();
  stopReading();
  ex->req_done = true;
  ex->refused = true;
  ex->client_keepalive = false;
  if (ex->resp_started || ex->cl_write_pending) {
    if (ex->resp_done) {
      closeNow();  // the response is whole, only the request body was refused
    } else {
      cutClient();
    }
    return;
  }
  sendError(status);
}

// A client that stopped reading: with reset_timedout_connection the close is an RST (SO_LINGER 0),
// which frees at once what the socket still holds for it. A plain close leaves those bytes in the
// kernel, trying to reach a reader that may never come, until TCP gives up on it.
void ClientConn::closeTimedOut() {
  if (listener_->limits.reset_timedout_connection) {
    uv_os_fd_t fd = -1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
  }
  closeNow();
}

void ClientConn::cutClient() {
  Exchange* ex = ex_;
  ex->cut = true;
  if (ex->cl_iovcnt > 0 && !ex->cl_write_pending && !ex->cl_turn.queued) {
    sendBeforeClose();  // what was valid of the response goes out ahead of the cut
  }
  closeNow();
}

void ClientConn::closeNow() {
  if (closing_) {
    return;
  }
  closing_ = true;
  if (ex_ != nullptr && ex_->cl_turn.queued) {
    // Written at once, as before the writes waited for the end of the loop turn, the response
    // would be in the kernel already: it leaves now, best effort, ahead of the close.
    ctx_->turn.cancel(&ex_->cl_turn);
    sendBeforeClose();
  }
  if (!stream_) {
    tlsGoodbye(ex_ == nullptr || !ex_->cut);
  }
  if (h2s_ != nullptr) {
    h2s_->closeStreams();
  }
  ctx_->timers.disarm(&timer_);
  leaveQueue();
  if (ex_ != nullptr && ex_->tunnel) {
    ex_->tunnel = false;  // the tunnel ends: logged as its request, status 101
    logExchange();
  } else if (ex_ != nullptr && !ex_->logged && (!ex_->in_head || ex_->status != 0)) {
    // A request cut short (the client left, a send timeout, an error that closes) is logged
    // too: with the status it was answered, or 499 when the client left before any (nginx).
    if (ex_->status == 0) {
      ex_->status = 499;
    }
    logExchange();
  }
  if (ex_ != nullptr && ex_->up != nullptr) {
    ex_->up->close();
    releaseBackend();
    ex_->up = nullptr;
  }
  if (sm_.state() != ConnState::Closing) {
    sm_.transition(ConnState::Closing);
  }
  if (http2::Stream* st = h2st_) {
    h2st_ = nullptr;
    st->session->detach(st, false, ex_ != nullptr && (ex_->attempts > 0 || ex_->resp_started));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &ClientConn::onClose);
}

void ClientConn::onClose(uv_handle_t* h) {
  ClientConn* c = fromHandle(h);
  c->sm_.transition(ConnState::Closed);
  c->releaseExchange();
  WorkerContext* ctx = c->ctx_;
  if (c->stream_) {
    delete c;
    return;
  }
  countClosed(ctx, c->requests_, c->h2s_ != nullptr, uv_now(ctx->loop) - c->idle_since_);
  delete c->h2s_;
  c->h2s_ = nullptr;
  c->freeTls();
  --ctx->connections;
  if (c->prev_ != nullptr) {
    c->prev_->next_ = c->next_;
  } else {
    ctx->clients = c->next_;
  }
  if (c->next_ != nullptr) {
    c->next_->prev_ = c->prev_;
  }
  ctx->slot->active_connections.fetch_sub(1, std::memory_order_relaxed);
  delete c;
  if (ctx->on_connection_closed != nullptr) {
    ctx->on_connection_closed(ctx);
  }
}

void ClientConn::abort() {
  closeNow();
}

}  // namespace lb::worker
