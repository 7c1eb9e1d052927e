// GenerationStore: the generation each volume's replicas must at least have
// to be trusted (DESIGN §5). One small file per volume,
// <state-dir>/generations/<volume>, replaced atomically; values only grow.
// Kept apart from the registry so that recording a membership change (on a
// background thread while I/O acknowledgements wait for it) never needs the
// lock that attach and detach hold. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "common/status.h"

namespace shorthorn::fused {

class GenerationStore {
 public:
  explicit GenerationStore(std::string dir) : dir_(std::move(dir)) {}
  Status Init();
  // 0 when nothing was recorded.
  uint64_t Get(const std::string& volume);
  // Records max(current, generation) durably.
  Status Raise(const std::string& volume, uint64_t generation);
  void Forget(const std::string& volume);

 private:
  std::string Path(const std::string& volume) const { return dir_ + "/" + volume; }
  const std::string dir_;
  std::mutex mutex_;
};

}  // namespace shorthorn::fused
