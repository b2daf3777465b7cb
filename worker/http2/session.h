#pragma once

// One HTTP/2 connection (RFC 9113) on a client connection: nghttp2's server session between the
// socket (plain or TLS, owned by the carrying ClientConn) and the streams.
//
// Every stream's request goes through its own ClientConn in stream mode (worker/proxy/
// h2_stream.cc): the request is handed over as HTTP/1.1 bytes, so routing, balancing, retries,
// queueing and the upstream pools are the same code as for HTTP/1.1. The response comes back as
// the HTTP/1.1 head that code writes (turned into HEADERS) and body pieces that DATA frames take
// as the stream's flow-control window allows: a piece counts as written once nghttp2 has taken
// it, and the session takes nothing while a socket write is in flight, so a slow reader holds at
// most one socket write and one read buffer per stream.
//
// nghttp2 callbacks only record what happened; exchanges are started, fed and told about
// written data after nghttp2 returns, so that no exchange code runs inside nghttp2 and no
// stream is used after nghttp2 closed it.

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "shared/config/model.h"
#include "worker/context.h"
#include "worker/http2/translate.h"
#include "worker/timer_queue.h"

namespace lb::worker {
class ClientConn;
}

namespace lb::worker::http2 {

class Session;

// Where a request of HTTP/2 client connections becomes HTTP/1.1 for its exchange, and where the
// exchange's response waits for its DATA frames.
struct Stream {
  int32_t id = 0;
  Session* session = nullptr;
  ClientConn* conn = nullptr;  // the exchange; null before it starts and once it is gone
  RequestHead head;            // while the HEADERS (and CONTINUATION) frames arrive
  std::string trailers;        // request trailers as HTTP/1.1 lines
  size_t trailer_size = 0;
  std::string in;  // HTTP/1.1 bytes the exchange has not taken yet, from in_off
  size_t in_off = 0;
  uint64_t unconsumed = 0;   // DATA bytes not yet given back to the flow-control windows
  bool chunked = false;      // the body goes to the backend chunked
  bool in_ended = false;     // END_STREAM: all of the request is in `in`
  bool request_open = true;  // the client may still send (no END_STREAM, no reset)
  bool started = false;      // the exchange was created
  bool refused = false;      // answered by the session itself
  bool closed = false;       // nghttp2 closed the stream
  bool reset_sent = false;   // lb's RST_STREAM went out: the client's late frames are fine
  // Response: body pieces the exchange handed over (its memory), taken by DATA frames.
  std::vector<uv_buf_t> out_bufs;
  int out_pos = 0;
  size_t out_off = 0;
  bool head_sent = false;
  std::string resp_trailers;  // "name: value\r\n" lines sent as trailers after the last DATA
  bool out_eof = false;       // the last piece is handed over: END_STREAM follows it
  bool deferred = false;      // nghttp2 waits for nghttp2_session_resume_data
  // On the session's lists (a stream is on each at most once).
  bool ready = false;
  bool in_written = false;
  bool doomed = false;
  bool in_gone = false;
  // Request bytes: those that may go before END_STREAM at least (the HTTP/1.1 head), all bytes
  // put in `in`, those the exchange took.
  size_t head_len = 0;
  uint64_t total_in = 0;
  uint64_t delivered = 0;

