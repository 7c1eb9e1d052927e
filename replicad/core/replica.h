// Replica: one open replica directory (replica.json + one sparse file per
// layer) and its data path over the layer chain. Data ops (Read, Write,
// Unmap, Flush) complete through a callback; control ops (Create, Open,
// SetEpoch, OpenSession, SetGeneration, Close, EndSession, Destroy, and the
// layer ops Snapshot, DeleteSnapshot, Revert, Expand, ListLayers,
// StartVerify, Checksum, StartRebuild, LayerExtents, ReadLayer) are
// synchronous. Its parts, each with its own lock: the layer files and
// block index (LayerSet, layer_set.h); the background worker that merges
// deleted snapshots into their child and computes and verifies layer
// checksums (ReplicaWorker, replica_worker.h); the rebuild thread that,
// while a REBUILD runs, pulls a source's layers (RebuildTask,
// replica_rebuild.h). Replica itself keeps replica.json and admission.
//
// Promises:
//  * Every data op checks, in this order: failed -> EIO, closed -> ESHUTDOWN,
//    epoch != current epoch -> ESTALE, range beyond size -> EINVAL.
//  * A read of a block returns the newest layer of the active chain (head ->
//    parent -> ... -> root) that holds it, zeros when none does. Writes go
//    to the head only, in whole 4 KiB blocks (edge blocks are
//    read-modify-written from the chain). An unmapped range reads as zeros:
//    its whole blocks are punched in the head and in the removed snapshots
//    right under it that no snapshot needs any more (merges due), and zeros
//    are written to the head only where an older layer still holds data.
//  * Every metadata change is one atomic replace of replica.json; a crash at
//    any moment leaves a replica that opens with the same content in every
//    snapshot and every acknowledged write in the head.
//  * SetEpoch persists replica.json atomically before the new epoch takes
//    effect, then waits for the ops admitted under the old epoch to finish.
//  * A failed fdatasync marks the replica failed for good: every later op
//    answers EIO. An fdatasync is never retried.
//  * FLUSH makes durable every write and unmap answered before it: it
//    fdatasyncs the head and every lower layer an unmap punched since the
//    last flush (removed snapshots right under the head).
//  * Close stops the worker (an unfinished merge resumes at the next Open)
//    and the rebuild (its copied layers are deleted at the next Open; the
//    replica stays "rebuilding"), waits for the ops in flight, then
//    fdatasyncs the head.
//  * While rebuilding, the head has no parent: unaligned writes and unmaps
//    are refused (EINVAL), aligned unmaps write real zeros, SNAPSHOT is
//    refused (EBUSY).
//  * Unmap runs its syscalls on the replica's unmap thread (one per replica,
//    started by the first unmap; unmaps run there one at a time, in the
//    order they came): the caller's thread only checks the op and takes the
//    range lock (waiting there only for an overlapping write or unmap, so
//    one connection's writes and unmaps of a range apply in the order they
//    arrived), and is free for other requests while zeros are written.
//    Close waits for the queued unmaps like for any op in flight.
//  * Power-loss test mode (ReplicaOptions::power_loss_test): every change
//    the data path makes to a layer file is undo-logged (undo_log.h) until
//    an fdatasync of that file (FLUSH, Close, snapshot, merge) makes it
//    durable; SimulatePowerLoss drops what is not.
//
// Threads: data ops and accessors from any thread; `done` runs on an engine
// thread, on the unmap thread (Unmap) or on the caller's thread. Control ops
// may come from any thread; they serialize on an internal mutex (callers need
// not). Ops in flight hold references to the replica and to the layers they
// touch, so files stay open until they end.
//
// Lock order (each part's header repeats its place): meta_mu_ (replica.json,
// control ops) -> mu_ (admission) -> a range lock -> the LayerSet's mutex;
// the worker's and the rebuild task's mutexes come after meta_mu_, and the
// LayerSet's, the worker's, the rebuild task's, dirty_mu_ and view_mu_ are
// leaves (nothing is taken while one is held).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/control_messages.h"
#include "common/file_util.h"
#include "common/status.h"
#include "replicad/core/block_index.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/layer_set.h"
#include "replicad/core/range_lock.h"
#include "replicad/core/rebuilder.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/replica_metrics.h"
#include "replicad/core/replica_rebuild.h"
#include "replicad/core/replica_worker.h"
#include "replicad/core/serial_worker.h"
#include "replicad/core/undo_log.h"
#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {

struct ReplicaOptions {
  unsigned index_chunk_bits = BlockIndex::kDefaultChunkBits;
  // max-volume-size in GiB: ReplicaStore::Create, Expand and Open refuse a
  // larger replica (EINVAL) before any file or block index is sized by it.
  uint64_t max_volume_size_gib = kDefaultMaxVolumeSizeGib;
  // Reads first try the page cache on the calling thread (preadv2 with
  // RWF_NOWAIT) and go to the engine only for what is not cached.
  bool inline_reads = true;
  // Writes (into the head's page cache) run on the calling thread rather
  // than in the engine: ext4 takes no non-blocking buffered writes, so the
  // engine would only add thread hand-offs. Flushes stay in the engine.
  // Writes that go direct (below) use the engine unless the caller says it
  // may block.
  bool inline_writes = true;
  // Whole-block writes into the head go through an O_DIRECT descriptor, in
  // the engine: they skip the page cache (no copy into it, no write-back or
  // dirty-page throttling later). Where the file system takes no O_DIRECT
  // (tmpfs), or refuses one write (EINVAL), the write goes buffered.
  bool direct_writes = true;
  // Fault injection for tests: called at each interrupt point of the worker
  // ("merge-start", "merge-prepared", "merge-copy" after every piece,
  // "merge-synced", "merge-committed", "merge-unlinked", "checksum") and of
  // the rebuild ("rebuild-layer" after each copied layer). Returning true
  // stops the worker or the rebuild right there, as a crash would.
  std::function<bool(std::string_view point)> crash_at;
  // Fault injection for tests: called before the replica's own file steps
  // ("commit": a replica.json replace, "create-layer", "rebuild-write",
  // "write": a data write into the head, "direct-write": the same when it
  // goes direct, where EINVAL makes it go buffered; "flush-layer": the
  // fdatasync of a punched lower layer in FLUSH; "unmap": before an
  // unmap's syscalls, on the unmap thread);
  // a nonzero errno (ENOSPC, ...) fails that step as if its syscall had.
  std::function<int(std::string_view point)> fail_io;
  // Largest piece the merge copies under one range lock.
  uint64_t merge_piece = 1 << 20;
  RebuildOptions rebuild;
  // Test mode (replicad with SHORTHORN_TEST_POWER_LOSS=1): keep the undo log
  // SimulatePowerLoss needs. Off, the data path pays one branch per change.
  bool power_loss_test = false;
};

// The fused an OPEN_REPLICA or DELETE_REPLICA comes from (doc/protocol.md).
// An empty owner is neither checked nor recorded: replica_tool, and a
// rebuild opening its source, name none.
struct OwnerClaim {
  std::string owner;
  // OPEN only: record `owner` even when another fused owns the replica (an
  // import); that fused is refused from then on.
  bool take_over = false;
};

// One page of LAYER_EXTENTS.
struct ExtentPage {
  std::vector<FileExtent> extents;
  std::optional<uint64_t> next;  // where the next page starts; none at the end
};

class Replica : public std::enable_shared_from_this<Replica> {
 public:
  using Done = std::function<void(Status)>;

