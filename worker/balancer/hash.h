#pragma once

// The hashing and random numbers the balancers use. The hashes are fixed functions of their
// input bytes (no per-process seed, no std::hash), because two lb instances, and the workers
// of one, must map a key to the same backend and a backend to the same sticky cookie.

#include <cstdint>
#include <string_view>

namespace lb::worker {

// MurmurHash3's 64-bit finalizer: every input bit flips about half the output bits.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// A 64-bit hash of `bytes`: FNV-1a over the bytes, started from `seed`, then mix64. Stable
// across processes, builds and machines. Different seeds give independent-looking hashes.
inline uint64_t hash64(std::string_view bytes, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ bytes.size());
}

// A value in [0, n) from 64 random bits, without the bias of `%` (Lemire's multiply-shift).
inline uint64_t boundedBy(uint64_t random, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(random) * n) >> 64);
}

// SplitMix64: small, fast and good enough to spread requests. One per balancer, so per worker;
// not for anything secret.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // 64 random bits.
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Uniform in [0, n); n must be > 0.
  uint64_t below(uint64_t n) { return boundedBy(next(), n); }
  // Restarts the sequence: the same seed gives the same numbers (tests).
  void seed(uint64_t seed) { state_ = seed; }

 private:
  uint64_t state_;
};

}  // namespace lb::worker
