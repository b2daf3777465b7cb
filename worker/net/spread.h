#pragma once

// Spreading new connections over the workers of a generation. Every worker is woken for a new
// connection (a listening socket, the handoff channel) and the first to take it wins; a worker
// that already holds clearly more connections than a sibling sits out briefly instead, so a
// burst cannot land on whichever worker happens to wake first. The counts are the workers'
// shared-memory slots, so the rule is the same in every worker.

#include <cstdint>

#include "worker/context.h"

namespace lb::worker {

// How long a worker that leaves a connection to a sibling waits before it looks again: long
// enough not to spin on a socket that stays readable until the sibling takes it, short enough
// that nothing waits long even if every worker sat out at once.
inline constexpr uint64_t kLeaveToSiblingMs = 5;

// True when another live worker of this generation that takes connections now has clearly fewer
// client connections than this one (more than 2 plus an eighth of its count fewer). Siblings
// that sit out, are full or stop do not count: two workers sitting out at once would leave a
// new connection waiting for the first of them to look again.
bool siblingHasRoom(const WorkerContext& ctx);

}  // namespace lb::worker
