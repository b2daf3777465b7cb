#pragma once

// Writing a gather list to a socket, as the client and upstream sides both do.

#include <uv.h>

#include <cstddef>

namespace lb::worker {

inline size_t iovBytes(const uv_buf_t* iov, int iovcnt) {
  size_t bytes = 0;
  for (int i = 0; i < iovcnt; ++i) {
    bytes += iov[i].len;
  }
  return bytes;
}

// Writes `iov` to `stream`: 1 when the kernel took all of it at once, 0 when the rest went to
// uv_write on `req` (`cb` follows; `iov` is advanced past what left, so it must stay valid until
// then), or a libuv error. uv_write costs an epoll_ctl per call in libuv 1.44 (its drain re-arms
// the watcher); a write the socket takes at once does not need it.
inline int writeIov(uv_stream_t* stream, uv_write_t* req, uv_buf_t* iov, int iovcnt,
                    uv_write_cb cb) {
  size_t bytes = iovBytes(iov, iovcnt);
  int n = uv_try_write(stream, iov, static_cast<unsigned>(iovcnt));
  if (n >= 0 && static_cast<size_t>(n) == bytes) {
    return 1;
  }
  if (n < 0 && n != UV_EAGAIN) {
    return n;
  }
  int first = 0;
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  while (done > 0 && done >= iov[first].len) {
    done -= iov[first].len;
    ++first;
  }
  iov[first].base += done;
  iov[first].len -= static_cast<unsigned>(done);
  return uv_write(req, stream, iov + first, static_cast<unsigned>(iovcnt - first), cb);
}

}  // namespace lb::worker
