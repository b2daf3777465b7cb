// The client's side of an HTTP/2 connection before and around nghttp2: what RFC 9113 asks that
// nghttp2 does not check in lb's mode (no closed-stream memory, no RFC 7540 priorities), and the
// budgets that end a flooding client (rapid reset, control frames).
//
// A small scanner follows the frame headers in the client's bytes ahead of nghttp2. It stops at
// the two frames nghttp2 would drop before any callback in this mode, DATA on a stream it has
// not open and a PRIORITY frame's dependency, so that lb can decide on them once nghttp2 has
// processed the frames before.

#include <algorithm>
#include <cstring>

#include "shared/log/log.h"
#include "worker/http2/session.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker::http2 {
namespace {

// Control frames (PING, SETTINGS, PRIORITY, empty DATA) a client may send per second before it
// counts as a flood: far above what browsers and h2load send, far below a CPU-burning loop.
constexpr uint32_t kMaxGlitchesPerSecond = 1000;

constexpr size_t kFrameHeaderLen = 9;

// A 31-bit stream id, the reserved bit cleared.
uint32_t readU31(const uint8_t* p) {
  return (uint32_t{p[0]} & 0x7f) << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

Session* self(void* user) {
  return static_cast<Session*>(user);
}

}  // namespace

bool Session::receive(const char* data, size_t len) {
  if (closed_) {
    return false;
  }
  busy_ = true;
  ssize_t rc = 0;
  // Positions count the bytes held back from the last read (held_) followed by `data`.
  size_t fed = 0;
  size_t total = held_ + len;
  scan_closing_ = false;
  for (size_t i = 0; i < len && !want_close_;) {
    ScannedFrame f = scanFrames(data, len, &i);
    if (f.stream_id == 0) {
      continue;
    }
    // The frames before this one are processed first, then lb decides.
    rc = feed(data, fed, held_ + i - 1);
    fed = held_ + i - 1;
    if (rc < 0 || want_close_) {
      break;
    }
    if (f.type == NGHTTP2_PRIORITY) {
      connectionError(NGHTTP2_PROTOCOL_ERROR, "PRIORITY making a stream depend on itself",
                      f.stream_id);
    } else if (recentlyClosed(f.stream_id)) {
      connectionError(NGHTTP2_STREAM_CLOSED, "DATA on closed stream", f.stream_id);
    }
  }
  if (rc >= 0 && !want_close_) {
    // A frame header cut by the end of the read waits for its last bytes: nghttp2 1.52 counts a
    // CONTINUATION frame once per piece of its header it is given, so a header block trickled
    // byte by byte would pass max_continuations.
    size_t hold = scan_have_ < kFrameHeaderLen ? scan_have_ : 0;
    if (fed < total - hold) {
      rc = feed(data, fed, total - hold);
    }
    held_ = static_cast<uint8_t>(hold);
    std::memcpy(held_buf_, scan_buf_, hold);
  }
  busy_ = false;
  if (rc < 0) {
    LB_INFO("HTTP/2 connection error from %s: %s", carrier_->peerText().c_str(),
            nghttp2_strerror(static_cast<int>(rc)));
    if (rc != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      bool flood = rc == NGHTTP2_ERR_FLOODED || rc == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
      nghttp2_session_terminate_session(ng_,
                                        flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    }
    want_close_ = true;
  }
  flush();
  return !want_close_ && !closed_;
}

ssize_t Session::feed(const char* data, size_t from, size_t to) {
  if (from >= to) {
    return 0;
  }
  ssize_t done = 0;
  if (from < held_) {
    // The held bytes begin a frame header: nghttp2 gets them with the rest of it in one piece.
    uint8_t joined[2 * kFrameHeaderLen];
    size_t held = held_ - from;
    size_t more = std::min(to - held_, kFrameHeaderLen);
    std::memcpy(joined, held_buf_ + from, held);
    std::memcpy(joined + held, data, more);
    done = nghttp2_session_mem_recv(ng_, joined, held + more);
    if (done < 0) {
      return done;
    }
    from = held_ + more;
  }
  ssize_t rc = nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(data + from - held_),
                                        to - from);
  return rc < 0 ? rc : done + rc;
}

Session::ScannedFrame Session::scanFrames(const char* data, size_t len, size_t* pos) {
  size_t i = *pos;
  ScannedFrame found;
  while (i < len && found.stream_id == 0) {
    if (scan_skip_ > 0) {
      size_t n = std::min<size_t>(scan_skip_, len - i);
      scan_skip_ -= static_cast<uint32_t>(n);
      i += n;
      continue;
    }
    scan_buf_[scan_have_++] = static_cast<uint8_t>(data[i++]);
    const uint8_t* h = scan_buf_;
    if (scan_have_ == kFrameHeaderLen) {
      uint32_t length = uint32_t{h[0]} << 16 | uint32_t{h[1]} << 8 | h[2];
      auto id = static_cast<int32_t>(readU31(h + 5));
      if (h[3] == NGHTTP2_PRIORITY && length == 5) {
        continue;  // its dependency is read next
      }
      scan_have_ = 0;
      scan_skip_ = length;
      // Only a DATA frame for a stream nghttp2 has not open may be one on a closed stream, or one
      // behind a frame of these bytes that may close its stream before nghttp2 gets to it.
      if (h[3] == NGHTTP2_DATA && (id & 1) != 0 &&
          (scan_closing_ || nghttp2_session_find_stream(ng_, id) == nullptr)) {
        found = {id, NGHTTP2_DATA};
      }
      bool ends = (h[3] == NGHTTP2_DATA || h[3] == NGHTTP2_HEADERS) &&
                  (h[4] & NGHTTP2_FLAG_END_STREAM) != 0;
      scan_closing_ = scan_closing_ || ends || h[3] == NGHTTP2_RST_STREAM;
    } else if (scan_have_ == kFrameHeaderLen + 4) {
      // A PRIORITY frame's stream dependency: nghttp2 skips it when RFC 7540 priorities are off.
      scan_have_ = 0;
      scan_skip_ = 1;  // the weight
      auto id = static_cast<int32_t>(readU31(h + 5));
      if (id != 0 && readU31(h + kFrameHeaderLen) == static_cast<uint32_t>(id)) {
        found = {id, NGHTTP2_PRIORITY};
      }
    }
  }
  *pos = i;
  return found;
}

int Session::onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
  Session* ss = self(user);
  if (ss->refusedFrame(hd)) {
    return 0;
  }
  bool control =
      hd->type == NGHTTP2_PING || hd->type == NGHTTP2_SETTINGS || hd->type == NGHTTP2_PRIORITY ||
      (hd->type == NGHTTP2_DATA && hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0);
  if (control && (hd->flags & NGHTTP2_FLAG_ACK) == 0) {
    ss->glitch();
  }
  return 0;
}

