// Backend: the byte-range operations a volume is made of (read, write, unmap,
// flush), asynchronous. The FUSE frontend talks to an Engine through it, and
// the Engine talks to each replica through the same shape (ReplicaClient).
//
// Callbacks run exactly once, on whatever thread completes the operation
// (a socket reader thread, or the caller's thread for an immediate error);
// they must not block. Write copies or sends `data` before returning, so the
// caller's buffer need not outlive the call.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/status.h"

namespace shorthorn::fused {

using DoneCallback = std::function<void(Status)>;
using ReadCallback = std::function<void(Status, std::vector<uint8_t>)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual uint64_t Size() const = 0;
  virtual void Read(uint64_t offset, uint32_t length, ReadCallback done) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) = 0;
  // Write with the payload's wire checksum (wire::PayloadChecksum) already
  // computed, so data fanned out to several replicas is hashed once.
  virtual void WriteSummed(uint64_t offset, std::span<const uint8_t> data, uint64_t checksum,
                           DoneCallback done) {
    Write(offset, data, std::move(done));
  }
  virtual void Unmap(uint64_t offset, uint64_t length, DoneCallback done) = 0;
  // Completes when every write acknowledged before the call is durable.
  virtual void Flush(DoneCallback done) = 0;
  // Releases the backend's resources after a final flush; later I/O fails.
  // Blocking.
  virtual Status Close() = 0;
  // Requests sent and not yet answered (for choosing where to read).
  virtual size_t Outstanding() const { return 0; }
  // Called once when the backend fails on its own (connection lost, silent
  // past the timeout), even with no request in flight; nullptr to clear.
  // The handler runs on the backend's thread.
  virtual void SetFailureHandler(std::function<void(const Status&)> handler) {}
  // True on a thread of the backend's own (one that runs its callbacks): it
  // must not be destroyed there (its destructor joins those threads).
  virtual bool OnOwnThread() const { return false; }
};

}  // namespace shorthorn::fused
