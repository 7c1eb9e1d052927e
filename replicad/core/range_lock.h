// RangeLock: exclusive locks on block ranges of one replica. Writes, unmaps
// and the background merge hold the blocks they change from before they
// look at the index until after they updated it, so a merge copy can never
// overwrite a block the engine wrote, and two read-modify-writes of one edge
// block cannot lose an update. Reads take no range lock.
//
// Thread-safe. Lock blocks until no held range overlaps; ranges are few (the
// ops in flight), so a vector scan is enough. A Guard releases on
// destruction and may be moved into a completion callback.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace shorthorn::replicad {

class RangeLock {
 public:
  class Guard {
   public:
    Guard() = default;
    Guard(RangeLock* lock, uint64_t id) : lock_(lock), id_(id) {}
    Guard(Guard&& o) noexcept : lock_(std::exchange(o.lock_, nullptr)), id_(o.id_) {}
    Guard& operator=(Guard&& o) noexcept {
      Release();
      lock_ = std::exchange(o.lock_, nullptr);
      id_ = o.id_;
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { Release(); }
    void Release() {
      if (lock_ != nullptr) std::exchange(lock_, nullptr)->Unlock(id_);
    }

   private:
    RangeLock* lock_ = nullptr;
    uint64_t id_ = 0;
  };

  // Blocks [start, end) (block numbers); waits while any overlap is held.
  Guard Lock(uint64_t start, uint64_t end);

 private:
  struct Held {
    uint64_t id, start, end;
  };
  void Unlock(uint64_t id);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Held> held_;  // guarded by mu_
  uint64_t next_id_ = 1;    // guarded by mu_
};

}  // namespace shorthorn::replicad
