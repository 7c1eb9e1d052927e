#include "fused/engine/extent_set.h"

#include <algorithm>

namespace shorthorn::fused {

void ExtentSet::Add(uint64_t start, uint64_t end) {
  if (end <= start) return;
  auto it = map_.upper_bound(start);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) it = prev;
  }
  while (it != map_.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    bytes_ -= it->second - it->first;
    it = map_.erase(it);
  }
  map_.emplace(start, end);
  bytes_ += end - start;
}

}  // namespace shorthorn::fused
