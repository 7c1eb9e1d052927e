// VolumeManager: what fused can do with volumes, as the D-Bus adapter sees
// it. The adapter (fused/dbus) turns each D-Bus method into one call here and
// each Status into an org.shorthorn.Storage1.Error.<Kind>; it holds no volume
// state of its own. The implementation (VolumeService) owns the registry, the
// engines, the FUSE files and the loop devices.
//
// Threads: every method may be called from any thread and serializes itself.
// The listener is called with no manager lock held, possibly from a thread
// other than the caller's (a replica failing, a job finishing).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace shorthorn::fused {

// The `a{sv}` options argument of every D-Bus method, with the variant types
// the adapter accepts (b, x/i/u/t widened, s).
using OptionValue = std::variant<bool, int64_t, uint64_t, std::string>;
using Options = std::map<std::string, OptionValue>;

struct ReplicaInfo {
  std::string address;  // "host:port" of its replicad
  std::string name;     // directory name on that replicad
  std::string mode;     // "RW", "WO", "ERR", or "" while detached
};

struct SnapshotInfo {
  std::string name;
  std::string parent;        // "" for the first snapshot
  std::string created;       // RFC 3339, UTC
  bool user_created = true;  // false for system snapshots (rebuild, backup)
  uint64_t size_held = 0;    // bytes allocated in this snapshot's layer
  bool removed = false;      // deleted, data kept until it can be merged
};

// A recurring job of a volume (doc/dbus-api.md, "Recurring jobs"): fused
// takes a snapshot named "<name>-<YYYYMMDDTHHMMSSZ>" on `schedule` (and
// backs it up, for kind "backup"), then deletes this job's snapshots (or
// backups) beyond the newest `retain`.
struct RecurringJobInfo {
  std::string name;      // unique within the volume; names.h rules, at most 46 characters
  std::string kind;      // "snapshot" or "backup"
  std::string schedule;  // fused/core/schedule.h syntax
  uint32_t retain = 0;   // 1..100
  std::string target;    // backup target URL; "" = backup-target (backup jobs only)
  // Filled by the manager, ignored in AddRecurringJob:
  std::string last_run;     // RFC 3339 UTC when the last run started; "" never
  std::string last_result;  // "" never run, "ok: <what it did>", or "failed: <error>"
  std::string next_run;     // RFC 3339 UTC; "" when it cannot be computed
};

// What a volume is doing. The strings are only for the D-Bus edge (the
// State property, doc/dbus-api.md) and messages: VolumeStateName.
enum class VolumeState {
  kDetached,
  kAttached,
  kMaintenance,  // attached with option maintenance: engine only
  kMoved,        // another fused imported it: this one may no longer open its replicas
};

inline const char* VolumeStateName(VolumeState state) {
  switch (state) {
    case VolumeState::kDetached:
      return "detached";
    case VolumeState::kAttached:
      return "attached";
    case VolumeState::kMaintenance:
      return "maintenance";
    case VolumeState::kMoved:
      return "moved";
  }
  return "unknown";
}

struct VolumeInfo {
  std::string name;
  uint64_t size = 0;
  uint64_t actual_size = 0;  // bytes allocated across the chain (largest replica)
  VolumeState state = VolumeState::kDetached;
  std::vector<ReplicaInfo> replicas;
  std::string frontend_path;            // FUSE file while attached, else ""
  std::string loop_device;              // "/dev/loopN" while attached as a block device, else ""
  std::vector<SnapshotInfo> snapshots;  // creation order
  uint32_t replica_count = 0;           // replicas the volume should have
  // "healthy" (RW replicas == replica_count), "degraded" (fewer, at least
  // one), "faulted" (none); "unknown" while detached.
  std::string robustness;
  // Why the volume is in its state when nobody asked for it, e.g. "attach
  // at start: <error>; next try in 8 s" while auto-attach retries; "".
  std::string state_reason;
  std::vector<RecurringJobInfo> recurring_jobs;  // in the order they were added
  // DR standby (doc/dbus-api.md): while `standby`, the volume follows the
  // backups at `standby_source` ("<target>?volume=<v>") and refuses
  // attach, snapshot and backup until activated.
  bool standby = false;
  std::string standby_source;       // "" when not a standby
  std::string last_backup;          // the backup it holds (name), "" none yet
  std::string last_backup_created;  // RFC 3339: that backup's creation (the recovery point)
  std::string last_restored_at;     // RFC 3339: when it was applied
  std::string standby_error;        // the last poll's error, "" when it succeeded
  // Why the volume is not healthy while attached, e.g. "replica X on A
  // failed 12 s ago (...); replaced in 588 s unless it returns"; "" when
  // healthy or detached.
  std::string robustness_reason;
  // Tags every replicad holding one of its replicas must have (option
  // replica-tags), sorted.
  std::vector<std::string> replica_tags;
  // Orders the infos of one volume: one with a higher revision was read
  // later (the manager numbers its reads). 0: not numbered. Not a property.
  uint64_t revision = 0;
};

