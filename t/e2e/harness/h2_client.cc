#include "e2e/harness/h2_client.h"

#include <algorithm>
#include <cstring>

namespace lb::e2e {

namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kFrameHeader = 9;
constexpr uint32_t kDefaultWindow = 65535;
constexpr uint32_t kDefaultFrameSize = 16384;
constexpr uint32_t kMaxWindow = 0x7fffffff;
// The largest frame this client accepts: the server never gets a larger SETTINGS_MAX_FRAME_SIZE.
constexpr uint32_t kMaxFrameAccepted = 1u << 24;

void put32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

uint32_t get32(std::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

namespace h2 {

std::string errorName(uint32_t code) {
  // clang-format off
  static const char* const kNames[] = {
      "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
      "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
      "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  // clang-format on
  if (code < std::size(kNames)) {
    return kNames[code];
  }
  return "error " + std::to_string(code);
}

}  // namespace h2

H2Client::H2Client(int port, H2Options options)
    : options_(std::move(options)), stream_(connectTcp(port, options_.connect_timeout)) {
  nghttp2_hd_deflate_new(&deflater_, 4096);
  nghttp2_hd_inflate_new(&inflater_);
  if (stream_.fd() < 0 || deflater_ == nullptr || inflater_ == nullptr) {
    fail("cannot connect to port " + std::to_string(port));
    return;
  }
  std::string out = kPreface;
  std::string settings;
  H2Settings entries = {{h2::kEnablePush, 0},
                        {h2::kInitialWindowSize, options_.initial_window_size}};
  entries.insert(entries.end(), options_.extra_settings.begin(), options_.extra_settings.end());
  for (const auto& [id, value] : entries) {
    settings.push_back(static_cast<char>(id >> 8));
    settings.push_back(static_cast<char>(id));
    put32(&settings, value);
  }
  out += frame(h2::kSettings, 0, 0, settings);
  if (options_.connection_window > kDefaultWindow) {
    std::string inc;
    put32(&inc, options_.connection_window - kDefaultWindow);
    out += frame(h2::kWindowUpdate, 0, 0, inc);
  }
  connected_ = sendRaw(out);
}

H2Client::~H2Client() {
  if (deflater_ != nullptr) {
    nghttp2_hd_deflate_del(deflater_);
  }
  if (inflater_ != nullptr) {
    nghttp2_hd_inflate_del(inflater_);
  }
}

void H2Client::fail(std::string why) {
  if (error_.empty()) {
    error_ = std::move(why);
  }
}

bool H2Client::handshake(milliseconds timeout) {
  bool ok = waitFor([&] { return server_settings_seen_; }, timeout);
  if (!ok) {
    fail("no SETTINGS from the server within " + std::to_string(timeout.count()) + " ms");
  }
  return ok;
}

// ---- writing ------------------------------------------------------------------------------

std::string H2Client::frame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeader + payload.size());
  auto len = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  put32(&out, static_cast<uint32_t>(stream) & kMaxWindow);
  out.append(payload);
  return out;
}

std::string H2Client::headerBlock(const HeaderList& fields) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                            name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  std::string out(nghttp2_hd_deflate_bound(deflater_, nv.data(), nv.size()), '\0');
  ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                    nv.data(), nv.size());
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool H2Client::sendRaw(std::string_view bytes, milliseconds timeout) {
  IoStatus s = stream_.sendAll(bytes, deadlineIn(timeout));
  if (s != IoStatus::Ok) {
    if (s == IoStatus::Reset || s == IoStatus::Closed) {
      closed_ = true;
    }
    fail(std::string("send: ") + ioStatusName(s));
    return false;
  }
  return true;
}

bool H2Client::sendFrame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload,
                         milliseconds timeout) {
  return sendRaw(frame(type, flags, stream, payload), timeout);
}

bool H2Client::sendHeaders(int32_t stream, const HeaderList& fields, bool end_stream) {
  std::string block = headerBlock(fields);
  size_t max = serverSetting(h2::kMaxFrameSize, kDefaultFrameSize);
  state(stream);
  std::string out;
  size_t off = 0;
  bool first = true;
  do {
    size_t n = std::min(max, block.size() - off);
    bool last = off + n == block.size();
    uint8_t flags = last ? h2::kEndHeaders : 0;
    if (first && end_stream) {
      flags |= h2::kEndStream;
    }
    out += frame(first ? h2::kHeaders : h2::kContinuation, flags, stream,
                 std::string_view(block).substr(off, n));
    off += n;
    first = false;
  } while (off < block.size());
  return sendRaw(out);
}

