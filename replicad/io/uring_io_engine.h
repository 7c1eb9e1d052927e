// UringIoEngine: the IoEngine on io_uring (liburing). One ring shared by all
// replicas, one completion thread that reaps completions and runs the
// callbacks. Submissions come from any thread and are serialized by a mutex.
//
// Each op in flight owns a slot; the slot index and a generation are packed
// into the SQE's user_data (see kSlotBits), so a stale completion can never be
// taken for a newer op. The number of slots is the CQ size minus one, so the
// completion queue cannot overflow; Submit() waits for a free slot when all
// are taken (after handing what is held to the kernel). Inside a SubmitBatch,
// Submit only queues the SQE: SubmitHeld enters the kernel once for all of
// them. The completion thread reaps every ready CQE before it runs their
// callbacks, inside a SendBatch (common/send_batch.h), so the replies they
// make to one connection leave in one write. Short reads and writes are
// resubmitted for the remainder from the completion thread using the same
// slot.
//
// Create() fails with kUnavailable when the kernel refuses io_uring (old
// kernel, seccomp, missing opcodes); the caller then chooses the sync engine.
// The destructor waits for every op in flight, then stops the thread.
#pragma once

#include <liburing.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {

class UringIoEngine : public IoEngine {
 public:
  static Result<std::unique_ptr<UringIoEngine>> Create(unsigned entries = 256);
  ~UringIoEngine() override;
  UringIoEngine(const UringIoEngine&) = delete;
  UringIoEngine& operator=(const UringIoEngine&) = delete;

  std::string_view name() const override { return "io_uring"; }
  void Submit(const IoRequest& request, IoCallback done) override;
  void SubmitHeld() override;
  // Tests: the next io_uring_enter fails with `err` instead of entering.
  void FailNextEnterForTest(int err);
  // Requests submitted inside a SubmitBatch so far (held for one enter).
  uint64_t held_total() const { return held_total_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    IoRequest request;
    uint64_t transferred = 0;  // bytes done so far (kRead/kWrite)
    uint32_t generation = 0;
    IoCallback done;
  };

  UringIoEngine() = default;
  // Queues the SQE for `slot` (its remaining part) and, when `enter`,
  // submits. Requires mu_. Returns 0 or -errno.
  int SubmitSlotLocked(uint32_t slot, bool enter = true);
  // io_uring_submit, retried while the kernel says try again. Requires mu_.
  // When the kernel refuses, the ops whose SQEs it did not take fail with
  // its error (FailQueuedLocked); returns 0 or that -errno.
  int EnterLocked();
  // Turns the SQEs the kernel has not taken into no-ops it completes
  // unseen, and fails their ops with `err`. Requires mu_.
  void FailQueuedLocked(int err);
  // Frees `slot` and queues its callback in failed_ with `err`. Requires mu_.
  void FailSlotLocked(uint32_t slot, int err);
  // Runs callbacks taken from failed_, without mu_.
  struct Failed {
    IoCallback done;
    int64_t result;
  };
  void RunFailed(std::vector<Failed>& failed);
  void CompletionLoop();
  // Handles one CQE; returns false for the shutdown wake-up.
  bool HandleCompletion(uint64_t user_data, int32_t res);

  io_uring ring_{};
  bool ring_ready_ = false;
  std::mutex mu_;
  std::condition_variable slot_freed_;
  std::vector<Slot> slots_;     // fixed size; a slot is guarded by mu_
  std::vector<uint32_t> free_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::vector<Failed> failed_;  // failed ops whose callbacks are due; guarded by mu_
  int enter_fault_ = 0;         // FailNextEnterForTest; guarded by mu_
  std::atomic<uint64_t> held_total_{0};
  std::thread completion_thread_;
};

}  // namespace shorthorn::replicad
