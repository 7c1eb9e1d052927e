// Engine: one attached volume's replica set, presented as a Backend
// (DESIGN §5).
//
//  * Writes, unmaps and flushes go to every RW and WO replica in parallel and
//    complete when all of them have answered. A replica that fails is marked
//    ERR and dropped; the operation succeeds while at least one replica
//    answered it and an RW replica remains, else EIO.
//  * Overlapping writes and unmaps in flight are ordered by a range lock, so
//    every replica applies them in the same order.
//  * Reads go to one RW replica: a local one first, else the one with the
//    fewest requests outstanding; on error, the next one.
//  * When a replica fails, acknowledgements of writes, unmaps and flushes are
//    held until the owner has recorded the new membership durably (it bumps
//    the generation of the remaining replicas) and calls MembershipRecorded:
//    no write is acknowledged that a stale replica could later claim to hold.
//  * While a replica is ERR the engine remembers which ranges were written
//    (ExtentSet), so that a replica that was away briefly catches up with
//    only those ranges (Copy). A snapshot invalidates that record.
//  * Replicas in WO mode (being rebuilt) receive writes, never reads; an
//    unaligned write reaching one is widened to whole 4 KiB blocks read from
//    an RW replica, because a rebuilding replica cannot read its lower layers.
//
// Pure logic over Backend: ReplicaClients in fused, fakes in tests.
// Thread-safe; callbacks run on the replicas' completion threads. The
// EngineCallbacks are called with no engine lock held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fused/engine/backend.h"
#include "fused/engine/extent_set.h"
#include "fused/engine/range_lock.h"

namespace shorthorn::fused {

enum class ReplicaMode { kRW, kWO, kERR };
const char* ReplicaModeName(ReplicaMode mode);

struct EngineReplica {
  std::string name;  // for messages and properties
  std::shared_ptr<Backend> backend;
  ReplicaMode mode = ReplicaMode::kRW;
  bool local = false;  // on this host: preferred for reads
};

struct EngineCallbacks {
  // A replica's mode changed (properties to refresh).
  std::function<void()> on_change;
  // A replica went ERR. The owner must record the membership change durably
  // and then call MembershipRecorded; until then acknowledgements are held.
  // Without this callback nothing is held (tests).
  std::function<void(const std::string& replica, const Status& why)> on_failure;
};

struct ReplicaState {
  std::string name;
  ReplicaMode mode;
};

class Engine : public Backend {
 public:
  // Unmaps larger than this go to the replicas in pieces of at most this
  // size, one after another: a replica may write zeros over a range (while
  // rebuilding, or where a snapshot holds data), and one request must end
  // well within the replica timeout.
  static constexpr uint64_t kUnmapPiece = 64ull << 20;

  Engine(std::string volume, uint64_t size, std::vector<EngineReplica> replicas,
         EngineCallbacks callbacks = {});
  ~Engine() override;

  uint64_t Size() const override { return size_.load(); }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override;
  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override;
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override;
  void Flush(DoneCallback done) override;
  // Closes every replica (each flushes first); the engine then fails all
  // I/O. Returns the first error.
  Status Close() override;

  // Stops admitting I/O (new requests wait in a queue), waits for every
  // request in flight, then flushes every replica and returns the flush's
  // status; the engine stays paused either way. Blocking; not from a
  // completion thread.
  Status Pause();
  // Admits I/O again, starting with the queued requests.
  void Resume();
  // The size after an expand; call while paused.
  void SetSize(uint64_t size) { size_ = size; }

  // Marks a replica ERR (a control operation failed on it). `also_missed`:
  // ranges it must be given again by a catch-up besides what it had not
  // flushed (a scrub found them different).
  void FailReplica(const std::string& name, const Status& why,
                   const std::vector<std::pair<uint64_t, uint64_t>>& also_missed = {});
  // Adds a replica (normally WO: it receives writes from now on).
  void AddReplica(EngineReplica replica);
  // An ERR replica cannot be made RW (kFailed): it failed meanwhile.
  Status SetMode(const std::string& name, ReplicaMode mode);
  // Gives an ERR replica a new backend (it is reachable again) in WO mode,
  // keeping the record of what it missed, for a catch-up.
  Status Reattach(const std::string& name, std::shared_ptr<Backend> backend);
  // Takes a replica out; returns its backend for the caller to close.
  std::shared_ptr<Backend> RemoveReplica(const std::string& name);
  // Releases the acknowledgements held since a failure; a failed recording
  // turns them into EIO.
  void MembershipRecorded(const Status& recorded);

