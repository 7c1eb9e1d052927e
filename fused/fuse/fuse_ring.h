// FuseRing: FUSE over io_uring (Linux 6.14+, FUSE protocol 7.42) beside
// libfuse 3.14, which does not speak it. The kernel hands requests to
// entries registered on an io_uring per possible CPU (IORING_OP_URING_CMD
// on /dev/fuse) instead of read(2) on /dev/fuse, and one SQE carries both
// the reply to a request and the fetch of the next (COMMIT_AND_FETCH): no
// read/write system call and no wake-up of a reader per request.
//
// How it sits beside libfuse (which keeps its classic /dev/fuse loop for
// INIT, FORGET, INTERRUPT and whatever the kernel queues before the ring is
// ready):
//   * FuseFrontend's custom writev sees libfuse's INIT reply. When the
//     kernel offered the ring (FUSE_OVER_IO_URING in the INIT request's
//     flags2) and the frontend is configured for it, it creates a FuseRing
//     (queues, threads, buffers), sets the flag in the reply, writes it, and
//     calls Start: every queue's thread registers its entries. A failure
//     before the reply leaves the flag out (classic only); a REGISTER the
//     kernel refuses makes the kernel fall back to /dev/fuse by itself.
//   * A queue's thread waits for completions. Each is one request: its
//     classic form (fuse_in_header, the op's argument, the payload) is laid
//     out in front of the payload, where the entry's buffer leaves room, and
//     handed to fuse_session_process_buf, so the same handlers serve it.
//   * Every reply leaves through the custom writev, which asks Reply first:
//     a reply to a ring request is copied into its entry and committed on
//     its queue's ring. On the queue's own thread the commit goes out with
//     the others of the same wake-up, in one submit; from another thread
//     the entry is handed to the queue's thread (a list and an eventfd),
//     because io_uring runs a command's work in the thread that submitted
//     it and cancels the command when that thread ends.
//   * A backend may put its own I/O on the queue's ring (SubmitHere) while
//     it serves a request there: the request, the I/O and the reply then
//     stay on one thread.
//
// Rules for the handlers: a request's data (WRITE's payload) lives in its
// entry until the reply is committed, and no longer (the kernel writes the
// next request there): copy what is needed after the reply, as with
// libfuse's own buffer. A ring request must be answered; left unanswered
// (fuse_reply_none) it keeps its entry. Backends that use SubmitHere are
// closed before Stop (Stop ends the threads once their I/O is done, but a
// task's completion needs its backend alive).
//
// Limits: notifications, interrupts and forgets stay on /dev/fuse (the
// kernel's rule); the frontend never hands over a session that uses the
// ring (FUSE_NOTIFY_RESEND does not reach ring requests).
//
// Threads: one per queue (pinned to its CPU when it can be); it alone
// submits on its ring. Reply may be called from any thread; Start and Stop
// from the frontend's owner thread.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/status.h"

struct fuse_session;
struct io_uring_sqe;

namespace shorthorn::fused {

// FUSE_OVER_IO_URING (bit 41 of the 64-bit INIT flags) as flags2 sees it.
inline constexpr uint32_t kFuseInitFlags2OverIoUring = 1u << 9;

struct FuseRingSettings {
  uint32_t queue_depth = 32;  // entries per queue
  size_t payload_bytes = 0;   // >= the kernel's max(8 KiB, max_write, max_pages * 4 KiB)
};

// Whether the fuse module lets a daemon use io_uring
// (/sys/module/fuse/parameters/enable_uring reads Y).
bool FuseUringEnabled();
// Makes it so (as root; the kernel then offers the ring to every FUSE
// daemon that mounts afterwards, which uses it only if it asks for it).
Status EnableFuseUring();

class FuseRing {
 public:
  // Prepares one queue per possible CPU: its io_uring (SQE128) with
  // `fuse_fd` as its registered file, its entries' buffers and its thread,
  // which waits for Start. Registers nothing yet.
  static Result<std::unique_ptr<FuseRing>> Create(fuse_session* session, int fuse_fd,
                                                  FuseRingSettings settings);
  ~FuseRing();  // Stop, then frees the buffers
  FuseRing(const FuseRing&) = delete;
  FuseRing& operator=(const FuseRing&) = delete;

  // After the INIT reply went out: the queues register their entries.
  void Start();
  // Ends the threads and the rings (the kernel cancels what is pending).
  // Reply may still be called afterwards: it then drops the reply.
  void Stop();

  // If `iov` (fuse_out_header first) answers a request that came through
  // the ring: copies it into the request's entry, commits it and returns
  // true. False for any other reply (the caller writes it to /dev/fuse).
  bool Reply(const ::iovec* iov, int count);

  // I/O of a backend on the ring of the queue whose thread is serving a
  // request: one loop per core from the request to the reply. Complete
  // runs on that thread when the I/O ends (`res` as in a CQE).
  class Task {
   public:
    virtual void Complete(int res) = 0;

   protected:
    ~Task() = default;
  };
  // On a queue's thread: prepares an SQE with `prep(sqe)` on that queue's
  // ring (submitted with the replies of the same wake-up) whose completion
  // calls task->Complete; true. On any other thread: false, nothing done.
  template <class Prep>
  static bool SubmitHere(Task* task, Prep&& prep) {
    return SubmitHereImpl(
        task,
        [](io_uring_sqe* sqe, void* p) { (*static_cast<std::remove_reference_t<Prep>*>(p))(sqe); },
        &prep);
  }

  // Requests served through the ring so far.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  size_t queues() const { return queues_.size(); }

 private:
  struct Entry;
  struct Queue;
  FuseRing(fuse_session* session, int fuse_fd, FuseRingSettings settings);
  Status Prepare(size_t nr_queues);
  // Sets started_ or stopping_ and wakes the threads waiting for Start.
  void Raise(std::atomic<bool>* flag);
  // The queue's thread, and what only it calls (it alone touches the SQ).
  void Run(Queue* q);
  void Serve(Queue* q, Entry* e);
  static io_uring_sqe* NextSqe(Queue* q);
  static void SubmitAll(Queue* q);
  void QueueCommand(Queue* q, Entry* e, uint32_t cmd);
  void ArmDoorbell(Queue* q);
  // Wakes the queue's thread (replies from other threads, Stop).
  static void Ring(Queue* q);
  Entry* TakePending(uint64_t unique);
  static bool SubmitHereImpl(Task* task, void (*prep)(io_uring_sqe*, void*), void* arg);

  fuse_session* session_;
  int fuse_fd_;
  FuseRingSettings settings_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::mutex start_mu_;  // with start_cv_: the threads wait for Start or Stop
  std::condition_variable start_cv_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
  // Requests handed to libfuse and not answered yet, by unique; sharded.
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, Entry*> pending;
  };
  Shard shards_[kShards];
};

}  // namespace shorthorn::fused
