#pragma once

// One backend's active health check in the checker process: every interval (plus jitter) a new
// connection to the backend; for type "tcp" a completed connect passes, for "http" the request
// is sent and the response parsed with llhttp: its status must be one of `expect` (any 2xx or
// 3xx when empty) and its body must contain `body_contains` when set. Everything must happen
// within timeout_ms. Each check reports pass or fail with a reason for the log ("connect:
// connection refused", "status 503", "timeout after 2000 ms").
//
// In a pool with TLS to its backends (useTls) every check first completes a TLS handshake with
// the pool's settings; a "tcp" check then passes, an "http" one sends its request inside the
// session. A handshake that fails fails the check ("TLS handshake: certificate verify failed
// (...)").

#include <llhttp.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "shared/config/model.h"

namespace lb::tls {
class ClientContext;
}

namespace lb::worker {

class TlsSession;

class Probe {
 public:
  using OnResult = std::function<void(Probe& probe, bool passed, const std::string& reason)>;

  Probe(uv_loop_t* loop, const config::HealthCheck& check, const config::Backend& backend,
        OnResult on_result);
  ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // Checks run over TLS with `context`, the pool's; `backend_index` is the backend's index in
  // the pool (its session to resume). Before start().
  void useTls(const tls::ClientContext* context, int backend_index);

  // The first check runs after `first_delay_ms`, the next ones every interval (+- jitter).
  void start(uint64_t first_delay_ms);
  // Abandons a check in progress and closes every handle; `on_closed` runs once all are closed
  // (the object may be destroyed then).
  void stop(std::function<void()> on_closed);

  const config::Backend& backend() const { return backend_; }

 private:
  static void onTick(uv_timer_t* t);
  static void onTimeout(uv_timer_t* t);
  static void onConnect(uv_connect_t* req, int status);
  static void onWritten(uv_write_t* req, int status);
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onTcpClosed(uv_handle_t* h);
  static void onHandleClosed(uv_handle_t* h);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t n);
  static int onMessageComplete(llhttp_t* p);
  static void onTlsWritten(uv_write_t* req, int status);
  void begin();
  void finish(bool passed, const std::string& reason);
  // Response bytes (plaintext) into the parser; EOF of the response.
  void consume(const char* data, size_t n);
  void endOfInput();
  void sendRequest();
  // TLS: the handshake, then the request and the decrypted response.
  void tlsStep();
  void flushTls();
  void evaluate();
  uint64_t nextDelay();

  uv_loop_t* loop_;
  const config::HealthCheck& check_;
  const config::Backend& backend_;
  OnResult on_result_;
  std::string request_;
  uv_timer_t tick_{};
  uv_timer_t timeout_{};
  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  char buf_[16384];
  std::string body_;  // the first kMaxBody bytes, for body_contains
  int status_ = 0;
  bool complete_ = false;
  bool in_check_ = false;
  bool tcp_open_ = false;
  bool stopping_ = false;
  int open_handles_ = 0;
  const tls::ClientContext* tls_context_ = nullptr;
  int backend_index_ = -1;
  std::unique_ptr<TlsSession> tls_;  // the check in progress's session
  std::string tls_out_;              // ciphertext waiting for the write in flight
  std::string tls_wbuf_;             // ciphertext of the write in flight
  bool tls_writing_ = false;
  bool handshaking_ = false;
  std::function<void()> on_closed_;
  uint32_t rng_;
};

}  // namespace lb::worker
