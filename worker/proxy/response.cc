// The response's way back: parsing what the backend sends, the rewritten head, the body stream
// to the client, responses lb makes itself, and the end of an exchange.

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "shared/log/log.h"
#include "worker/access_log.h"
#include "worker/balancer/request_key.h"
#include "worker/http1/appender.h"
#include "worker/http1/error_pages.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {

using http1::equalsIgnoreCase;

namespace {

ClientConn* self(llhttp_t* p) {
  return static_cast<ClientConn*>(p->data);
}

}  // namespace

const llhttp_settings_t& ClientConn::responseSettings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_status = &ClientConn::onRespStatus;
    x.on_header_field = &ClientConn::onRespHeaderField;
    x.on_header_field_complete = &ClientConn::onRespHeaderFieldComplete;
    x.on_header_value = &ClientConn::onRespHeaderValue;
    x.on_headers_complete = &ClientConn::onRespHeadersComplete;
    x.on_body = &ClientConn::onRespBody;
    x.on_chunk_header = &ClientConn::onRespChunkHeader;
    x.on_message_complete = &ClientConn::onRespMessageComplete;
    return x;
  }();
  return s;
}

void ClientConn::onUpstreamAlloc(uv_buf_t* buf) {
  Exchange* ex = ex_;
  if (ex->rbuf == nullptr) {
    ex->rbuf = ctx_->large_buffers.get();
    ex->rbuf_start = ex->rbuf_end = 0;
  } else if (ex->cl_write_pending) {
    // The client write in flight points into the buffer: only the space after rbuf_end is free.
  } else if (ex->rbuf_start == ex->rbuf_end) {
    ex->rbuf_before = http1::lastNonBlank(ex->rbuf, ex->rbuf + ex->rbuf_end, ex->rbuf_before);
    ex->rbuf_start = ex->rbuf_end = 0;
  } else if (ex->rbuf_start > 0) {
    ex->rbuf_before = http1::lastNonBlank(ex->rbuf, ex->rbuf + ex->rbuf_start, ex->rbuf_before);
    std::memmove(ex->rbuf, ex->rbuf + ex->rbuf_start, ex->rbuf_end - ex->rbuf_start);
    ex->rbuf_end -= ex->rbuf_start;
    ex->rbuf_start = 0;
  }
  *buf = uv_buf_init(ex->rbuf + ex->rbuf_end, kLargeBufferSize - ex->rbuf_end);
}

void ClientConn::onUpstreamRead(UpstreamConn* up, ssize_t nread) {
  Exchange* ex = ex_;
  if (ex == nullptr || ex->up != up || closing_) {
    up->close();
    return;
  }
  if (ex->tunnel) {
    tunnelUpstreamRead(nread);
    return;
  }
  if (nread > 0) {
    ex->up_bytes_in = true;
    ex->rbuf_end += static_cast<uint32_t>(nread);
    ctx_->backendSlot(ex->pool, ex->backend)
        .bytes_received.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    if (!ex->up_write_pending) {
      awaitUpstream();
    }
    parseResponse();
    if (ex_ == ex && ex->up == up && ex->cl_write_pending && !closing_) {
      lookAhead();
    }
    return;
  }
  if (nread == 0) {
    return;
  }
  if (nread == UV_ENOBUFS) {
    // Backpressure: the client has not taken what we read. The backend is not late while lb
    // does not read it; its read timeout starts again when the client's write completes.
    up->stopReading();
    ctx_->timers.disarm(&up->timer);
    return;
  }
  if (ex->resp_done) {
    // The response's write may wait for the end of the loop turn.
    upstreamLostAfterResponse(static_cast<int>(nread));
    return;
  }
  if (nread == UV_EOF && (ex->rbuf_start < ex->rbuf_end || ex->cl_write_pending)) {
    // What the backend sent before its close waits for the client's write: the close is taken
    // after it, or the last bytes of a body delimited by the close would be lost.
    ex->up_eof = true;
    up->stopReading();
    ctx_->timers.disarm(&up->timer);
    return;
  }
  if (nread == UV_EOF) {
    upstreamEnded();
    return;
  }
  upstreamFailed(static_cast<int>(nread), false);
}

