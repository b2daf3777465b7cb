// The request's way to a backend: validation of the head, routing, backend selection, the
// upstream connection, the rewritten request head and the body stream.

#include <arpa/inet.h>

#include <cstring>
#include <span>

#include "shared/log/log.h"
#include "worker/balancer/request_key.h"
#include "worker/health/resilience.h"
#include "worker/http1/appender.h"
#include "worker/http1/error_pages.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {

using http1::equalsIgnoreCase;

namespace {

std::string_view hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

// The authority of an absolute-form request target ("http://a.example:8080/x" ->
// "a.example:8080", userinfo dropped, and said in `*userinfo`); empty for the other forms.
std::string_view authorityOf(std::string_view url, bool* userinfo = nullptr) {
  if (url.empty() || url.front() == '/' || url.front() == '*') {
    return {};
  }
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return {};
  }
  std::string_view rest = url.substr(scheme + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (userinfo != nullptr) {
    *userinfo = at != std::string_view::npos;
  }
  return at == std::string_view::npos ? authority : authority.substr(at + 1);
}

// RFC 9112 3.2: origin-form; absolute-form with an http or https scheme and a host (RFC 9110
// 4.2.1: an http URI with an empty host is invalid); "*" for OPTIONS; authority-form for
// CONNECT, which is refused apart (405).
bool targetAllowed(std::string_view url, uint8_t method) {
  if (!url.empty() && url.front() == '/') {
    return true;
  }
  if (url == "*") {
    return method == HTTP_OPTIONS;
  }
  if (method == HTTP_CONNECT) {
    return true;
  }
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return false;
  }
  std::string_view name = url.substr(0, scheme);
  return (equalsIgnoreCase(name, "http") || equalsIgnoreCase(name, "https")) &&
         !authorityOf(url).empty();
}

// The path and query of an origin-form or absolute-form request target ("?x" when an
// absolute-form target has a query but no path: the caller puts the "/" in front).
std::string_view pathOf(std::string_view url) {
  if (url.empty() || url.front() == '/' || url.front() == '*') {
    return url;
  }
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return url;
  }
  size_t start = url.find_first_of("/?", scheme + 3);
  return start == std::string_view::npos ? std::string_view() : url.substr(start);
}

// The host a request names: the absolute-form target's authority if there is one (RFC 9112
// 3.2.2: it overrides Host), else the Host header.
std::string_view requestHost(const http1::HeadArena& head) {
  std::string_view authority = authorityOf(head.url());
  return authority.empty() ? http1::trimOws(head.find("host")) : authority;
}

}  // namespace

