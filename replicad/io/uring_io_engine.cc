// Design notes: the ring is used by one reaper (the completion thread) and
// many submitters. liburing allows one thread on the CQ and one on the SQ at a
// time, so the SQ side is under mu_ and only the completion thread touches the
// CQ. Slot contents are also read and written under mu_, which gives a plain
// happens-before between the submitter filling a slot and the completion
// thread reading it, independent of the ring's own barriers.
//
// Bounding the slots by the CQ size means the kernel never has to hold
// overflowed completions, so io_uring_submit never returns EBUSY for a full
// CQ. Callbacks run outside mu_. fdatasync is never resubmitted.
#include "replicad/io/uring_io_engine.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/send_batch.h"
#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {
namespace {

// user_data = generation << kSlotBits | slot. The top bit is never set for an
// op, so kWakeTag cannot collide with one.
constexpr int kSlotBits = 32;
constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
constexpr uint32_t kGenerationMask = 0x7fffffff;
constexpr uint64_t kWakeTag = std::numeric_limits<uint64_t>::max();
// An SQE whose op was failed before the kernel took it (FailQueuedLocked).
constexpr uint64_t kVoidTag = kWakeTag - 1;
static_assert(sizeof(uint64_t) == sizeof(io_uring_sqe{}.user_data));

uint64_t PackTag(uint32_t slot, uint32_t generation) {
  return (static_cast<uint64_t>(generation & kGenerationMask) << kSlotBits) | slot;
}

}  // namespace

Result<std::unique_ptr<UringIoEngine>> UringIoEngine::Create(unsigned entries) {
  std::unique_ptr<UringIoEngine> engine(new UringIoEngine());
  io_uring_params params{};
  int rc = io_uring_queue_init_params(entries, &engine->ring_, &params);
  if (rc < 0) {
    return Status(ErrorKind::kUnavailable, std::string("set up io_uring: ") + std::strerror(-rc),
                  -rc);
  }
  engine->ring_ready_ = true;
  io_uring_probe* probe = io_uring_get_probe_ring(&engine->ring_);
  bool supported = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_READ) &&
                   io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                   io_uring_opcode_supported(probe, IORING_OP_FSYNC) &&
                   io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!supported) {
    return Status(ErrorKind::kUnavailable,
                  "set up io_uring: the kernel lacks READ, WRITE, FSYNC or FALLOCATE", ENOSYS);
  }
  uint32_t slots = params.cq_entries > 1 ? params.cq_entries - 1 : 1;
  engine->slots_.resize(slots);
  engine->free_.reserve(slots);
  for (uint32_t i = slots; i > 0; --i) engine->free_.push_back(i - 1);
  engine->completion_thread_ = std::thread([e = engine.get()] { e->CompletionLoop(); });
  return engine;
}

UringIoEngine::~UringIoEngine() {
  if (completion_thread_.joinable()) {
    std::unique_lock lock(mu_);
    stopping_ = true;
    slot_freed_.wait(lock, [this] { return free_.size() == slots_.size(); });
    for (;;) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        io_uring_submit(&ring_);
        continue;
      }
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      int rc;
      do {
        rc = io_uring_submit(&ring_);
      } while (rc == -EINTR || rc == -EAGAIN);
      break;
    }
    lock.unlock();
    completion_thread_.join();
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

void UringIoEngine::Submit(const IoRequest& request, IoCallback done) {
  const bool hold = SubmitBatch::Active();
  std::vector<Failed> failed;
  {
    std::unique_lock lock(mu_);
    if (free_.empty()) {
      // Slots taken by SQEs some thread's batch holds come back only once
      // the kernel has them: hand over everything queued before waiting.
      // (A full SQ is submitted anyway, and the SQ is half the slots; this
      // matters for the smallest rings.) A refused enter fails them, which
      // frees their slots too.
      EnterLocked();
      slot_freed_.wait(lock, [this] { return !free_.empty(); });
    }
    uint32_t slot = free_.back();
    free_.pop_back();
    Slot& s = slots_[slot];
    s.request = request;
    s.transferred = 0;
    s.generation = (s.generation + 1) & kGenerationMask;
    s.done = std::move(done);
    int rc = SubmitSlotLocked(slot, /*enter=*/!hold);
    if (rc == 0 && hold) {
      SubmitBatch::Hold(this);
      held_total_.fetch_add(1, std::memory_order_relaxed);
    }
    if (rc < 0 && s.done) FailSlotLocked(slot, rc);  // its SQE was never queued
    failed.swap(failed_);
  }
  RunFailed(failed);
}

void UringIoEngine::SubmitHeld() {
  std::vector<Failed> failed;
  {
    std::lock_guard lock(mu_);
    EnterLocked();
    failed.swap(failed_);
  }
  RunFailed(failed);
}

void UringIoEngine::FailNextEnterForTest(int err) {
  std::lock_guard lock(mu_);
  enter_fault_ = err;
}

int UringIoEngine::EnterLocked() {
  int rc;
  if (enter_fault_ != 0) {
    rc = -std::exchange(enter_fault_, 0);
  } else {
    do {
      rc = io_uring_submit(&ring_);
      // A positive count short of the queue (the kernel ran out of memory
      // for one) leaves the rest queued: submit again.
    } while (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY ||
             (rc > 0 && io_uring_sq_ready(&ring_) > 0));
  }
  if (rc >= 0) return 0;
  LogError(std::string("io_uring submit: ") + std::strerror(-rc) +
           "; failing the requests it did not take");
  FailQueuedLocked(rc);
  return rc;
}

