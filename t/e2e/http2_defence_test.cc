// HTTP/2 defences (lb.conf(5), section http2): a slow reader never makes lb buffer a whole
// response, and the floods HTTP/2 makes cheap for a client (rapid reset, CVE-2023-44487;
// CONTINUATION, CVE-2024-27316 and its family; PING and SETTINGS) end the attacking connection
// while a bystander on another connection of the same worker is served as usual. Every flood is
// bounded in frames and in time, so a missing defence fails the test instead of hanging it.

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "e2e/harness/e2e.h"
#include "e2e/harness/h2_client.h"

namespace lb::e2e {
namespace {

constexpr uint64_t kBig = 64ull << 20;

// One worker, so that the attacker and the bystander share a worker's loop.
const LbOptions kOneWorker{.workers = 1};

std::string h2Config(const std::vector<std::string>& backends, const std::string& http2 = "",
                     const std::string& listener_extra = "") {
  return singlePoolConfig(backends, "read_timeout_ms = 30000;",
                          "http2 = { " + http2 + " }; " + listener_extra);
}

// VmRSS of `pid` in KiB, 0 if unknown.
long vmRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::atol(line.c_str() + 6);
    }
  }
  return 0;
}

// Normal requests, one after another on their own HTTP/2 connection, on a thread of their own
// while the test attacks lb on another connection. Results are read after stop().
class Bystander {
 public:
  explicit Bystander(int port) : port_(port), thread_([this] { run(); }) {}
  ~Bystander() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // Requests answered so far (any thread).
  int answered() const { return answered_; }
  bool waitAnswered(int n, milliseconds timeout) const {
    return waitUntil([&] { return answered_ >= n; }, timeout, 2ms);
  }

  int ok() const { return ok_; }
  const std::vector<std::string>& failures() const { return failures_; }
  long long p99Ms() const {
    if (latencies_.empty()) {
      return -1;
    }
    std::vector<long long> v = latencies_;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, v.size() * 99 / 100)];
  }
  long long maxMs() const {
    return latencies_.empty() ? -1 : *std::max_element(latencies_.begin(), latencies_.end());
  }

 private:
  void run() {
    H2Client c(port_);
    if (!c.handshake()) {
      failures_.push_back("handshake: " + c.error());
      return;
    }
    for (int i = 0; !stop_ && failures_.size() < 5; ++i) {
      auto start = Clock::now();
      H2StreamResult r = c.request("GET", "/bystander/" + std::to_string(i), {}, "", 5s);
      latencies_.push_back(elapsedMs(start));
      if (r.ended && r.status == 200 && r.body.data == "A") {
        ++ok_;
      } else {
        failures_.push_back(describe(r) + " " + c.error());
        if (c.closed()) {
          return;
        }
      }
      ++answered_;
    }
  }

  int port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  int ok_ = 0;
  std::vector<std::string> failures_;
  std::vector<long long> latencies_;
  std::thread thread_;
};

// The bystander was served throughout: at least `min` requests, all of them answered 200, none
// slower than a second at the 99th percentile.
void checkBystander(Bystander& b, int min) {
  b.stop();
  INFO("bystander: " << b.ok() << " requests ok, p99 " << b.p99Ms() << " ms, max " << b.maxMs()
                     << " ms");
  for (const auto& f : b.failures()) {
    UNSCOPED_INFO("bystander failure: " << f);
  }
  CHECK(b.failures().empty());
  CHECK(b.ok() >= min);
  CHECK(b.p99Ms() < 1000);
}

std::string goawayText(const H2Client& c) {
  if (!c.goaway()) {
    return "no GOAWAY";
  }
  return "GOAWAY " + h2::errorName(c.goaway()->error) + " last stream " +
         std::to_string(c.goaway()->last_stream) + " \"" + c.goaway()->debug + "\"";
}

// ---- a slow reader ----------------------------------------------------------------------