  // Back to a new stream's state, keeping small buffers for the next one.
  void recycle();
};

// Deletes the worker's spare streams, which Session::freeStream keeps for reuse.
void releaseSpareStreams(WorkerContext* ctx);

class Session {
 public:
  // Starts HTTP/2 on `carrier`: queues the server SETTINGS. nullptr if nghttp2 fails.
  static Session* create(WorkerContext* ctx, const config::Listener* listener, ClientConn* carrier);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Plaintext from the client. False when the connection ends (a connection error, or the
  // session is done): what is queued (GOAWAY) has been flushed as far as the socket took it.
  bool receive(const char* data, size_t len);
  // Sends what nghttp2 has queued as far as the socket takes it, after running the streams'
  // exchanges. When the session is over, tells the carrier (ClientConn::h2Finished).
  void flush();
  // A flush on this loop turn, after the I/O callbacks: frames of many streams share writes.
  void schedule();
  // The carrier's socket write finished (status < 0: failed).
  void onWritten(int status);
  // The carrier closes: every stream's exchange is aborted; nothing is sent any more.
  void closeStreams();
  // Graceful stop: a shutdown notice, the final GOAWAY a round trip later (RFC 9113 6.8); the
  // connection closes when the streams it accepted are done.
  void drain();
  // The connection was idle too long: GOAWAY, then close.
  void idleTimeout();
  size_t openStreams() const { return open_streams_; }
  // When the request header block being received began (0: none is): until it ends no stream
  // can time it, and the connection carries nothing else meanwhile.
  uint64_t headStartedMs() const { return head_started_ms_; }
  // A socket write of frames is in flight (the client has not taken it yet).
  bool writePending() const { return write_pending_; }
  ClientConn* carrier() const { return carrier_; }
  // The carrier's socket write of frames (a plain connection's; TLS has its own).
  uv_write_t wreq;

  // Stream bridge, called by the stream's exchange (ClientConn in stream mode).
  // The HTTP/1.1 response head (maybe followed by body bytes) in `iov`; `last` when the
  // response ends with these bytes. The body pieces stay the exchange's memory until
  // ClientConn::h2WriteDone. False when the head cannot become HEADERS.
  bool submitResponse(Stream* s, const uv_buf_t* iov, int iovcnt, bool last);
  // More body pieces (the previous ones were all taken).
  void submitData(Stream* s, const uv_buf_t* iov, int iovcnt, bool last);
  // Trailers for the end of the response (before its last submit).
  void setTrailers(Stream* s, std::string lines) { s->resp_trailers = std::move(lines); }
  void submitContinue(Stream* s);
  // The exchange took `n` request bytes out of the stream: the client may send more.
  void consumed(Stream* s, size_t n);
  // The exchange wants input (it will take it on this loop turn).
  void streamReady(Stream* s);
  // The exchange ends: with its response complete, or cut (the stream is reset). It never
  // touches the stream again.
  // `processed`: a backend may have seen the request (a cut stream is then not refused).
  void detach(Stream* s, bool complete, bool processed = true);

 private:
  Session(WorkerContext* ctx, const config::Listener* listener, ClientConn* carrier);
  static ssize_t onRead(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                        nghttp2_data_source* source, void* user);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t error, void* user);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user);
  void requestHead(Stream* s, bool end);
  void requestEnd(Stream* s);
  void refuse(Stream* s, int status);
  void markReady(Stream* s);
  void doom(Stream* s);
  void dropInput(Stream* s);
  void sweep();
  // Streams come from and go back to the worker's spare ones: no allocation per request.
  Stream* newStream();
  void freeStream(Stream* s);
  // Starts and feeds exchanges, tells them about taken pieces and reset streams.
  void runStreams();
  // Empties `list` into scratch_ and returns it.
  std::vector<Stream*>& take(std::vector<Stream*>* list);
  // Counts a control frame; a client that floods them is cut off.
  void glitch();
  // Frame checks nghttp2 leaves out when it keeps no closed streams and no RFC 7540 priorities
  // (RFC 9113 5.1, 5.1.1, 6.3); true when the frame ends the connection.
  bool refusedFrame(const nghttp2_frame_hd* hd);
  bool recentlyClosed(int32_t id) const;
  // Two frames nghttp2 drops before any callback in this mode: DATA on a stream it has not open
  // (maybe a closed one) and a PRIORITY frame's dependency.
  struct ScannedFrame {
    int32_t stream_id = 0;
    uint8_t type = 0;
  };
  // Follows the frames in the client's bytes from *pos, ahead of nghttp2. Stops at a DATA frame
  // for a stream nghttp2 has not open (or any DATA frame after one of these bytes' frames that
  // may close a stream), or a PRIORITY frame that makes a stream depend on itself, with *pos
  // just past the byte that told; stream_id 0 when the bytes end first.
  ScannedFrame scanFrames(const char* data, size_t len, size_t* pos);
  // Gives nghttp2 bytes [from, to) of the held bytes followed by `data`.
  ssize_t feed(const char* data, size_t from, size_t to);
  void connectionError(uint32_t code, const char* what, int32_t id = 0);
  // Counts a stream reset by the client; past the budget the connection ends.
  void reset();

  WorkerContext* ctx_;
  const config::Listener* listener_;
  ClientConn* carrier_;
  nghttp2_session* ng_ = nullptr;
  std::string out_;       // serialized frames not handed to the socket yet
  std::string inflight_;  // frames of the socket write in flight
  bool write_pending_ = false;
  bool busy_ = false;      // inside nghttp2
  bool flushing_ = false;  // inside flush()
  bool again_ = false;     // flush once more
  TurnNode turn_;          // a flush at the end of the loop turn (schedule)
  bool want_close_ = false;
  bool draining_ = false;
  bool goaway_sent_ = false;
  bool closed_ = false;
  size_t open_streams_ = 0;
  std::vector<Stream*> streams_;  // all of them, for the destructor
  std::vector<Stream*> ready_;    // to start or feed
  std::vector<Stream*> written_;  // pieces taken: the exchange's write completes
  std::vector<Stream*> gone_;     // reset or closed under a live exchange
  std::vector<Stream*> doomed_;   // freed once closed and without exchange
  std::vector<Stream*> scratch_;
  ResponseFields fields_;
  ResponseFields trailer_fields_;
  // Client stream ids are used in increasing order. Those a client skipped are remembered (a few
  // ranges) so that a HEADERS opening one later is the PROTOCOL_ERROR RFC 9113 5.1.1 asks for;
  // nghttp2, which keeps no closed streams here, cannot tell it from a late frame of a closed one.
  static constexpr int kSkippedRanges = 4;
  int64_t next_stream_id_ = 1;               // 2^31 + 1 after the last id there is
  int64_t skipped_[kSkippedRanges][2] = {};  // [first, end) of ids never opened
  int nskipped_ = 0;
  // The last streams that closed without lb resetting them: both sides ended them, or the
  // client reset them. DATA or HEADERS on one of them is the client's error (STREAM_CLOSED,
  // RFC 9113 5.1); on a stream lb reset it is not, as the client may have sent it before it saw
  // the RST_STREAM. Older closed streams are not remembered and their frames are ignored.
  static constexpr int kClosedIds = 8;
  int32_t closed_ids_[kClosedIds] = {};
  int closed_next_ = 0;
  // The frame header (and PRIORITY dependency) being read by scanFrames, and the bytes to pass
  // before the next one (the client preface first).
  uint8_t scan_buf_[13] = {};
  uint8_t scan_have_ = 0;
  bool scan_closing_ = false;  // these bytes hold a frame that may close a stream
  uint32_t scan_skip_ = 24;
  // The first bytes of a frame header that the last read ended in, not given to nghttp2 yet.
  uint8_t held_buf_[8] = {};
  uint8_t held_ = 0;
  // The request header block being received: when it began (0: none is) and its stream.
  uint64_t head_started_ms_ = 0;
  int32_t head_stream_ = 0;
  uint64_t glitch_window_ms_ = 0;
  uint32_t glitches_ = 0;
  double reset_tokens_ = 0;
  uint64_t reset_refill_ms_ = 0;
  TimerNode drain_timer_;
};

}  // namespace lb::worker::http2
