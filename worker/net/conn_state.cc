#include "worker/net/conn_state.h"

#include <array>
#include <cstddef>
#include <initializer_list>

#include "shared/log/log.h"

namespace lb::worker {
namespace {

using S = ConnState;
using Mask = uint32_t;
static_assert(kConnStateCount <= 32, "one bit per target state");

constexpr Mask bit(S s) {
  return Mask{1} << static_cast<int>(s);
}

constexpr Mask to(std::initializer_list<S> targets) {
  Mask m = 0;
  for (S s : targets) {
    m |= bit(s);
  }
  return m;
}

struct Row {
  S from;
  Mask to;
};

// The whole state machine, one row per state in enum order. Anything not listed is a bug.
// SelectingBackend is re-entered from the upstream states to retry another backend before any
// byte of the response was sent; SendingResponse is reachable from every request-side state
// because lb may answer itself (static response, 4xx, 502/503/504). A connection handed over by
// a draining worker of the previous generation starts in KeepAlive; a drain closes a connection
// that has not sent a byte yet with a lingering close (ReadingRequest -> Draining).
constexpr Row kRows[] = {
    {S::Accepting, to({S::SslHandshaking, S::ReadingRequest, S::KeepAlive, S::Closing})},
    {S::SslHandshaking, to({S::ReadingRequest, S::Closing, S::Error})},
    {S::ReadingRequest, to({S::ParsingRequest, S::Draining, S::Closing, S::Error})},
    {S::ParsingRequest,
     to({S::ReadingRequest, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error})},
    {S::SelectingBackend,
     to({S::ConnectingBackend, S::SendingRequest, S::SendingResponse, S::Closing, S::Error})},
    {S::ConnectingBackend,
     to({S::SendingRequest, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error})},
    {S::SendingRequest,
     to({S::ReadingResponse, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error})},
    {S::ReadingResponse, to({S::SendingResponse, S::SelectingBackend, S::Closing, S::Error})},
    {S::SendingResponse,
     to({S::ReadingResponse, S::KeepAlive, S::WebSocket, S::Draining, S::Closing, S::Error})},
    {S::KeepAlive, to({S::ReadingRequest, S::ParsingRequest, S::Draining, S::Closing})},
    {S::WebSocket, to({S::Draining, S::Closing, S::Error})},
    {S::Draining, to({S::Closing})},
    {S::Closing, to({S::Closed})},
    {S::Closed, to({})},
    {S::Error, to({S::Draining, S::Closing})},
};

constexpr bool rowsInEnumOrder() {
  if (std::size(kRows) != static_cast<size_t>(kConnStateCount)) {
    return false;
  }
  for (size_t i = 0; i < std::size(kRows); ++i) {
    if (static_cast<size_t>(kRows[i].from) != i) {
      return false;
    }
  }
  return true;
}
static_assert(rowsInEnumOrder(), "kRows needs exactly one row per ConnState, in enum order");

constexpr const char* kNames[] = {
    "Accepting",         "SslHandshaking", "ReadingRequest",  "ParsingRequest",  "SelectingBackend",
    "ConnectingBackend", "SendingRequest", "ReadingResponse", "SendingResponse", "KeepAlive",
    "WebSocket",         "Draining",       "Closing",         "Closed",          "Error",
};
static_assert(std::size(kNames) == static_cast<size_t>(kConnStateCount));

// The enum is unsigned, so only the upper bound can be violated (a cast from bad data).
constexpr bool valid(S s) {
  return static_cast<int>(s) < kConnStateCount;
}

}  // namespace

const char* connStateName(ConnState s) {
  return valid(s) ? kNames[static_cast<int>(s)] : "Invalid";
}

bool isAllowedTransition(ConnState from, ConnState to) {
  return valid(from) && valid(to) && (kRows[static_cast<int>(from)].to & bit(to)) != 0;
}

bool ConnStateMachine::transition(ConnState to) {
  const ConnState from = state_;
  state_ = to;
  if (isAllowedTransition(from, to)) {
    return true;
  }
  LB_ALERT("illegal connection state transition %s -> %s", connStateName(from), connStateName(to));
  return false;
}

}  // namespace lb::worker