TEST_CASE("a slow HTTP/2 reader stops lb from reading the backend", "[http2][backpressure]") {
  FakeUpstream up("stream", upstream::stream(kBig, false));
  LbInstance lb;
  lb.start(h2Config({up.address()}, "", "send_timeout_ms = 30000;"), kOneWorker);
  auto workers = lb.workerPids();
  REQUIRE(workers.size() == 1);
  long rss_before = vmRssKb(workers[0]);

  // A 16 KiB stream window, the default 64 KiB connection window, and no WINDOW_UPDATE.
  H2Client c(lb.port(0),
             {.initial_window_size = 16384, .auto_window_update = false, .store_limit = 0});
  REQUIRE(c.handshake());
  int32_t id = c.startRequest(H2Client::requestFields("GET", "/big"));
  REQUIRE(id != 0);
  REQUIRE(up.waitForRequests(1));
  REQUIRE(c.waitFor([&] { return c.result(id).status != 0; }, 5s));
  CHECK(c.result(id).status == 200);

  // The backend writes until the socket buffers between it and lb are full, and lb does not take
  // more than it can pass on: what the backend sent levels off far below the body.
  uint64_t sent = settle(
      [&] {
        c.drain();
        return up.bytesSent();
      },
      700ms, 20s);
  long rss_stalled = vmRssKb(workers[0]);
  INFO("backend sent " << sent << " bytes; client got " << c.result(id).body.length()
                       << "; worker VmRSS " << rss_before << " kB before, " << rss_stalled
                       << " kB stalled");
  CHECK(sent < kBig / 4);
  // lb honours the client's window: no more than 16 KiB of DATA on the stream.
  CHECK(c.result(id).body.length() <= 16384);
  CHECK_FALSE(c.result(id).done());
  // The worker does not hold the body: its memory grows by far less than the body's size.
  REQUIRE(rss_before > 0);
  CHECK(rss_stalled - rss_before < 16 * 1024);

  // Opening the windows lets the whole body through, intact.
  auto start = Clock::now();
  c.setAutoWindowUpdate(true);
  REQUIRE(c.sendWindowUpdate(0, 1u << 30));
  REQUIRE(c.sendWindowUpdate(id, 1u << 30));
  bool done = c.waitDone(id, 60s);
  const H2StreamResult& r = c.result(id);
  INFO(describe(r) << " after " << elapsedMs(start) << " ms; " << c.error());
  REQUIRE(done);
  CHECK(r.ended);
  CHECK_FALSE(r.reset);
  CHECK(r.body.length() == kBig);
  CHECK(r.body.checksum() == patternChecksumHex(kBig));
  CHECK(r.header("x-body-checksum") == patternChecksumHex(kBig));
}

// ---- rapid reset --------------------------------------------------------------------------

struct FloodConn {
  int streams = 0;  // streams the client opened (and reset) on the connection
  std::optional<H2Goaway> goaway;
  bool closed = false;
  std::string error;
};

