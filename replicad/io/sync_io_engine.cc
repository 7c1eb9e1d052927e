// Design notes: a plain FIFO queue served by N threads. Buffered pread/pwrite
// on a local file are fast enough that a handful of threads keep a device
// busy; io_uring is the fast path and this is the fallback where it is
// unavailable (old kernels, seccomp). RunIoBlocking is the one place that
// turns a request into syscalls, so short transfers and EOF are handled the
// same way everywhere.
#include "replicad/io/sync_io_engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shorthorn::replicad {

int64_t RunIoBlocking(const IoRequest& r) {
  switch (r.op) {
    case IoOp::kRead: {
      uint64_t done = 0;
      while (done < r.length) {
        ssize_t n =
            ::pread(r.fd, r.buf + done, r.length - done, static_cast<off_t>(r.offset + done));
        if (n < 0) {
          if (errno == EINTR) continue;
          return -errno;
        }
        if (n == 0) {  // past the end of the file: zeros, like a hole
          std::memset(r.buf + done, 0, r.length - done);
          break;
        }
        done += static_cast<uint64_t>(n);
      }
      return static_cast<int64_t>(r.length);
    }
    case IoOp::kWrite: {
      uint64_t done = 0;
      while (done < r.length) {
        ssize_t n =
            ::pwrite(r.fd, r.buf + done, r.length - done, static_cast<off_t>(r.offset + done));
        if (n < 0) {
          if (errno == EINTR) continue;
          return -errno;
        }
        if (n == 0) return -EIO;
        done += static_cast<uint64_t>(n);
      }
      return static_cast<int64_t>(r.length);
    }
    case IoOp::kFdatasync:
      // Never retried, not even on EINTR: after a failed fdatasync the kernel
      // may have dropped the dirty pages, so a second call could "succeed".
      return ::fdatasync(r.fd) == 0 ? 0 : -errno;
    case IoOp::kPunchHole:
      if (r.length == 0) return 0;
      if (::fallocate(r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(r.offset), static_cast<off_t>(r.length)) != 0) {
        return -errno;
      }
      return 0;
  }
  return -EINVAL;
}

SyncIoEngine::SyncIoEngine(int threads) {
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

SyncIoEngine::~SyncIoEngine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void SyncIoEngine::Submit(const IoRequest& request, IoCallback done) {
  if (workers_.empty()) {
    done(RunIoBlocking(request));
    return;
  }
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(request, std::move(done));
  }
  cv_.notify_one();
}

void SyncIoEngine::WorkerLoop() {
  for (;;) {
    std::pair<IoRequest, IoCallback> item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    item.second(RunIoBlocking(item.first));
  }
}

}  // namespace shorthorn::replicad