// A token bucket of max_resets_burst tokens, max_resets_per_s more each second: a client that
// resets streams faster (rapid reset, CVE-2023-44487) is cut off.
void Session::reset() {
  const config::Http2& cfg = listener_->http2;
  uint64_t now = uv_now(ctx_->loop);
  double refill = static_cast<double>(now - reset_refill_ms_) * cfg.max_resets_per_s / 1000.0;
  reset_refill_ms_ = now;
  reset_tokens_ = std::min<double>(cfg.max_resets_burst, reset_tokens_ + refill);
  if (reset_tokens_ >= 1) {
    reset_tokens_ -= 1;
    return;
  }
  if (!want_close_) {
    LB_INFO("HTTP/2 client %s resets streams faster than max_resets_per_s (%u), closing",
            carrier_->peerText().c_str(), cfg.max_resets_per_s);
    nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
    want_close_ = true;
  }
}

bool Session::refusedFrame(const nghttp2_frame_hd* hd) {
  if (want_close_) {
    return false;
  }
  if (hd->type == NGHTTP2_PRIORITY && hd->stream_id == 0) {
    connectionError(NGHTTP2_PROTOCOL_ERROR, "PRIORITY on stream 0");
    return true;
  }
  int32_t id = hd->stream_id;
  if ((hd->type == NGHTTP2_DATA || hd->type == NGHTTP2_HEADERS) && recentlyClosed(id)) {
    connectionError(NGHTTP2_STREAM_CLOSED,
                    hd->type == NGHTTP2_DATA ? "DATA on closed stream" : "HEADERS on closed stream",
                    id);
    return true;
  }
  if (hd->type != NGHTTP2_HEADERS || (id & 1) == 0) {
    return false;  // an even id from a client nghttp2 refuses itself
  }
  if (id >= next_stream_id_) {
    if (id > next_stream_id_ && nskipped_ < kSkippedRanges) {
      skipped_[nskipped_][0] = next_stream_id_;
      skipped_[nskipped_][1] = id;
      ++nskipped_;
    }
    next_stream_id_ = int64_t{id} + 2;
    return false;
  }
  for (int i = 0; i < nskipped_; ++i) {
    if (id >= skipped_[i][0] && id < skipped_[i][1]) {
      connectionError(NGHTTP2_PROTOCOL_ERROR, "a stream id smaller than one already used", id);
      return true;
    }
  }
  return false;
}

bool Session::recentlyClosed(int32_t id) const {
  for (int32_t closed : closed_ids_) {
    if (closed == id && id != 0) {
      return true;
    }
  }
  return false;
}

void Session::connectionError(uint32_t code, const char* what, int32_t id) {
  if (id != 0) {
    LB_INFO("HTTP/2 connection error from %s: %s (stream %d)", carrier_->peerText().c_str(), what,
            id);
  } else {
    LB_INFO("HTTP/2 connection error from %s: %s", carrier_->peerText().c_str(), what);
  }
  nghttp2_session_terminate_session(ng_, code);
  want_close_ = true;
}

void Session::glitch() {
  uint64_t now = uv_now(ctx_->loop);
  if (now - glitch_window_ms_ >= 1000) {
    glitch_window_ms_ = now;
    glitches_ = 0;
  }
  if (++glitches_ <= kMaxGlitchesPerSecond) {
    return;
  }
  if (!want_close_) {
    LB_INFO("HTTP/2 client %s floods control frames (more than %u per second), closing",
            carrier_->peerText().c_str(), kMaxGlitchesPerSecond);
    nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
    want_close_ = true;
  }
}

}  // namespace lb::worker::http2
