#include "worker/http2/mem.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

namespace lb::worker::http2 {
namespace {

TEST_CASE("http2 mem: small blocks are reused, large ones are not kept", "[http2]") {
  nghttp2_mem* mem = workerMem();
  size_t before = workerMemFreeBlocks();
  void* a = mem->malloc(100, mem->mem_user_data);
  REQUIRE(a != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 16 == 0);
  std::memset(a, 0xab, 100);
  mem->free(a, mem->mem_user_data);
  CHECK(workerMemFreeBlocks() == before + 1);
  // Same size class (65 to 128 bytes): the same block comes back.
  void* b = mem->malloc(120, mem->mem_user_data);
  CHECK(b == a);
  CHECK(workerMemFreeBlocks() == before);
  mem->free(b, mem->mem_user_data);

  void* big = mem->malloc(64 * 1024, mem->mem_user_data);
  REQUIRE(big != nullptr);
  size_t kept = workerMemFreeBlocks();
  mem->free(big, mem->mem_user_data);
  CHECK(workerMemFreeBlocks() == kept);
  mem->free(nullptr, mem->mem_user_data);
}

TEST_CASE("http2 mem: calloc zeroes and refuses overflow; realloc keeps the bytes", "[http2]") {
  nghttp2_mem* mem = workerMem();
  auto* z = static_cast<unsigned char*>(mem->malloc(200, mem->mem_user_data));
  std::memset(z, 0xff, 200);
  mem->free(z, mem->mem_user_data);
  auto* c = static_cast<unsigned char*>(mem->calloc(10, 20, mem->mem_user_data));
  REQUIRE(c != nullptr);
  CHECK(std::vector<unsigned char>(c, c + 200) == std::vector<unsigned char>(200, 0));
  CHECK(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data) == nullptr);

  for (size_t i = 0; i < 200; ++i) {
    c[i] = static_cast<unsigned char>(i);
  }
  // Within the block's class: the block stays; past it: the bytes move, through the classes
  // and out to a large block.
  CHECK(mem->realloc(c, 250, mem->mem_user_data) == c);
  auto* d = static_cast<unsigned char*>(mem->realloc(c, 900, mem->mem_user_data));
  REQUIRE(d != nullptr);
  auto* e = static_cast<unsigned char*>(mem->realloc(d, 5000, mem->mem_user_data));
  REQUIRE(e != nullptr);
  for (size_t i = 0; i < 200; ++i) {
    REQUIRE(e[i] == static_cast<unsigned char>(i));
  }
  // A large block shrunk back: the bytes that fit come along into a size-class block.
  auto* f = static_cast<unsigned char*>(mem->realloc(e, 100, mem->mem_user_data));
  REQUIRE(f != nullptr);
  for (size_t i = 0; i < 100; ++i) {
    REQUIRE(f[i] == static_cast<unsigned char>(i));
  }
  size_t kept = workerMemFreeBlocks();
  mem->free(f, mem->mem_user_data);
  CHECK(workerMemFreeBlocks() == kept + 1);
  void* fresh = mem->realloc(nullptr, 30, mem->mem_user_data);
  CHECK(fresh != nullptr);
  mem->free(fresh, mem->mem_user_data);
}

}  // namespace
}  // namespace lb::worker::http2