// The request head is complete (the parser is paused right after it). Decide what to do with it.
void ClientConn::headComplete() {
  Exchange* ex = ex_;
  llhttp_t* p = &ex->req;
  ++requests_;
  ctx_->slot->requests.fetch_add(1, std::memory_order_relaxed);
  ctx_->timers.disarm(&timer_);
  ex->req_chunked = (p->flags & F_CHUNKED) != 0;
  ex->req_content_length = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
  ex->req_has_body = ex->req_chunked || ex->req_content_length > 0;
  ex->head_request = p->method == HTTP_HEAD;
  ex->client_keepalive = http1::keepAlive(p);

  if (p->http_major != 1) {
    requestRefused(505);
    return;
  }
  int hosts = 0;
  std::string_view host;
  bool transfer_encoding = (p->flags & F_TRANSFER_ENCODING) != 0;
  for (int i = 0; i < ex->req_head.count(); ++i) {
    std::string_view name = ex->req_head.name(i);
    if (equalsIgnoreCase(name, "host")) {
      ++hosts;
      host = http1::trimOws(ex->req_head.value(i));  // llhttp keeps trailing OWS
    } else if (name.size() == 17 && equalsIgnoreCase(name, "transfer-encoding")) {
      transfer_encoding = true;  // llhttp flags none for an empty value
    }
  }
  if (transfer_encoding) {
    // RFC 9112 6.1: a Transfer-Encoding whose final coding is not chunked (or that names none)
    // cannot be framed, and HTTP/1.0 has no transfer codings: both are faulty framing (nginx
    // answers 400 to both). A backend could read either by a rule other than lb's.
    if (!(p->flags & F_CHUNKED) || p->http_minor == 0) {
      requestRefused(400);
      return;
    }
    if (!http1::onlyChunkedCoding(ex->req_head)) {
      requestRefused(501);
      return;
    }
  }
  // RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0, and a valid one. An
  // absolute-form target's authority stands in for it and must be valid too, without userinfo
  // (RFC 9110 4.2.4: an error in an http URI).
  bool userinfo = false;
  std::string_view authority = authorityOf(ex->req_head.url(), &userinfo);
  if (hosts > 1 || (hosts == 0 && p->http_minor >= 1) || (hosts == 1 && !http1::validHost(host)) ||
      userinfo || (!authority.empty() && !http1::validHost(authority)) ||
      !targetAllowed(ex->req_head.url(), p->method)) {
    requestRefused(400);
    return;
  }
  if (p->method == HTTP_CONNECT) {
    requestRefused(405);
    return;
  }
  uint64_t max_body = listener_->limits.max_body_size;
  if (max_body != 0 && ex->req_content_length > max_body) {
    requestRefused(413);
    return;
  }
  if (p->http_minor >= 1) {
    std::string_view expect = ex->req_head.find("expect");
    ex->expect_continue = equalsIgnoreCase(expect, "100-continue");
  }
  if (closeForDrain()) {
    ex->client_keepalive = false;
  }
  ex->upgrade = upgradeAllowed();  // onReqMessageComplete keeps such a connection from reuse
  routeAndDispatch();
}

void ClientConn::routeAndDispatch() {
  Exchange* ex = ex_;
  const config::Action* action = nullptr;
  if (listener_->routes_index >= 0) {
    const config::RouteTable& table = ctx_->config->routes[listener_->routes_index];
    std::string_view host = hostWithoutPort(requestHost(ex->req_head));
    if (host.size() > 1 && host.back() == '.') {
      host.remove_suffix(1);  // "example.com." is the same name, fully qualified (as nginx)
    }
    std::string_view path = pathOf(ex->req_head.url());
    for (const config::RouteRule& rule : table.rules) {
      if (!rule.host.empty() && !equalsIgnoreCase(host, rule.host)) {
        continue;
      }
      if (!rule.path_prefix.empty() && !path.starts_with(rule.path_prefix)) {
        continue;
      }
      action = &rule.action;
      break;
    }
  } else {
    action = &listener_->action;
  }
  if (action == nullptr) {
    localResponse(404);
    return;
  }
  if (action->kind == config::Action::Kind::Static) {
    ex->static_resp = &action->response;
    ex->discard_body = true;
    ex->body_ok = true;
    sm_.transition(ConnState::SelectingBackend);
    return;
  }
  ex->pool = action->pool_index;
  if (bufferBody()) {
    return;
  }
  dispatch();
}

bool ClientConn::bufferBody() {
  Exchange* ex = ex_;
  if (!listener_->limits.request_buffering || !ex->req_has_body || ex->upgrade) {
    return false;
  }
  if (ex->req_chunked) {
    // Resumed after the head, the parser stands at the body's start: a copy of it, with
    // settings that only count the body and stop at the message's end, finds that end as the
    // parser will.
    static const llhttp_settings_t kScanSettings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_body = [](llhttp_t* p, const char*, size_t n) {
        static_cast<Exchange*>(p->data)->scan_body_bytes += static_cast<uint32_t>(n);
        return 0;
      };
      s.on_message_complete = [](llhttp_t*) { return static_cast<int>(HPE_PAUSED); };
      return s;
    }();
    ex->look = ex->req;
    ex->look.settings = const_cast<llhttp_settings_t*>(&kScanSettings);
    ex->look.data = ex;
    ex->body_scan = Exchange::BodyScan::Scanning;
    ex->body_scanned = ex->scan_body_bytes = 0;
  }
  if (bodyBuffered()) {
    return refuseHeldBody();
  }
  ex->buffering = true;
  if (ex->expect_continue && ex->in_start == ex->in_end) {
    // The client waits for it before sending the body lb waits for (RFC 9110 10.1.1).
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    writeRaw(kContinue, sizeof(kContinue) - 1);
  }
  return true;
}

