// GenerationStore: the generation each volume's replicas must at least have
// to be trusted (DESIGN §5), and the one owner of its growth. One small file
// per volume, <state-dir>/generations/<volume>, replaced atomically; values
// only grow. Kept apart from the registry so that recording a membership
// change (on a background thread while I/O acknowledgements wait for it)
// never needs the lock that attach and detach hold. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::fused {

class GenerationStore {
 public:
  explicit GenerationStore(std::string dir) : dir_(std::move(dir)) {}
  Status Init();
  // 0 when nothing was recorded; an error naming the file when it cannot
  // be read or does not hold a number (never 0: that would trust any
  // replica).
  Result<uint64_t> Get(const std::string& volume);
  // Records max(current, generation) durably.
  Status Raise(const std::string& volume, uint64_t generation);
  void Forget(const std::string& volume);

  // The one way a volume's generation grows while it is attached. Under
  // the volume's own lock (one bump at a time per volume): asks `members`
  // which replicas are current now, has `apply` give them the recorded
  // generation + 1, and records that generation when `apply` succeeds.
  // Returns it. Two membership changes therefore never compute the same
  // next generation from different member lists: a replica that failed
  // between them cannot end up holding the newest one.
  using MembersFn = std::function<std::vector<std::string>()>;
  using ApplyFn = std::function<Status(const std::vector<std::string>&, uint64_t)>;
  Result<uint64_t> Bump(const std::string& volume, const MembersFn& members, const ApplyFn& apply);

 private:
  std::string Path(const std::string& volume) const { return dir_ + "/" + volume; }
  Result<uint64_t> ReadLocked(const std::string& volume);
  std::mutex* VolumeLock(const std::string& volume);
  const std::string dir_;
  std::mutex mutex_;  // the files, volume_locks_
  std::map<std::string, std::unique_ptr<std::mutex>> volume_locks_;
};

}  // namespace shorthorn::fused
