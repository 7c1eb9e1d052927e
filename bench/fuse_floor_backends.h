// bench/fuse_floor_backends.h: the two Backends fuse_floor serves its file
// from (see fuse_floor.cc's header), and its options. FileBackend does each
// operation as one io_uring request on a backing file; NullBackend answers at
// once without I/O. Read/Write/Unmap/Flush from any thread (the frontend's
// FUSE workers); FileBackend's callbacks run on its completion thread.
//
// The backing file is opened with O_DIRECT (like fio's direct=1 on the raw
// file), so the floor measures the same disk path as "raw"; --buffered drops
// O_DIRECT. Flush becomes IORING_OP_FSYNC with DATASYNC, Unmap (the
// frontend's answer to PUNCH_HOLE and ZERO_RANGE) IORING_OP_FALLOCATE with
// PUNCH_HOLE. A read is read into an aligned buffer and copied into the
// std::vector the Backend interface returns (O_DIRECT cannot read into a
// vector's memory): the same allocation and copy per read that fused's
// replica client makes. An Op is allocated per I/O and travels as the SQE's
// user_data; user_data 0 is the stop marker queued by Close.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/log.h"
#include "fused/engine/backend.h"
#include "fused/fuse/fuse_ring.h"

namespace shorthorn::fuse_floor {

using fused::Backend;
using fused::DoneCallback;
using fused::ReadCallback;

constexpr size_t kAlignment = kDirectIoAlignment;

struct Options {
  std::string mount_point;
  std::string backend = "file";
  std::string backing_file;
  uint64_t size = 0;  // null backend without --backing
  std::string name = "floor";
  std::string tmp_dir;             // parent of the state dir; default $TMPDIR or /tmp
  unsigned threads = 8;            // fused's fuse-threads default
  unsigned max_background = 256;   // fused's max-background default
  unsigned max_request = 1 << 20;  // fused's max-request-kib default
  unsigned ring_entries = 512;
  bool buffered = false;
  bool coop_taskrun = false;   // IORING_SETUP_COOP_TASKRUN: no IPI per completion
  bool fuse_uring = false;     // FUSE over io_uring (the frontend's FuseRing)
  bool own_io_thread = false;  // with fuse_uring: I/O on the backend's ring, not the queue's
  unsigned fuse_uring_depth = 32;
};

// Aligned I/O buffers of max_request bytes, recycled (a fresh 1 MiB
// allocation per request would be an mmap/munmap pair and page faults).
class BufferPool {
 public:
  explicit BufferPool(size_t size) : size_(size) {}
  ~BufferPool() {
    for (void* b : free_) std::free(b);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint8_t* Get() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        void* b = free_.back();
        free_.pop_back();
        return static_cast<uint8_t*>(b);
      }
    }
    return static_cast<uint8_t*>(std::aligned_alloc(kAlignment, size_));
  }
  void Put(uint8_t* b) {
    if (b == nullptr) return;
    std::lock_guard lock(mutex_);
    free_.push_back(b);
  }

 private:
  const size_t size_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

// The file backend: each operation is one io_uring request on the backing
// file. Read/Write/Unmap/Flush from any thread (the FUSE workers); callbacks
// on the completion thread; Close from the owner once the file is removed
// from the frontend.
class FileBackend final : public Backend {
 public:
  explicit FileBackend(const Options& o) : opts_(o), pool_(o.max_request) {}
  ~FileBackend() override {
    (void)Close();
    if (fd_ >= 0) ::close(fd_);
  }

