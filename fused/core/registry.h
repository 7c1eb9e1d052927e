// Registry: the volumes fused manages, persisted as one JSON document
// (<state-dir>/volumes.json, format in doc/registry-format.md) replaced
// atomically on every change, so a crash leaves the old or the new registry.
// Holds no runtime state (attachments); those live in VolumeService.
// Thread-compatible: VolumeService serializes access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused {

struct ReplicaRecord {
  std::string address;  // host:port of the replicad
  std::string name;     // replica directory name there
};

// A replica replaced by a rebuild, kept until the stale-replica timeout
// (its data may still help an operator) and then deleted.
struct StaleReplica {
  std::string address;
  std::string name;
  uint64_t since = 0;  // unix seconds when it was replaced
};

// A recurring job of a volume (RecurringJobInfo is what the bus shows).
struct RecurringJobRecord {
  std::string name;
  std::string kind;      // "snapshot" or "backup"
  std::string schedule;  // fused/core/schedule.h
  uint32_t retain = 0;
  std::string target;        // backup jobs: target URL, "" = backup-target
  uint64_t created = 0;      // unix seconds when it was added
  uint64_t last_run = 0;     // unix seconds when its last run started; 0 never
  bool last_failed = false;  // that run failed (it is retried sooner)
  std::string last_result;   // "ok: ..." or "failed: ..."; "" never run
};

// A DR standby: the volume follows the backups of `source` in `target`
// until it is activated.
struct StandbyRecord {
  std::string target;               // backup target URL
  std::string source;               // the backed-up volume's name there
  uint64_t interval = 300;          // seconds between polls of the target
  std::string last_backup;          // the backup the volume holds ("" while the first restore runs)
  std::string last_backup_created;  // RFC 3339: its creation time (the recovery point)
  uint64_t last_restored_at = 0;    // unix seconds when it was applied
  // Activated: an ordinary volume now; the record only tells where it came
  // from.
  bool activated = false;
};

struct VolumeRecord {
  std::string name;
  uint64_t size = 0;
  // Highest engine epoch handed out; the next attach uses epoch + 1.
  uint64_t epoch = 0;
  std::vector<ReplicaRecord> replicas;
  // How many replicas the volume should have (rebuild adds up to this).
  uint32_t replica_count = 0;
  std::vector<StaleReplica> stale;
  // What the replicas last reported (LIST_LAYERS): kept so a detached
  // volume's properties need no replicad round trip.
  uint64_t actual_size = 0;
  std::vector<SnapshotInfo> snapshots;
  // "block" or "file" while the volume is attached (not in maintenance)
  // and until someone detaches it: fused attaches it again, with that
  // frontend, when it starts (auto-attach). "" otherwise.
  std::string attach_frontend;
  // In the order they were added.
  std::vector<RecurringJobRecord> recurring;
  // Set while the volume is a DR standby (until Activate).
  std::optional<StandbyRecord> standby;
  // Tags every replicad holding a replica of it must have (replica-tags),
  // sorted, each ValidateTag.
  std::vector<std::string> replica_tags;
};

class Registry {
 public:
  explicit Registry(std::string path) : path_(std::move(path)) {}

  // Reads the file; a missing file is an empty registry.
  Status Load();
  // Writes the whole registry atomically.
  Status Save() const;

  const std::map<std::string, VolumeRecord>& volumes() const { return volumes_; }
  const VolumeRecord* Find(const std::string& name) const;
  VolumeRecord* FindMutable(const std::string& name);
  void Put(VolumeRecord record) { volumes_[record.name] = std::move(record); }
  void Erase(const std::string& name) { volumes_.erase(name); }
  // Replicads being drained (DrainReplicad): nothing new is placed there.
  const std::vector<std::string>& draining() const { return draining_; }
  std::vector<std::string>& draining_mutable() { return draining_; }

  // Serialization, public for tests.
  std::string Encode() const;
  Status Decode(const std::string& text);

 private:
  std::string path_;
  std::map<std::string, VolumeRecord> volumes_;
  std::vector<std::string> draining_;
};

// True while `record` is a DR standby (not yet activated).
inline bool IsStandby(const VolumeRecord& record) {
  return record.standby.has_value() && !record.standby->activated;
}

// Checks what AddRecurringJob is given (name, kind, schedule, retain,
// target only for backups); InvalidArgument prefixed with `what`. Pure.
Status ValidateRecurringJob(const std::string& what, const RecurringJobRecord& job);
inline constexpr uint32_t kMaxRecurringRetain = 100;
// A standby's poll interval in seconds (option poll-interval).
inline constexpr uint64_t kMinStandbyInterval = 1;
inline constexpr uint64_t kMaxStandbyInterval = 86400;
inline constexpr size_t kMaxRecurringJobs = 16;
// A job's snapshot names are "<job>-YYYYMMDDTHHMMSSZ": 17 characters added.
inline constexpr size_t kMaxRecurringJobName = 46;

// Checks a new volume's name and size. Sizes are whole 4096-byte sectors.
Status ValidateNewVolume(const std::string& name, uint64_t size);

}  // namespace shorthorn::fused