// Where a job is: queued (waiting for its turn) and running are active;
// the others are final. The strings are only for the D-Bus edge (Job.State,
// doc/dbus-api.md) and messages: JobStateName.
enum class JobState { kQueued, kRunning, kCompleted, kFailed, kCancelled };

inline const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kCompleted:
      return "completed";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

// True while the job has not ended (running or queued).
inline bool JobActive(JobState state) {
  return state == JobState::kRunning || state == JobState::kQueued;
}

// Long work (snapshot deletion, verify, later rebuild and backup) runs as a
// job. Ids are never reused within one run of fused.
struct JobInfo {
  uint64_t id = 0;
  std::string operation;  // "delete-snapshot", "verify", ...
  std::string volume;
  std::string target;   // e.g. the snapshot name; may be ""
  double progress = 0;  // 0..1
  uint64_t bytes = 0;   // bytes processed so far
  uint64_t total_bytes = 0;
  uint64_t rate = 0;  // bytes per second, recent
  JobState state = JobState::kRunning;
  std::string message;  // result or error, set when finished
  bool cancellable = false;
};

// One backup in a backup target (doc/backup-format.md).
struct BackupInfo {
  std::string url;       // "<target>?volume=<v>&backup=<name>": what restore and delete take
  std::string name;      // "backup-..."
  std::string volume;    // the volume it was taken of
  std::string snapshot;  // the snapshot it holds
  std::string created;   // RFC 3339, UTC
  uint64_t size = 0;     // volume size
  uint64_t blocks = 0;   // non-zero 2 MiB blocks
};

// Whether a replicad answers and takes new replicas. The strings are only
// for the D-Bus edge (ListReplicads, doc/dbus-api.md): ReplicadStateName.
enum class ReplicadState {
  kUp,
  kDraining,     // answers; takes no new replicas, its replicas move away
  kUnreachable,  // did not answer
};

inline const char* ReplicadStateName(ReplicadState state) {
  return state == ReplicadState::kUp         ? "up"
         : state == ReplicadState::kDraining ? "draining"
                                             : "unreachable";
}

// One replicad as this fused sees it (Manager.ListReplicads): the
// configured ones and every one holding a replica of a volume here.
struct ReplicadStatus {
  std::string address;  // "host:port"
  ReplicadState state = ReplicadState::kUp;
  std::string host_id;  // "" when unreachable
  std::vector<std::string> tags;
  uint64_t total_bytes = 0;  // its data directory's file system
  uint64_t free_bytes = 0;
  uint64_t provisioned_bytes = 0;  // sum of the sizes of its replicas
  uint32_t replicas = 0;           // replicas it holds (any volume, any fused)
  uint32_t rebuilds = 0;           // rebuilds and catch-ups onto it running now
  std::string message;             // unreachable: why; draining: what is left
};

class VolumeListener {
 public:
  virtual ~VolumeListener() = default;
  virtual void VolumeAdded(const VolumeInfo& info) = 0;
  virtual void VolumeRemoved(const std::string& name) = 0;
  // Any property of the volume changed; `info` is the whole new state.
  virtual void VolumeChanged(const VolumeInfo& info) = 0;
  virtual void JobAdded(const JobInfo& info) = 0;
  // Progress; also called once with the final state when the job ends.
  virtual void JobChanged(const JobInfo& info) = 0;
  // After the final JobChanged; the job is forgotten soon after.
  virtual void JobRemoved(uint64_t id) = 0;
  // The backups of `volume` in target `target` (a URL), as fused now knows
  // them (after a backup, a delete, a ListBackups, and at start for its own
  // volumes in the default target): the whole list, which replaces what
  // was said before for that target and volume.
  virtual void BackupsChanged(const std::string& target, const std::string& volume,
                              const std::vector<BackupInfo>& backups) {}
};

