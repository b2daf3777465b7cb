#pragma once

// What one message on a generation's handoff channel carries (worker/net/handoff.h): the client
// connections a draining worker gives to the next generation. One SOCK_SEQPACKET message is a
// WireHeader, then `count` WireEntry, and the same number of descriptors in one SCM_RIGHTS
// control message, entry i describing descriptor i. Types only: the workers of two generations
// (two configs, possibly two builds during a binary upgrade) read and write it, so sizes are
// pinned and a message of another version is refused, never guessed at.

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace lb::worker::handoff {

inline constexpr uint32_t kWireMagic = 0x464e484cU;  // "LHNF" little-endian
inline constexpr uint16_t kWireVersion = 1;
// Descriptors per message; also the receiver's control buffer size, so a sender that puts more
// into one message has them closed by the kernel (MSG_CTRUNC) instead of overflowing anything.
inline constexpr uint32_t kMaxFdsPerMessage = 64;
// Room for a sockaddr_in6, the largest listener address lb knows.
inline constexpr size_t kWireAddressSize = 28;

struct WireHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t count;  // entries (= descriptors) that follow; 1 .. kMaxFdsPerMessage
};

// The listener a connection came from, as configured (names may change across configs, the
// address is what identifies a kept listener), and how many requests it has carried so far.
struct WireEntry {
  uint16_t address_length;            // sizeof(sockaddr_in) or sizeof(sockaddr_in6)
  uint16_t reserved;                  // 0
  uint32_t requests;                  // keepalive_requests keeps counting
  uint8_t address[kWireAddressSize];  // the sockaddr bytes, zero-padded
};

inline constexpr size_t kMaxMessageSize =
    sizeof(WireHeader) + kMaxFdsPerMessage * sizeof(WireEntry);

static_assert(std::is_trivially_copyable_v<WireHeader>);
static_assert(std::is_standard_layout_v<WireHeader>);
static_assert(std::is_trivially_copyable_v<WireEntry>);
static_assert(std::is_standard_layout_v<WireEntry>);
static_assert(sizeof(WireHeader) == 8);
static_assert(sizeof(WireEntry) == 36);
static_assert(offsetof(WireEntry, address) == 8);
static_assert(kMaxMessageSize == 2312);

}  // namespace lb::worker::handoff