  // Makes the directory `dir` with replica.json (format 2) and the sparse
  // head of `meta` (NewReplicaMeta), all durable on return. EEXIST when
  // `dir` exists. A partly made directory is removed again on failure.
  static Status Create(const std::string& dir, const ReplicaMeta& meta);
  // Upgrades format 1, deletes unreferenced layer files, rebuilds the block
  // index from the layers' allocated extents and starts the worker (which
  // resumes recorded merges). EINVAL, before any of that, when the size is
  // above options.max_volume_size_gib (made under a larger limit).
  static Result<std::shared_ptr<Replica>> Open(const std::string& dir, IoEngine* engine,
                                               ReplicaOptions options = {});
  // Removes the directory and its files and syncs the parent. ENOENT when
  // it does not exist.
  static Status Destroy(const std::string& dir);

  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  const std::string& name() const { return replica_; }
  const std::string& volume() const { return volume_; }
  uint64_t size() const;
  uint64_t epoch() const { return epoch_.load(); }
  bool failed() const;
  bool closed() const;

  // Persists `epoch` (> epoch()).
  Status SetEpoch(uint64_t epoch);
  // OPEN_REPLICA by an engine at `epoch` (>= epoch(), else ESTALE): a newer
  // epoch is recorded (one atomic replace of replica.json) and takes effect
  // as in SetEpoch. Returns true when no data changed since the last clean
  // close (`open` is false): a replica written in this process and not
  // closed since, or left so by a crash, is not clean. OPENs that only run
  // control ops (LIST_LAYERS of a detached volume) leave it clean.
  // `claim`: checked before the epoch (kMoved/EXDEV when another fused owns
  // the replica and it is no take-over, nothing written); a new owner is
  // recorded in the same replace as the epoch.
  Result<bool> OpenSession(uint64_t epoch, const OwnerClaim& claim = {});
  // CLOSE_REPLICA, after a successful Close(): fdatasyncs the lower layers
  // an unmap punched since the last flush, then records `open: false` (one
  // atomic replace; when that fails, e.g. ENOSPC, it logs a warning and the
  // replica stays not clean: still OK). EIO when the replica has failed,
  // EINVAL when it is not closed. Daemon shutdown and crashes never get
  // here: `open` stays true.
  Status EndSession();
  // Before the first WRITE or UNMAP after a clean close: records `open:
  // true` (one atomic replace of replica.json), so that a crash from now on
  // is seen by the next OPEN. Cheap afterwards (one atomic load).
  Status MarkSessionDirty();
  uint64_t generation();
  // The fused that owns the replica; "" for none (ReplicaMeta::owner).
  std::string owner();
  bool rebuilding() const { return rebuilding_.load(); }
  // The data requests answered (RequestHandler records them), for the
  // metrics file.
  ReplicaIoStats& io_stats() { return io_stats_; }
  const ReplicaIoStats& io_stats() const { return io_stats_; }
  // Persists `generation`; EINVAL when lower than the current one, OK
  // without a write when equal.
  Status SetGeneration(uint64_t generation);

  // `epoch` is the request's epoch; see the order of checks above.
  // `may_block`: as for Write; reads not in the page cache then run on the
  // caller's thread too.
  void Read(uint64_t epoch, uint64_t offset, std::span<uint8_t> buf, Done done,
            bool may_block = false);
  // `may_block`: the caller has nothing else to do meanwhile, so a write
  // that goes to the disk (direct) runs on its thread instead of through the
  // engine's completion thread (one thread hand-off less per write).
  void Write(uint64_t epoch, uint64_t offset, std::span<const uint8_t> data, Done done,
             bool may_block = false);
  void Unmap(uint64_t epoch, uint64_t offset, uint64_t length, Done done);
  void Flush(uint64_t epoch, Done done);
  // Checks the replica is usable at `epoch` (failed, closed, epoch), for ops
  // that do no I/O and for the layer ops.
  Status Check(std::string_view op, uint64_t epoch) const;

