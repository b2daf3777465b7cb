#include "worker/worker.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "shared/log/log.h"
#include "shared/proc/control.h"
#include "shared/tls/server_context.h"
#include "worker/access_log.h"
#include "worker/context.h"
#include "worker/net/acceptor.h"
#include "worker/net/handoff.h"
#include "worker/proxy/client_conn.h"
#include "worker/proxy/upstream_conn.h"

namespace lb::worker {
namespace {

constexpr uint32_t kTickMs = 100;
constexpr uint32_t kLogFlushMs = 1000;

// The worker's process-level state: signals, the stop sequence and the handles that keep the
// loop alive. Connections reach it through WorkerContext.
class Worker {
 public:
  explicit Worker(const WorkerInit& init) : init_(init) {}
  int run();

 private:
  static void onSignal(uv_signal_t* h, int signum);
  static void onFlush(uv_timer_t* t);
  static void onShutdownTimeout(uv_timer_t* t);
  static void onConnectionClosed(WorkerContext* ctx);
  void startSignal(uv_signal_t* h, int signum);
  // QUIT (handoff = false) or USR2, drain for a reload (handoff = true).
  void gracefulStop(bool handoff);
  void fastStop();
  void maybeFinish();
  void closeProcessHandles();

  const WorkerInit& init_;
  uv_loop_t loop_{};
  WorkerContext ctx_;
  Acceptor acceptor_;
  Handoff handoff_;
  std::unique_ptr<AccessLog> access_log_;
  uv_signal_t sig_quit_{}, sig_term_{}, sig_int_{}, sig_usr1_{}, sig_usr2_{}, sig_hup_{};
  uv_timer_t flush_timer_{};
  uv_timer_t shutdown_timer_{};
  bool stopping_ = false;
  bool handles_closed_ = false;
};

Worker* g_worker = nullptr;  // for the connection-closed hook; one Worker per process

int Worker::run() {
  const config::Config& cfg = *init_.config;
  if (uv_loop_init(&loop_) != 0) {
    LB_ERROR("cannot create the event loop");
    return kExitFatal;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ctx_.loop = &loop_;
  ctx_.config = &cfg;
  ctx_.segment = init_.segment;
  ctx_.index = init_.index;
  ctx_.slot = &init_.segment->workers[init_.slot];
  tls::setTicketKeys(&init_.segment->tickets);
  ctx_.slot->pid.store(static_cast<int32_t>(::getpid()), std::memory_order_relaxed);
  ctx_.slot->generation.store(init_.generation, std::memory_order_relaxed);
  ctx_.on_connection_closed = &Worker::onConnectionClosed;
  ctx_.handoff = &handoff_;
  ctx_.pools.resize(cfg.pools.size());
  for (size_t i = 0; i < cfg.pools.size(); ++i) {
    ctx_.pools[i].pool = &cfg.pools[i];
    ctx_.pools[i].balancer = makeBalancer(cfg.pools[i], init_.segment);
    ctx_.pools[i].idle.resize(cfg.pools[i].backends.size());
    if (cfg.pools[i].queue.size > 0) {
      ctx_.pools[i].queue = std::make_unique<RequestQueue>(&loop_, cfg.pools[i].queue.size);
    }
  }
  if (!cfg.access_log.path.empty() && cfg.access_log.path != "off") {
    access_log_ = std::make_unique<AccessLog>();
    auto r = access_log_->open(cfg.access_log.path);
    if (!r) {
      LB_ERROR("%s", r.error().message.c_str());
      return kExitFatal;
    }
    ctx_.access_log = access_log_.get();
  }
  ctx_.timers.start(&loop_, kTickMs);
  ctx_.turn.init(&loop_);
  uv_timer_init(&loop_, &flush_timer_);
  flush_timer_.data = this;
  uv_timer_start(&flush_timer_, &Worker::onFlush, kLogFlushMs, kLogFlushMs);
  uv_timer_init(&loop_, &shutdown_timer_);
  shutdown_timer_.data = this;
  startSignal(&sig_quit_, SIGQUIT);
  startSignal(&sig_term_, SIGTERM);
  startSignal(&sig_int_, SIGINT);
  startSignal(&sig_usr1_, SIGUSR1);
  startSignal(&sig_usr2_, SIGUSR2);
  startSignal(&sig_hup_, SIGHUP);
  // The master forks with every signal it handles blocked; they are handled from here on.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  auto started = acceptor_.start(&ctx_, init_.listen_fds);
  if (!started) {
    LB_ERROR("%s", started.error().message.c_str());
    return kExitFatal;
  }
  auto handoff = handoff_.start(&ctx_, init_.handoff_in_fd, init_.handoff_out_fd);
  if (!handoff) {
    LB_ERROR("%s", handoff.error().message.c_str());
    return kExitFatal;
  }
  LB_INFO("worker %d (generation %llu) ready", init_.index,
          static_cast<unsigned long long>(init_.generation));
  reportReady(init_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (access_log_) {
    access_log_->flush();
  }
  ctx_.timers.stop();
  ctx_.turn.close();
  for (PoolRuntime& pr : ctx_.pools) {
    if (pr.queue) {
      pr.queue->close();
    }
  }
  if (ctx_.tls_idle_ready) {
    uv_close(reinterpret_cast<uv_handle_t*>(&ctx_.tls_idle), nullptr);
  }
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_loop_close(&loop_);
  ctx_.slot->pid.store(0, std::memory_order_relaxed);
  return 0;
}

void Worker::startSignal(uv_signal_t* h, int signum) {
  uv_signal_init(&loop_, h);
  h->data = this;
  uv_signal_start(h, &Worker::onSignal, signum);
}

void Worker::onSignal(uv_signal_t* h, int signum) {
  auto* w = static_cast<Worker*>(h->data);
  switch (signum) {
    case SIGQUIT:
      w->gracefulStop(false);
      break;
    case SIGUSR2:
      w->gracefulStop(true);
      break;
    case SIGTERM:
    case SIGINT:
      w->fastStop();
      break;
    case SIGUSR1:
      log::reopen();
      if (w->access_log_) {
        w->access_log_->reopen();
      }
      break;
    default:
      break;  // HUP goes to the master; a worker ignores it
  }
}

void Worker::onFlush(uv_timer_t* t) {
  auto* w = static_cast<Worker*>(t->data);
  if (w->access_log_) {
    w->access_log_->flush();
  }
}

// Stop accepting and let in-flight requests finish; exit when no connection is left or
// worker_shutdown_timeout_ms passes. Draining for a reload, idle keep-alive connections go to
// the next generation (busy ones too, once their response is out), so the reload closes none.
// Without a next generation (QUIT, or no usable channel) responses carry Connection: close and
// idle connections are closed safely, spread over drain_window_ms (ClientConn::drain).
void Worker::gracefulStop(bool handoff) {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  ctx_.draining = true;
  // Handing off, connections taken from the channel would only have to be passed on again.
  // Stopping (QUIT), a worker goes on taking them, to close them safely: nobody else will.
  if (handoff) {
    handoff_.stopReceiving();
  }
  if (handoff && handoff_.beginSending()) {
    LB_INFO("worker %d draining: idle connections go to the next generation", init_.index);
  } else {
    if (handoff) {
      LB_WARN("worker %d draining without a handoff channel: idle connections are closed",
              init_.index);
    }
    LB_INFO("worker %d shutting down gracefully", init_.index);
  }
  acceptor_.stop();
  UpstreamConn::closeAllIdle(&ctx_);
  for (ClientConn* c = ctx_.clients; c != nullptr;) {
    ClientConn* next = c->next();
    c->drain();
    c = next;
  }
  uv_timer_start(&shutdown_timer_, &Worker::onShutdownTimeout,
                 init_.config->worker_shutdown_timeout_ms, 0);
  maybeFinish();
}

void Worker::fastStop() {
  stopping_ = true;
  ctx_.draining = true;
  acceptor_.stop();
  UpstreamConn::closeAllIdle(&ctx_);
  for (ClientConn* c = ctx_.clients; c != nullptr;) {
    ClientConn* next = c->next();
    c->abort();
    c = next;
  }
  closeProcessHandles();
}

void Worker::onShutdownTimeout(uv_timer_t* t) {
  auto* w = static_cast<Worker*>(t->data);
  if (w->ctx_.connections > 0) {
    LB_WARN("worker %d: worker_shutdown_timeout_ms passed, closing %u connections", w->init_.index,
            w->ctx_.connections);
  }
  w->fastStop();
}

// Also called when the handoff queue has been sent: a connection that left is a closed one.
void Worker::onConnectionClosed(WorkerContext* ctx) {
  Worker* w = g_worker;
  if (w == nullptr) {
    return;
  }
  if (ctx->connections < ctx->config->worker_connections) {
    w->handoff_.resumeReceiving();
  }
  if (w->stopping_) {
    w->maybeFinish();
  } else if (ctx->connections < ctx->config->worker_connections) {
    w->acceptor_.resume();
  }
}

void Worker::maybeFinish() {
  if (stopping_ && ctx_.connections == 0 && handoff_.queued() == 0) {
    closeProcessHandles();
  }
}

// With these closed only connections keep the loop alive, so uv_run returns once they are gone.
void Worker::closeProcessHandles() {
  if (handles_closed_) {
    return;
  }
  handles_closed_ = true;
  UpstreamConn::closeAllIdle(&ctx_);
  if (handoff_.sent() > 0 || handoff_.received() > 0) {
    LB_INFO("worker %d: %llu connections handed to the next generation, %llu received", init_.index,
            static_cast<unsigned long long>(handoff_.sent()),
            static_cast<unsigned long long>(handoff_.received()));
  }
  handoff_.close();
  for (uv_signal_t* h : {&sig_quit_, &sig_term_, &sig_int_, &sig_usr1_, &sig_usr2_, &sig_hup_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), nullptr);
}

}  // namespace

// The master starts draining the previous generation only when every new process said Ready,
// so this goes out once the process does its job (a worker accepts on every listener). The
// master notices a process that never says it (timeout) or dies first (the channel closes).
void reportReady(const WorkerInit& init) {
  if (init.control_fd < 0) {
    return;
  }
  proc::ControlMessage msg{proc::ControlType::Ready, static_cast<int32_t>(::getpid()),
                           init.generation};
  ssize_t n;
  do {
    n = ::send(init.control_fd, &msg, sizeof(msg), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(msg))) {
    LB_ERROR("cannot report ready to the master: %s", n < 0 ? std::strerror(errno) : "short write");
  }
}

int runWorker(const WorkerInit& init) {
  Worker w(init);
  g_worker = &w;
  int rc = w.run();
  g_worker = nullptr;
  return rc;
}

}  // namespace lb::worker
