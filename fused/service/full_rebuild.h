// FullRebuild: one full rebuild of an attached volume that is short of RW
// replicas and has none that can catch up: a new replica is made on another
// replicad and copies the volume from an RW one (DESIGN §5; the diagram is
// in replication.cc). One method per step, the state the steps share as
// members:
//
//   ChooseSource ──► CreateReplica ──► AddReplica ──► Copy ──► MakeRW
//     (an RW one)     (placed, on a     (system         (REBUILD,  (generation
//                      rebuild slot)     snapshot, WO)   polled)    +1, RW)
//   ──► RetireReplaced (the replaced replica becomes stale; the system
//       snapshot is merged away)
//
// A step that fails after the new replica exists removes it again (Undo).
// Runs on the rebuild job's thread, outside VolumeService::mutex_; one
// object per rebuild, used once (Run).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fused/service/volume_service.h"

namespace shorthorn::fused {

class FullRebuild {
 public:
  FullRebuild(VolumeService& service, const std::string& volume,
              std::shared_ptr<VolumeService::AttachContext> ctx, std::shared_ptr<Engine> engine,
              JobHandle& job);
  ~FullRebuild();  // releases the rebuild slot
  FullRebuild(const FullRebuild&) = delete;
  FullRebuild& operator=(const FullRebuild&) = delete;

  Status Run();

 private:
  // The volume's record, which of its replicas are usable, and an RW one to
  // copy from.
  Status ChooseSource();
  // Places the new replica (failed replicas' replicads first), waits for a
  // rebuild slot there and creates it (rebuilding); tries the next place
  // when the create fails.
  Status CreateReplica();
  // Registers the new replica, takes the system snapshot on the RW replicas
  // (engine paused) and adds the new one WO; generation +1 on RW.
  Status AddReplica();
  // REBUILD on the new replica, polled until it ends.
  Status Copy();
  // Generation +1 on RW and the new replica, which turns RW.
  Status MakeRW();
  // The replaced replica becomes stale (or a leaving one is dropped); the
  // system snapshot is deleted.
  void RetireReplaced();
  // Removes the new replica (engine, targets, registry, its data); returns
  // `why`.
  Status Undo(const Status& why);
  // The rebuild note of the volume (StateReason); "" clears it.
  void Note(const std::string& text);
  // The replica's address and name while it is attached.
  Result<ReplicaTarget> TargetOf(const std::string& replica);

  VolumeService& service_;
  const std::string volume_;
  const std::string what_;
  std::shared_ptr<VolumeService::AttachContext> ctx_;
  std::shared_ptr<Engine> engine_;
  JobHandle& job_;

  VolumeRecord record_;
  std::vector<std::string> err_addresses_;
  std::map<std::string, std::string> holders_;  // address -> usable replica there
  std::string source_name_;
  ReplicaTarget source_;  // of source_name_, read before the generation bump
  ReplicaRecord fresh_;   // the new replica
  std::string slot_;      // address whose rebuild slot is held
  ReplicaTarget target_;  // of fresh_
  std::unique_ptr<ReplicaClient> client_;
  std::string snapshot_;  // the system snapshot
};

}  // namespace shorthorn::fused