  // Opens the backing file and the ring, starts the completion thread.
  Status Open() {
    const std::string& path = opts_.backing_file;
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (opts_.buffered ? 0 : O_DIRECT));
    if (fd_ < 0) return ErrnoStatus(errno, "open " + path);
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat " + path);
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size % kAlignment != 0) {
      return Status(ErrorKind::kInvalidArgument,
                    "open " + path + ": not a regular file whose size is a multiple of 4096");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    int rc = io_uring_queue_init(opts_.ring_entries, &ring_,
                                 opts_.coop_taskrun ? IORING_SETUP_COOP_TASKRUN : 0);
    if (rc < 0) return ErrnoStatus(-rc, "set up io_uring");
    ring_ready_ = true;
    completion_ = std::thread([this] { CompletionLoop(); });
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }
  size_t Outstanding() const override { return in_flight_.load(std::memory_order_relaxed); }
  bool OnOwnThread() const override { return std::this_thread::get_id() == completion_id_; }
  uint64_t PeakInFlight() const { return peak_in_flight_.load(); }

  void Read(uint64_t offset, uint32_t length, ReadCallback done) override {
    auto* op = new Op(Op::kRead, length, pool_.Get(), std::move(done), nullptr);
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd_, op->buf, length, offset); });
  }

  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override {
    auto length = static_cast<uint32_t>(data.size());
    auto* op = new Op(Op::kWrite, length, pool_.Get(), nullptr, std::move(done));
    std::memcpy(op->buf, data.data(), data.size());
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_write(sqe, fd_, op->buf, length, offset); });
  }

  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override {
    auto* op = new Op(Op::kUnmap, 0, nullptr, nullptr, std::move(done));
    Submit(op, [&](io_uring_sqe* sqe) {
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    });
  }

  void Flush(DoneCallback done) override {
    auto* op = new Op(Op::kFlush, 0, nullptr, nullptr, std::move(done));
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC); });
  }

  // Ends the completion thread once every request queued so far is answered
  // (the stop marker is queued last; CQEs that complete after it are still
  // answered before the thread sees nothing in flight). Later I/O fails.
  Status Close() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return Status::Ok();
      closed_ = true;
      if (ring_ready_) QueueLocked(nullptr, [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
    }
    if (completion_.joinable()) completion_.join();
    if (ring_ready_) io_uring_queue_exit(&ring_);
    ring_ready_ = false;
    return Status::Ok();
  }

 private:
  struct Op final : shorthorn::fused::FuseRing::Task {
    enum Kind { kRead, kWrite, kUnmap, kFlush };
    Op(Kind k, uint32_t len, uint8_t* b, ReadCallback r, DoneCallback d)
        : kind(k), length(len), buf(b), read_done(std::move(r)), done(std::move(d)) {}
    // Completed on a FUSE ring queue's thread (submitted there).
    void Complete(int res) override {
      FileBackend* self = backend;
      self->Finish(this, res);
      // Release: Close's last look at in_flight_ (acquire) sees this op done.
      self->in_flight_.fetch_sub(1, std::memory_order_release);
    }
    Kind kind;
    uint32_t length;  // read/write
    uint8_t* buf;     // read/write: from pool_
    ReadCallback read_done;
    DoneCallback done;
    FileBackend* backend = nullptr;
  };

  // Queues `op` (prepared by `prep`) and submits it; fails it at once after
  // Close. On a FUSE ring queue's thread (--fuse-uring) it goes on that
  // queue's ring and completes there: no other thread is involved.
  template <typename Prep>
  void Submit(Op* op, Prep prep) {
    op->backend = this;
    {
      std::lock_guard lock(mutex_);
      if (!closed_) {
        uint64_t now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (now > peak_in_flight_.load(std::memory_order_relaxed)) peak_in_flight_.store(now);
        if (!opts_.fuse_uring || opts_.own_io_thread ||
            !shorthorn::fused::FuseRing::SubmitHere(op, prep)) {
          QueueLocked(op, prep);
        }
        return;
      }
    }
    Finish(op, -EIO);
  }

  template <typename Prep>
  void QueueLocked(Op* op, Prep prep) {
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) io_uring_submit(&ring_);
    prep(sqe);
    io_uring_sqe_set_data(sqe, op);
    int rc;
    while ((rc = io_uring_submit(&ring_)) == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
    }
    if (rc < 0) shorthorn::LogError("io_uring_submit: " + std::string(std::strerror(-rc)));
  }

  void CompletionLoop() {
    completion_id_ = std::this_thread::get_id();
    bool stopping = false;
    while (!stopping || in_flight_.load(std::memory_order_acquire) != 0) {
      io_uring_cqe* cqe;
      // Once stopping, what is left may complete on FUSE ring threads.
      __kernel_timespec wait{0, 10'000'000};
      int rc = stopping ? io_uring_wait_cqe_timeout(&ring_, &cqe, &wait)
                        : io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR || rc == -ETIME) continue;
      if (rc < 0) {
        shorthorn::LogError("io_uring_wait_cqe: " + std::string(std::strerror(-rc)));
        std::abort();  // requests could never be answered: the mount would hang
      }
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        auto* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
        if (op == nullptr) {
          stopping = true;
          continue;
        }
        Finish(op, cqe->res);
        in_flight_.fetch_sub(1, std::memory_order_release);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

  // Runs op's callback with the result `res` (bytes, or -errno) and frees it.
  void Finish(Op* op, int res) {
    std::unique_ptr<Op> owned(op);
    // A short read or write is an error: the callback has no byte count.
    if (res >= 0 && (op->kind == Op::kRead || op->kind == Op::kWrite) &&
        static_cast<uint32_t>(res) != op->length) {
      res = -EIO;
    }
    Status status = res < 0 ? ErrnoStatus(-res, "I/O on " + opts_.backing_file) : Status::Ok();
    if (op->kind == Op::kRead) {
      std::vector<uint8_t> data;
      if (res > 0) data.assign(op->buf, op->buf + res);
      pool_.Put(op->buf);
      op->read_done(std::move(status), std::move(data));
    } else {
      pool_.Put(op->buf);
      op->done(std::move(status));
    }
  }

  const Options opts_;
  BufferPool pool_;
  int fd_ = -1;
  uint64_t size_ = 0;
  io_uring ring_{};
  std::mutex mutex_;         // guards the SQ ring and closed_
  bool ring_ready_ = false;  // set before the completion thread starts
  bool closed_ = false;
  std::thread completion_;
  std::thread::id completion_id_;
  std::atomic<uint64_t> in_flight_{0}, peak_in_flight_{0};
};

// The null backend: every request is answered on the caller's thread, with
// no I/O; reads return zeros. Thread-safe (no state but the size).
class NullBackend final : public Backend {
 public:
  explicit NullBackend(uint64_t size) : size_(size) {}
  uint64_t Size() const override { return size_; }
  void Read(uint64_t, uint32_t length, ReadCallback done) override {
    done(Status::Ok(), std::vector<uint8_t>(length));
  }
  void Write(uint64_t, std::span<const uint8_t>, DoneCallback done) override { done(Status::Ok()); }
  void Unmap(uint64_t, uint64_t, DoneCallback done) override { done(Status::Ok()); }
  void Flush(DoneCallback done) override { done(Status::Ok()); }
  Status Close() override { return Status::Ok(); }

 private:
  const uint64_t size_;
};

}  // namespace shorthorn::fuse_floor
