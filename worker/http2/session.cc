// nghttp2's server session on a client connection, and the streams it hands to exchanges.

#include "worker/http2/session.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "shared/log/log.h"
#include "worker/asan.h"
#include "worker/http1/error_pages.h"
#include "worker/http2/mem.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker::http2 {
namespace {

// Frames are gathered up to this much before a socket write.
constexpr size_t kOutChunk = 64 * 1024;
// Between the shutdown notice and the final GOAWAY of a drain: a round trip, comfortably.
constexpr uint32_t kGoawayDelayMs = 1000;

Session* self(void* user) {
  return static_cast<Session*>(user);
}

Stream* streamOf(nghttp2_session* ng, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(ng, id));
}

nghttp2_nv field(const char* name, const char* value, size_t value_len) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value)), std::strlen(name),
                    value_len, NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

Session::Session(WorkerContext* ctx, const config::Listener* listener, ClientConn* carrier)
    : ctx_(ctx), listener_(listener), carrier_(carrier) {
  turn_.data = this;
  turn_.run = [](TurnNode* node) { static_cast<Session*>(node->data)->flush(); };
  drain_timer_.data = this;
  drain_timer_.on_timeout = [](TimerNode* node) {
    auto* s = static_cast<Session*>(node->data);
    // Phase two: the streams the client started before it saw the notice are served, no more.
    nghttp2_submit_goaway(s->ng_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(s->ng_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    s->goaway_sent_ = true;
    s->flush();
  };
}

Session* Session::create(WorkerContext* ctx, const config::Listener* listener,
                         ClientConn* carrier) {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Session::onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Session::onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Session::onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Session::onDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Session::onStreamClose);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Session::onFrameSend);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Session::onBeginFrame);
    return cb;
  }();
  const config::Http2& cfg = listener->http2;
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows open as the exchange forwards the body, not as bytes arrive: a backend that does not
  // read stops the client (flow control end to end) instead of filling lb's memory.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_no_closed_streams(opt, 1);
  // lb counts resets itself (Session::reset) to answer ENHANCE_YOUR_CALM; nghttp2's own limiter,
  // which answers INTERNAL_ERROR, only backs it up.
  nghttp2_option_set_stream_reset_rate_limit(opt, uint64_t{cfg.max_resets_burst} * 2,
                                             uint64_t{cfg.max_resets_per_s} * 2);
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_max_outbound_ack(opt, 100);
  auto* s = new Session(ctx, listener, carrier);
  s->reset_tokens_ = cfg.max_resets_burst;
  s->reset_refill_ms_ = uv_now(ctx->loop);
  int rc = nghttp2_session_server_new3(&s->ng_, callbacks, s, opt, workerMem());
  nghttp2_option_del(opt);
  if (rc != 0) {
    delete s;
    return nullptr;
  }
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, listener->limits.max_header_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(s->ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // The connection's window: room for several streams' windows, so that one stalled stream does
  // not stop the others.
  int32_t conn_window =
      static_cast<int32_t>(std::min<uint64_t>(uint64_t{cfg.initial_window_size} * 16, (1u << 30)));
  nghttp2_session_set_local_window_size(s->ng_, NGHTTP2_FLAG_NONE, 0,
                                        std::max<int32_t>(conn_window, 1 << 20));
  return s;
}

Session::~Session() {
  ctx_->timers.disarm(&drain_timer_);
  ctx_->turn.cancel(&turn_);
  for (Stream* s : streams_) {
    freeStream(s);
  }
  nghttp2_session_del(ng_);
}

void Session::schedule() {
  if (flushing_) {
    again_ = true;
    return;
  }
  if (!closed_) {
    ctx_->turn.push(&turn_);
  }
}

