// Replica: one open replica directory (replica.json + head.img) and its data
// path. Data ops (Read, Write, Unmap, Flush) go through the IoEngine and
// complete through a callback; control ops (Create, Open, SetEpoch, Close,
// Destroy) are synchronous and meant for the ReplicaStore, which serializes
// them.
//
// Promises:
//  * Every data op checks, in this order: failed -> EIO, closed -> ESHUTDOWN,
//    epoch != current epoch -> ESTALE, range beyond size -> EINVAL.
//  * SetEpoch persists replica.json atomically before the new epoch takes
//    effect, then waits for the ops admitted under the old epoch to finish.
//  * A failed fdatasync marks the replica failed for good: every later op
//    answers EIO. An fdatasync is never retried.
//  * Close waits for the ops in flight, then fdatasyncs the data file.
//
// Threads: data ops and accessors from any thread; `done` runs on an engine
// thread or, for an op refused up front, on the caller's thread. Ops in
// flight hold a reference (shared_ptr) so the file stays open until they end.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "common/file_util.h"
#include "common/status.h"
#include "replicad/io_engine.h"
#include "replicad/replica_meta.h"

namespace shorthorn::replicad {

class Replica : public std::enable_shared_from_this<Replica> {
 public:
  using Done = std::function<void(Status)>;

  // Makes the directory `dir` with a sparse head of meta.size bytes and
  // replica.json, all durable on return. EEXIST when `dir` exists. A partly
  // made directory is removed again on failure.
  static Status Create(const std::string& dir, const ReplicaMeta& meta);
  static Result<std::shared_ptr<Replica>> Open(const std::string& dir, IoEngine* engine);
  // Removes the directory and its files and syncs the parent. ENOENT when
  // it does not exist.
  static Status Destroy(const std::string& dir);

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  const std::string& name() const { return meta_.replica; }
  const std::string& volume() const { return meta_.volume; }
  uint64_t size() const { return meta_.size; }
  uint64_t epoch() const { return epoch_.load(); }
  bool failed() const;
  bool closed() const;

  // Persists `epoch` (> epoch()). Callers serialize control ops.
  Status SetEpoch(uint64_t epoch);

  // `epoch` is the request's epoch; see the order of checks above.
  void Read(uint64_t epoch, uint64_t offset, std::span<uint8_t> buf, Done done);
  void Write(uint64_t epoch, uint64_t offset, std::span<const uint8_t> data, Done done);
  void Unmap(uint64_t epoch, uint64_t offset, uint64_t length, Done done);
  void Flush(uint64_t epoch, Done done);
  // Checks the replica is usable at `epoch` (failed, closed, epoch), for ops
  // that do no I/O (PING, HELLO).
  Status Check(std::string_view op, uint64_t epoch) const;

  // Refuses new ops, waits for those in flight, fdatasyncs. EIO when the
  // replica has failed or the fdatasync fails (which fails the replica).
  Status Close();

 private:
  Replica(std::string dir, ReplicaMeta meta, UniqueFd fd, IoEngine* engine);

  // Admits one op: the checks in order, then counts it in flight.
  Status Begin(std::string_view op, uint64_t epoch, uint64_t offset, uint64_t length);
  void End();
  // Submits `request`; `what` names the syscall for error messages.
  void SubmitIo(std::string_view op, std::string_view what, const IoRequest& request, Done done);
  void MarkFailed(const Status& cause);
  Status CheckLocked(std::string_view op, uint64_t epoch) const;
  std::string Object() const { return "replica " + meta_.replica; }

  const std::string dir_;
  ReplicaMeta meta_;  // epoch field is guarded by meta_mu_
  const UniqueFd fd_;
  IoEngine* const engine_;
  std::atomic<uint64_t> epoch_;

  std::mutex meta_mu_;  // serializes replica.json rewrites
  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool failed_ = false;     // guarded by mu_
  bool closed_ = false;     // guarded by mu_
  uint64_t in_flight_ = 0;  // guarded by mu_
};

}  // namespace shorthorn::replicad