bool H2Client::sendData(int32_t stream, std::string_view data, bool end_stream,
                        milliseconds timeout) {
  Deadline end = deadlineIn(timeout);
  StreamState& st = state(stream);
  if (data.empty()) {
    return sendFrame(h2::kData, end_stream ? h2::kEndStream : 0, stream, "");
  }
  while (!data.empty()) {
    int64_t room = std::min<int64_t>(
        {conn_send_window_, st.send_window, serverSetting(h2::kMaxFrameSize, kDefaultFrameSize)});
    if (room <= 0) {
      // Blocked by flow control: read frames until a WINDOW_UPDATE (or the stream's end).
      int64_t before_conn = conn_send_window_, before_stream = st.send_window;
      bool moved = waitFor(
          [&] {
            return st.result.done() || (conn_send_window_ > before_conn && conn_send_window_ > 0) ||
                   (st.send_window > before_stream && st.send_window > 0);
          },
          remaining(end));
      if (!moved || st.result.done()) {
        fail("DATA blocked by flow control (connection window " +
             std::to_string(conn_send_window_) + ", stream window " +
             std::to_string(st.send_window) + ")");
        return false;
      }
      continue;
    }
    size_t n = std::min<size_t>(static_cast<size_t>(room), data.size());
    bool last = n == data.size();
    if (!sendFrame(h2::kData, last && end_stream ? h2::kEndStream : 0, stream, data.substr(0, n),
                   remaining(end))) {
      return false;
    }
    conn_send_window_ -= static_cast<int64_t>(n);
    st.send_window -= static_cast<int64_t>(n);
    data.remove_prefix(n);
  }
  return true;
}

bool H2Client::sendRst(int32_t stream, uint32_t code) {
  std::string p;
  put32(&p, code);
  return sendFrame(h2::kRstStream, 0, stream, p);
}

bool H2Client::sendPing(uint64_t opaque, bool ack) {
  std::string p;
  put32(&p, static_cast<uint32_t>(opaque >> 32));
  put32(&p, static_cast<uint32_t>(opaque));
  return sendFrame(h2::kPing, ack ? h2::kAck : 0, 0, p);
}

bool H2Client::sendSettings(const H2Settings& entries) {
  std::string p;
  for (const auto& [id, value] : entries) {
    p.push_back(static_cast<char>(id >> 8));
    p.push_back(static_cast<char>(id));
    put32(&p, value);
  }
  return sendFrame(h2::kSettings, 0, 0, p);
}

bool H2Client::sendWindowUpdate(int32_t stream, uint32_t increment) {
  std::string p;
  put32(&p, increment & kMaxWindow);
  return sendFrame(h2::kWindowUpdate, 0, stream, p);
}

int32_t H2Client::nextStreamId() {
  int32_t id = next_stream_;
  next_stream_ += 2;
  return id;
}

HeaderList H2Client::requestFields(const std::string& method, const std::string& path,
                                   const HeaderList& extra) {
  HeaderList f = {
      {":method", method}, {":scheme", "http"}, {":authority", "lb.test"}, {":path", path}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

int32_t H2Client::startRequest(const HeaderList& fields, std::string_view body, bool end) {
  int32_t id = nextStreamId();
  if (!sendHeaders(id, fields, end && body.empty())) {
    return 0;
  }
  if (!body.empty() && !sendData(id, body, end)) {
    return 0;
  }
  return id;
}

H2StreamResult H2Client::request(const std::string& method, const std::string& path,
                                 const HeaderList& extra, const std::string& body,
                                 milliseconds timeout) {
  int32_t id = startRequest(requestFields(method, path, extra), body);
  if (id == 0) {
    return H2StreamResult();
  }
  waitDone(id, timeout);
  return result(id);
}

// ---- reading ------------------------------------------------------------------------------

H2Client::StreamState& H2Client::state(int32_t stream) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) {
    return it->second;
  }
  StreamState& st = streams_[stream];
  st.result.id = stream;
  st.result.body = Body(options_.store_limit);
  st.send_window = serverSetting(h2::kInitialWindowSize, kDefaultWindow);
  return st;
}

const H2StreamResult& H2Client::result(int32_t stream) {
  return state(stream).result;
}

uint32_t H2Client::serverSetting(uint16_t id, uint32_t fallback) const {
  auto it = server_settings_.find(id);
  return it == server_settings_.end() ? fallback : it->second;
}

