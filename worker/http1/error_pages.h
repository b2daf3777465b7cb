#pragma once

// The responses lb answers itself when a request cannot be proxied: a short HTML body, built once
// per worker so an error costs no allocation. Two variants per status: one that closes the
// connection (the request was not fully read, or the framing is untrustworthy) and one that keeps
// it alive.

#include <string_view>

#include "shared/shm/layout.h"

namespace lb::worker::http1 {

// The reason phrase of a status code ("Bad Gateway"); "Unknown" when lb has none.
std::string_view reasonPhrase(int status);

// A complete response ("HTTP/1.1 502 Bad Gateway\r\n...\r\n\r\n<html>...") for one of the
// statuses lb generates: 400 404 405 408 413 414 431 500 501 502 503 504 505. Valid for the life
// of the process. `head_only`: the response to a HEAD request, without the body.
std::string_view errorResponse(int status, bool close, bool head_only);

// The counter for an error status lb generated; kCount for one without its own (the response
// class is counted apart).
shm::Counter errorCounter(int status);

// The counter of the status's class: 1xx to 5xx.
shm::Counter classCounter(int status);

}  // namespace lb::worker::http1