  // Layer ops (doc/protocol.md has their errors). Snapshot waits for the
  // data ops in flight and holds new ones back while it runs.
  Status Snapshot(const std::string& name, const std::string& created, bool user_created);
  Status DeleteSnapshot(const std::string& name);
  Status Revert(const std::string& name);
  Status Expand(uint64_t size);
  // LIST_LAYERS (doc/protocol.md).
  msg::LayerList ListLayers();
  Status StartVerify();
  // CHECKSUM: XXH3-64 (seed 0) of the replica's data as READ returns it,
  // for each `chunk` of [offset, offset+length) (the last one may be
  // short). Checks the request (doc/protocol.md limits: EINVAL, EBUSY while
  // rebuilding) and, per chunk, the replica like a data op at `epoch`; each
  // chunk is read under the range lock writes take. Blocking.
  Result<std::vector<uint64_t>> Checksum(uint64_t epoch, uint64_t offset, uint64_t length,
                                         uint64_t chunk);
  // Reads the content of snapshot `name` as it was taken (blocking): the
  // READ_SNAPSHOT_VIEW of backups. The chain's index is built once and kept
  // for the next read of the same snapshot (until a layer file is removed).
  Status ReadSnapshot(const std::string& name, uint64_t offset, std::span<uint8_t> buf);

  // Rebuild, source side: the data extents of snapshot `name`'s own layer
  // file from byte `from`, at most `max` of them; and that file's bytes
  // (holes and bytes past its end read as zeros). Blocking.
  Result<ExtentPage> LayerExtents(const std::string& name, uint64_t from, size_t max);
  Status ReadLayer(const std::string& name, uint64_t offset, std::span<uint8_t> buf);
  // Rebuild, target side: durably marks the replica rebuilding, drops its
  // snapshots (the head keeps its data, without a parent) and starts the
  // pull in the background. EBUSY while a rebuild or a merge runs.
  Status StartRebuild(const RebuildRequest& request);
  // Waits until no rebuild runs (tests).
  void WaitRebuild();
  // Waits until the worker has nothing left to do; false when it stopped
  // (Close, or a crash_at point fired) with work left.
  bool WaitIdle();

  // Refuses new ops, stops the worker, waits for the ops in flight,
  // fdatasyncs the head. EIO when the replica has failed or the fdatasync
  // fails (which fails the replica).
  Status Close();

  // Power-loss test mode only (EINVAL otherwise): what a power cut would
  // leave on the disk now. Fails the replica for good (no data-path change
  // reaches a file any more, every later op answers EIO), stops the worker
  // and the rebuild as a crash would, waits for the changes in flight, then
  // puts back, newest first, every range changed since its file's last
  // fdatasync (old bytes, old holes) and fdatasyncs those files.
  // replica.json is not touched. Blocking; the replica is useless after.
  Result<UndoLog::Dropped> SimulatePowerLoss();

 private:
  // The worker's jobs read replica.json and commit through meta_mu_ and
  // CommitLocked, copy under range_lock_ and change layers_
  // (replica_worker.h).
  friend class ReplicaWorker;

  // RAII: holds new data ops back (they wait in Begin) until destroyed.
  struct Pause {
    explicit Pause(Replica* r);
    ~Pause();
    Pause(const Pause&) = delete;
    Pause& operator=(const Pause&) = delete;
    void WaitIdle();  // until the ops admitted before have ended
    Replica* r_;
  };

  Replica(std::string dir, ReplicaMeta meta, IoEngine* engine, ReplicaOptions options);

  // --- replica.cc: admission and the data path
  Status Begin(std::string_view op, uint64_t epoch, uint64_t offset, uint64_t length);
  void End();
  void MarkFailed(const Status& cause);
  Status CheckLocked(std::string_view op, uint64_t epoch) const;
  std::string Object() const { return "replica " + replica_; }
  // Reads whole blocks [block, block+count) of the active chain (blocking).
  Status ReadChainBlocking(uint64_t block, uint64_t count, uint8_t* out);
  // On the unmap thread, under the range lock of the blocks it changes.
  Status UnmapLocked(uint64_t offset, uint64_t length);
  // Adds `runs` to the head's zero map, durably, and records in replica.json
  // that the head has one (the first time). False (nothing done) when that
  // record cannot be made now because a layer op holds meta_mu_: the caller
  // writes real zeros instead.
  Result<bool> AddZeroRuns(const LayerPtr& head, const std::vector<ZeroMap::Run>& runs);
  // EINVAL for an unaligned write or unmap while rebuilding.
  Status Unaligned(std::string_view op, uint64_t offset, uint64_t length) const;
  void SubmitWrite(uint64_t first, uint64_t blocks, bool may_block,
                   std::shared_ptr<const void> owned, const uint8_t* data,
                   std::shared_ptr<RangeLock::Guard> guard, Done done);