std::optional<H2Frame> H2Client::readFrame(Deadline deadline) {
  if (stream_.fd() < 0) {
    return std::nullopt;
  }
  std::string& buf = stream_.buffer();
  while (true) {
    if (buf.size() >= kFrameHeader) {
      uint32_t len = (static_cast<uint32_t>(static_cast<unsigned char>(buf[0])) << 16) |
                     (static_cast<uint32_t>(static_cast<unsigned char>(buf[1])) << 8) |
                     static_cast<unsigned char>(buf[2]);
      if (len > kMaxFrameAccepted) {
        fail("frame of " + std::to_string(len) + " bytes");
        return std::nullopt;
      }
      if (buf.size() >= kFrameHeader + len) {
        H2Frame f;
        f.type = static_cast<uint8_t>(buf[3]);
        f.flags = static_cast<uint8_t>(buf[4]);
        f.stream = static_cast<int32_t>(get32(buf, 5) & kMaxWindow);
        f.payload.assign(buf, kFrameHeader, len);
        buf.erase(0, kFrameHeader + len);
        ++frames_received_;
        handle(f);
        return f;
      }
    }
    IoStatus s = stream_.fill(deadline);
    if (s == IoStatus::Closed || s == IoStatus::Reset) {
      closed_ = true;
      fail(std::string("connection ") + ioStatusName(s));
      return std::nullopt;
    }
    if (s != IoStatus::Ok) {
      return std::nullopt;
    }
  }
}

void H2Client::drain() {
  while (!closed_ && readFrame(Clock::now())) {
  }
}

bool H2Client::waitFor(const std::function<bool()>& cond, milliseconds timeout) {
  Deadline end = deadlineIn(timeout);
  while (!cond()) {
    if (closed_ || stream_.fd() < 0) {
      return cond();
    }
    if (!readFrame(end)) {
      if (closed_ || Clock::now() >= end) {
        return cond();
      }
      if (!error_.empty() && !closed_) {
        return cond();  // undecodable input: nothing more will make sense
      }
    }
  }
  return true;
}

bool H2Client::waitDone(int32_t stream, milliseconds timeout) {
  const H2StreamResult& r = result(stream);
  bool ok = waitFor([&] { return r.done(); }, timeout);
  if (!ok) {
    fail("stream " + std::to_string(stream) + " not done within " +
         std::to_string(timeout.count()) + " ms");
  }
  return ok;
}

bool H2Client::waitClosed(milliseconds timeout) {
  Deadline end = deadlineIn(timeout);
  while (!closed_ && stream_.fd() >= 0 && Clock::now() < end) {
    readFrame(end);
  }
  return closed_;
}

bool H2Client::peerGone(milliseconds timeout) {
  return stream_.fd() >= 0 && stream_.waitPeerGone(deadlineIn(timeout));
}

bool H2Client::ping(milliseconds timeout) {
  int before = ping_acks_;
  return sendPing(0x6c62707270696e67ULL) && waitFor([&] { return ping_acks_ > before; }, timeout);
}

bool H2Client::stripPadding(const H2Frame& f, std::string_view* out) {
  std::string_view p = f.payload;
  size_t pad = 0;
  if (f.flags & h2::kPadded) {
    if (p.empty()) {
      return false;
    }
    pad = static_cast<unsigned char>(p[0]);
    p.remove_prefix(1);
  }
  if (f.type == h2::kHeaders && (f.flags & h2::kPriorityFlag)) {
    if (p.size() < 5) {
      return false;
    }
    p.remove_prefix(5);
  }
  if (pad > p.size()) {
    return false;
  }
  p.remove_suffix(pad);
  *out = p;
  return true;
}

void H2Client::handle(const H2Frame& f) {
  if (block_stream_ != 0 && f.type != h2::kContinuation) {
    fail("frame of type " + std::to_string(f.type) + " inside a header block");
  }
  switch (f.type) {
    case h2::kSettings:
      handleSettings(f);
      break;
    case h2::kPing:
      if (f.flags & h2::kAck) {
        ++ping_acks_;
      } else if (options_.answer_pings) {
        sendFrame(h2::kPing, h2::kAck, 0, f.payload);
      }
      break;
    case h2::kWindowUpdate:
      if (f.payload.size() == 4) {
        int64_t inc = get32(f.payload, 0) & kMaxWindow;
        if (f.stream == 0) {
          conn_send_window_ += inc;
        } else {
          state(f.stream).send_window += inc;
        }
      }
      break;
    case h2::kGoaway:
      if (f.payload.size() >= 8) {
        goaway_ = H2Goaway{static_cast<int32_t>(get32(f.payload, 0) & kMaxWindow),
                           get32(f.payload, 4), f.payload.substr(8)};
      }
      break;
    case h2::kRstStream:
      if (f.payload.size() == 4) {
        state(f.stream).result.reset = get32(f.payload, 0);
      }
      break;
    case h2::kData:
      handleData(f);
      break;
    case h2::kHeaders:
    case h2::kContinuation: {
      std::string_view block;
      if (!stripPadding(f, &block)) {
        fail("malformed HEADERS");
        break;
      }
      StreamState& st = state(f.stream);
      if (f.type == h2::kHeaders) {
        st.block.clear();
        st.block_end_stream = (f.flags & h2::kEndStream) != 0;
      }
      st.block.append(block);
      if (f.flags & h2::kEndHeaders) {
        block_stream_ = 0;
        handleHeaderBlock(st);
      } else {
        block_stream_ = f.stream;
      }
      break;
    }
    default:
      break;  // PRIORITY, PUSH_PROMISE (push is off), unknown types: ignored
  }
}