void ClientConn::upstreamEnded() {
  Exchange* ex = ex_;
  if (ex->resp_head_done) {
    // A body delimited by the close of the connection ends here; any other is cut short. Over
    // TLS only a close_notify closes it (RFC 9112 9.8): a bare FIN fails it, and the client
    // sees the cut (no last chunk, no close_notify) rather than a shortened body that looks
    // whole. That failure counts for passive health and the breaker, over the head's success.
    if (llhttp_message_needs_eof(&ex->resp) && ex->up->endedWithoutCloseNotify()) {
      ex->attempt_open = true;
      upstreamFailed(UV_EOF, false);
      return;
    }
    llhttp_errno_t err = llhttp_finish(&ex->resp);
    if ((err == HPE_OK || err == HPE_PAUSED) && ex->resp_pause == Pause::MessageComplete) {
      ex->resp_pause = Pause::None;
      ex->resp_done = true;
      releaseBackend();
      ex->up->stopReading();
      if (ex->cl_iovcnt > 0 && !ex->cl_write_pending) {
        flushClient();
      } else if (!ex->cl_write_pending) {
        finishExchange();
      }
      return;
    }
  }
  upstreamFailed(UV_EOF, false);
}

void ClientConn::parseResponse() {
  Exchange* ex = ex_;
  for (;;) {
    while ((ex->rbuf_start < ex->rbuf_end || ex->resp_kick) && !ex->resp_done &&
           !ex->cl_write_pending) {
      ex->resp_kick = ex->look_valid = false;
      const char* p = ex->rbuf + ex->rbuf_start;
      size_t n = ex->rbuf_end - ex->rbuf_start;
      llhttp_errno_t err = llhttp_execute(&ex->resp, p, n);
      if (err == HPE_OK) {
        ex->rbuf_start = ex->rbuf_end;
        break;
      }
      if (err == HPE_PAUSED) {
        ex->rbuf_start += static_cast<uint32_t>(llhttp_get_error_pos(&ex->resp) - p);
        llhttp_resume(&ex->resp);
        Pause why = ex->resp_pause;
        ex->resp_pause = Pause::None;
        if (why == Pause::HeadComplete) {
          ex->resp_kick = true;
          if (retryOnStatus()) {
            return;  // the request went to another backend
          }
          if (!buildClientHead()) {
            LB_ERROR("upstream %s sent a response head lb cannot forward",
                     ctx_->pools[ex->pool].pool->backends[ex->backend].address_text.c_str());
            upstreamFailed(UV_EPROTO, false);
            return;
          }
          if (ex->tunnel) {
            startTunnel();  // the parser is done with this connection
            return;
          }
          continue;
        }
        if (why == Pause::MessageComplete) {
          ex->resp_done = true;
          // The backend is done with this request: least_conn and max_connections see it free
          // now, and its connection serves others, not only once the client has taken the last
          // bytes (a slow reader holds lb's buffer, never a backend connection).
          releaseBackend();
          releaseUpstream();
          break;
        }
        break;  // IovFull
      }
      LB_ERROR("upstream %s sent an invalid response: %s (%s)",
               ctx_->pools[ex->pool].pool->backends[ex->backend].address_text.c_str(),
               llhttp_errno_name(err),
               ex->resp_refusal != nullptr ? ex->resp_refusal : llhttp_get_error_reason(&ex->resp));
      if (ex->resp_head_done && !ex->resp_started && !ex->cl_write_pending) {
        // Nothing of it has left (the head and the bad body came in one read): the client
        // gets lb's 502, as for a malformed head, not a connection closed without a word. The
        // head was counted a success as it was built; the failure is recorded over it, for
        // passive health and the circuit breaker.
        ex->cl_iovcnt = 0;
        ex->cl_nchunk = 0;
        ctx_->backendSlot(ex->pool, ex->backend).failures.fetch_add(1, std::memory_order_relaxed);
        ex->attempt_open = true;
        recordOutcome(0, "invalid response");
        closeUpstream();
        releaseBackend();
        ex->fail_status = 502;
        if (!ex->req_has_body && !ex->up_write_pending) {
          localResponse(502);
        } else {
          requestRefused(502);
        }
        return;
      }
      if (ex->resp_head_done) {
        ex->resp_close_after = true;
        if (ex->cl_iovcnt > 0) {
          // What was valid goes out; the connection then closes so the client sees the cut.
          ex->resp_done = true;
          if (ex->up != nullptr) {
            ex->up->close();
            ex->up = nullptr;
          }
          releaseBackend();
          ex->client_keepalive = false;
          cutClient();
          return;
        }
        cutClient();
        return;
      }
      upstreamFailed(UV_EPROTO, false);
      return;
    }
    if (ex->cl_iovcnt > 0 && !ex->cl_write_pending) {
      if (flushClient()) {
        if (!ex->resp_done && (ex->rbuf_start < ex->rbuf_end || ex->resp_kick)) {
          continue;  // paused on a full iovec array: parse on
        }
      } else if (closing_) {
        return;
      }
    }
    break;
  }
  if (ex->up != nullptr && ex->up_eof) {
    if (!ex->resp_done && !ex->cl_write_pending && ex->rbuf_start == ex->rbuf_end) {
      upstreamEnded();  // everything before the close is parsed
      return;
    }
  } else if (ex->up != nullptr) {
    ex->up->startReading();
  }
  if (ex->resp_done && !ex->cl_write_pending) {
    finishExchange();
  }
}

