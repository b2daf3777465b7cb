#pragma once

// A small blocking HTTP/2 client (RFC 9113) for the e2e tests, speaking h2c with prior knowledge
// over a plain TCP connection to 127.0.0.1. It writes exactly the frames a test asks for, so
// floods, half-finished header blocks and malformed requests can be sent; header blocks are
// HPACK-encoded with nghttp2's deflater, which encodes any name and value, valid or not.
//
// Reading keeps just enough state to check lb's answers: the server's SETTINGS (ACKed unless the
// options say not to), PINGs answered, flow-control windows both ways, HPACK decoding of
// HEADERS/CONTINUATION with nghttp2's inflater, and per stream the status, fields, body (length
// and checksum always, the bytes up to a limit), trailers, END_STREAM and RST_STREAM; the last
// GOAWAY of the connection. Received DATA is given back through WINDOW_UPDATE as it is read,
// unless auto window updates are off: then the client is a slow reader that never opens its
// windows until the test says so.
//
// Every wait is bounded by a deadline; nothing sleeps. One thread per client.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "e2e/harness/http_client.h"
#include "e2e/harness/http_message.h"
#include "e2e/harness/net.h"

namespace lb::e2e {

namespace h2 {

// Frame types.
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kPriority = 0x2;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kPushPromise = 0x5;
constexpr uint8_t kPing = 0x6;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kWindowUpdate = 0x8;
constexpr uint8_t kContinuation = 0x9;

// Flags.
constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kAck = 0x1;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint8_t kPadded = 0x8;
constexpr uint8_t kPriorityFlag = 0x20;

// Error codes (RFC 9113 section 7).
constexpr uint32_t kNoError = 0x0;
constexpr uint32_t kProtocolError = 0x1;
constexpr uint32_t kInternalError = 0x2;
constexpr uint32_t kFlowControlError = 0x3;
constexpr uint32_t kStreamClosed = 0x5;
constexpr uint32_t kFrameSizeError = 0x6;
constexpr uint32_t kRefusedStream = 0x7;
constexpr uint32_t kCancel = 0x8;
constexpr uint32_t kCompressionError = 0x9;
constexpr uint32_t kEnhanceYourCalm = 0xb;

// Settings.
constexpr uint16_t kHeaderTableSize = 0x1;
constexpr uint16_t kEnablePush = 0x2;
constexpr uint16_t kMaxConcurrentStreams = 0x3;
constexpr uint16_t kInitialWindowSize = 0x4;
constexpr uint16_t kMaxFrameSize = 0x5;
constexpr uint16_t kMaxHeaderListSize = 0x6;

// "PROTOCOL_ERROR", "ENHANCE_YOUR_CALM", ... or the number.
std::string errorName(uint32_t code);

}  // namespace h2

struct H2Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  int32_t stream = 0;
  std::string payload;
};

// What the server sent on one stream.
struct H2StreamResult {
  int32_t id = 0;
  int status = 0;            // :status of the final response; 0 until it arrives
  std::vector<int> interim;  // 1xx statuses
  Headers headers;           // the final response's fields, pseudo-headers left out
  Body body;
  Headers trailers;
  bool ended = false;             // END_STREAM received
  std::optional<uint32_t> reset;  // RST_STREAM received, with its error code

  bool done() const { return ended || reset.has_value(); }
  std::string header(std::string_view name) const { return headers.value(name); }
};

struct H2Goaway {
  int32_t last_stream = 0;
  uint32_t error = 0;
  std::string debug;
};

using H2Settings = std::vector<std::pair<uint16_t, uint32_t>>;

struct H2Options {
  // SETTINGS_INITIAL_WINDOW_SIZE the client announces: the server may send this much DATA on a
  // stream before the client gives the window back.
  uint32_t initial_window_size = 65535;
  // The connection's receive window; a WINDOW_UPDATE on stream 0 raises it from 65535 at start.
  uint32_t connection_window = 65535;
  // Give received DATA back (WINDOW_UPDATE) as it is read. Off: a slow reader.
  bool auto_window_update = true;
  bool ack_settings = true;       // ACK the server's SETTINGS
  bool answer_pings = true;       // ACK the server's PINGs
  H2Settings extra_settings = {};      // sent after INITIAL_WINDOW_SIZE and ENABLE_PUSH = 0
  size_t store_limit = 1u << 20;  // body bytes kept per stream; length and checksum cover all
  milliseconds connect_timeout = 5s;
};

class H2Client {
 public:
  // Connects to 127.0.0.1:`port`, sends the preface and the client's SETTINGS (and a connection
  // WINDOW_UPDATE when options.connection_window is above 65535). connected() tells whether that
  // worked; the server's SETTINGS are read by handshake() or any later read.
  explicit H2Client(int port, H2Options options = {});
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  bool connected() const { return connected_; }
  // Reads until the server's SETTINGS arrived (and were ACKed, unless options.ack_settings is
  // off). False on timeout or close.
  bool handshake(milliseconds timeout = 5s);

  // ---- writing; every send is bounded by `timeout` and false (see error()) when it fails ----

