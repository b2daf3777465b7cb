// Protocol upgrades (WebSocket, RFC 6455 handshake; any Upgrade but h2c): the request goes to the
// backend with its Upgrade, and on 101 Switching Protocols the connection becomes a byte tunnel.
//
// The tunnel reuses the exchange's buffers and writes: client bytes go from the request buffer
// to the backend, backend bytes from the response buffer to the client, one write in flight per
// direction, so a side that does not read stops the other (each buffer fills, its reads stop).
// It ends when either side closes or errs (after what the other side still has to take), or
// after tunnel_timeout_ms without a byte either way; the access log line is written then.

#include "shared/log/log.h"
#include "worker/http1/headers.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {

bool ClientConn::upgradeAllowed() const {
  const Exchange* ex = ex_;
  const llhttp_t* p = &ex->req;
  if (stream_ || (p->flags & F_UPGRADE) == 0 || (p->flags & F_CONNECTION_UPGRADE) == 0 ||
      p->method != HTTP_GET || p->http_minor < 1 || ex->req_has_body) {
    return false;
  }
  // HTTP/2's cleartext upgrade is lb's to speak, never a backend's (RFC 9113 3.1).
  std::string_view proto = ex->req_head.find("upgrade");
  return !proto.empty() && !http1::equalsIgnoreCase(proto, "h2c");
}

void ClientConn::startTunnel() {
  Exchange* ex = ex_;
  sm_.transition(ConnState::WebSocket);
  // A request head still being written to the backend is not tunnel data.
  ex->tunnel_in_end = ex->in_start;
  ctx_->timers.disarm(&ex->up->timer);  // the tunnel's own timeout stands for both sides
  armClientTimer(listener_->limits.tunnel_timeout_ms);
  // What the backend sent after its 101 goes out with the head; what the client sent after its
  // request goes to the backend.
  if (ex->rbuf_start < ex->rbuf_end) {
    ex->cl_iov[ex->cl_iovcnt++] =
        uv_buf_init(ex->rbuf + ex->rbuf_start, ex->rbuf_end - ex->rbuf_start);
    ex->tunnel_out_end = ex->rbuf_end;
  } else {
    ex->tunnel_out_end = ex->rbuf_start;
  }
  flushClient();  // tunnelWritten() follows
  if (closing_) {
    return;
  }
  ex->up->startReading();
  tunnelToUpstream();
  if (!closing_) {
    startReading();
  }
}

void ClientConn::tunnelToClient() {
  Exchange* ex = ex_;
  if (!closing_ && !ex->cl_write_pending && ex->rbuf_start < ex->rbuf_end) {
    ex->cl_iovcnt = 0;
    ex->cl_iov[ex->cl_iovcnt++] =
        uv_buf_init(ex->rbuf + ex->rbuf_start, ex->rbuf_end - ex->rbuf_start);
    ex->tunnel_out_end = ex->rbuf_end;
    // A tunnel is never an HTTP/2 stream: the write completes later, in tunnelWritten().
    flushClient();
  }
  if (!closing_ && ex->tunnel_eof && !ex->cl_write_pending && !ex->up_write_pending) {
    closeNow();
  }
}

void ClientConn::tunnelToUpstream() {
  Exchange* ex = ex_;
  while (!closing_ && ex->up != nullptr && !ex->up_write_pending && ex->in_start < ex->in_end) {
    ex->up_iovcnt = 0;
    ex->up_iov[ex->up_iovcnt++] = uv_buf_init(ex->in_buf + ex->in_start, ex->in_end - ex->in_start);
    ex->tunnel_in_end = ex->in_end;
    if (!flushUpstream()) {
      return;  // onUpstreamWritten goes on, or the upstream failed
    }
    ex->in_start = ex->tunnel_in_end;
  }
  if (!closing_ && ex->tunnel_eof && !ex->cl_write_pending && !ex->up_write_pending) {
    closeNow();
  }
}

void ClientConn::tunnelInput(ssize_t nread) {
  Exchange* ex = ex_;
  if (nread > 0) {
    ex->in_end += static_cast<uint32_t>(nread);
    armClientTimer(listener_->limits.tunnel_timeout_ms);
    tunnelToUpstream();
    return;
  }
  if (nread == 0) {
    return;
  }
  if (nread == UV_ENOBUFS) {
    stopReading();  // the backend has not taken the last bytes yet
    return;
  }
  // The client closed: what it sent still goes to the backend, then both sides close.
  stopReading();
  ex->tunnel_eof = true;
  tunnelToUpstream();
}

void ClientConn::tunnelUpstreamRead(ssize_t nread) {
  Exchange* ex = ex_;
  if (nread > 0) {
    ex->rbuf_end += static_cast<uint32_t>(nread);
    ctx_->backendSlot(ex->pool, ex->backend)
        .bytes_received.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    armClientTimer(listener_->limits.tunnel_timeout_ms);
    tunnelToClient();
    return;
  }
  if (nread == 0) {
    return;
  }
  if (nread == UV_ENOBUFS) {
    ex->up->stopReading();  // the client has not taken the last bytes yet
    return;
  }
  if (nread != UV_EOF) {
    logUpstreamLoss(static_cast<int>(nread), "the tunnel opened");
  }
  ex->up->stopReading();
  ex->tunnel_eof = true;
  tunnelToClient();
}

void ClientConn::tunnelWritten() {
  Exchange* ex = ex_;
  armClientTimer(listener_->limits.tunnel_timeout_ms);  // clientWriteDone disarmed it
  ex->rbuf_start = ex->tunnel_out_end;
  if (ex->up != nullptr) {
    ex->up->startReading();
  }
  tunnelToClient();
}

void ClientConn::tunnelUpstreamWritten() {
  Exchange* ex = ex_;
  armClientTimer(listener_->limits.tunnel_timeout_ms);
  ex->in_start = ex->tunnel_in_end;
  tunnelToUpstream();
  if (!closing_ && !ex->tunnel_eof) {
    startReading();
  }
}

}  // namespace lb::worker