void Session::flush() {
  if (busy_ || closed_) {
    again_ = true;
    return;
  }
  if (flushing_) {
    again_ = true;
    return;
  }
  flushing_ = true;
  do {
    again_ = false;
    runStreams();
    if (closed_) {
      break;
    }
    if (!write_pending_) {
      busy_ = true;
      while (out_.size() < kOutChunk) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(ng_, &data);
        if (n < 0) {
          LB_INFO("HTTP/2 session with %s failed: %s", carrier_->peerText().c_str(),
                  nghttp2_strerror(static_cast<int>(n)));
          want_close_ = true;
          break;
        }
        if (n == 0) {
          break;
        }
        out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      busy_ = false;
      if (!written_.empty() || !ready_.empty() || !gone_.empty()) {
        again_ = true;  // DATA taken from streams: their exchanges go on
      }
      if (!out_.empty()) {
        inflight_.swap(out_);
        out_.clear();
        int rc = carrier_->h2Write(&inflight_);
        if (rc < 0) {
          closed_ = true;
          break;
        }
        if (rc == 0) {
          write_pending_ = true;
        } else {
          inflight_.clear();
          again_ = true;
        }
      }
    }
  } while (again_ && !closed_);
  flushing_ = false;
  sweep();
  if (closed_ || write_pending_) {
    return;
  }
  if (want_close_ ||
      (nghttp2_session_want_read(ng_) == 0 && nghttp2_session_want_write(ng_) == 0)) {
    closed_ = true;
    closeStreams();
    carrier_->h2Finished();
    return;
  }
  if (open_streams_ == 0) {
    carrier_->h2Idle();  // the keep-alive timeout runs from the last stream's end
  }
}

void Session::onWritten(int status) {
  write_pending_ = false;
  inflight_.clear();
  if (status < 0) {
    closed_ = true;
    return;  // the carrier closes
  }
  flush();
}

void Session::closeStreams() {
  closed_ = true;
  // Exchanges are aborted without nghttp2: the connection is going away.
  std::vector<Stream*> live;
  for (Stream* s : streams_) {
    if (s->conn != nullptr) {
      live.push_back(s);
    }
  }
  for (Stream* s : live) {
    ClientConn* c = s->conn;
    s->conn = nullptr;
    s->out_bufs.clear();
    c->h2Abort();
  }
}

void Session::drain() {
  if (draining_ || closed_) {
    return;
  }
  draining_ = true;
  nghttp2_submit_shutdown_notice(ng_);
  ctx_->timers.arm(&drain_timer_, kGoawayDelayMs);
  flush();
}

void Session::idleTimeout() {
  if (closed_) {
    return;
  }
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  goaway_sent_ = true;
  want_close_ = true;
  flush();
}

bool Session::submitResponse(Stream* s, const uv_buf_t* iov, int iovcnt, bool last) {
  size_t head_len = 0;
  if (iovcnt == 0 ||
      !responseFields(std::string_view(iov[0].base, iov[0].len), &fields_, &head_len)) {
    return false;
  }
  s->head_sent = true;
  s->out_bufs.clear();
  if (head_len < iov[0].len) {
    s->out_bufs.push_back(
        uv_buf_init(iov[0].base + head_len, static_cast<unsigned>(iov[0].len - head_len)));
  }
  for (int i = 1; i < iovcnt; ++i) {
    if (iov[i].len > 0) {
      s->out_bufs.push_back(iov[i]);
    }
  }
  s->out_pos = 0;
  s->out_off = 0;
  s->out_eof = last;
  int rc;
  if (last && s->out_bufs.empty() && s->resp_trailers.empty()) {
    rc = nghttp2_submit_response(ng_, s->id, fields_.nv.data(), fields_.nv.size(), nullptr);
    written_.push_back(s);
  } else {
    nghttp2_data_provider prd;
    prd.source.ptr = s;
    prd.read_callback = &Session::onRead;
    rc = nghttp2_submit_response(ng_, s->id, fields_.nv.data(), fields_.nv.size(), &prd);
    if (s->out_bufs.empty()) {
      written_.push_back(s);  // nothing of the body yet: the write is done
    }
  }
  if (rc != 0) {
    LB_INFO("HTTP/2 response on stream %d to %s failed: %s", s->id, carrier_->peerText().c_str(),
            nghttp2_strerror(rc));
    return false;
  }
  schedule();
  return true;
}

void Session::submitData(Stream* s, const uv_buf_t* iov, int iovcnt, bool last) {
  s->out_bufs.assign(iov, iov + iovcnt);
  std::erase_if(s->out_bufs, [](const uv_buf_t& b) { return b.len == 0; });
  s->out_pos = 0;
  s->out_off = 0;
  s->out_eof = last;
  if (s->out_bufs.empty() && !last) {
    written_.push_back(s);
  }
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(ng_, s->id);
  }
  schedule();
}

