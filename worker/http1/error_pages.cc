#include "worker/http1/error_pages.h"

#include <cstdio>
#include <string>

namespace lb::worker::http1 {
namespace {

constexpr int kStatuses[] = {400, 404, 405, 408, 413, 414, 431, 500, 501, 502, 503, 504, 505};
constexpr int kCount = sizeof(kStatuses) / sizeof(kStatuses[0]);

struct Pages {
  // [status index][close][head_only]
  std::string text[kCount][2][2];

  Pages() {
    for (int i = 0; i < kCount; ++i) {
      int status = kStatuses[i];
      std::string reason(reasonPhrase(status));
      std::string body = "<html>\r\n<head><title>" + std::to_string(status) + " " + reason +
                         "</title></head>\r\n<body>\r\n<center><h1>" + std::to_string(status) +
                         " " + reason +
                         "</h1></center>\r\n<hr><center>lb</center>\r\n</body>\r\n"
                         "</html>\r\n";
      for (int close = 0; close < 2; ++close) {
        std::string head =
            "HTTP/1.1 " + std::to_string(status) + " " + reason +
            "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n";
        if (close) {
          head += "Connection: close\r\n";
        }
        head += "\r\n";
        text[i][close][1] = head;
        text[i][close][0] = head + body;
      }
    }
  }
};

const Pages& pages() {
  static const Pages p;
  return p;
}

}  // namespace

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string_view errorResponse(int status, bool close, bool head_only) {
  for (int i = 0; i < kCount; ++i) {
    if (kStatuses[i] == status) {
      return pages().text[i][close ? 1 : 0][head_only ? 1 : 0];
    }
  }
  return pages().text[7][1][head_only ? 1 : 0];  // 500
}

shm::Counter classCounter(int status) {
  return status < 200   ? shm::Counter::Status1xx
         : status < 300 ? shm::Counter::Status2xx
         : status < 400 ? shm::Counter::Status3xx
         : status < 500 ? shm::Counter::Status4xx
                        : shm::Counter::Status5xx;
}

shm::Counter errorCounter(int status) {
  switch (status) {
    case 400:
      return shm::Counter::Error400;
    case 404:
      return shm::Counter::Error404;
    case 408:
      return shm::Counter::Error408;
    case 413:
      return shm::Counter::Error413;
    case 414:
      return shm::Counter::Error414;
    case 431:
      return shm::Counter::Error431;
    case 502:
      return shm::Counter::Error502;
    case 503:
      return shm::Counter::Error503;
    case 504:
      return shm::Counter::Error504;
    case 405:
      return shm::Counter::Error405;
    case 501:
      return shm::Counter::Error501;
    case 505:
      return shm::Counter::Error505;
    default:
      return shm::Counter::kCount;
  }
}

}  // namespace lb::worker::http1
