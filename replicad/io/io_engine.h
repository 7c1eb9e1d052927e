// IoEngine: the asynchronous file I/O a replica does, behind one narrow
// interface so that the data path can run on io_uring, on plain syscalls in a
// small thread pool, or on a test fake.
//
// Promises: Submit() never blocks on the I/O itself (it may wait briefly for a
// free submission slot). While a SubmitBatch is open on the submitting thread,
// an engine may hold the request until the batch kicks (submit_batch.h); a
// batch is closed before its engine is destroyed. `done` is called exactly
// once, with the number of bytes transferred (always the full length for
// kRead/kWrite: engines finish short transfers themselves and read bytes past
// the end of file as zeros), 0 for kFdatasync/kPunchHole, or -errno. An engine
// never retries a failed fdatasync.
//
// Threads: Submit() may be called from any thread. `done` runs on an engine
// thread, or on the submitting thread when the submission itself fails or the
// engine is synchronous. `done` must not block for long and must not call
// Submit() on the same engine (io_uring bounds the ops in flight; a callback
// waiting for a slot on the completion thread would deadlock). The buffer and
// fd must stay valid until `done` runs; destroying an engine waits for every
// op in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace shorthorn::replicad {

enum class IoOp { kRead, kWrite, kFdatasync, kPunchHole };

struct IoRequest {
  IoOp op = IoOp::kRead;
  int fd = -1;
  uint8_t* buf = nullptr;  // kRead: filled; kWrite: source; else unused
  uint64_t offset = 0;     // kRead/kWrite/kPunchHole
  uint64_t length = 0;     // kRead/kWrite/kPunchHole
};

// Bytes transferred (>= 0) or -errno.
using IoCallback = std::function<void(int64_t result)>;

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  // "io_uring", "sync", ... for logs.
  virtual std::string_view name() const = 0;
  virtual void Submit(const IoRequest& request, IoCallback done) = 0;
  // Engines that hold submissions while a SubmitBatch is open on the
  // submitting thread (submit_batch.h) hand them to the kernel here.
  virtual void SubmitHeld() {}
};

// Runs one request with plain blocking syscalls on the calling thread,
// following the promises above. Shared by the sync engine and test fakes.
int64_t RunIoBlocking(const IoRequest& request);

}  // namespace shorthorn::replicad