TEST_CASE("a rapid reset flood is cut off and does not starve other clients",
          "[http2][flood][rapid-reset]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);

  Bystander bystander(lb.port(0));
  REQUIRE(bystander.waitAnswered(1, 5s));

  // Streams opened with END_STREAM and cancelled at once, 50 pairs per write; a connection lb
  // cuts is replaced by a new one. At most 20000 streams or 4 seconds.
  constexpr int kCap = 20000;
  constexpr int kBatch = 50;
  Deadline end = deadlineIn(4s);
  int total = 0;
  std::vector<FloodConn> conns;
  while (total < kCap && Clock::now() < end && conns.size() < 200) {
    H2Client f(lb.port(0));
    FloodConn fc;
    if (!f.handshake()) {
      fc.error = "handshake: " + f.error();
      conns.push_back(fc);
      break;
    }
    HeaderList fields = H2Client::requestFields("GET", "/flood");
    while (total < kCap && Clock::now() < end) {
      std::string batch;
      for (int i = 0; i < kBatch; ++i) {
        int32_t id = f.nextStreamId();
        batch += H2Client::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id,
                                 f.headerBlock(fields));
        batch += H2Client::frame(h2::kRstStream, 0, id, std::string("\0\0\0\x08", 4));
      }
      if (!f.sendRaw(batch, 1s)) {
        break;
      }
      fc.streams += kBatch;
      total += kBatch;
      f.drain();
      if (f.goaway() || f.closed()) {
        break;
      }
    }
    f.waitFor([&] { return f.goaway().has_value(); }, 2s);
    fc.closed = f.waitClosed(3s);
    fc.goaway = f.goaway();
    fc.error = f.error();
    conns.push_back(fc);
  }

  INFO("flood: " << total << " streams on " << conns.size() << " connections; backend saw "
                 << up.requests() << " requests");
  for (const auto& fc : conns) {
    UNSCOPED_INFO("connection: " << fc.streams << " streams, "
                                 << (fc.goaway ? "GOAWAY " + h2::errorName(fc.goaway->error) +
                                                     " last stream " +
                                                     std::to_string(fc.goaway->last_stream)
                                               : std::string("no GOAWAY"))
                                 << (fc.closed ? ", closed" : ", open") << " " << fc.error);
  }
  REQUIRE(!conns.empty());
  CHECK(total >= 1000);
  // lb cut every connection that went well past its reset budget (max_resets_burst, 200 by
  // default; the last connection may have stopped short of it at the end of the flood), and
  // stopped processing streams within that budget, not at the end of the flood.
  int cut = 0;
  for (const auto& fc : conns) {
    if (fc.streams >= 1000) {
      CHECK((fc.goaway.has_value() || fc.closed));
    }
    if (fc.goaway) {
      CHECK(fc.goaway->last_stream / 2 < 1000);
    }
    cut += fc.goaway.has_value() || fc.closed;
  }
  CHECK(cut >= 1);
  // Streams cancelled at once are not worth a backend request.
  auto seen = up.received();
  auto flood_requests = std::count_if(
      seen.begin(), seen.end(), [](const UpstreamRequest& r) { return r.target == "/flood"; });
  INFO("backend saw " << flood_requests << " of the flood's requests");
  CHECK(flood_requests < total / 10);
  checkBystander(bystander, 10);
}

// 100 streams opened and cancelled in one write against max_resets_burst = 10 and
// max_resets_per_s = 1; waits (bounded) for lb's GOAWAY.
void smallBudgetResetFlood(H2Client& f) {
  REQUIRE(f.handshake());
  std::string batch;
  for (int i = 0; i < 100; ++i) {
    int32_t id = f.nextStreamId();
    batch += H2Client::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id,
                             f.headerBlock(H2Client::requestFields("GET", "/flood")));
    batch += H2Client::frame(h2::kRstStream, 0, id, std::string("\0\0\0\x08", 4));
  }
  f.sendRaw(batch);
  f.waitFor([&] { return f.goaway().has_value(); }, 5s);
}

const std::string kSmallResetBudget = "max_resets_burst = 10; max_resets_per_s = 1;";

TEST_CASE("max_resets_burst bounds the streams a resetting client gets", "[http2][flood]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}, kSmallResetBudget), kOneWorker);
  H2Client f(lb.port(0));
  smallBudgetResetFlood(f);
  INFO(goawayText(f) << "; " << f.error());
  REQUIRE(f.goaway());
  // The burst of 10 resets, and a few more the rate let in: far below the 100 sent.
  CHECK(f.goaway()->last_stream / 2 < 30);
  CHECK(f.waitClosed(5s));
  // Another client is served.
  H2Client other(lb.port(0));
  REQUIRE(other.handshake());
  H2StreamResult r = other.request("GET", "/other");
  INFO(describe(r) << "; " << other.error());
  CHECK(r.status == 200);
  // lb status shows the flood: the resets it took, each on a stream it counted.
  CHECK(lb.statusTotal("h2_connections") == 2);
  uint64_t resets = lb.statusTotal("h2_resets");
  CHECK(resets >= 10);
  CHECK(lb.statusTotal("h2_streams") >= resets + 1);
}

