// The fused side of backups: a backup::SnapshotSource over one replica (the
// replica protocol's LIST_LAYERS, LAYER_EXTENTS and READ_SNAPSHOT_VIEW, on
// connections bound at the volume's epoch, so a backup is fenced like data)
// and a backup::VolumeSink over an engine (a restore writes the new
// volume's replicas as any write does). Volume data never goes through the
// FUSE file.
//
// Threads: a source is set up on one thread; its readers are each used by
// one worker. EngineSink::Write may be called from several workers at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backup/runner.h"
#include "fused/core/volume_manager.h"
#include "fused/engine/engine.h"
#include "fused/net/replica_client.h"
#include "fused/service/job_runner.h"

namespace shorthorn::fused {

class ReplicaSnapshotSource : public backup::SnapshotSource {
 public:
  // `layers`: the replica's LIST_LAYERS reply. NotFound when it does not
  // list `snapshot` (or only as removed).
  static Result<std::unique_ptr<ReplicaSnapshotSource>> Create(const ReplicaTarget& target,
                                                               uint64_t epoch,
                                                               const ClientOptions& options,
                                                               const std::string& snapshot,
                                                               const msg::LayerList& layers);

  uint64_t size() const override { return size_; }
  const std::vector<backup::LayerInfo>& chain() const override { return chain_; }
  Result<std::vector<backup::Extent>> LayerExtents(const std::string& layer) override;
  Result<std::unique_ptr<backup::SnapshotReader>> OpenReader() override;

 private:
  ReplicaSnapshotSource(ReplicaTarget target, uint64_t epoch, ClientOptions options,
                        std::string snapshot)
      : target_(std::move(target)),
        epoch_(epoch),
        options_(std::move(options)),
        snapshot_(std::move(snapshot)) {}

  const ReplicaTarget target_;
  const uint64_t epoch_;
  const ClientOptions options_;
  const std::string snapshot_;
  uint64_t size_ = 0;
  std::vector<backup::LayerInfo> chain_;
};

// A job's options for the backup runners: progress into the job, and a
// cancelled job stops the run when `cancellable`; the locks name this
// fused ("shorthorn-fused on <host> pid <pid>").
backup::RunOptions RunOptionsFor(JobHandle& job, int workers, bool cancellable);
// Option `key` of a D-Bus method as a string, `fallback` when absent;
// InvalidArgument naming the method and the key when it is not a string.
Result<std::string> StringOption(const char* method, const Options& options, const char* key,
                                 const std::string& fallback);

class EngineSink : public backup::VolumeSink {
 public:
  explicit EngineSink(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;
  Status Flush() override;

 private:
  std::shared_ptr<Engine> engine_;
};

}  // namespace shorthorn::fused