bool ClientConn::bodyBuffered() {
  Exchange* ex = ex_;
  uint32_t held = ex->in_end - ex->in_start;
  if (!ex->req_chunked) {
    return held >= ex->req_content_length || held == kBufferSize;
  }
  // Parsing would forward the body: the parser's copy looks at what came since its last look,
  // even in a full buffer (what it refuses there reaches no backend).
  if (held > ex->body_scanned && ex->body_scan == Exchange::BodyScan::Scanning) {
    llhttp_errno_t err = llhttp_execute(&ex->look, ex->in_buf + ex->in_start + ex->body_scanned,
                                        held - ex->body_scanned);
    ex->body_scanned = held;
    uint64_t max_body = listener_->limits.max_body_size;
    if (max_body != 0 && ex->scan_body_bytes > max_body) {
      ex->body_scan = Exchange::BodyScan::TooLarge;
    } else if (err == HPE_PAUSED) {
      ex->body_scan = Exchange::BodyScan::Done;
    } else if (err != HPE_OK) {
      ex->body_scan = Exchange::BodyScan::Invalid;
    }
  }
  return ex->body_scan != Exchange::BodyScan::Scanning || held == kBufferSize;
}

bool ClientConn::refuseHeldBody() {
  Exchange* ex = ex_;
  if (ex->body_scan == Exchange::BodyScan::Invalid) {
    LB_INFO("client %s sent an invalid request, answered 400: %s (%s, in its buffered body)",
            peerText().c_str(), llhttp_get_error_reason(&ex->look),
            llhttp_errno_name(llhttp_get_errno(&ex->look)));
    requestRefused(400);
    return true;
  }
  if (ex->body_scan == Exchange::BodyScan::TooLarge) {
    LB_INFO(
        "client %s sent an invalid request, answered 413: body over client_max_body_size "
        "(in its buffered body)",
        peerText().c_str());
    requestRefused(413);
    return true;
  }
  return false;
}

void ClientConn::dispatch() {
  ex_->buffering = false;
  const config::Pool& pool = *ctx_->pools[ex_->pool].pool;
  if (pool.retries > 0 && pool.slot >= 0) {
    // What the retry budget is a share of: requests that reach the pool.
    budgetCountRequest(ctx_->segment->pools[pool.slot], pool.retry_budget, uv_now(ctx_->loop));
  }
  sm_.transition(ConnState::SelectingBackend);
  selectBackend();
}

int ClientConn::pickBackend(bool* probe) {
  Exchange* ex = ex_;
  PoolRuntime& pr = ctx_->pools[ex->pool];
  const config::Pool& pool = *pr.pool;
  const uint64_t now = uv_now(ctx_->loop);
  const PickInput input = pickInputFor(pool, *pr.balancer, ex->req_head, pathOf(ex->req_head.url()),
                                       ClientAddress{peer_family_, peer_addr_}, now);
  // A breaker that another worker just half-opened may have no probe place left: such a
  // backend is skipped like a tried one, and the pick made again. Once `tried` is full, the
  // request has had its chances (a retry never goes back to a backend it tried).
  while (ex->ntried < kMaxTried) {
    int b =
        pr.balancer->pick(std::span<const int>(ex->tried, static_cast<size_t>(ex->ntried)), input);
    if (b < 0) {
      return -1;
    }
    ex->tried[ex->ntried++] = b;
    breaker::Admit admit =
        breaker::admit(ctx_->backendSlot(ex->pool, b), pool.circuit_breaker, now);
    if (admit != breaker::Admit::No) {
      *probe = admit == breaker::Admit::Probe;
      return b;
    }
    pr.balancer->release(b);
  }
  return -1;
}