// lb counts the client's resets itself and ends the connection with ENHANCE_YOUR_CALM, as
// lb.conf(5) documents; nghttp2's own limiter (INTERNAL_ERROR) is only a backstop.
TEST_CASE("the GOAWAY of a rapid reset flood says ENHANCE_YOUR_CALM, as lb.conf(5) documents",
          "[http2][flood][rapid-reset]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}, kSmallResetBudget), kOneWorker);
  H2Client f(lb.port(0));
  smallBudgetResetFlood(f);
  INFO(goawayText(f) << "; " << f.error());
  REQUIRE(f.goaway());
  CHECK(f.goaway()->error == h2::kEnhanceYourCalm);
}

// ---- CONTINUATION flood -----------------------------------------------------------------

// HEADERS without END_HEADERS, then CONTINUATION frames (each with one more field, or empty)
// in writes of 500, at most 10000 frames or 5 seconds. Returns the frames sent.
int continuationFlood(H2Client& f, bool empty, const std::string& path) {
  int32_t id = f.nextStreamId();
  std::string batch = H2Client::frame(h2::kHeaders, h2::kEndStream, id,
                                      f.headerBlock(H2Client::requestFields("GET", path)));
  int sent = 0;
  Deadline end = deadlineIn(5s);
  while (sent < 10000 && Clock::now() < end) {
    for (int i = 0; i < 500; ++i, ++sent) {
      std::string block =
          empty ? "" : f.headerBlock({{"x-pad-" + std::to_string(sent), std::string(64, 'p')}});
      batch += H2Client::frame(h2::kContinuation, 0, id, block);
    }
    if (!f.sendRaw(batch, 1s)) {
      break;
    }
    batch.clear();
    f.drain();
    if (f.goaway() || f.closed()) {
      break;
    }
  }
  return sent;
}

TEST_CASE("a CONTINUATION flood ends the connection and leaves others alone",
          "[http2][flood][continuation]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);
  Bystander bystander(lb.port(0));
  REQUIRE(bystander.waitAnswered(1, 5s));

  for (bool empty : {false, true}) {
    H2Client f(lb.port(0));
    REQUIRE(f.handshake());
    int before = bystander.answered();
    int frames = continuationFlood(f, empty, empty ? "/empty-continuations" : "/continuations");
    f.waitFor([&] { return f.goaway().has_value(); }, 3s);
    bool closed = f.waitClosed(5s);
    INFO((empty ? "empty" : "non-empty")
         << " CONTINUATION frames: " << frames << " sent; " << goawayText(f)
         << (closed ? ", closed" : ", open") << "; " << f.error());
    CHECK(f.goaway().has_value());
    CHECK(closed);
    // The bystander went on being served meanwhile and after.
    CHECK(bystander.waitAnswered(before + 5, 5s));
  }
  for (const auto& r : up.received()) {
    CHECK(r.target.find("continuations") == std::string::npos);
  }
  checkBystander(bystander, 10);
}

// nghttp2's NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ends the session with ENHANCE_YOUR_CALM, as
// lb.conf(5) documents.
TEST_CASE("the GOAWAY of a CONTINUATION flood says ENHANCE_YOUR_CALM, as lb.conf(5) documents",
          "[http2][flood][continuation]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);
  H2Client f(lb.port(0));
  REQUIRE(f.handshake());
  continuationFlood(f, false, "/continuations");
  f.waitFor([&] { return f.goaway().has_value(); }, 3s);
  INFO(goawayText(f) << "; " << f.error());
  REQUIRE(f.goaway());
  CHECK(f.goaway()->error == h2::kEnhanceYourCalm);
}

