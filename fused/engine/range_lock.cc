#include "fused/engine/range_lock.h"

#include <vector>

namespace shorthorn::fused {
namespace {
bool Overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) { return a0 < b1 && b0 < a1; }
}  // namespace

void RangeLock::Acquire(uint64_t start, uint64_t end, Granted granted) {
  uint64_t token;
  bool now = true;
  {
    std::lock_guard lock(mutex_);
    token = next_token_++;
    for (const auto& e : entries_) {
      if (Overlaps(e.start, e.end, start, end)) {
        now = false;
        break;
      }
    }
    entries_.push_back({token, start, end, now, now ? Granted() : std::move(granted)});
  }
  if (now) granted(token);
}

uint64_t RangeLock::TryAcquire(uint64_t start, uint64_t end) {
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (Overlaps(e.start, e.end, start, end)) return 0;
  }
  uint64_t token = next_token_++;
  entries_.push_back({token, start, end, true, Granted()});
  return token;
}

void RangeLock::Release(uint64_t token) {
  std::vector<std::pair<uint64_t, Granted>> run;
  {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->token == token) {
        entries_.erase(it);
        break;
      }
    }
    // Grant every waiter that overlaps nothing before it.
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->held) continue;
      bool blocked = false;
      for (auto prev = entries_.begin(); prev != it; ++prev) {
        if (Overlaps(prev->start, prev->end, it->start, it->end)) {
          blocked = true;
          break;
        }
      }
      if (!blocked) {
        it->held = true;
        run.emplace_back(it->token, std::move(it->granted));
      }
    }
  }
  for (auto& [t, g] : run) g(t);
}

size_t RangeLock::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace shorthorn::fused
