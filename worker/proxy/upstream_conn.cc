#include "worker/proxy/upstream_conn.h"

#include "shared/log/log.h"
#include "worker/proxy/client_conn.h"

namespace lb::worker {
namespace {

// Bytes arriving on an idle connection are a protocol error; they are read here and dropped
// together with the connection.
char g_idle_scratch[512];

}  // namespace

UpstreamConn::UpstreamConn(WorkerContext* ctx, int pool, int backend)
    : ctx_(ctx), pool_(pool), backend_(backend) {
  tcp_.data = this;
  timer.data = this;
  turn_.data = this;
  turn_.run = &UpstreamConn::onTurnWrite;
}

UpstreamConn* UpstreamConn::connect(WorkerContext* ctx, int pool, int backend, ClientConn* owner,
                                    int* err) {
  auto* up = new UpstreamConn(ctx, pool, backend);
  up->owner_ = owner;
  uv_tcp_init(ctx->loop, &up->tcp_);
  up->tcp_.data = up;
  const config::Backend& b = ctx->pools[pool].pool->backends[backend];
  int rc = uv_tcp_connect(&up->connect_req_, &up->tcp_, b.address.sockaddr_ptr(),
                          &UpstreamConn::onConnect);
  if (rc != 0) {
    *err = rc;
    up->owner_ = nullptr;
    up->close();
    return nullptr;
  }
  up->connect_req_.data = up;
  ctx->backendSlot(pool, backend).connections.fetch_add(1, std::memory_order_relaxed);
  return up;
}

UpstreamConn* UpstreamConn::takeIdle(WorkerContext* ctx, int pool, int backend, ClientConn* owner) {
  IdleList& list = ctx->pools[pool].idle[backend];
  UpstreamConn* up = list.head;
  if (up == nullptr) {
    return nullptr;
  }
  up->unlinkIdle();
  ctx->timers.disarm(&up->timer);
  up->owner_ = owner;
  up->from_idle_ = true;
  return up;
}

void UpstreamConn::unlinkIdle() {
  if (!idle_) {
    return;
  }
  IdleList& list = ctx_->pools[pool_].idle[backend_];
  if (idle_prev_ != nullptr) {
    idle_prev_->idle_next_ = idle_next_;
  } else {
    list.head = idle_next_;
  }
  if (idle_next_ != nullptr) {
    idle_next_->idle_prev_ = idle_prev_;
  }
  idle_next_ = idle_prev_ = nullptr;
  idle_ = false;
  --ctx_->pools[pool_].idle_count;
}

void UpstreamConn::release(bool reusable) {
  owner_ = nullptr;
  ctx_->timers.disarm(&timer);
  PoolRuntime& pr = ctx_->pools[pool_];
  if (!reusable || closing_ || ctx_->draining || pr.pool->keepalive == 0) {
    close();
    return;
  }
  // Past the pool's keepalive, a connection freed in a burst (HTTP/2 streams end many at a time)
  // is kept only briefly, for the requests that follow at once, instead of being closed and
  // connected again a moment later.
  uint32_t idle_ms =
      pr.idle_count >= pr.pool->keepalive ? kSurplusIdleMs : pr.pool->keepalive_timeout_ms;
  IdleList& list = pr.idle[backend_];
  idle_next_ = list.head;
  idle_prev_ = nullptr;
  if (list.head != nullptr) {
    list.head->idle_prev_ = this;
  }
  list.head = this;
  idle_ = true;
  ++pr.idle_count;
  timer.on_timeout = &UpstreamConn::onIdleTimeout;
  ctx_->timers.arm(&timer, idle_ms);
  startReading();
}

void UpstreamConn::onIdleTimeout(TimerNode* node) {
  static_cast<UpstreamConn*>(node->data)->close();
}

void UpstreamConn::armTimer(uint32_t ms) {
  timer.on_timeout = &UpstreamConn::onOwnedTimeout;
  ctx_->timers.arm(&timer, ms);
}

void UpstreamConn::disarmTimer() {
  ctx_->timers.disarm(&timer);
}

void UpstreamConn::onOwnedTimeout(TimerNode* node) {
  auto* up = static_cast<UpstreamConn*>(node->data);
  if (up->owner_ != nullptr) {
    up->owner_->onUpstreamTimeout();
  } else {
    up->close();
  }
}

void UpstreamConn::close() {
  if (closing_) {
    return;
  }
  closing_ = true;
  owner_ = nullptr;
  ctx_->turn.cancel(&turn_);
  unlinkIdle();
  ctx_->timers.disarm(&timer);
  if (tls_ != nullptr) {
    tlsGoodbye();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &UpstreamConn::onClose);
}

void UpstreamConn::closeAllIdle(WorkerContext* ctx) {
  for (PoolRuntime& pr : ctx->pools) {
    for (IdleList& list : pr.idle) {
      while (list.head != nullptr) {
        list.head->close();
      }
    }
  }
}

void UpstreamConn::onClose(uv_handle_t* h) {
  auto* up = static_cast<UpstreamConn*>(h->data);
  if (up->tls_ != nullptr) {
    up->closeTls();  // the TLS state's own handle goes next; its close callback frees all
    return;
  }
  delete up;
}

void UpstreamConn::onConnect(uv_connect_t* req, int status) {
  auto* up = static_cast<UpstreamConn*>(req->data);
  if (status == UV_ECANCELED || up->closing_) {
    return;
  }
  ClientConn* owner = up->owner_;
  if (status != 0) {
    if (owner != nullptr) {
      owner->onUpstreamError(up, status);
    } else {
      up->close();
    }
    return;
  }
  uv_tcp_nodelay(&up->tcp_, 1);
  if (owner == nullptr) {
    up->close();
    return;
  }
  if (up->ctx_->pools[up->pool_].pool->tls_context != nullptr) {
    up->startTls();  // connected once the handshake is done
    return;
  }
  up->connected_ = true;
  owner->onUpstreamConnected(up);
}

int UpstreamConn::send(uv_buf_t* iov, int iovcnt) {
  if (tls_ != nullptr) {
    return sendTls(iov, iovcnt);
  }
  turn_iov_ = iov;
  turn_iovcnt_ = iovcnt;
  ctx_->turn.push(&turn_);
  return 0;
}

void UpstreamConn::onTurnWrite(TurnNode* node) {
  auto* up = static_cast<UpstreamConn*>(node->data);
  int rc = up->sendNow(up->turn_iov_, up->turn_iovcnt_);
  if (rc != 0 && up->owner_ != nullptr) {
    up->owner_->onUpstreamWritten(rc == 1 ? 0 : rc);
  }
}

int UpstreamConn::sendNow(uv_buf_t* iov, int iovcnt) {
  write_req_.data = this;
  return writeIov(stream(), &write_req_, iov, iovcnt, &UpstreamConn::onWritten);
}

void UpstreamConn::onWritten(uv_write_t* req, int status) {
  auto* up = static_cast<UpstreamConn*>(req->data);
  if (up->owner_ != nullptr && !up->closing_) {
    up->owner_->onUpstreamWritten(status);
  }
}

void UpstreamConn::startReading() {
  if (reading_ || closing_) {
    return;
  }
  reading_ = true;
  if (tls_ == nullptr) {
    uv_read_start(stream(), &UpstreamConn::onAlloc, &UpstreamConn::onRead);
    return;
  }
  uv_read_start(stream(), &UpstreamConn::onTlsAlloc, &UpstreamConn::onTlsRead);
  kickTls();  // what OpenSSL kept while reading was stopped
}

void UpstreamConn::stopReading() {
  if (reading_) {
    reading_ = false;
    uv_read_stop(stream());
  }
}

void UpstreamConn::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* up = static_cast<UpstreamConn*>(h->data);
  if (up->owner_ != nullptr) {
    up->owner_->onUpstreamAlloc(buf);
  } else {
    *buf = uv_buf_init(g_idle_scratch, sizeof(g_idle_scratch));
  }
}

void UpstreamConn::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  auto* up = static_cast<UpstreamConn*>(s->data);
  if (up->closing_) {
    return;
  }
  if (up->owner_ != nullptr) {
    up->owner_->onUpstreamRead(up, nread);
    return;
  }
  if (nread != 0) {
    // Idle: the backend closed it, or sent bytes nobody asked for.
    up->close();
  }
}

}  // namespace lb::worker
