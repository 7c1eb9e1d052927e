// ReplicaWorker: the background worker of one open Replica. Its thread
// merges deleted snapshots into their child, computes the checksums of new
// immutable layers, and runs VERIFY (doc/replica-format.md). Jobs run one
// at a time in this priority: merges due (removed snapshots with at most
// one child, oldest first), pending checksums, a requested verify. The work
// list is derived from replica.json each time, so a job recorded before a
// crash is simply found again by the worker of the next Open.
//
// Promises:
//  * Stop (Close, SimulatePowerLoss, the destructor) ends the thread at
//    the next interrupt point; an unfinished merge resumes at the next
//    Open, an unfinished checksum is computed again.
//  * A merge commits through the replica (its meta_mu_ and CommitLocked)
//    and copies each piece under the replica's range lock, so a copy never
//    overwrites a block a write changed meanwhile (design notes in
//    replica_worker.cc).
//  * StartVerify's state is visible at once (task() and verify() report it
//    running), so a LIST_LAYERS after the reply never reports the previous
//    run's result as this one's.
//
// Threads: every method from any thread but the worker's own (Stop from
// it does not join). Lock order: the worker's mutex is taken after the
// replica's meta_mu_ (ListLayers reads task() and verify() under it) and
// the layer set's and the replica's other locks are never taken while it
// is held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "common/control_messages.h"
#include "common/status.h"

namespace shorthorn::replicad {

class Replica;

class ReplicaWorker {
 public:
  // `replica` outlives the worker (it is a member of it) and runs its jobs'
  // commits; the thread starts with Start.
  explicit ReplicaWorker(Replica& replica);
  ~ReplicaWorker();
  ReplicaWorker(const ReplicaWorker&) = delete;
  ReplicaWorker& operator=(const ReplicaWorker&) = delete;

  void Start();
  // Asks the thread to end and joins it (not when called on the thread).
  // Idempotent.
  void Stop();
  // There may be new work (a snapshot, a deleted snapshot, a commit that
  // changed the tree).
  void Kick();
  // Waits until the worker has nothing left to do; false when it stopped
  // (Stop, or a crash_at point fired) with work left.
  bool WaitIdle();
  // VERIFY: checks every snapshot's checksum soon; reported running at once.
  void RequestVerify();

  // For LIST_LAYERS, read together (a verify that ends meanwhile is either
  // still running in both or done in both).
  struct Report {
    std::optional<msg::LayerTask> task;  // the job running now: a merge or a verify
    msg::VerifyState verify;             // the last verify's result
  };
  Report report() const;

 private:
  void Loop();
  // Runs one job; false when there was none. Sets *crashed when a crash_at
  // point fired or Stop was asked.
  bool RunOneJob(bool* crashed);
  Status RunMerge(uint64_t id, bool* crashed);
  Status RunChecksum(uint64_t id, bool* crashed);
  void RunVerify(bool* crashed);
  // After a failed job: waits 10 s, or less when stopped.
  void Backoff(const Status& failure);
  bool Hit(std::string_view point);
  bool StopRequested() const;
  void SetProgress(uint64_t done_bytes);

  Replica& replica_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool kicked_ = false;                 // guarded by mu_
  bool stop_ = false;                   // guarded by mu_
  bool idle_ = false;                   // guarded by mu_
  bool ended_ = false;                  // guarded by mu_
  bool verify_requested_ = false;       // guarded by mu_
  std::optional<msg::LayerTask> task_;  // guarded by mu_
  msg::VerifyState verify_;             // guarded by mu_
  bool started_ = false;                // guarded by mu_
  std::thread thread_;                  // guarded by mu_; joined by one Stop
};

}  // namespace shorthorn::replicad
