#include "e2e/harness/http_client.h"

#include <cctype>

namespace lb::e2e {

namespace {

constexpr size_t kMaxHead = 1u << 20;

bool parseStatusLine(const std::string& line, HttpResponse* r) {
  // HTTP/1.1 200 OK
  if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0 || line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(line[9])) ||
      !std::isdigit(static_cast<unsigned char>(line[10])) ||
      !std::isdigit(static_cast<unsigned char>(line[11])) ||
      (line.size() > 12 && line[12] != ' ')) {
    return false;
  }
  r->version = line.substr(0, 8);
  r->status = std::stoi(line.substr(9, 3));
  r->reason = line.size() > 13 ? line.substr(13) : "";
  return true;
}

}  // namespace

std::string buildRequest(const std::string& method, const std::string& target,
                         const HeaderList& fields, const std::string& body,
                         const std::string& host) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (const auto& [name, value] : fields) {
    out += name + ": " + value + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out += body;
  return out;
}

HttpClient::HttpClient(int port, milliseconds timeout, const std::string& host)
    : stream_(connectTcp(port, timeout, host)) {
  connected_ = stream_.fd() >= 0;
  if (!connected_) {
    error_ = "cannot connect to port " + std::to_string(port);
  }
}

bool HttpClient::send(std::string_view data, milliseconds timeout) {
  IoStatus s = stream_.sendAll(data, deadlineIn(timeout));
  if (s != IoStatus::Ok) {
    error_ = std::string("send: ") + ioStatusName(s);
    return false;
  }
  return true;
}

std::optional<HttpResponse> HttpClient::read(const ReadOptions& options) {
  Deadline deadline = deadlineIn(options.timeout);
  HttpResponse r;
  r.body = Body(options.store_limit);
  IoStatus s = stream_.readUntil("\r\n\r\n", kMaxHead, deadline, &r.head);
  if (s != IoStatus::Ok) {
    error_ = std::string("reading response head: ") + ioStatusName(s);
    if (!stream_.buffer().empty()) {
      error_ += " (partial: " + stream_.buffer().substr(0, 200) + ")";
    }
    return std::nullopt;
  }
  std::string status_line;
  std::string why;
  if (!parseHead(r.head, &status_line, &r.headers, &why) || !parseStatusLine(status_line, &r)) {
    error_ = "malformed response head (" + why + "): " + r.head.substr(0, 300);
    return std::nullopt;
  }
  bool no_body = options.head_request || (r.status >= 100 && r.status < 200) || r.status == 204 ||
                 r.status == 304;
  if (no_body) {
    return r;
  }
  if (r.headers.has("Transfer-Encoding")) {
    if (!r.headers.hasToken("Transfer-Encoding", "chunked")) {
      error_ = "Transfer-Encoding without chunked: " + r.headers.joined("Transfer-Encoding");
      return std::nullopt;
    }
    r.chunked = true;
    s = readChunked(stream_, deadline, &r.body, &r.trailers, &why);
  } else if (r.headers.has("Content-Length")) {
    auto values = r.headers.all("Content-Length");
    std::string v = values.front();
    for (const auto& other : values) {
      if (other != v) {
        error_ = "differing Content-Length values in response";
        return std::nullopt;
      }
    }
    uint64_t length = 0;
    try {
      length = std::stoull(v);
    } catch (...) {
      error_ = "bad Content-Length " + v;
      return std::nullopt;
    }
    s = stream_.readExact(length, deadline, [&](std::string_view d) { r.body.append(d); });
  } else {
    s = stream_.readToEof(deadline, [&](std::string_view d) { r.body.append(d); });
  }
  if (s != IoStatus::Ok) {
    error_ = std::string("reading response body: ") + ioStatusName(s) + " " + why + " after " +
             std::to_string(r.body.length()) + " bytes (status " + std::to_string(r.status) + ")";
    return std::nullopt;
  }
  return r;
}

std::optional<HttpResponse> HttpClient::roundTrip(std::string_view request,
                                                  const ReadOptions& options) {
  if (!send(request, options.timeout)) {
    return std::nullopt;
  }
  return read(options);
}

bool HttpClient::waitClosed(milliseconds timeout) {
  return stream_.waitClosed(deadlineIn(timeout));
}

bool HttpClient::staysOpen(milliseconds timeout) {
  IoStatus s = stream_.fill(deadlineIn(timeout));
  return s == IoStatus::Timeout;
}

int HttpClient::localPort() const {
  return e2e::localPort(stream_.fd());
}

std::optional<HttpResponse> fetch(int port, const std::string& request, const ReadOptions& options,
                                  std::string* error) {
  HttpClient c(port);
  std::optional<HttpResponse> r;
  if (c.connected() && c.send(request, options.timeout)) {
    do {
      r = c.read(options);
    } while (r && r->status >= 100 && r->status < 200);
  }
  if (!r && error != nullptr) {
    *error = c.error();
  }
  return r;
}

std::optional<HttpResponse> get(int port, const std::string& target, const std::string& host) {
  return fetch(port, buildRequest("GET", target, {}, "", host));
}

}  // namespace lb::e2e