  // One frame's bytes: the 9-byte header and `payload`, nothing checked.
  static std::string frame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload);
  // `fields` HPACK-encoded in order, exactly as given. The encoder is stateful: every block
  // made must be sent, in the order made, or the server's decoder falls out of step.
  std::string headerBlock(const HeaderList& fields);
  bool sendRaw(std::string_view bytes, milliseconds timeout = 5s);
  bool sendFrame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload,
                 milliseconds timeout = 5s);
  // HEADERS with END_HEADERS (split into CONTINUATION frames past the server's frame size).
  bool sendHeaders(int32_t stream, const HeaderList& fields, bool end_stream);
  // DATA within the server's flow-control windows and frame size, waiting (and reading frames)
  // for WINDOW_UPDATEs as needed. An empty `data` with `end_stream` sends an empty DATA frame.
  bool sendData(int32_t stream, std::string_view data, bool end_stream, milliseconds timeout = 10s);
  bool sendRst(int32_t stream, uint32_t code);
  bool sendPing(uint64_t opaque, bool ack = false);
  bool sendSettings(const H2Settings& entries);
  bool sendWindowUpdate(int32_t stream, uint32_t increment);

  // The next client stream id: 1, 3, 5, ...
  int32_t nextStreamId();
  // :method, :scheme http, :authority lb.test, :path, then `extra`.
  static HeaderList requestFields(const std::string& method, const std::string& path,
                                  const HeaderList& extra = {});
  // A request on a new stream: HEADERS (END_STREAM when `body` is empty and `end`), then the
  // body in DATA frames (END_STREAM on the last when `end`). The stream id, or 0 if sending
  // failed.
  int32_t startRequest(const HeaderList& fields, std::string_view body = {}, bool end = true);
  // startRequest(requestFields(...)) and wait until the stream is done; the result (done() false
  // when the wait failed, see error()).
  H2StreamResult request(const std::string& method, const std::string& path,
                         const HeaderList& extra = {}, const std::string& body = "",
                         milliseconds timeout = 10s);

  // ---- reading ----

  // Reads and handles one frame (SETTINGS, PING, WINDOW_UPDATE, HEADERS, DATA, RST_STREAM,
  // GOAWAY as described above) and returns it. nullopt on timeout, when the server closed the
  // connection (closed()) or sent something this client cannot decode (error()).
  std::optional<H2Frame> readFrame(Deadline deadline);
  // Handles every frame already received, without waiting.
  void drain();
  // Handles frames until `cond` holds. False on timeout or when the connection ended first.
  bool waitFor(const std::function<bool()>& cond, milliseconds timeout);
  bool waitDone(int32_t stream, milliseconds timeout = 10s);
  // Handles frames until the server closes the connection (true) or `timeout` passes (false).
  bool waitClosed(milliseconds timeout = 5s);
  // Without reading: true if the server closed or reset the connection within `timeout`.
  bool peerGone(milliseconds timeout);
  // Sends a PING and handles frames until its ACK: the server has then read everything sent
  // before it. False on timeout or close.
  bool ping(milliseconds timeout = 5s);

  // ---- state ----

  // The stream's result so far (an empty one with done() false if nothing came for it).
  const H2StreamResult& result(int32_t stream);
  const std::optional<H2Goaway>& goaway() const { return goaway_; }
  bool closed() const { return closed_; }
  const std::string& error() const { return error_; }
  // A SETTINGS value the server sent, or `fallback`.
  uint32_t serverSetting(uint16_t id, uint32_t fallback) const;
  bool serverSettingsSeen() const { return server_settings_seen_; }
  int settingsAcks() const { return settings_acks_; }
  int pingAcks() const { return ping_acks_; }
  int framesReceived() const { return frames_received_; }
  void setAutoWindowUpdate(bool on) { options_.auto_window_update = on; }
  Stream& socket() { return stream_; }
  void close() { stream_.close(); }

 private:
  struct StreamState {
    H2StreamResult result;
    int64_t send_window = 0;
    uint64_t unacked = 0;  // DATA received and not given back yet
    std::string block;     // header block being received (HEADERS + CONTINUATION)
    bool block_end_stream = false;
  };
  StreamState& state(int32_t stream);
  void handle(const H2Frame& f);
  void handleSettings(const H2Frame& f);
  void handleData(const H2Frame& f);
  void handleHeaderBlock(StreamState& st);
  // Removes padding (and the priority fields of HEADERS); false if the frame is malformed.
  bool stripPadding(const H2Frame& f, std::string_view* out);
  void fail(std::string why);

  H2Options options_;
  Stream stream_;
  bool connected_ = false;
  bool closed_ = false;
  std::string error_;
  nghttp2_hd_deflater* deflater_ = nullptr;
  nghttp2_hd_inflater* inflater_ = nullptr;
  std::map<int32_t, StreamState> streams_;
  std::map<uint16_t, uint32_t> server_settings_;
  bool server_settings_seen_ = false;
  int32_t next_stream_ = 1;
  int32_t block_stream_ = 0;  // stream of a header block awaiting CONTINUATION
  int64_t conn_send_window_ = 65535;
  uint64_t conn_unacked_ = 0;
  std::optional<H2Goaway> goaway_;
  int settings_acks_ = 0;
  int ping_acks_ = 0;
  int frames_received_ = 0;
};

// "status 200, 12 body bytes, ended" / "reset PROTOCOL_ERROR" ..., for INFO.
std::string describe(const H2StreamResult& r);

}  // namespace lb::e2e
