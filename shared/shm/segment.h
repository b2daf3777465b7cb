#pragma once

// The named Boost.Interprocess shared-memory segment that holds shm::Segment.
//
// The master creates it before forking (removing a stale segment of the same name left by a
// killed master); workers inherit the mapping through fork(); `lb` clients attach read-mostly.
// Attach checks magic, layout version and size and refuses a mismatch.

#include <memory>
#include <string>
#include <vector>

#include "shared/config/model.h"
#include "shared/shm/layout.h"
#include "shared/util/result.h"

namespace lb::shm {

class SharedSegment {
 public:
  ~SharedSegment();
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;

  // The segment name of the master `pid` of an instance, derived from its pid-file path so that
  // two instances on one machine never share a segment, and from the pid so that a new master
  // started by a binary upgrade never takes the old one's: "lb.<16 hex digits>.<pid>".
  static std::string nameFor(const std::string& pid_path, int pid);
  // Removes the segments of the instance at `pid_path` whose master no longer exists (killed
  // with SIGKILL, say). Returns how many were removed.
  static int removeStale(const std::string& pid_path);

  // Master: removes any segment of that name, creates it, zeroes it and writes the header.
  static Result<std::unique_ptr<SharedSegment>> create(const std::string& name);
  // Attaches to an existing segment; fails if it is missing or its header does not match.
  static Result<std::unique_ptr<SharedSegment>> attach(const std::string& name);
  // Attaches for `lb -s reload` only: any layout version since kFixedReloadStateSince will do,
  // and only reloadState() may be used (get() is null unless the version is this lb's own).
  static Result<std::unique_ptr<SharedSegment>> attachReloadState(const std::string& name);
  // Removes the name (the mapping stays valid for processes that hold it).
  static void remove(const std::string& name);

  Segment* get() const { return segment_; }
  ReloadState* reloadState() const { return reload_; }
  const std::string& name() const { return name_; }

  // Master: gives every pool and backend of `config` a slot, keyed by pool name and
  // "pool/address". A key that already has a slot keeps it (so counters survive a reload).
  // With release_unnamed, slots whose keys the config does not name are released; without it
  // they stay in use (older generations still draining count on them) until releaseUnused.
  // Writes Pool::slot and Backend::slot. Fails when the table is full, changing nothing.
  Result<void> assignSlots(config::Config& config, bool release_unnamed = true);
  // Master: releases every slot whose key none of the `live` configs names (called when a
  // generation is gone). Released slots keep key and counters until a new key reuses them.
  void releaseUnused(const std::vector<const config::Config*>& live);

 private:
  SharedSegment() = default;
  static Result<std::unique_ptr<SharedSegment>> open(const std::string& name,
                                                     bool reload_state_only);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Segment* segment_ = nullptr;
  ReloadState* reload_ = nullptr;
  std::string name_;
};

}  // namespace lb::shm
