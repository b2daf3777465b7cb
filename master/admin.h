#pragma once

// Run-time control of backends, without a reload: `lb backends` reads the backend table of the
// running instance's shared memory and `lb backend POOL/ADDRESS OP` writes one slot's
// admin_state or admin_weight with an atomic exchange. Every worker of every live generation
// reads those fields on its next pick, so a change takes effect everywhere at once; the master
// is not involved and never told.
//
// The pure parts (rows from a segment, their formatting, writing a slot) take a segment and
// are unit-tested on one the test creates; showBackends() and controlBackend() add the I/O.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "master/cli.h"
#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "shared/util/result.h"

namespace lb::master {

// One backend as `lb backends` shows it: a snapshot of its slot (each field read on its own,
// relaxed: counters move while they are read) and its configured weight.
struct BackendRow {
  std::string pool;
  std::string address;
  // From the running configuration; -1 when the slot's backend is not in it (only an older,
  // draining generation still names it) or that configuration could not be read.
  int config_weight = -1;
  uint32_t admin_weight = 0;  // 0: no override
  shm::AdminState state = shm::AdminState::Enabled;
  shm::HealthState health = shm::HealthState::Up;
  uint64_t health_age_ms = 0;  // since the last health transition; 0 if there was none
  // Passive health: real traffic failed and took it out of rotation for this much longer.
  uint64_t passive_failed_ms = 0;
  shm::BreakerState breaker = shm::BreakerState::Closed;
  int32_t active = 0;
  uint64_t requests = 0;
  uint64_t failures = 0;
  uint64_t connections = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t ewma_us = 0;    // response-time EWMA in microseconds; 0 before the first response
  int ramped_weight = -1;  // the weight slow start allows now, when the pool has slow start

  // The weight the balancers use: the override if any, else the configured one (-1 if unknown),
  // as slow start ramps it.
  int effectiveWeight() const;
};

// The rows of every slot in use: first the backends of `running` in its order (pools, then
// backends), then slots in use that it does not name, by key. `running` may be null (weights
// unknown: slot order). `now_ms` is CLOCK_MONOTONIC in milliseconds, for health_age_ms.
std::vector<BackendRow> backendRows(const shm::Segment& segment, const config::Config* running,
                                    uint64_t now_ms);

// The table for people: a header line, then one line per row in aligned columns
// POOL ADDRESS WEIGHT EFFECTIVE STATE HEALTH BREAKER ACTIVE REQUESTS FAILURES EWMA. WEIGHT is
// the configured weight, EFFECTIVE the one in use ("-" when unknown); HEALTH is what active
// checks say ("up", "down"), or "failed" while passive health holds an up backend out; EWMA is
// in us, ms or s.
std::string formatBackendTable(const std::vector<BackendRow>& rows);
// The same rows as one JSON document (its fields are documented in lb(8)), for scripts.
std::string formatBackendJson(const std::vector<BackendRow>& rows, int master_pid,
                              uint64_t generation);

// "enabled", "draining", "disabled"; "up", "down"; "closed", "open", "half-open".
const char* adminStateName(shm::AdminState state);
const char* healthStateName(shm::HealthState health);
const char* breakerStateName(shm::BreakerState breaker);

// What applyAdminCommand() changed (old == new when it was already so).
struct AdminChange {
  std::string backend;
  AdminOp op = AdminOp::Enable;
  shm::AdminState old_state = shm::AdminState::Enabled;
  shm::AdminState new_state = shm::AdminState::Enabled;
  uint32_t old_weight = 0;  // admin_weight before and after; 0 = the configured weight
  uint32_t new_weight = 0;
  int config_weight = -1;  // as in BackendRow
  int32_t active = 0;      // connections in flight when it was written
  shm::HealthState health = shm::HealthState::Up;
};

// Writes `command` into the slot in use whose key is command.backend ("pool/address"), with an
// atomic exchange, so two concurrent commands never lose an update's old value. Fails, writing
// nothing, for a key no slot in use has: the message lists the known backends (those of the
// same pool if there are any, at most 20). Should the master hand the slot to another backend
// while it is written (a reload), the write is undone and the call fails. `running` (may be
// null) only supplies config_weight.
Result<AdminChange> applyAdminCommand(shm::Segment& segment, const AdminCommand& command,
                                      const config::Config* running);

// One line for the operator, e.g. "backend app/10.0.0.1:80: enabled -> draining (3 requests
// in flight finish; new requests go to the other backends)".
std::string describeChange(const AdminChange& change);

// `lb backends [--json]`: finds the instance from options.config_file's pid path, prints the
// table (or JSON) to `out`; returns 0, or 1 with "lb: ..." on `err` (config errors, lb not
// running, no rights to the segment).
int showBackends(const Options& options, std::FILE* out, std::FILE* err);

// `lb backend POOL/ADDRESS OP`: as showBackends, then applyAdminCommand(); prints
// describeChange() to `out` and returns 0 (also when nothing had to change), or 1 with
// "lb: ..." on `err` (unknown backend, lb not running, no rights to the segment).
int controlBackend(const Options& options, std::FILE* out, std::FILE* err);

}  // namespace lb::master
