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
inline constexpr uint16_t kWireVersion = 2;
// Version 1 entries (no idle time) are still read: its senders are builds from before version 2.
inline constexpr uint16_t kWireVersionV1 = 1;
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
// address is what identifies a kept listener), how many requests it has carried so far and
// since when it has been idle.
struct WireEntry {
  uint16_t address_length;  // sizeof(sockaddr_in) or sizeof(sockaddr_in6)
  uint16_t reserved;        // 0
  uint32_t requests;        // keepalive_requests keeps counting
  // CLOCK_MONOTONIC milliseconds (the same clock in every process) of the connection's last
  // response: the next worker's keepalive_timeout_ms runs from there, so that reloads cannot
  // keep an idle connection open forever. A time, not a length: no error adds up over hops.
  uint64_t idle_since_ms;
  uint8_t address[kWireAddressSize];  // the sockaddr bytes, zero-padded
};

struct WireEntryV1 {
  uint16_t address_length;
  uint16_t reserved;
  uint32_t requests;
  uint8_t address[kWireAddressSize];
};

inline constexpr size_t kMaxMessageSize =
    sizeof(WireHeader) + kMaxFdsPerMessage * sizeof(WireEntry);

static_assert(std::is_trivially_copyable_v<WireHeader>);
static_assert(std::is_standard_layout_v<WireHeader>);
static_assert(std::is_trivially_copyable_v<WireEntry>);
static_assert(std::is_standard_layout_v<WireEntry>);
static_assert(sizeof(WireHeader) == 8);
static_assert(std::is_trivially_copyable_v<WireEntryV1>);
static_assert(sizeof(WireEntry) == 48);
static_assert(offsetof(WireEntry, idle_since_ms) == 8);
static_assert(offsetof(WireEntry, address) == 16);
static_assert(sizeof(WireEntryV1) == 36);
static_assert(offsetof(WireEntryV1, address) == 8);
static_assert(kMaxMessageSize == 3080);

}  // namespace lb::worker::handoff
