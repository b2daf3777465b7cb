#pragma once

// The state machine every client connection runs through (DESIGN.md). The table of allowed
// transitions is explicit data, so an illegal transition is a bug that a unit test or the error
// log ([alert]) catches rather than a silent misstep.

#include <cstdint>

namespace lb::worker {

enum class ConnState : uint8_t {
  Accepting,
  SslHandshaking,
  ReadingRequest,
  ParsingRequest,
  SelectingBackend,
  ConnectingBackend,
  SendingRequest,
  ReadingResponse,
  SendingResponse,
  KeepAlive,
  WebSocket,
  Draining,  // lingering close: our last byte is sent, unread input is drained, no RST
  Closing,
  Closed,
  Error,
  kCount
};

inline constexpr int kConnStateCount = static_cast<int>(ConnState::kCount);

const char* connStateName(ConnState s);

// True when `from` -> `to` is in the table.
bool isAllowedTransition(ConnState from, ConnState to);

class ConnStateMachine {
 public:
  ConnState state() const { return state_; }
  // Moves to `to`. An illegal transition is logged at [alert] with both names (a bug), and the
  // state is still changed so the connection can be torn down; returns false in that case.
  bool transition(ConnState to);

 private:
  ConnState state_ = ConnState::Accepting;
};

}  // namespace lb::worker