void Session::submitContinue(Stream* s) {
  nghttp2_nv nv[] = {field(":status", "100", 3)};
  nghttp2_submit_headers(ng_, NGHTTP2_FLAG_NONE, s->id, nullptr, nv, 1, nullptr);
  schedule();
}

void Session::consumed(Stream* s, size_t n) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(n, s->unconsumed));
  if (s->in_off >= s->in.size()) {
    take = static_cast<size_t>(s->unconsumed);  // framing bytes counted short: all of it is out
  }
  if (take == 0) {
    return;
  }
  s->unconsumed -= take;
  if (s->closed) {
    nghttp2_session_consume_connection(ng_, take);
  } else {
    nghttp2_session_consume(ng_, s->id, take);
  }
  schedule();
}

// Request bytes nobody will take: their window goes back, or the connection's would shrink for
// good.
void Session::dropInput(Stream* s) {
  s->in.clear();
  s->in_off = 0;
  consumed(s, static_cast<size_t>(s->unconsumed));
}

void Session::detach(Stream* s, bool complete, bool processed) {
  s->conn = nullptr;
  dropInput(s);
  if (!s->closed) {
    if (complete) {
      if (!s->out_eof) {
        s->out_eof = true;
        s->out_bufs.clear();
        if (s->deferred) {
          s->deferred = false;
          nghttp2_session_resume_data(ng_, s->id);
        }
      }
    } else {
      // The exchange failed after the response started, or the client's request was cut: the
      // stream ends without a clean end of the response.
      s->out_bufs.clear();
      s->out_eof = true;
      // REFUSED_STREAM tells the client it may retry: only for a request no backend saw
      // (RFC 9113 8.7).
      nghttp2_submit_rst_stream(
          ng_, NGHTTP2_FLAG_NONE, s->id,
          processed || s->head_sent ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_REFUSED_STREAM);
    }
  } else {
    s->out_bufs.clear();
  }
  doom(s);
  schedule();
}

void Session::doom(Stream* s) {
  if (!s->doomed) {
    s->doomed = true;
    doomed_.push_back(s);
  }
}

namespace {

constexpr size_t kSpareStreams = 1024;  // per worker

}  // namespace

void Stream::recycle() {
  head.clear();  // keeps its small buffers
  RequestHead kept_head = std::move(head);
  std::string in_buf = takeSmallBuffer(in);
  std::vector<uv_buf_t> bufs;
  if (out_bufs.capacity() <= 64) {
    bufs.swap(out_bufs);
    bufs.clear();
  }
  // A fresh object, not an assignment: assigning an empty string keeps the old buffer.
  this->~Stream();
  new (this) Stream();
  head = std::move(kept_head);
  in.swap(in_buf);
  out_bufs.swap(bufs);
}

void releaseSpareStreams(WorkerContext* ctx) {
  for (Stream* s : ctx->h2_spare_streams) {
    unpoisonMemory(s, sizeof *s);
    delete s;
  }
  ctx->h2_spare_streams.clear();
}

Stream* Session::newStream() {
  std::vector<Stream*>& spare = ctx_->h2_spare_streams;
  if (spare.empty()) {
    return new Stream;
  }
  Stream* s = spare.back();
  spare.pop_back();
  unpoisonMemory(s, sizeof *s);
  return s;
}

void Session::freeStream(Stream* s) {
  std::vector<Stream*>& spare = ctx_->h2_spare_streams;
  if (spare.size() >= kSpareStreams) {
    delete s;
    return;
  }
  s->recycle();
  poisonMemory(s, sizeof *s);  // a use through a stale pointer is reported as after a delete
  spare.push_back(s);
}

// Streams whose exchange is gone and that nghttp2 closed are freed.
void Session::sweep() {
  if (busy_ || flushing_) {
    return;
  }
  std::erase_if(doomed_, [this](Stream* s) {
    if (s->conn != nullptr || !s->closed || s->ready || s->in_written || s->in_gone) {
      return false;
    }
    std::erase(streams_, s);
    freeStream(s);
    return true;
  });
}