int ClientConn::onRespStatus(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  return ex->resp_head.appendStatus(at, n) ? 0 : -1;
}

int ClientConn::onRespHeaderField(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (ex->resp_head_done) {  // a trailer: one that does not fit is dropped
    ex->resp_trailers_lost = ex->resp_trailers_lost || !ex->resp_head.appendName(at, n);
    return 0;
  }
  return ex->resp_head.appendName(at, n) ? 0 : -1;
}

int ClientConn::onRespHeaderFieldComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  ex->resp_head.endName();
  if (ex->resp_head.lastNameEmpty()) {
    ex->resp_refusal = "an empty header field name";  // llhttp takes one; it is no token
    return -1;
  }
  return 0;
}

int ClientConn::onRespHeaderValue(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (http1::followsObsFold(ex->rbuf, at, n, ex->rbuf_before)) {
    ex->resp_refusal = "obs-fold in a header";
    return -1;  // the response is refused (502), RFC 9112 5.2
  }
  if (ex->resp_head_done) {
    ex->resp_trailers_lost = ex->resp_trailers_lost || !ex->resp_head.appendValue(at, n);
    return 0;
  }
  return ex->resp_head.appendValue(at, n) ? 0 : -1;
}

int ClientConn::onRespHeadersComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  int code = p->status_code;
  if (code == 101 && !ex->upgrade) {
    ex->resp_refusal = "101 Switching Protocols to a request that asked for none";
    return -1;  // the response is refused (502)
  }
  if ((p->flags & F_TRANSFER_ENCODING) && p->http_major == 1 && p->http_minor == 0) {
    // RFC 9112 6.1: such framing is faulty. Reading it as chunked, as a 1.1 response, is one
    // guess among several; the response is refused (502) and the connection closed.
    ex->resp_refusal = "Transfer-Encoding in an HTTP/1.0 response";
    return -1;
  }
  if (code < 100 || code > 599) {
    // RFC 9110 15: codes are 100-599; a client SHOULD take any other as a 5xx. Passed on, a
    // 0xx or 6xx-9xx would reach clients with no class to read it by.
    ex->resp_refusal = "a status code outside 100-599";
    return -1;
  }
  if (code < 200 && code != 101) {
    // Interim responses (100, 103) are not forwarded: lb answered Expect itself. One ends with
    // its head whatever fields it has (RFC 9112 6.3): a Content-Length or Transfer-Encoding on
    // it frames nothing, and what follows is the next response.
    ex->skip_interim = true;
    p->flags |= F_SKIPBODY;
    return 0;
  }
  if (ex->head_request || code == 204 || code == 304) {
    p->flags |= F_SKIPBODY;
  }
  ex->resp_pause = Pause::HeadComplete;
  return HPE_PAUSED;
}

