// Design notes: one condition variable for all waiters; an unlock wakes them
// all and each re-checks its range. Contention is rare (the engine already
// orders overlapping writes), so fairness is not worth a queue.
#include "replicad/core/range_lock.h"

#include <algorithm>

#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {

RangeLock::Guard RangeLock::Lock(uint64_t start, uint64_t end) {
  auto free = [&] {
    return std::none_of(held_.begin(), held_.end(),
                        [&](const Held& h) { return h.start < end && start < h.end; });
  };
  std::unique_lock lock(mu_);
  if (!free()) {
    // The holder may be a write this thread's SubmitBatch holds back.
    lock.unlock();
    SubmitBatch::Kick();
    lock.lock();
    cv_.wait(lock, free);
  }
  uint64_t id = next_id_++;
  held_.push_back({id, start, end});
  return Guard(this, id);
}

void RangeLock::Unlock(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    std::erase_if(held_, [id](const Held& h) { return h.id == id; });
  }
  cv_.notify_all();
}

}  // namespace shorthorn::replicad
