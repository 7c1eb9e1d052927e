// ReplicaStore: the replicas of one data directory, by name. Creates, opens,
// closes and deletes them and keeps the open ones; replicas are opened only
// by Open (nothing is opened at start). Replica names are unique within a
// data directory; each replica also records the volume it belongs to, and
// every call naming a volume checks it (EINVAL on a mismatch).
//
// A replica that failed (fdatasync error) stays failed for the life of the
// process: Open answers EIO until it is deleted, so a fresh open can never
// report durability the failed one lost.
//
// Thread-safe: one mutex serializes the control calls (they are rare and do
// their own fsyncs); data ops go to the Replica directly without it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_metrics.h"
#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {

struct StoreUsage {
  uint64_t replicas = 0;           // replica directories with a valid replica.json
  uint64_t provisioned_bytes = 0;  // the sum of their sizes
  uint64_t total_bytes = 0;        // the data directory's file system: f_blocks * f_frsize
  uint64_t free_bytes = 0;         // f_bavail * f_frsize, at most total_bytes
};

class ReplicaStore {
 public:
  // `engine` must outlive the store. `options` are given to every replica
  // it opens (tests inject faults through them).
  ReplicaStore(std::string data_dir, IoEngine* engine, ReplicaOptions options = {});
  ~ReplicaStore();  // CloseAll()
  ReplicaStore(const ReplicaStore&) = delete;
  ReplicaStore& operator=(const ReplicaStore&) = delete;

  // EINVAL for bad names, a size that is not a positive multiple of 4096 or
  // one above ReplicaOptions::max_volume_size_gib; EEXIST when the
  // replica's directory exists. `rebuilding`: the replica is made a rebuild
  // target from birth (its head follows the rebuilding rules from its first
  // write; see replica.h). `owner` (a fused id, ValidateOwner, or "") is
  // recorded as the replica's owner.
  Status Create(const std::string& volume, const std::string& replica, uint64_t size,
                bool rebuilding = false, const std::string& owner = "");
  // Opens (if not open) at `epoch`: ENOENT unknown, EINVAL other volume or
  // a bad claim.owner, EXDEV (kMoved) when another fused owns the replica
  // and claim.take_over is not set (checked before the epoch), ESTALE older
  // than the stored epoch; a newer epoch and a new owner are persisted
  // first (Replica::OpenSession). `clean`, when given, is set to whether the
  // replica's last session ended with a CLOSE (false for a replica already
  // open here).
  Result<std::shared_ptr<Replica>> Open(const std::string& volume, const std::string& replica,
                                        uint64_t epoch, bool* clean = nullptr,
                                        const OwnerClaim& claim = {});
  // The open replica (for HELLO): ENOENT "replica X is not open".
  Result<std::shared_ptr<Replica>> Find(const std::string& volume, const std::string& replica);
  // fdatasync and close, and record the clean close (Replica::EndSession);
  // a replica that is not open but exists is OK.
  Status Close(const std::string& volume, const std::string& replica, uint64_t epoch);
  // Closes if open and removes the directory. ENOENT when unknown.
  // EXDEV (kMoved) when `owner` is set and another fused owns the replica,
  // then ESTALE when `epoch` is older than the epoch the replica was last
  // opened with (open now or not): an engine that was fenced cannot delete.
  Status Delete(const std::string& volume, const std::string& replica, uint64_t epoch,
                const std::string& owner = "");
  // The replica.json of every replica of `volume` in the data directory,
  // sorted by replica name (LIST_REPLICAS). EINVAL for a bad volume name.
  // Directories without a readable, valid replica.json naming themselves
  // are skipped with a warning; symbolic links are never followed.
  Result<std::vector<ReplicaMeta>> List(const std::string& volume);
  // What the data directory holds and has room for (REPLICAD_INFO): every
  // replica List would show, of any volume, and statvfs of the directory.
  Result<StoreUsage> Usage();
  // Closes every open replica (shutdown), logging failures.
  void CloseAll();
  // Power-loss test mode (ReplicaOptions::power_loss_test): runs
  // Replica::SimulatePowerLoss on every open replica under the store's lock
  // (no control call interleaves) and logs "power loss simulated: replica
  // <name>: dropped <n> changes (<b> bytes)" for each. The replicas are
  // failed afterwards: the caller is expected to exit at once.
  void SimulatePowerLoss();

  // The figures of every open replica, by name, for the metrics file. The
  // store's lock is held only to copy the list, so a control call's fsyncs
  // do not wait on the metrics writer.
  std::vector<ReplicaFigures> Figures();

  const std::string& data_dir() const { return data_dir_; }

 private:
  // ENOENT when the directory or its replica.json is missing, EINVAL for
  // another volume; otherwise the open replica or null.
  Status CheckKnownLocked(const std::string& op, const std::string& volume,
                          const std::string& replica, std::shared_ptr<Replica>* open);
  // The replica.json of every replica in the data directory, sorted by
  // name (List and Usage). A directory without a readable, valid
  // replica.json naming itself, or a symbolic link, is skipped and logged
  // (a warning when `warn`, else at debug level); `op` starts the messages.
  Result<std::vector<ReplicaMeta>> ReadAllMetaLocked(const std::string& op, bool warn);

  const std::string data_dir_;
  IoEngine* const engine_;
  const ReplicaOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Replica>> open_;  // guarded by mu_
  std::set<std::string> failed_;                          // guarded by mu_
};

}  // namespace shorthorn::replicad