void ClientConn::selectBackend() {
  Exchange* ex = ex_;
  PoolRuntime& pr = ctx_->pools[ex->pool];
  // First in, first out: while requests of this worker wait for the pool, a new one waits
  // behind them rather than taking the connection the first of them is about to get.
  if (ex->attempts == 0 && !ex->queue_link.queued && pr.queue && pr.queue->size() > 0) {
    enqueue();
    return;
  }
  bool probe = false;
  int b = pickBackend(&probe);
  if (b < 0) {
    if (ex->attempts > 0) {
      localResponse(ex->fail_status != 0 ? ex->fail_status : 502);
    } else if (!waitForBackend()) {
      LB_WARN("no live upstream in pool \"%s\" can take the request", pr.pool->name.c_str());
      localResponse(503);
    }
    return;
  }
  startAttempt(b, probe);
}

void ClientConn::startAttempt(int b, bool probe) {
  Exchange* ex = ex_;
  leaveQueue();
  ex->backend = b;
  ex->holding = true;
  ex->attempt_open = true;
  ex->probe = probe;
  ++ex->attempts;
  UpstreamConn* up = UpstreamConn::takeIdle(ctx_, ex->pool, b, this);
  if (up != nullptr) {
    ex->up = up;
    upstreamReady();
    return;
  }
  connectBackend(b);
}

void ClientConn::releaseBackend() {
  Exchange* ex = ex_;
  if (ex == nullptr || !ex->holding) {
    return;
  }
  ex->holding = false;
  if (ex->attempt_open) {
    // The request ends without an outcome (the client left): a probe place is given back.
    ex->attempt_open = false;
    if (ex->probe) {
      breaker::abandon(ctx_->backendSlot(ex->pool, ex->backend));
      ex->probe = false;
    }
  }
  PoolRuntime& pr = ctx_->pools[ex->pool];
  pr.balancer->release(ex->backend);
  if (pr.queue) {
    pr.queue->wake();
  }
}

void ClientConn::connectBackend(int b) {
  Exchange* ex = ex_;
  sm_.transition(ConnState::ConnectingBackend);
  int err = 0;
  UpstreamConn* up = UpstreamConn::connect(ctx_, ex->pool, b, this, &err);
  if (up == nullptr) {
    ex->up = nullptr;
    upstreamFailed(err, false);
    return;
  }
  ex->up = up;
  up->armTimer(ctx_->pools[ex->pool].pool->connect_timeout_ms);
}

void ClientConn::onUpstreamConnected(UpstreamConn* up) {
  if (ex_ == nullptr || ex_->up != up) {
    up->close();
    return;
  }
  upstreamReady();
}

void ClientConn::onUpstreamError(UpstreamConn* up, int err) {
  if (ex_ == nullptr || ex_->up != up) {
    up->close();
    return;
  }
  upstreamFailed(err, false);
}

void ClientConn::onUpstreamTimeout() {
  if (ex_ == nullptr || ex_->up == nullptr || ex_->tunnel) {
    return;
  }
  upstreamFailed(UV_ETIMEDOUT, true);
}