class VolumeManager {
 public:
  virtual ~VolumeManager() = default;

  virtual std::vector<VolumeInfo> ListVolumes() = 0;
  virtual Result<VolumeInfo> GetVolume(const std::string& name) = 0;

  // `replicas` are replicad addresses ("host:port"), one replica each; empty
  // means the configured defaults. Errors: InvalidArgument (name, size,
  // address, option), AlreadyExists, Unavailable (a replicad unreachable).
  virtual Status CreateVolume(const std::string& name, uint64_t size,
                              const std::vector<std::string>& replicas, const Options& options) = 0;
  // Refused (Busy) while attached. Deletes the replicas' data.
  virtual Status DeleteVolume(const std::string& name, const Options& options) = 0;
  // Registers volume `name` from the replicas the replicads at `replicads`
  // ("host:port", every one must answer) hold of it, trusting those with
  // the highest generation as attach does, and takes them over: the fused
  // that owned them is fenced (its opens fail with Moved). Options:
  // "replica-count" (default: the current replicas found). Errors:
  // InvalidArgument, AlreadyExists, NotFound (no replica of it), Unavailable.
  virtual Status ImportVolume(const std::string& name, const std::vector<std::string>& replicads,
                              const Options& options) = 0;
  // Options: "frontend" = "block" (default: loop device) or "file" (the FUSE
  // file alone); "maintenance" = true: engine up, no FUSE file, no loop
  // device (returns ""); "salvage" = true: when no replica can be proven
  // up to date, use the best candidate instead of failing. Returns the
  // block device (or the file) path.
  virtual Result<std::string> Attach(const std::string& name, const Options& options) = 0;
  // Flushes, releases the loop device and the file, closes the replicas.
  // Busy while the block device is in use (mounted).
  virtual Status Detach(const std::string& name, const Options& options) = 0;

  // Snapshots (DESIGN §6). Snapshot pauses I/O, flushes, and has every
  // replica turn its head into snapshot `snapshot`; works attached
  // (including maintenance) and detached. AlreadyExists, InvalidArgument,
  // and Failed when the volume already has 250 snapshots.
  virtual Status Snapshot(const std::string& volume, const std::string& snapshot,
                          const Options& options) = 0;
  // Starts merging the snapshot away; returns the job id.
  virtual Result<uint64_t> DeleteSnapshot(const std::string& volume, const std::string& snapshot,
                                          const Options& options) = 0;
  // Only while detached or attached with option maintenance=true (Busy
  // otherwise, saying why).
  virtual Status Revert(const std::string& volume, const std::string& snapshot,
                        const Options& options) = 0;
  // Grows the volume; InvalidArgument for a smaller or unaligned size.
  virtual Status Expand(const std::string& volume, uint64_t size, const Options& options) = 0;
  // Recomputes every immutable layer's checksum; returns the job id. The
  // job fails naming every layer whose data no longer matches.
  virtual Result<uint64_t> Verify(const std::string& volume, const Options& options) = 0;
  // Starts a job comparing the RW replicas of an attached volume (checksums
  // of every range); a replica that differs is marked ERR and its differing
  // ranges are copied back by a catch-up. The job fails naming it.
  virtual Result<uint64_t> Scrub(const std::string& volume, const Options& options) = 0;

  // Starts the replacement of an attached volume's failed replicas now,
  // without waiting for replica-replenishment-wait. Busy when detached,
  // InvalidArgument when no replica is missing.
  virtual Status Rebuild(const std::string& volume, const Options& options) = 0;
  // Placement (doc/dbus-api.md, "Placement"). ListReplicads asks every
  // known replicad (REPLICAD_INFO, in parallel). DrainReplicad marks
  // `address` draining (kept in the registry: nothing new is placed there)
  // and starts a job (Operation "drain") that moves every replica of this
  // fused's volumes off it, one volume at a time; UndrainReplicad ends
  // that (a running drain job is cancelled).
  virtual Result<std::vector<ReplicadStatus>> ListReplicads(const Options& options) = 0;
  virtual Result<uint64_t> DrainReplicad(const std::string& address, const Options& options) = 0;
  virtual Status UndrainReplicad(const std::string& address, const Options& options) = 0;