int ClientConn::onRespBody(llhttp_t* p, const char* at, size_t n) {
  Exchange* ex = self(p)->ex_;
  if (ex->resp_chunk_out) {
    int k = ex->cl_nchunk++;
    int len = std::snprintf(ex->cl_chunk[k], sizeof(ex->cl_chunk[k]), "%zx\r\n", n);
    ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(ex->cl_chunk[k], static_cast<unsigned>(len));
    ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(const_cast<char*>(at), static_cast<unsigned>(n));
    ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(const_cast<char*>("\r\n"), 2);
  } else {
    ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(const_cast<char*>(at), static_cast<unsigned>(n));
  }
  return 0;
}

int ClientConn::onRespChunkHeader(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  if (ex->cl_iovcnt + 4 > kMaxIov) {
    ex->resp_pause = Pause::IovFull;
    return HPE_PAUSED;
  }
  return 0;
}

int ClientConn::onRespMessageComplete(llhttp_t* p) {
  Exchange* ex = self(p)->ex_;
  if (ex->skip_interim) {
    ex->skip_interim = false;
    ex->resp_head.reset(ex->resp_head_mem, kBufferSize);
    return 0;
  }
  if (ex->resp_chunk_out) {
    int from = ex->resp_trailers_lost ? ex->resp_head.count() : ex->resp_fields;
    std::string_view last = http1::lastChunk(ex->resp_head, from);
    ex->cl_iov[ex->cl_iovcnt++] =
        uv_buf_init(const_cast<char*>(last.data()), static_cast<unsigned>(last.size()));
  }
  ex->resp_pause = Pause::MessageComplete;
  return HPE_PAUSED;
}