// A legitimate header block in HEADERS and three CONTINUATION frames that arrive a byte at a time
// (a slow link, or a client writing unbuffered) is no flood: the CONTINUATION limit counts
// frames, not the reads their headers arrive in.
TEST_CASE("a header block over CONTINUATION frames trickled byte by byte is served",
          "[http2][continuation][slow]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  int32_t id = c.nextStreamId();
  HeaderList fields = H2Client::requestFields("GET", "/trickled");
  for (int i = 0; i < 3; ++i) {
    fields.push_back({"x-part-" + std::to_string(i), std::string(20, 'a' + i)});
  }
  std::string block = c.headerBlock(fields);
  size_t piece = block.size() / 4;
  std::string bytes = H2Client::frame(h2::kHeaders, h2::kEndStream, id, block.substr(0, piece));
  for (int i = 1; i < 4; ++i) {
    std::string part = i == 3 ? block.substr(i * piece) : block.substr(i * piece, piece);
    bytes += H2Client::frame(h2::kContinuation, i == 3 ? h2::kEndHeaders : 0, id, part);
  }
  // One byte per write, each after lb has had time to read the one before (TCP_NODELAY).
  for (char b : bytes) {
    REQUIRE(c.sendRaw(std::string_view(&b, 1)));
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(c.waitDone(id, 5s));
  INFO(describe(c.result(id)) << "; " << goawayText(c));
  CHECK(c.result(id).status == 200);
  CHECK_FALSE(c.goaway().has_value());
  REQUIRE(up.received().size() == 1);
  CHECK(up.received()[0].target == "/trickled");
}

// ---- PING and SETTINGS floods -----------------------------------------------------------

// Sends `frame_bytes` in writes of 100 copies, reading what lb answers in between, until lb sends
// GOAWAY or closes, at most 20000 frames or 5 seconds. Returns the frames sent.
int readingFlood(H2Client& f, const std::string& frame_bytes) {
  std::string batch;
  for (int i = 0; i < 100; ++i) {
    batch += frame_bytes;
  }
  int sent = 0;
  Deadline end = deadlineIn(5s);
  while (sent < 20000 && Clock::now() < end) {
    if (!f.sendRaw(batch, 1s)) {
      break;
    }
    sent += 100;
    f.drain();
    if (f.goaway() || f.closed()) {
      break;
    }
  }
  f.waitFor([&] { return f.goaway().has_value(); }, 3s);
  return sent;
}

// `acks`: how many of the flood's frames lb acknowledged, read after the flood.
void expectFloodCut(const std::string& what, const std::string& frame_bytes,
                    const std::function<int(const H2Client&)>& acks) {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);
  Bystander bystander(lb.port(0));
  REQUIRE(bystander.waitAnswered(1, 5s));

  H2Client f(lb.port(0));
  REQUIRE(f.handshake());
  auto start = Clock::now();
  int sent = readingFlood(f, frame_bytes);
  bool closed = f.waitClosed(5s);
  int answered = bystander.answered();
  CHECK(bystander.waitAnswered(answered + 5, 5s));
  INFO(what << ": " << sent << " frames in " << elapsedMs(start) << " ms, " << acks(f)
            << " acknowledged; " << goawayText(f) << (closed ? ", closed" : ", open") << "; "
            << f.error());
  // lb stopped answering long before the flood ended.
  CHECK(acks(f) < sent / 2);
  REQUIRE(f.goaway().has_value());
  CHECK(f.goaway()->error == h2::kEnhanceYourCalm);
  CHECK(closed);
  checkBystander(bystander, 5);
}