  // Replication (DESIGN §5). 1..5; growing starts rebuilds, shrinking drops
  // the least useful replicas (ERR, then WO, then remote RW) and deletes
  // their data.
  virtual Status SetReplicaCount(const std::string& volume, uint32_t count,
                                 const Options& options) = 0;

  // Backups (DESIGN §8). Backup starts a job that copies snapshot
  // `snapshot` to options["target"] (a URL) or the configured default
  // target, incrementally to the newest backup of an older snapshot of the
  // same chain; the job's message is the new backup's URL. NotFound (volume,
  // snapshot), InvalidArgument (target URL, option), Busy (a backup of the
  // volume is running).
  virtual Result<uint64_t> Backup(const std::string& volume, const std::string& snapshot,
                                  const Options& options) = 0;
  // The backups of `volume` in `target` ("" = the default target), oldest
  // first. NotFound when it has none there. Talks to the target.
  virtual Result<std::vector<BackupInfo>> ListBackups(const std::string& target,
                                                      const std::string& volume,
                                                      const Options& options) = 0;
  // Starts a job that deletes the backup at `backup_url` and the blocks no
  // other backup of that volume needs.
  virtual Result<uint64_t> DeleteBackup(const std::string& backup_url, const Options& options) = 0;
  // Starts a job that creates volume `name` (replicas as CreateVolume) from
  // the backup at `backup_url`, verifying every block; on failure the new
  // volume is deleted again. AlreadyExists when `name` exists.
  virtual Result<uint64_t> RestoreVolume(const std::string& name, const std::string& backup_url,
                                         const std::vector<std::string>& replicas,
                                         const Options& options) = 0;

  // Recurring jobs (doc/dbus-api.md). Add: InvalidArgument (name, kind,
  // schedule, retain, target, option; a target for a snapshot job),
  // AlreadyExists (a job of that name), NotFound (volume), LimitExceeded
  // (16 jobs per volume). Remove: NotFound (volume or job); a run in
  // progress finishes, what it made stays.
  virtual Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job,
                                 const Options& options) = 0;
  virtual Status RemoveRecurringJob(const std::string& volume, const std::string& job,
                                    const Options& options) = 0;

  // DR standby volumes. CreateStandbyVolume starts a job (Operation
  // "restore") that creates volume `name` from the newest backup at
  // `source_url` ("<target>?volume=<v>") and then keeps it a standby: it
  // polls the target every option "poll-interval" seconds (default 300)
  // and applies each newer backup incrementally. Options also
  // "replica-count". Errors as RestoreVolume; NotFound when the source has
  // no backup. Activate applies the newest backup if one arrived (best
  // effort: an unreachable target is logged) and makes it an ordinary
  // volume; InvalidArgument when it is not a standby.
  virtual Result<uint64_t> CreateStandbyVolume(const std::string& name,
                                               const std::string& source_url,
                                               const std::vector<std::string>& replicas,
                                               const Options& options) = 0;
  virtual Status Activate(const std::string& volume, const Options& options) = 0;

  virtual std::vector<JobInfo> ListJobs() = 0;
  virtual Result<JobInfo> GetJob(uint64_t id) = 0;
  // NotFound for an unknown job, InvalidArgument when it cannot be cancelled.
  virtual Status CancelJob(uint64_t id) = 0;

  // Live I/O figures of the volume's file on this host since fused
  // started: <op>_requests, <op>_bytes, <op>_errors and <op>_latency_us (the
  // sum) for op read, write, flush and discard. Empty when the volume has
  // no file here. Quick (no network, no manager-wide lock): the bus thread
  // calls it.
  virtual std::map<std::string, uint64_t> Statistics(const std::string& name) = 0;

  // Set once before the first call from the bus; nullptr to stop.
  virtual void SetListener(VolumeListener* listener) = 0;
};

}  // namespace shorthorn::fused
