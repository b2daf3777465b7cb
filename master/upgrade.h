#pragma once

// Binary upgrade (nginx's USR2): the running master starts a new master from the binary on disk
// and hands it its listening sockets, so the new binary serves on the same sockets without a
// connection refused. What crosses the exec is an environment variable naming each inherited
// descriptor and its address:
//
//   LB_INHERIT="5=127.0.0.1:80;6=[::1]:80;handoff=7,8"
//
// `handoff` is the master's handoff channel, both ends (see worker::WorkerInit): the new master
// keeps using it, so when the old master withdraws its workers (WINCH) they pass their idle
// keep-alive connections to the new master's workers, and back again on a roll back. Encoding and
// parsing are pure and unit-tested; the master does the rest.

#include <string>
#include <utility>
#include <vector>

#include "shared/os/socket_address.h"
#include "shared/util/result.h"

namespace lb::master {

inline constexpr const char* kInheritEnv = "LB_INHERIT";

struct Inherited {
  std::vector<std::pair<os::SocketAddress, int>> listeners;
  int handoff_rx = -1;
  int handoff_tx = -1;
};

std::string encodeInherited(const Inherited& inherited);
// Errors name the offending item. Descriptors are checked only for syntax here.
Result<Inherited> parseInherited(const std::string& text);

// Checks each inherited descriptor: a listener must be an open listening TCP socket bound to the
// address it was announced with, the handoff ends SOCK_SEQPACKET sockets. Drops the ones that
// are not (closing those that are open and not also named by a kept entry) and returns what it
// dropped as messages for the log. Kept descriptors are made close-on-exec and non-blocking.
std::vector<std::string> verifyInherited(Inherited& inherited);

// The path of the running executable as the file system names it now, for exec()ing the
// binary that is on disk at upgrade time ("/usr/sbin/lb", never "... (deleted)").
std::string executablePath();

}  // namespace lb::master