TEST_CASE("a request header block left unfinished is cut after client_header_timeout_ms",
          "[http2][slow]") {
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(
      h2Config({up.address()}, "", "client_header_timeout_ms = 600; keepalive_timeout_ms = 30000;"),
      kOneWorker);
  // HEADERS without END_HEADERS, and then nothing: slowloris over HTTP/2. Its stream has no
  // exchange yet to time it, and keepalive_timeout_ms does not apply with a stream open.
  H2Client c(lb.port(0));
  REQUIRE(c.handshake());
  std::string block = c.headerBlock(H2Client::requestFields("GET", "/never"));
  REQUIRE(c.sendFrame(h2::kHeaders, h2::kEndStream, 1, block.substr(0, 2)));
  auto start = Clock::now();
  bool closed = c.peerGone(5s);
  INFO("closed after " << elapsedMs(start) << " ms");
  CHECK(closed);
  CHECK(elapsedMs(start) >= 500);
  CHECK(elapsedMs(start) < 2500);
  CHECK(up.requests() == 0);
  CHECK(waitUntil(
      [&] {
        return lb.errorLog().find("did not finish a request's headers within 600 ms") !=
               std::string::npos;
      },
      3s));
  // The same client with its header block complete is served.
  H2Client ok(lb.port(0));
  REQUIRE(ok.handshake());
  CHECK(ok.request("GET", "/ok").status == 200);
}

TEST_CASE("a PING flood gets GOAWAY ENHANCE_YOUR_CALM", "[http2][flood][ping]") {
  expectFloodCut("PING flood", H2Client::frame(h2::kPing, 0, 0, std::string(8, 'p')),
                 [](const H2Client& f) { return f.pingAcks(); });
}

TEST_CASE("a SETTINGS flood gets GOAWAY ENHANCE_YOUR_CALM", "[http2][flood][settings]") {
  // SETTINGS_ENABLE_PUSH = 0 over and over: valid, and each one wants an ACK.
  expectFloodCut("SETTINGS flood",
                 H2Client::frame(h2::kSettings, 0, 0, std::string("\0\x02\0\0\0\0", 6)),
                 [](const H2Client& f) { return f.settingsAcks(); });
}

TEST_CASE("a client flooding PINGs without reading the acknowledgements is disconnected",
          "[http2][flood][ping]") {
  // lb.conf(5), http2: "one that does not read lb's SETTINGS and PING acknowledgements is
  // disconnected after 100 of them": lb does not queue acknowledgements without bound for a
  // client that takes none, it ends the connection (the client sees FIN or RST without reading).
  FakeUpstream up("A");
  LbInstance lb;
  lb.start(h2Config({up.address()}), kOneWorker);
  Bystander bystander(lb.port(0));
  REQUIRE(bystander.waitAnswered(1, 5s));

  H2Client f(lb.port(0));
  REQUIRE(f.connected());
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    batch += H2Client::frame(h2::kPing, 0, 0, std::string(8, 'q'));
  }
  auto start = Clock::now();
  Deadline end = deadlineIn(10s);
  int sent = 0;
  bool gone = false;
  while (Clock::now() < end && !gone) {
    if (f.sendRaw(batch, 200ms)) {
      sent += 1000;
    } else if (f.closed()) {
      gone = true;  // reset by lb
      break;
    }
    gone = f.peerGone(0ms);
  }
  if (!gone) {
    gone = f.peerGone(2s);
  }
  INFO("sent " << sent << " PINGs without reading; lb "
               << (gone ? "disconnected" : "did not disconnect") << " the client after "
               << elapsedMs(start) << " ms; " << f.error());
  CHECK(gone);
  int answered = bystander.answered();
  CHECK(bystander.waitAnswered(answered + 5, 5s));
  checkBystander(bystander, 5);
}

// ---- concurrent streams -----------------------------------------------------------------

