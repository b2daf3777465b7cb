#pragma once

// Messages between the master and its children over the per-child control channel: a
// SOCK_SEQPACKET socketpair created at fork, one message per datagram. Types only: both sides
// of the channel include this header, so sizes are pinned.
//
// Worker -> master: Ready once the worker accepts on every listener (the master tells an old
// generation to drain only when every process of the new one has said Ready). The master sees
// the channel close when the child exits.

#include <cstdint>
#include <type_traits>

namespace lb::proc {

enum class ControlType : uint32_t {
  Ready = 1,
};

struct ControlMessage {
  ControlType type;
  int32_t pid;
  uint64_t generation;
};

static_assert(std::is_trivially_copyable_v<ControlMessage>);
static_assert(sizeof(ControlMessage) == 16);

}  // namespace lb::proc