  // --- replica_control.cc
  // Writes `next` atomically and makes it meta_ (meta_mu_ held).
  Status CommitLocked(ReplicaMeta next, std::string_view op);
  Status RemoveLayerFile(const LayerPtr& layer);
  // The fail_io hook: an error for `what` when it injects one at `point`.
  Status Fault(std::string_view point, const std::string& what) const;

  // The index of a snapshot's chain and the layers it reads.
  struct SnapshotView {
    uint64_t id = 0;  // the snapshot's layer id
    uint64_t size = 0;
    BlockIndex index;
    std::map<uint16_t, LayerPtr> by_slot;
  };
  Result<std::shared_ptr<const SnapshotView>> ViewOf(const std::string& name,
                                                     const std::string& op);

  // --- replica_rebuild.cc
  // The open layer of snapshot `name` (ENOENT "<op>: no such snapshot").
  Result<LayerPtr> SnapshotLayer(const std::string& name, const std::string& op);
  // The one commit that links the head on top of the copied chain (on the
  // rebuild task's thread).
  Status LinkRebuilt(const std::string& snapshot, const std::vector<LayerMeta>& copied);

  const std::string dir_;
  // Copies of meta_'s names, which never change: readable without meta_mu_
  // (a commit reassigns meta_ as a whole).
  const std::string volume_;
  const std::string replica_;
  IoEngine* const engine_;
  const ReplicaOptions options_;
  std::atomic<uint64_t> epoch_;

  // Serializes control ops and replica.json rewrites. Order: first (see
  // the top of this header).
  std::mutex meta_mu_;
  ReplicaMeta meta_;      // guarded by meta_mu_
  bool merging_ = false;  // guarded by meta_mu_

  // Admission. Order: after meta_mu_, before a range lock.
  mutable std::mutex mu_;
  std::condition_variable idle_;  // in_flight_ reached 0, or paused_ cleared
  bool failed_ = false;           // guarded by mu_
  bool closed_ = false;           // guarded by mu_
  bool paused_ = false;           // guarded by mu_: new data ops wait
  uint64_t in_flight_ = 0;        // guarded by mu_
  uint64_t size_ = 0;             // guarded by mu_ (volume size for range checks)

  // The open layer files and the block index (its own lock).
  LayerSet layers_;

  RangeLock range_lock_;

  // Lower layers an unmap punched since the last flush, which FLUSH syncs
  // besides the head. Order: taken alone.
  std::mutex dirty_mu_;
  std::vector<LayerPtr> dirty_lower_;  // guarded by dirty_mu_

  // The last snapshot view (ReadSnapshot). Order: after meta_mu_.
  std::mutex view_mu_;
  std::shared_ptr<const SnapshotView> view_;  // guarded by view_mu_

  // meta_.rebuilding, readable by the data path; changes only while data
  // ops are paused (so an op sees one value from admission to completion).
  std::atomic<bool> rebuilding_{false};
  std::atomic<bool> session_dirty_{false};  // `open` is on disk (MarkSessionDirty)

  // Test mode only (options_.power_loss_test), else null.
  const std::unique_ptr<UndoLog> undo_;
  // Runs UnmapLocked; its tasks hold references to the replica.
  SerialWorker unmaps_;

  ReplicaIoStats io_stats_;

  // Last: they stop (the destructor, Close) before the rest goes.
  ReplicaWorker worker_;
  RebuildTask rebuild_;
};

}  // namespace shorthorn::replicad
