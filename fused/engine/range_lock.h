// RangeLock: orders overlapping byte ranges in flight. Acquire grants a
// range once it overlaps no range held or requested before it, so requests
// on overlapping ranges are granted in arrival order and every replica
// applies overlapping writes in the same order. Non-overlapping ranges never
// wait for each other. The grant callback runs on the thread that calls
// Acquire (granted at once) or Release (granted later), with no lock held.
// Thread-safe. Cost O(requests in flight) per call; the FUSE queue depth
// bounds that to a few hundred.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>

namespace shorthorn::fused {

class RangeLock {
 public:
  using Granted = std::function<void(uint64_t token)>;

  // [start, end) with end > start.
  void Acquire(uint64_t start, uint64_t end, Granted granted);
  // Grants at once and returns a token when nothing overlaps; 0 otherwise
  // (nothing is queued: call Acquire).
  uint64_t TryAcquire(uint64_t start, uint64_t end);
  void Release(uint64_t token);

  size_t size() const;

 private:
  struct Entry {
    uint64_t token;
    uint64_t start, end;
    bool held;
    Granted granted;
  };
  std::list<Entry>::iterator FindLocked(uint64_t token);

  mutable std::mutex mutex_;
  uint64_t next_token_ = 1;
  std::list<Entry> entries_;  // arrival order
};

}  // namespace shorthorn::fused
