// RebuildTask: the REBUILD of one replica, target side: the thread that
// runs a Rebuilder (rebuilder.h) pulling a source's layers, and the state
// LIST_LAYERS reports ("rebuild": idle | running | done | failed, the bytes
// copied; a "rebuild" task while it runs). Replica does the two commits
// around it (replica_rebuild.cc): COMMIT #1 before Start, and COMMIT #2,
// the link, which the task's thread calls through `link` once every layer
// is copied and verified.
//
// Promises:
//  * At most one rebuild runs; Start refuses a second (EBUSY) and any after
//    Stop (ESHUTDOWN).
//  * Stop cancels the running rebuild and joins its thread; the copied
//    files are the Rebuilder's to remove, or else the next Open's
//    (unreferenced). The replica stays rebuilding.
//  * When the rebuild ends, its state says how (done, or failed with the
//    message) before Wait returns.
//
// Threads: any; `link` runs on the task's thread without the task's mutex.
// Lock order: the task's mutex is taken after the replica's meta_mu_
// (StartRebuild and ListLayers hold it), and nothing is taken while it is
// held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/control_messages.h"
#include "common/status.h"
#include "replicad/core/rebuilder.h"
#include "replicad/core/replica_meta.h"

namespace shorthorn::replicad {

class RebuildTask {
 public:
  // Links the copied layers under the head at `snapshot` (COMMIT #2).
  using Link =
      std::function<Status(const std::string& snapshot, const std::vector<LayerMeta>& copied)>;

  // `object` ("replica r1") starts the log lines. `rebuilding`: the replica
  // was opened marked rebuilding, so its state's message says a REBUILD is
  // due.
  RebuildTask(std::string object, bool rebuilding, Link link);
  ~RebuildTask();
  RebuildTask(const RebuildTask&) = delete;
  RebuildTask& operator=(const RebuildTask&) = delete;

  // OK when Start would start one now: ESHUTDOWN after Stop, EBUSY while
  // one runs. `op` starts the message.
  Status CheckIdle(const std::string& op) const;
  // Starts pulling `request` into `target` on a new thread (the state is
  // "running" on return). Errors as CheckIdle.
  Status Start(const RebuildRequest& request, RebuildTarget target, const RebuildOptions& options,
               const std::string& op);
  // Cancels the running rebuild, joins its thread, refuses later Starts.
  void Stop();
  // Waits until no rebuild runs (tests).
  void Wait();

  // For LIST_LAYERS, read together (one reply never says "running" without
  // the task): the last or running rebuild's state, and the "rebuild" task
  // while one runs.
  struct Report {
    msg::RebuildState state;
    std::optional<msg::LayerTask> task;
  };
  Report report() const;

 private:
  void Run(std::shared_ptr<Rebuilder> rebuilder, std::string snapshot);
  Status CheckIdleLocked(const std::string& op) const;

  const std::string object_;
  const Link link_;

  mutable std::mutex mu_;
  std::condition_variable ended_;         // the running rebuild ended
  msg::RebuildState state_;               // guarded by mu_
  std::string source_;                    // the last rebuild's source replica; guarded by mu_
  uint64_t total_bytes_ = 0;              // estimate: the source layers' size_held; guarded by mu_
  std::shared_ptr<Rebuilder> rebuilder_;  // the running one; guarded by mu_
  bool stopped_ = false;                  // Stop ran; guarded by mu_
  std::thread thread_;                    // guarded by mu_
};

}  // namespace shorthorn::replicad
