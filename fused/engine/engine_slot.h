// Engine::Slot, one replica of a volume as the engine holds it: its
// backend and mode, and the ranges it may not hold durably. Internal to
// fused/engine (engine.cc, engine_membership.cc); guarded by Engine::mutex_.
#pragma once

#include <memory>
#include <vector>

#include "fused/engine/engine.h"
#include "fused/engine/extent_set.h"

namespace shorthorn::fused {

struct Engine::Slot {
  EngineReplica replica;
  ExtentSet missed;           // not durable on it: written while ERR, or unflushed when it failed
  bool missed_valid = false;  // true from the moment it went ERR until invalidated
  // Sent to it since the last flush it acknowledged (while not ERR), and
  // the sets of the flushes in flight: what it may lose in a power cut.
  // Past kMaxUnflushedRanges ranges a set only says "too much to know"
  // (overflow): a replica that fails then needs a full rebuild.
  struct Unflushed {
    ExtentSet ranges;
    bool overflow = false;
    void Add(uint64_t start, uint64_t end) {
      if (overflow) return;
      ranges.Add(start, end);
      if (ranges.size() > kMaxUnflushedRanges) {
        overflow = true;
        ranges.Clear();
      }
    }
  };
  static constexpr size_t kMaxUnflushedRanges = 1 << 16;
  Unflushed unflushed;
  std::vector<std::shared_ptr<Unflushed>> flushing;
};

}  // namespace shorthorn::fused