// A connection to the backend is there: send the head, then let the body flow.
void ClientConn::upstreamReady() {
  Exchange* ex = ex_;
  UpstreamConn* up = ex->up;
  sm_.transition(ConnState::SendingRequest);
  up->countRequest();
  ctx_->backendSlot(ex->pool, ex->backend).requests.fetch_add(1, std::memory_order_relaxed);
  ex->up_start_ms = uv_now(ctx_->loop);
  if (ctx_->pools[ex->pool].balancer->wantsResponseTimes()) {
    ex->up_start_us = uv_hrtime() / 1000;
  }
  if (!buildUpstreamHead()) {
    requestRefused(431);
    return;
  }
  llhttp_init(&ex->resp, HTTP_RESPONSE, &responseSettings());
  ex->resp.data = this;
  if (ex->resp_head_mem == nullptr) {
    ex->resp_head_mem = ctx_->buffers.get();
  }
  ex->resp_head.reset(ex->resp_head_mem, kBufferSize);
  ex->up_iovcnt = 0;
  ex->up_iov[ex->up_iovcnt++] = uv_buf_init(ex->up_head, ex->up_head_len);
  ex->up_head_sent = true;
  ex->body_ok = true;
  if (ex->expect_continue && ex->req_has_body && ex->in_start == ex->in_end) {
    // lb asks for the body itself; the backend never sees Expect (RFC 9110 10.1.1).
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    writeRaw(kContinue, sizeof(kContinue) - 1);
  }
  up->startReading();
  if (!ex->in_parse) {
    parseRequest();
  }
}