// With max_concurrent_streams = 4 and a backend that holds every request, the client opens six
// streams in one write: the two extra streams must be refused on their own (RST_STREAM
// REFUSED_STREAM or PROTOCOL_ERROR), the four others served once the backend answers, and the
// connection must go on. `acked`: the client acknowledged lb's SETTINGS before opening them.
void expectExtraStreamsRefused(bool acked) {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("A", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(h2Config({up.address()}, "max_concurrent_streams = 4;"), kOneWorker);

  H2Client c(lb.port(0), {.ack_settings = acked});
  REQUIRE(c.handshake());
  CHECK(c.serverSetting(h2::kMaxConcurrentStreams, 0) == 4);
  // The PING comes back once lb has read everything before it (the SETTINGS ACK included).
  REQUIRE(c.ping());

  std::string batch;
  std::vector<int32_t> ids;
  for (int i = 0; i < 6; ++i) {
    int32_t id = c.nextStreamId();
    ids.push_back(id);
    batch +=
        H2Client::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, id,
                        c.headerBlock(H2Client::requestFields("GET", "/s" + std::to_string(i))));
  }
  REQUIRE(c.sendRaw(batch));
  bool refused = c.waitFor(
      [&] { return c.goaway() || (c.result(ids[4]).done() && c.result(ids[5]).done()); }, 5s);
  INFO(describe(c.result(ids[4])) << "; " << describe(c.result(ids[5])) << "; " << goawayText(c)
                                  << "; " << c.error());
  // A stream error for the extra streams, not the end of the connection.
  REQUIRE_FALSE(c.goaway().has_value());
  CHECK(refused);
  for (int i : {4, 5}) {
    const H2StreamResult& r = c.result(ids[i]);
    CHECK(r.status == 0);
    REQUIRE(r.reset.has_value());
    CHECK((*r.reset == h2::kRefusedStream || *r.reset == h2::kProtocolError));
  }
  CHECK(up.waitForRequests(4));

  gate->open();
  for (int i = 0; i < 4; ++i) {
    bool done = c.waitDone(ids[i], 5s);
    INFO(describe(c.result(ids[i])) << "; " << goawayText(c) << "; " << c.error());
    CHECK(done);
    CHECK(c.result(ids[i]).status == 200);
  }
  CHECK(up.requests() == 4);
  // The slots are free again.
  H2StreamResult again = c.request("GET", "/again");
  INFO(describe(again) << "; " << c.error());
  CHECK(again.status == 200);
}

TEST_CASE("streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused before the SETTINGS ACK",
          "[http2][limits]") {
  expectExtraStreamsRefused(false);
}

// After the client acknowledged SETTINGS_MAX_CONCURRENT_STREAMS, exceeding it is a protocol
// violation; nghttp2 treats it as a connection error (RFC 9113 5.4.1 allows a stream error to be
// treated so): GOAWAY PROTOCOL_ERROR, the connection ends, and other clients are unaffected.
TEST_CASE("streams beyond an acknowledged SETTINGS_MAX_CONCURRENT_STREAMS end the connection",
          "[http2][limits]") {
  auto gate = std::make_shared<Gate>();
  FakeUpstream up("A", upstream::gated(gate, upstream::named()));
  LbInstance lb;
  lb.start(h2Config({up.address()}, "max_concurrent_streams = 4;"), kOneWorker);
  H2Client c(lb.port(0), {.ack_settings = true});
  REQUIRE(c.handshake());
  REQUIRE(c.ping());
  std::string batch;
  for (int i = 0; i < 6; ++i) {
    batch +=
        H2Client::frame(h2::kHeaders, h2::kEndHeaders | h2::kEndStream, c.nextStreamId(),
                        c.headerBlock(H2Client::requestFields("GET", "/s" + std::to_string(i))));
  }
  REQUIRE(c.sendRaw(batch));
  REQUIRE(c.waitFor([&] { return c.goaway().has_value(); }, 5s));
  INFO(goawayText(c));
  CHECK(c.goaway()->error == h2::kProtocolError);
  gate->open();
  H2Client other(lb.port(0));
  REQUIRE(other.handshake());
  H2StreamResult r = other.request("GET", "/other");
  INFO(describe(r) << "; " << other.error());
  CHECK(r.status == 200);
}

}  // namespace
}  // namespace lb::e2e
