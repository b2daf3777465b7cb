#pragma once

// A deliberately minimal HTTP/1.1 client over a raw socket: it sends exactly the bytes a test
// gives it (so smuggling, malformed and pipelined requests can be written out) and reads
// responses honouring Content-Length, chunked and close-delimited framing, with timeouts.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "e2e/harness/http_message.h"
#include "e2e/harness/net.h"

namespace lb::e2e {

struct HttpResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  Headers headers;
  Body body;
  Headers trailers;
  std::string head;  // raw, as received
  bool chunked = false;

  std::string header(std::string_view name) const { return headers.value(name); }
};

struct ReadOptions {
  bool head_request = false;  // the response to a HEAD request has no body
  milliseconds timeout = 10s;
  size_t store_limit = 16u << 20;  // body bytes kept; length and checksum cover everything
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// "METHOD target HTTP/1.1", Host, the given fields, then Content-Length when `body` is not
// empty or the method is POST/PUT, then the body.
std::string buildRequest(const std::string& method, const std::string& target,
                         const HeaderList& fields = {}, const std::string& body = "",
                         const std::string& host = "lb.test");

class HttpClient {
 public:
  // Connects to host:port; connected() tells whether that worked.
  explicit HttpClient(int port, milliseconds timeout = 5s, const std::string& host = "127.0.0.1");

  bool connected() const { return stream_.fd() >= 0 && connected_; }
  // Sends raw bytes. False (see error()) if the peer is gone or the deadline passed.
  bool send(std::string_view data, milliseconds timeout = 10s);
  // Reads the next response, interim (1xx) ones included. nullopt on timeout, close or a
  // malformed response; error() then says which.
  std::optional<HttpResponse> read(const ReadOptions& options = {});
  // send() + read(), skipping nothing.
  std::optional<HttpResponse> roundTrip(std::string_view request, const ReadOptions& options = {});
  // True if the server closes (FIN or RST) the connection within `timeout`; discards data.
  bool waitClosed(milliseconds timeout = 5s);
  // True if the connection is still open and nothing arrived within `timeout`.
  bool staysOpen(milliseconds timeout);

  const std::string& error() const { return error_; }
  int localPort() const;
  Stream& stream() { return stream_; }
  void close() { stream_.close(); }

 private:
  Stream stream_;
  bool connected_ = false;
  std::string error_;
};

// One request on a new connection: connect, send, read one final response (1xx skipped).
std::optional<HttpResponse> fetch(int port, const std::string& request,
                                  const ReadOptions& options = {}, std::string* error = nullptr);
// GET `target` with Host `host` on a new connection.
std::optional<HttpResponse> get(int port, const std::string& target,
                                const std::string& host = "lb.test");

}  // namespace lb::e2e