ssize_t Session::onRead(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                        nghttp2_data_source* source, void* user) {
  auto* s = static_cast<Stream*>(source->ptr);
  size_t copied = 0;
  size_t n = s->out_bufs.size();
  while (copied < length && static_cast<size_t>(s->out_pos) < n) {
    const uv_buf_t& b = s->out_bufs[static_cast<size_t>(s->out_pos)];
    size_t take = std::min<size_t>(b.len - s->out_off, length - copied);
    std::memcpy(buf + copied, b.base + s->out_off, take);
    copied += take;
    s->out_off += take;
    if (s->out_off == b.len) {
      ++s->out_pos;
      s->out_off = 0;
    }
  }
  bool all_taken = static_cast<size_t>(s->out_pos) >= n;
  if (all_taken && n > 0) {
    s->out_bufs.clear();
    s->out_pos = 0;
    if (s->conn != nullptr) {
      self(user)->written_.push_back(s);  // the exchange's write is complete
      s->in_written = true;
    }
  }
  if (all_taken && s->out_eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    Session* ss = self(user);
    if (!s->resp_trailers.empty() && trailerFields(s->resp_trailers, &ss->trailer_fields_) &&
        !ss->trailer_fields_.nv.empty() &&
        nghttp2_submit_trailer(ss->ng_, s->id, ss->trailer_fields_.nv.data(),
                               ss->trailer_fields_.nv.size()) == 0) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;  // the trailers' HEADERS ends the stream
    }
    s->resp_trailers.clear();
    return static_cast<ssize_t>(copied);
  }
  if (copied == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(copied);
}

int Session::onBeginHeaders(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  Session* ss = self(user);
  ss->ctx_->count(shm::Counter::H2Streams);
  ss->head_started_ms_ = uv_now(ss->ctx_->loop);
  ss->head_stream_ = frame->hd.stream_id;
  Stream* s = ss->newStream();
  s->id = frame->hd.stream_id;
  s->session = ss;
  ss->streams_.push_back(s);
  ++ss->open_streams_;
  nghttp2_session_set_stream_user_data(ng, s->id, s);
  return 0;
}

int Session::onHeader(nghttp2_session* ng, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  Stream* s = streamOf(ng, frame->hd.stream_id);
  if (s == nullptr || frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    addRequestField(&s->head, n, v, self(user)->listener_->limits.max_header_size);
  } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
    s->trailer_size += namelen + valuelen + 32;
    if (s->trailer_size <= self(user)->listener_->limits.max_header_size) {
      addTrailerField(n, v, &s->trailers);
    }
  }
  return 0;
}

int Session::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  Session* ss = self(user);
  Stream* s = streamOf(ss->ng_, frame->hd.stream_id);
  bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (frame->hd.stream_id == ss->head_stream_) {
        ss->head_started_ms_ = 0;
      }
      if (s == nullptr) {
        return 0;
      }
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        ss->requestHead(s, end);
      } else if (end) {
        ss->requestEnd(s);
      }
      return 0;
    case NGHTTP2_DATA:
      if (s != nullptr && end) {
        ss->requestEnd(s);
      }
      return 0;
    case NGHTTP2_RST_STREAM:
      ss->reset();
      return 0;
    default:
      return 0;
  }
}

void Session::requestHead(Stream* s, bool end) {
  bool body_follows = !end;
  bool zero_length = s->head.zero_length;
  s->in.clear();  // keeps the buffer of the stream this one was recycled from
  if (!buildRequestHead(&s->head, body_follows, &s->in, &s->chunked)) {
    LB_INFO("HTTP/2 request from %s refused (%d): %s", carrier_->peerText().c_str(), s->head.status,
            s->head.reason.c_str());
    refuse(s, s->head.status);
    return;
  }
  s->in_off = 0;
  // With content-length 0 the head alone is the whole request: its last byte waits for
  // END_STREAM like a body's would (h2Feed).
  s->head_len = s->in.size() - (zero_length && !end ? 1 : 0);
  s->total_in = s->in.size();
  s->head.clear();
  if (end) {
    s->in_ended = true;
    s->request_open = false;
  }
  markReady(s);
}

void Session::requestEnd(Stream* s) {
  s->request_open = false;
  if (s->refused || s->in_ended) {
    return;
  }
  s->in_ended = true;
  if (s->chunked) {
    size_t before = s->in.size();
    s->in += "0\r\n";
    s->in += s->trailers;
    s->in += "\r\n";
    s->total_in += s->in.size() - before;
  }
  s->trailers.clear();
  markReady(s);
}

