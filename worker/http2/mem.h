#pragma once

// nghttp2's allocator in a worker. nghttp2 allocates several small blocks per stream (the
// stream, its frames, header buffers) and frees them when the stream closes; with hundreds of
// streams a second per connection, malloc and free were a tenth of the worker's instructions.
// Blocks up to 1 KiB come back to per-size free lists instead; larger ones go to malloc.

#include <nghttp2/nghttp2.h>

#include <cstddef>

namespace lb::worker::http2 {

// The worker's allocator, for nghttp2_session_server_new3. The worker is single-threaded.
nghttp2_mem* workerMem();

// Blocks kept for reuse, over all sizes (for tests).
size_t workerMemFreeBlocks();

}  // namespace lb::worker::http2
