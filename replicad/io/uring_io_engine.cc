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

#include "common/log.h"

namespace shorthorn::replicad {
namespace {

// user_data = generation << kSlotBits | slot. The top bit is never set for an
// op, so kWakeTag cannot collide with one.
constexpr int kSlotBits = 32;
constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
constexpr uint32_t kGenerationMask = 0x7fffffff;
constexpr uint64_t kWakeTag = std::numeric_limits<uint64_t>::max();
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
  int rc;
  {
    std::unique_lock lock(mu_);
    slot_freed_.wait(lock, [this] { return !free_.empty(); });
    uint32_t slot = free_.back();
    free_.pop_back();
    Slot& s = slots_[slot];
    s.request = request;
    s.transferred = 0;
    s.generation = (s.generation + 1) & kGenerationMask;
    s.done = std::move(done);
    rc = SubmitSlotLocked(slot);
    if (rc == 0) return;
    done = std::move(s.done);
    s.done = nullptr;
    ++s.generation;  // an SQE left in the ring must not match this slot again
    free_.push_back(slot);
  }
  slot_freed_.notify_all();
  done(rc);
}

int UringIoEngine::SubmitSlotLocked(uint32_t slot) {
  Slot& s = slots_[slot];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // SQ full: hand the queued SQEs to the kernel first
    io_uring_submit(&ring_);
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
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
  return rc < 0 ? rc : 0;
}

void UringIoEngine::CompletionLoop() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc < 0) {
      LogError(std::string("io_uring wait: ") + std::strerror(-rc));
      continue;
    }
    uint64_t user_data = io_uring_cqe_get_data64(cqe);
    int32_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (!HandleCompletion(user_data, res)) return;
  }
}

bool UringIoEngine::HandleCompletion(uint64_t user_data, int32_t res) {
  if (user_data == kWakeTag) return false;
  uint32_t slot = static_cast<uint32_t>(user_data & kSlotMask);
  uint32_t generation = static_cast<uint32_t>(user_data >> kSlotBits);
  IoCallback done;
  int64_t result = res;
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
      if (rc == 0) return true;
      result = rc;
    }
    done = std::move(s.done);
    s.done = nullptr;
    free_.push_back(slot);
  }
  slot_freed_.notify_all();
  done(result);
  return true;
}

}  // namespace shorthorn::replicad