  // The ranges `name` may lack: written since it went ERR, and those it
  // acknowledged after its last successful flush before (a power cut or a
  // restart may have lost them). False when that record is not usable
  // (never ERR, invalidated by a snapshot, revert or expand, or more
  // unflushed ranges than the engine keeps track of).
  bool DirtyRanges(const std::string& name, std::vector<std::pair<uint64_t, uint64_t>>* out);
  // Forgets every ERR replica's record (after a snapshot or revert).
  void InvalidateDirty();
  // Copies [offset, offset+length) from an RW replica to replica `to`
  // under the range lock (catch-up). Counts as I/O in flight: it waits while
  // the engine is paused, and Pause waits for it. Blocking.
  Status Copy(const std::string& to, uint64_t offset, uint64_t length);
  // Runs `fn` inside the gate (waiting while paused) and holding the range
  // lock over [offset, offset+length): no write or unmap of the range is in
  // flight on any replica meanwhile, so every replica that acknowledged the
  // writes before holds the same data there (scrub, resync). Blocking; `fn`
  // may call CopyHeld for ranges inside [offset, offset+length).
  Status WithRangeHeld(uint64_t offset, uint64_t length, const std::function<Status()>& fn);
  // Copy for a caller inside WithRangeHeld over the range.
  Status CopyHeld(const std::string& to, uint64_t offset, uint64_t length);

  std::vector<ReplicaState> Replicas() const;
  size_t Count(ReplicaMode mode) const;

 private:
  struct Slot;
  struct FanOut;
  using SlotPtr = std::shared_ptr<Slot>;
  static SlotPtr NewSlot();

  bool TryEnter();
  // Waits while paused, then enters (background copies, not the data path).
  void EnterBlocking();
  void Leave();
  void Defer(std::function<void()> retry);
  DoneCallback Tracked(DoneCallback done);

  // Range-locked write/unmap on every non-ERR replica.
  void LockedWrite(uint64_t token, uint64_t offset, std::span<const uint8_t> data,
                   DoneCallback done);
  void LockedUnmap(uint64_t token, uint64_t offset, uint64_t length, DoneCallback done);
  // Writes `patch` at `offset` to every non-ERR replica as whole 4 KiB
  // blocks, the rest read from an RW replica. Caller holds the range.
  void WidenedWrite(uint64_t offset, std::shared_ptr<std::vector<uint8_t>> patch,
                    DoneCallback done);
  void RunSteps(std::shared_ptr<std::vector<std::function<void(DoneCallback)>>> steps, size_t next,
                DoneCallback done);
  void FanOutOp(const char* what, uint64_t start, uint64_t end, const std::vector<SlotPtr>& targets,
                std::function<void(Backend&, DoneCallback)> op, DoneCallback done);
  void ReadFrom(std::vector<SlotPtr> tried, uint64_t offset, uint32_t length, ReadCallback done);
  std::vector<SlotPtr> Targets(bool include_wo) const;
  SlotPtr Find(const std::string& name) const;
  // Has the backend report failures on its own (idle replicas too).
  void Watch(const SlotPtr& slot);
  // Marks ERR and records [start, end) as missed by it.
  void MarkFailed(const SlotPtr& slot, const Status& why, uint64_t start = 0, uint64_t end = 0);
  // Records a range written (or unmapped) while some replicas are ERR.
  void NoteMissed(uint64_t start, uint64_t end);
  // Calls `done` now, or later when acknowledgements are held.
  void Acknowledge(DoneCallback done, Status status);
  Status NoReplica(const char* what) const;

  const std::string volume_;
  std::atomic<uint64_t> size_;
  EngineCallbacks callbacks_;

  mutable std::mutex mutex_;  // slots_, modes, dirty sets, held acks
  std::vector<SlotPtr> slots_;
  int failures_unrecorded_ = 0;
  std::vector<std::pair<DoneCallback, Status>> held_;

  RangeLock ranges_;

  std::mutex gate_mutex_;
  std::condition_variable gate_cv_;
  bool paused_ = false;
  uint64_t in_flight_ = 0;
  std::vector<std::function<void()>> deferred_;
};

}  // namespace shorthorn::fused
