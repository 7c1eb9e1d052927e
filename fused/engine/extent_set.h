// ExtentSet: a set of byte ranges kept as merged, sorted intervals; used to
// remember what was written while a replica was away so that it catches up
// with only those regions. Not thread-safe (the Engine locks around it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace shorthorn::fused {

class ExtentSet {
 public:
  void Add(uint64_t start, uint64_t end);
  uint64_t bytes() const { return bytes_; }
  size_t intervals() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  size_t size() const { return map_.size(); }  // disjoint ranges
  std::vector<std::pair<uint64_t, uint64_t>> Ranges() const { return {map_.begin(), map_.end()}; }
  void Clear() {
    map_.clear();
    bytes_ = 0;
  }

 private:
  std::map<uint64_t, uint64_t> map_;  // start -> end
  uint64_t bytes_ = 0;
};

}  // namespace shorthorn::fused