// A request lb answers itself before any exchange: the head cannot be forwarded.
void Session::refuse(Stream* s, int status) {
  s->refused = true;
  ctx_->count(http1::errorCounter(status));
  ctx_->count(http1::classCounter(status));
  char code[4];
  std::snprintf(code, sizeof code, "%03d", status);
  nghttp2_nv nv[] = {field(":status", code, 3), field("content-length", "0", 1)};
  nghttp2_submit_response(ng_, s->id, nv, 2, nullptr);
  s->out_eof = true;
}

int Session::onDataChunk(nghttp2_session* ng, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* user) {
  Stream* s = streamOf(ng, id);
  if (s == nullptr || s->refused || (s->started && s->conn == nullptr)) {
    nghttp2_session_consume(ng, id, len);  // nobody takes it: dropped, the window reopens
    return 0;
  }
  size_t before = s->in.size();
  if (s->chunked) {
    char size[20];
    int k = std::snprintf(size, sizeof size, "%zx\r\n", len);
    s->in.append(size, static_cast<size_t>(k));
  }
  s->in.append(reinterpret_cast<const char*>(data), len);
  if (s->chunked) {
    s->in += "\r\n";
  }
  s->total_in += s->in.size() - before;
  s->unconsumed += len;
  self(user)->markReady(s);
  return 0;
}

int Session::onStreamClose(nghttp2_session* ng, int32_t id, uint32_t error, void* user) {
  Session* ss = self(user);
  Stream* s = streamOf(ng, id);
  if (s == nullptr) {
    return 0;
  }
  nghttp2_session_set_stream_user_data(ng, id, nullptr);
  if (id == ss->head_stream_) {
    ss->head_started_ms_ = 0;
  }
  if (error != NGHTTP2_NO_ERROR) {
    ss->ctx_->count(shm::Counter::H2Resets);
  }
  s->closed = true;
  s->request_open = false;
  --ss->open_streams_;
  if (!s->reset_sent) {
    ss->closed_ids_[ss->closed_next_] = id;
    ss->closed_next_ = (ss->closed_next_ + 1) % kClosedIds;
  }
  bool complete = s->out_eof && s->out_bufs.empty() && s->head_sent;
  if ((s->conn != nullptr && (!complete || error != NGHTTP2_NO_ERROR)) || s->unconsumed > 0) {
    // The client reset it, or the connection ends: the exchange stops, and DATA nobody will
    // take gives its connection window back.
    s->in_gone = true;
    ss->gone_.push_back(s);
  }
  ss->doom(s);
  return 0;
}

int Session::onFrameSend(nghttp2_session* ng, const nghttp2_frame* frame, void*) {
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    if (Stream* s = streamOf(ng, frame->hd.stream_id); s != nullptr) {
      s->reset_sent = true;
    }
    return 0;
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0 ||
      (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS)) {
    return 0;
  }
  Stream* s = streamOf(ng, frame->hd.stream_id);
  if (s != nullptr && s->request_open) {
    // The response is complete before the request: the client is told to stop sending
    // (RFC 9113 8.1), as nginx does.
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

void Session::markReady(Stream* s) {
  if (!s->ready) {
    s->ready = true;
    ready_.push_back(s);
  }
}

void Session::streamReady(Stream* s) {
  markReady(s);
  schedule();
}

std::vector<Stream*>& Session::take(std::vector<Stream*>* list) {
  scratch_.clear();
  scratch_.swap(*list);
  return scratch_;
}

void Session::runStreams() {
  while (!ready_.empty() || !written_.empty() || !gone_.empty()) {
    // Each list is swapped with scratch_ (both keep their capacity): exchanges run from here
    // may add to the lists while one is walked.
    for (Stream* s : take(&gone_)) {
      s->in_gone = false;
      dropInput(s);
      if (s->conn != nullptr) {
        ClientConn* c = s->conn;
        s->conn = nullptr;
        s->out_bufs.clear();
        c->h2Abort();
      }
    }
    for (Stream* s : take(&ready_)) {
      s->ready = false;
      if (s->closed || s->refused) {
        continue;
      }
      if (!s->started) {
        s->started = true;
        if (draining_ && goaway_sent_) {
          dropInput(s);
          continue;
        }
        s->conn = ClientConn::openStream(carrier_, s);
      }
      if (s->conn != nullptr) {
        s->conn->h2Feed();
      }
    }
    for (Stream* s : take(&written_)) {
      s->in_written = false;
      if (s->conn != nullptr) {
        s->conn->h2WriteDone();
      }
    }
  }
}

}  // namespace lb::worker::http2