bool ClientConn::buildUpstreamHead() {
  Exchange* ex = ex_;
  if (ex->up_head == nullptr) {
    ex->up_head = ctx_->buffers.get();
  }
  const http1::HeadArena& h = ex->req_head;
  http1::Appender out(ex->up_head, kBufferSize);
  out << llhttp_method_name(static_cast<llhttp_method_t>(ex->req.method)) << " ";
  std::string_view url = h.url();
  std::string_view authority = authorityOf(url);
  if (authority.empty()) {
    out << url;
  } else {
    std::string_view path = pathOf(url);
    if (path.empty() || path.front() != '/') {
      out << "/";
    }
    out << path;
  }
  out << " HTTP/1.1\r\n";
  std::string_view xff;
  std::string_view host = authority;
  // Headers named in Connection are hop-by-hop too; most messages have no such list.
  const bool has_connection = http1::connectionNamesFields(h);
  const std::string& subject_header = listener_->tls.client_subject_header;
  for (int i = 0; i < h.count(); ++i) {
    std::string_view n = h.name(i);
    // Host is the request's, not the hop's: "Connection: host" does not remove it.
    if (http1::isHopByHop(n) || (has_connection && http1::isConnectionToken(h, n) &&
                                 !(n.size() == 4 && equalsIgnoreCase(n, "host")))) {
      continue;
    }
    if (n.size() >= 15 && (n[0] == 'x' || n[0] == 'X')) {
      if (equalsIgnoreCase(n, "x-forwarded-for")) {
        xff = h.value(i);  // the last one wins if a client repeated it
        continue;
      }
      if (equalsIgnoreCase(n, "x-forwarded-proto") || equalsIgnoreCase(n, "x-forwarded-host")) {
        continue;
      }
    }
    if (ex->expect_continue && equalsIgnoreCase(n, "expect")) {
      continue;
    }
    if (!subject_header.empty() && equalsIgnoreCase(n, subject_header)) {
      continue;  // only lb says who the client certificate names
    }
    if (n.size() == 4 && equalsIgnoreCase(n, "host")) {
      if (!authority.empty()) {
        continue;  // replaced by the target's authority below
      }
      host = h.value(i);
    }
    out.header(n, h.value(i));
  }
  if (ex->upgrade) {
    out.header("Upgrade", h.find("upgrade"));
    out << "Connection: upgrade\r\n";
  }
  const bool forwarded = ctx_->pools[ex->pool].pool->forwarded_headers;
  if (forwarded) {
    out << "X-Forwarded-For: ";
    if (!xff.empty()) {
      out << xff << ", ";
    }
    if (peer_family_ == AF_INET) {
      out.ipv4(peer_addr_);
    } else if (peer_family_ == AF_INET6) {
      char ip[INET6_ADDRSTRLEN];
      if (inet_ntop(AF_INET6, peer_addr_, ip, sizeof(ip)) != nullptr) {
        out << std::string_view(ip);
      }
    }
    out << (secure() ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
  }
  if (!authority.empty()) {
    out.header("Host", authority);
  }
  if (!subject_header.empty() && !tlsClientSubject().empty()) {
    out.header(subject_header, tlsClientSubject());
  }
  if (!host.empty()) {
    if (forwarded) {
      out.header("X-Forwarded-Host", host);
    }
  } else {
    // An HTTP/1.0 client may omit Host; the HTTP/1.1 request lb sends must have one.
    out.header("Host", ctx_->pools[ex->pool].pool->backends[ex->backend].address_text);
  }
  if (ex->req_chunked) {
    out << "Transfer-Encoding: chunked\r\n";
  } else if (ex->req.flags & F_CONTENT_LENGTH) {
    out << "Content-Length: " << ex->req_content_length << "\r\n";
  }
  out << "\r\n";
  ex->up_head_len = static_cast<uint32_t>(out.size());
  return out.ok();
}

bool ClientConn::flushUpstream() {
  Exchange* ex = ex_;
  size_t bytes = iovBytes(ex->up_iov, ex->up_iovcnt);
  ctx_->backendSlot(ex->pool, ex->backend).bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
  int rc = ex->up->send(ex->up_iov, ex->up_iovcnt);
  if (rc == 1) {
    ex->up_iovcnt = 0;
    ex->up_nchunk = 0;
    return true;
  }
  if (rc < 0) {
    upstreamFailed(rc, false);
    return false;
  }
  ex->up_write_pending = true;
  ex->up->armTimer(ctx_->pools[ex->pool].pool->send_timeout_ms);
  return false;
}

void ClientConn::awaitUpstream() {
  Exchange* ex = ex_;
  if (ex->req_done && !ex->up_eof) {  // a backend that closed has nothing more to be late with
    ex->up->armTimer(ctx_->pools[ex->pool].pool->read_timeout_ms);
  } else {
    ex->up->disarmTimer();
  }
}

// The request bytes so far are with the backend: now its response is awaited.
void ClientConn::afterUpstreamWrite() {
  Exchange* ex = ex_;
  if (ex->up != nullptr && !ex->resp_done) {
    awaitUpstream();
  }
  if (ex->req_done) {
    if (sm_.state() == ConnState::SendingRequest) {
      sm_.transition(ConnState::ReadingResponse);
    }
    if (ex->resp_done && !ex->cl_write_pending) {
      finishExchange();
    }
  }
}

void ClientConn::onUpstreamWritten(int status) {
  Exchange* ex = ex_;
  if (ex == nullptr || closing_) {
    return;
  }
  ex->up_write_pending = false;
  ex->up_iovcnt = 0;
  ex->up_nchunk = 0;
  if (ex->tunnel) {
    if (status < 0) {
      closeNow();
    } else {
      tunnelUpstreamWritten();
    }
    return;
  }
  if (status < 0) {
    upstreamFailed(status, false);
    return;
  }
  afterUpstreamWrite();
  if (ex_ == ex && !closing_ && !ex->req_done) {
    parseRequest();
  }
}

// The backend's connection broke with no request left to fail over it (a tunnel, or after a
// complete response). A reset is the backend's own affair and logs at info; a TLS failure
// (OpenSSL's words) is an error, as it is when it fails a request.
void ClientConn::logUpstreamLoss(int err, const char* during) {
  Exchange* ex = ex_;
  const config::Pool& pool = *ctx_->pools[ex->pool].pool;
  const std::string tls_failure = ex->up != nullptr ? ex->up->tlsFailure() : std::string();
  if (!tls_failure.empty()) {
    LB_ERROR("upstream %s, after %s (pool \"%s\")", tls_failure.c_str(), during, pool.name.c_str());
  } else {
    LB_INFO("upstream %s in pool \"%s\" broke off after %s: %s",
            pool.backends[ex->backend].address_text.c_str(), pool.name.c_str(), during,
            uv_strerror(err));
  }
}

void ClientConn::closeUpstream() {
  Exchange* ex = ex_;
  if (ex->up != nullptr) {
    ex->up->close();
    ex->up = nullptr;
  }
  ex->up_iovcnt = 0;
  ex->up_nchunk = 0;
}

// A request body still coming has nowhere to go: it is not read on, and the client connection
// closes after the response.
void ClientConn::upstreamLostAfterResponse(int err) {
  if (err != UV_EOF) {
    logUpstreamLoss(err, "a complete response");
  }
  closeUpstream();
  ex_->body_ok = false;
}

// The backend failed: connect error, reset, timeout or EOF before a complete response.
void ClientConn::upstreamFailed(int err, bool timeout) {
  Exchange* ex = ex_;
  if (ex->tunnel) {
    if (!timeout && err != UV_EOF) {
      logUpstreamLoss(err, "the tunnel opened");
    }
    closeNow();
    return;
  }
  if (ex->resp_done) {
    // The backend answered in full and then failed while the request body was still going to
    // it (a 413 before the end of an upload): the answer stands.
    upstreamLostAfterResponse(err);
    return;
  }
  UpstreamConn* up = ex->up;
  PoolRuntime& pr = ctx_->pools[ex->pool];
  const config::Pool& pool = *pr.pool;
  const config::Backend& backend = pool.backends[ex->backend];
  bool connecting = !ex->up_head_sent;
  bool reused = up != nullptr && up->reused() && !connecting;
  bool got_response = ex->resp_head_done || ex->up_bytes_in;
  // TLS knows better than the error code what went wrong: its words make the one log line.
  const std::string tls_failure = up != nullptr ? up->tlsFailure() : std::string();
  ctx_->backendSlot(ex->pool, ex->backend).failures.fetch_add(1, std::memory_order_relaxed);
  // A kept-alive connection the backend closed just as we reused it: the request never reached
  // it, so it is sent again on a fresh connection to the same backend (once), as nginx does. The
  // balancer's connection count is kept for it; it is no retry and no failure of the backend.
  if (reused && !got_response && !timeout && !ex->req_has_body && !ex->stale_retry_done &&
      idempotent(ex->req.method)) {
    ex->stale_retry_done = true;
    LB_INFO("upstream %s closed a kept-alive connection, retrying on a new one",
            backend.address_text.c_str());
    up->close();
    ex->up = nullptr;
    resetAttempt();
    connectBackend(ex->backend);
    return;
  }
  closeUpstream();  // a send that failed at once left its iovecs queued
  const char* what = timeout ? (connecting ? "timed out connecting to" : "timed out reading from")
                             : (connecting ? "failed to connect to" : "lost connection to");
  const char* reason = timeout ? "timed out" : uv_strerror(err);
  if (!tls_failure.empty() && !timeout) {
    reason = "TLS failure";
    LB_ERROR("upstream %s (pool \"%s\")", tls_failure.c_str(), pool.name.c_str());
  } else {
    LB_ERROR("upstream %s %s in pool \"%s\": %s", what, backend.address_text.c_str(),
             pool.name.c_str(), reason);
  }
  if (timeout && !connecting && pr.balancer->wantsResponseTimes()) {
    // A backend that times out must look slow to least_time and peak_ewma, not unknown.
    pr.balancer->recordResponse(ex->backend, uv_hrtime() / 1000 - ex->up_start_us,
                                uv_now(ctx_->loop));
  }
  recordOutcome(0, reason);
  releaseBackend();
  int status = timeout ? 504 : 502;
  ex->fail_status = status;
  if (!ex->resp_started && !ex->cl_write_pending && retryAllowed(!connecting)) {
    bool probe = false;
    int next = pickBackend(&probe);
    if (next >= 0 && takeRetry()) {
      resetAttempt();
      startAttempt(next, probe);
      return;
    }
    if (next >= 0) {
      giveBack(next, probe);
    }
  }
  if (ex->resp_started || ex->cl_write_pending) {
    cutClient();  // part of the response went out: only closing can tell the client
    return;
  }
  if (connecting || (!ex->req_has_body && !ex->up_write_pending)) {
    ex->up_head_sent = false;
    localResponse(status);
    return;
  }
  requestRefused(status);
}

}  // namespace lb::worker