void H2Client::handleSettings(const H2Frame& f) {
  if (f.flags & h2::kAck) {
    ++settings_acks_;
    return;
  }
  for (size_t at = 0; at + 6 <= f.payload.size(); at += 6) {
    auto id = static_cast<uint16_t>((static_cast<unsigned char>(f.payload[at]) << 8) |
                                    static_cast<unsigned char>(f.payload[at + 1]));
    uint32_t value = get32(f.payload, at + 2);
    if (id == h2::kInitialWindowSize) {
      // RFC 9113 6.9.2: the change applies to every open stream's window.
      int64_t delta = int64_t{value} - serverSetting(h2::kInitialWindowSize, kDefaultWindow);
      for (auto& [sid, st] : streams_) {
        st.send_window += delta;
      }
    } else if (id == h2::kHeaderTableSize) {
      nghttp2_hd_deflate_change_table_size(deflater_, std::min<uint32_t>(value, 4096));
    }
    server_settings_[id] = value;
  }
  server_settings_seen_ = true;
  if (options_.ack_settings) {
    sendFrame(h2::kSettings, h2::kAck, 0, "");
  }
}

void H2Client::handleData(const H2Frame& f) {
  StreamState& st = state(f.stream);
  std::string_view data;
  if (stripPadding(f, &data)) {
    st.result.body.append(data);
  }
  if (f.flags & h2::kEndStream) {
    st.result.ended = true;
  }
  // Flow control counts the whole payload, padding included.
  st.unacked += f.payload.size();
  conn_unacked_ += f.payload.size();
  if (!options_.auto_window_update) {
    return;
  }
  std::string out;
  if (conn_unacked_ > 0) {
    std::string p;
    put32(&p, static_cast<uint32_t>(conn_unacked_));
    out += frame(h2::kWindowUpdate, 0, 0, p);
    conn_unacked_ = 0;
  }
  if (st.unacked > 0 && !st.result.done()) {
    std::string p;
    put32(&p, static_cast<uint32_t>(st.unacked));
    out += frame(h2::kWindowUpdate, 0, f.stream, p);
  }
  st.unacked = 0;
  if (!out.empty()) {
    sendRaw(out);
  }
}

void H2Client::handleHeaderBlock(StreamState& st) {
  Headers fields;
  int status = 0;
  auto* in = reinterpret_cast<uint8_t*>(st.block.data());
  size_t left = st.block.size();
  while (true) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t n = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
    if (n < 0) {
      fail(std::string("HPACK decoding failed: ") + nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    in += n;
    left -= static_cast<size_t>(n);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      std::string name(reinterpret_cast<char*>(nv.name), nv.namelen);
      std::string value(reinterpret_cast<char*>(nv.value), nv.valuelen);
      if (name == ":status") {
        status = std::atoi(value.c_str());
      } else {
        fields.add(std::move(name), std::move(value));
      }
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      break;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) {
      break;
    }
  }
  st.block.clear();
  H2StreamResult& r = st.result;
  if (status >= 100 && status < 200) {
    r.interim.push_back(status);
  } else if (status != 0) {
    r.status = status;
    r.headers = std::move(fields);
  } else {
    r.trailers = std::move(fields);
  }
  if (st.block_end_stream) {
    r.ended = true;
  }
}

std::string describe(const H2StreamResult& r) {
  std::string out = "stream " + std::to_string(r.id) + ": ";
  if (r.status != 0) {
    out += "status " + std::to_string(r.status) + ", " + std::to_string(r.body.length()) +
           " body bytes";
    for (const auto& [n, v] : r.headers.list) {
      out += ", " + n + ": " + v;
    }
  } else {
    out += "no response";
  }
  if (r.ended) {
    out += ", ended";
  }
  if (r.reset) {
    out += ", reset " + h2::errorName(*r.reset);
  }
  if (!r.body.data.empty()) {
    out += ", body: " + r.body.data.substr(0, 200);
  }
  return out;
}

}  // namespace lb::e2e