void UringIoEngine::FailQueuedLocked(int err) {
  // Without SQPOLL the kernel takes SQEs only inside io_uring_enter, which
  // needs mu_: the ones from its head to our tail are not taken and can be
  // rewritten. They become no-ops that complete unseen with a later enter.
  io_uring_sq& sq = ring_.sq;
  for (unsigned i = *sq.khead; i != sq.sqe_tail; ++i) {
    io_uring_sqe* sqe = &sq.sqes[sq.array[i & sq.ring_mask]];
    uint64_t tag = sqe->user_data;
    if (tag != kWakeTag && tag != kVoidTag) {
      auto slot = static_cast<uint32_t>(tag & kSlotMask);
      auto generation = static_cast<uint32_t>(tag >> kSlotBits);
      if (slot < slots_.size() && slots_[slot].generation == generation && slots_[slot].done) {
        FailSlotLocked(slot, err);
      }
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, kVoidTag);
  }
}

void UringIoEngine::FailSlotLocked(uint32_t slot, int err) {
  Slot& s = slots_[slot];
  failed_.push_back({std::move(s.done), err});
  s.done = nullptr;
  s.generation = (s.generation + 1) & kGenerationMask;  // a late CQE must not match
  free_.push_back(slot);
}

void UringIoEngine::RunFailed(std::vector<Failed>& failed) {
  if (failed.empty()) return;
  slot_freed_.notify_all();
  for (auto& f : failed) f.done(f.result);
  failed.clear();
}

int UringIoEngine::SubmitSlotLocked(uint32_t slot, bool enter) {
  Slot& s = slots_[slot];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // SQ full: hand the queued SQEs to the kernel first
    if (int rc = EnterLocked(); rc < 0) return rc;
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EAGAIN;
  }
  const IoRequest& r = s.request;
  uint64_t left = r.length - s.transferred;
  switch (r.op) {
    case IoOp::kRead:
      io_uring_prep_read(sqe, r.fd, r.buf + s.transferred, static_cast<unsigned>(left),
                         r.offset + s.transferred);
      break;
    case IoOp::kWrite:
      io_uring_prep_write(sqe, r.fd, r.buf + s.transferred, static_cast<unsigned>(left),
                          r.offset + s.transferred);
      break;
    case IoOp::kFdatasync:
      io_uring_prep_fsync(sqe, r.fd, IORING_FSYNC_DATASYNC);
      break;
    case IoOp::kPunchHole:
      io_uring_prep_fallocate(sqe, r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(r.offset), static_cast<off_t>(r.length));
      break;
  }
  io_uring_sqe_set_data64(sqe, PackTag(slot, s.generation));
  return enter ? EnterLocked() : 0;
}

void UringIoEngine::CompletionLoop() {
  std::vector<std::pair<uint64_t, int32_t>> ready;
  ready.reserve(slots_.size() + 1);
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc < 0) {
      LogError(std::string("io_uring wait: ") + std::strerror(-rc));
      continue;
    }
    // Every completion that is ready, then their callbacks: the replies
    // they make leave together when the SendBatch closes.
    ready.clear();
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ready.emplace_back(io_uring_cqe_get_data64(cqe), cqe->res);
    }
    io_uring_cq_advance(&ring_, static_cast<unsigned>(ready.size()));
    bool running = true;
    {
      SendBatch replies;
      for (const auto& [user_data, res] : ready)
        running = HandleCompletion(user_data, res) && running;
    }
    if (!running) return;
  }
}

bool UringIoEngine::HandleCompletion(uint64_t user_data, int32_t res) {
  if (user_data == kWakeTag) return false;
  if (user_data == kVoidTag) return true;
  uint32_t slot = static_cast<uint32_t>(user_data & kSlotMask);
  uint32_t generation = static_cast<uint32_t>(user_data >> kSlotBits);
  IoCallback done;
  int64_t result = res;
  std::vector<Failed> failed;
  {
    std::lock_guard lock(mu_);
    if (slot >= slots_.size() || slots_[slot].generation != generation || !slots_[slot].done) {
      LogWarning("io_uring: ignoring a completion for no op in flight");
      return true;
    }
    Slot& s = slots_[slot];
    const IoRequest& r = s.request;
    bool data_op = r.op == IoOp::kRead || r.op == IoOp::kWrite;
    bool again = false;
    if (data_op && (res == -EAGAIN || res == -EINTR)) {
      again = true;
    } else if (data_op && res > 0) {
      s.transferred += static_cast<uint64_t>(res);
      again = s.transferred < r.length;
      result = static_cast<int64_t>(r.length);
    } else if (r.op == IoOp::kRead && res == 0) {  // end of file: zeros
      std::memset(r.buf + s.transferred, 0, r.length - s.transferred);
      result = static_cast<int64_t>(r.length);
    } else if (r.op == IoOp::kWrite && res == 0 && r.length > 0) {
      result = -EIO;
    }
    if (again) {
      int rc = SubmitSlotLocked(slot);
      // On a refused enter its op failed with the others queued.
      if (rc < 0 && s.done) FailSlotLocked(slot, rc);
      failed.swap(failed_);
    } else {
      done = std::move(s.done);
      s.done = nullptr;
      free_.push_back(slot);
    }
  }
  RunFailed(failed);
  if (done) {
    slot_freed_.notify_all();
    done(result);
  }
  return true;
}

}  // namespace shorthorn::replicad