// The backend's head, rewritten for the client: hop-by-hop headers dropped, framing chosen for
// this client (a body of unknown length is chunked for HTTP/1.1 and close-delimited for 1.0).
bool ClientConn::buildClientHead() {
  Exchange* ex = ex_;
  llhttp_t* p = &ex->resp;
  ex->resp_head_done = true;
  ex->resp_fields = ex->resp_head.count();
  ex->upstream_status = p->status_code;
  ex->status = p->status_code;
  ex->up_header_ms = uv_now(ctx_->loop);
  const PoolRuntime& pr = ctx_->pools[ex->pool];
  if (pr.balancer->wantsResponseTimes()) {
    // Time to the response head: what least_time and peak_ewma steer by.
    pr.balancer->recordResponse(ex->backend, uv_hrtime() / 1000 - ex->up_start_us,
                                ex->up_header_ms);
  }
  if (ex->cl_head == nullptr) {
    ex->cl_head = ctx_->buffers.get();
  }
  const http1::HeadArena& h = ex->resp_head;
  bool no_body = (p->flags & F_SKIPBODY) != 0;
  bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  bool chunked = (p->flags & F_CHUNKED) != 0;
  bool client11 = ex->req.http_minor >= 1;
  ex->tunnel = p->status_code == 101;  // only an upgrade request gets this far with a 101
  bool close = !ex->tunnel && (!ex->client_keepalive || closeForDrain() || !ex->req_done);
  uint32_t max_requests = listener_->limits.keepalive_requests;
  if (max_requests != 0 && requests_ >= max_requests) {
    close = true;
  }
  ex->resp_chunk_out = false;
  if (!no_body && !has_length && !stream_ && !ex->tunnel) {  // HTTP/2 frames the body itself
    if (client11) {
      ex->resp_chunk_out = true;
    } else {
      close = true;  // HTTP/1.0 client: the close marks the end
    }
  }
  ex->resp_close_after = close;

  http1::Appender out(ex->cl_head, kBufferSize);
  out << "HTTP/1.1 " << static_cast<uint64_t>(p->status_code) << " ";
  std::string_view reason = h.status();
  // A reason with control bytes (NUL, ESC, ...) is not one (RFC 9112 4) and could play tricks
  // on a terminal or a log: the client, which should ignore the text anyway, gets the standard.
  bool plain = std::none_of(reason.begin(), reason.end(), [](char ch) {
    return (static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f;
  });
  out << (reason.empty() || !plain ? http1::reasonPhrase(p->status_code) : reason) << "\r\n";
  // Headers named in Connection are hop-by-hop too; most messages have no such list.
  const bool has_connection = http1::connectionNamesFields(h);
  for (int i = 0; i < h.count(); ++i) {
    std::string_view n = h.name(i);
    if (ex->tunnel && n.size() == 7 && equalsIgnoreCase(n, "upgrade")) {
      out.header(n, h.value(i));
      continue;
    }
    if (http1::isHopByHop(n) || (has_connection && http1::isConnectionToken(h, n))) {
      // Content-Length is framing lb keeps as the backend sent it (also for HEAD and 304).
      if (has_length && n.size() == 14 && equalsIgnoreCase(n, "content-length")) {
        out.header(n, h.value(i));
      } else if (no_body && chunked && n.size() == 17 && equalsIgnoreCase(n, "transfer-encoding")) {
        out.header(n, h.value(i));
      }
      continue;
    }
    out.header(n, h.value(i));
  }
  if (pr.pool->sticky.enabled &&
      needsStickyCookie(*pr.pool, *pr.balancer, ex->req_head, ex->backend)) {
    appendStickyCookie(out, pr.pool->sticky, *pr.balancer, ex->backend);
  }
  if (ex->resp_chunk_out) {
    out << "Transfer-Encoding: chunked\r\n";
  }
  if (ex->tunnel) {
    out << "Connection: upgrade\r\n";
  } else if (close) {
    out << "Connection: close\r\n";
  } else if (!client11) {
    out << "Connection: keep-alive\r\n";
  }
  out << "\r\n";
  if (!out.ok()) {
    return false;  // upstreamFailed() counts it as the backend's failure
  }
  recordOutcome(p->status_code, nullptr);
  sm_.transition(ConnState::SendingResponse);
  ex->cl_iovcnt = 0;
  ex->cl_nchunk = 0;
  ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(ex->cl_head, static_cast<unsigned>(out.size()));
  return true;
}

bool ClientConn::flushClient() {
  Exchange* ex = ex_;
  size_t bytes = iovBytes(ex->cl_iov, ex->cl_iovcnt);
  ex->resp_bytes += bytes;
  ex->resp_started = true;
  if (sm_.state() == ConnState::ReadingResponse) {
    sm_.transition(ConnState::SendingResponse);
  }
  if (stream_) {
    return h2Flush();
  }
  if (ex->resp_bytes > bytes) {
    setNoDelay();  // a response in several writes (a stream): each must leave at once
  }
  ex->cl_write_pending = true;
  ex->cl_turn.data = this;
  ex->cl_turn.run = &ClientConn::onTurnWrite;
  ctx_->turn.push(&ex->cl_turn);
  return false;
}

void ClientConn::onTurnWrite(TurnNode* node) {
  auto* c = static_cast<ClientConn*>(node->data);
  if (c->sendClientIov()) {
    c->clientWriteDone(0);
  }
}

bool ClientConn::sendClientIov() {
  Exchange* ex = ex_;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (tls_ != nullptr) {
    // The plaintext is copied into TLS records at once; the ciphertext write stands for it.
    if (!tlsWrite(ex->cl_iov, ex->cl_iovcnt)) {
      return false;
    }
    ex->cl_iovcnt = 0;
    ex->cl_nchunk = 0;
    if (ex->resp_done && ex->resp_close_after) {
      tlsCloseNotify(false);  // the last response: its close_notify leaves in the same write
    }
    if (tlsFlush()) {
      return true;
    }
    if (!closing_) {
      ex->cl_write_pending = true;
      armClientTimer(listener_->limits.send_timeout_ms);
    }
    return false;
  }
  ex->cl_wreq.data = this;
  int rc = writeIov(stream, &ex->cl_wreq, ex->cl_iov, ex->cl_iovcnt, &ClientConn::onClientWritten);
  if (rc == 1) {
    ex->cl_iovcnt = 0;
    ex->cl_nchunk = 0;
    return true;
  }
  if (rc < 0) {
    closeNow();
    return false;
  }
  ex->cl_write_pending = true;
  armClientTimer(listener_->limits.send_timeout_ms);
  return false;
}

void ClientConn::onClientWritten(uv_write_t* req, int status) {
  static_cast<ClientConn*>(req->data)->clientWriteDone(status);
}

void ClientConn::clientWriteDone(int status) {
  ClientConn* c = this;
  Exchange* ex = c->ex_;
  if (c->closing_ || ex == nullptr) {
    return;
  }
  ex->cl_write_pending = false;
  ex->cl_iovcnt = 0;
  ex->cl_nchunk = 0;
  c->ctx_->timers.disarm(&c->timer_);
  if (status < 0) {
    c->closeNow();
    return;
  }
  if (ex->tunnel) {
    c->tunnelWritten();
    return;
  }
  if (ex->resp_done) {
    c->finishExchange();
    return;
  }
  if (ex->up != nullptr) {
    c->sm_.transition(ConnState::ReadingResponse);
    if (!ex->resp_done && !ex->up_write_pending) {
      c->awaitUpstream();
    }
    c->parseResponse();
  } else if (ex->rbuf_start < ex->rbuf_end || ex->resp_kick) {
    c->parseResponse();  // the rest of a response whose backend connection went back early
  }
}

// TCP_NODELAY only once a connection needs it (a second request, a streamed response): a
// connection that carries one response in one write never pays the setsockopt.
void ClientConn::setNoDelay() {
  if (!nodelay_ && !stream_) {
    nodelay_ = true;
    uv_tcp_nodelay(&tcp_, 1);
  }
}

void ClientConn::writeClient(const char* data, size_t len) {
  Exchange* ex = ex_;
  ex->cl_iovcnt = 0;
  ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
  flushClient();
}

// An error lb answers itself once the request body has been read (so the connection can stay).
void ClientConn::localResponse(int status) {
  Exchange* ex = ex_;
  ex->local_status = status;
  ex->discard_body = true;
  ex->body_ok = true;
  if (!ex->in_parse) {
    parseRequest();
  }
}

void ClientConn::respondLocal() {
  Exchange* ex = ex_;
  if (ex->static_resp != nullptr) {
    sendStatic(*ex->static_resp);
  } else {
    sendError(ex->local_status);
  }
}

void ClientConn::sendError(int status) {
  Exchange* ex = ex_;
  bool close = !ex->req_done || !ex->client_keepalive || closeForDrain() ||
               ex->req.http_minor == 0 || status == 400 || status == 408 || status == 413 ||
               status == 414 || status == 431 || status == 505;
  ex->status = status;
  ex->resp_close_after = close;
  ex->resp_done = true;
  ctx_->count(http1::errorCounter(status));
  if (sm_.state() == ConnState::ReadingRequest) {
    sm_.transition(ConnState::ParsingRequest);
  }
  if (sm_.state() != ConnState::SendingResponse) {
    sm_.transition(ConnState::SendingResponse);
  }
  std::string_view text = http1::errorResponse(status, close, ex->head_request);
  writeClient(text.data(), text.size());
}

void ClientConn::sendStatic(const config::StaticResponse& r) {
  Exchange* ex = ex_;
  if (ex->cl_head == nullptr) {
    ex->cl_head = ctx_->buffers.get();
  }
  bool close = !ex->client_keepalive || closeForDrain();
  uint32_t max_requests = listener_->limits.keepalive_requests;
  if (max_requests != 0 && requests_ >= max_requests) {
    close = true;
  }
  ex->status = r.status;
  ex->resp_close_after = close;
  ex->resp_done = true;
  http1::Appender out(ex->cl_head, kBufferSize);
  out << "HTTP/1.1 " << static_cast<uint64_t>(r.status) << " " << http1::reasonPhrase(r.status)
      << "\r\n";
  bool has_type = false;
  for (const auto& [name, value] : r.headers) {
    has_type = has_type || equalsIgnoreCase(name, "content-type");
    out.header(name, value);
  }
  if (!has_type) {
    out << "Content-Type: text/plain\r\n";
  }
  out << "Content-Length: " << static_cast<uint64_t>(r.body.size()) << "\r\n";
  if (close) {
    out << "Connection: close\r\n";
  } else if (ex->req.http_minor == 0) {
    out << "Connection: keep-alive\r\n";
  }
  out << "\r\n";
  if (sm_.state() != ConnState::SendingResponse) {
    sm_.transition(ConnState::SendingResponse);
  }
  ex->cl_iovcnt = 0;
  ex->cl_iov[ex->cl_iovcnt++] = uv_buf_init(ex->cl_head, static_cast<unsigned>(out.size()));
  if (!ex->head_request && !r.body.empty()) {
    ex->cl_iov[ex->cl_iovcnt++] =
        uv_buf_init(const_cast<char*>(r.body.data()), static_cast<unsigned>(r.body.size()));
  }
  flushClient();
}

// The response is out. Log it, give the upstream back, and go on with the next request, keep
// the connection idle, or close it.
void ClientConn::finishExchange() {
  Exchange* ex = ex_;
  if (sm_.state() == ConnState::ReadingResponse) {
    sm_.transition(ConnState::SendingResponse);
  }
  logExchange();
  if (ex->up != nullptr) {
    releaseBackend();
    ex->up->release(upstreamReusable());
    ex->up = nullptr;
  }
  if (stream_) {
    h2Finish();
    return;
  }
  if (ex->resp_close_after || !ex->req_done || closing_) {
    // Linger only when the client may still be sending: an unread body, pipelined bytes, or a
    // refused request whose input cannot be trusted to have ended. A complete request answered
    // with Connection: close is closed at once (nginx's "lingering_close on").
    bool may_send_more = !ex->req_done || ex->in_start < ex->in_end || ex->refused;
    if (may_send_more && !ex->client_eof) {
      lingeringClose(kLingerMs);
    } else {
      closeNow();
    }
    return;
  }
  setNoDelay();  // the connection carries more requests: small responses must not wait on Nagle
  sm_.transition(ConnState::KeepAlive);
  ctx_->large_buffers.put(ex->rbuf);
  ex->rbuf = nullptr;
  resetForNextRequest();
  if (ex->in_start < ex->in_end) {
    armClientTimer(listener_->limits.header_timeout_ms);
    parseRequest();  // a pipelined request is already here
    return;
  }
  releaseExchange();
  idle_since_ = uv_now(ctx_->loop);
  if (draining_ || ctx_->draining) {
    // Draining with keep-alive promised (or kept for the handoff): hand it off or close it
    // safely, never abruptly, since the client may be sending its next request right now.
    drainIdle();
    return;
  }
  armClientTimer(listener_->limits.keepalive_timeout_ms);
  startReading();
}

void ClientConn::lookAhead() {
  Exchange* ex = ex_;
  if (ex->resp_done || !ex->resp_head_done || ex->skip_interim || ex->tunnel || !ex->req_done ||
      ex->up_write_pending) {
    return;
  }
  // A copy of the parser with no callback but the end of the message: it forwards nothing.
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_message_complete = [](llhttp_t*) { return static_cast<int>(HPE_PAUSED); };
    return x;
  }();
  if (!ex->look_valid) {
    ex->look = ex->resp;
    ex->look.settings = const_cast<llhttp_settings_t*>(&settings);
    ex->look_end = ex->rbuf_start;
    ex->look_valid = true;
  }
  // The copy goes on from where the last read left it: each byte is looked at once.
  const char* p = ex->rbuf + ex->look_end;
  const char* end = ex->rbuf + ex->rbuf_end;
  llhttp_errno_t err = llhttp_execute(&ex->look, p, static_cast<size_t>(end - p));
  ex->look_end = ex->rbuf_end;
  if (err != HPE_PAUSED || llhttp_get_error_pos(&ex->look) != end) {
    // Not whole yet, or followed by bytes no response owns (the usual path decides), or invalid
    // (the parser will say so): a paused or failed copy stays so.
    return;
  }
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  bool reusable = http1::keepAlive(&ex->look) &&
                  (pool.keepalive_requests == 0 || ex->up->requests() < pool.keepalive_requests);
  releaseBackend();
  ex->up->release(reusable);
  ex->up = nullptr;
}

bool ClientConn::upstreamReusable() const {
  const Exchange* ex = ex_;
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  return ex->req_done && ex->resp_done && !ex->up_eof && http1::keepAlive(&ex->resp) &&
         ex->rbuf_start == ex->rbuf_end && !ex->up_write_pending &&
         (pool.keepalive_requests == 0 || ex->up->requests() < pool.keepalive_requests);
}

void ClientConn::releaseUpstream() {
  Exchange* ex = ex_;
  // While the request is still going out, the backend connection stays with it (it closes at
  // the end of the exchange: its remaining body has nowhere to go).
  if (ex->up == nullptr || !ex->req_done || ex->up_write_pending) {
    return;
  }
  ex->up->release(upstreamReusable());
  ex->up = nullptr;
}

void ClientConn::logExchange() {
  Exchange* ex = ex_;
  if (ex->logged) {
    return;
  }
  ex->logged = true;
  ctx_->count(http1::classCounter(ex->status));
  logAccess();
}

void ClientConn::logAccess() {
  if (ctx_->access_log == nullptr) {
    return;
  }
  Exchange* ex = ex_;
  AccessEntry e;
  e.peer_family = peer_family_;
  e.peer_addr = peer_addr_;
  e.method = llhttp_method_name(static_cast<llhttp_method_t>(ex->req.method));
  e.url = ex->req_head.url();
  e.http_minor = stream_ ? 20 : ex->req.http_minor;
  e.status = ex->status;
  e.bytes = ex->resp_bytes;
  if (ex->pool >= 0 && ex->backend >= 0 && ex->up_start_ms != 0) {
    e.upstream = ctx_->pools[ex->pool].pool->backends[ex->backend].address_text;
    e.upstream_status = ex->upstream_status;
    uint64_t end = ex->up_header_ms != 0 ? ex->up_header_ms : uv_now(ctx_->loop);
    e.upstream_ms = static_cast<int64_t>(end - ex->up_start_ms);
  }
  e.request_ms = static_cast<int64_t>(uv_now(ctx_->loop) - ex->start_ms);
  ctx_->access_log->write(e);
}

}  // namespace lb::worker
