// StorageClient: what shorthornctl needs from org.shorthorn.Storage1, as an
// interface with plain values, so that the commands (commands.h) are pure and
// unit-tested against a fake. The real one is DbusStorageClient
// (dbus_client.h), which calls the D-Bus API of doc/dbus-api.md.
//
// Every method returns a Status whose kind is the error kind the daemon
// named (org.shorthorn.Storage1.Error.<Kind>, see KindForDbusError) and whose
// message is the daemon's message as is. Names are volume names, never
// object paths: the client finds the object. Not thread-safe; shorthornctl
// uses one client from its main thread. Jobs are named by their object path
// (/org/shorthorn/Storage1/jobs/<id>, see job_reference.h); backups by
// their URL (<target>?volume=<v>&backup=<name>, see backup_url.h);
// replicads by their address ("host:port", as Replicas and ListReplicads
// write it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::ctl {

struct ReplicaInfo {
  std::string address;  // replicad host:port
  std::string name;     // the replica's directory on that replicad
  std::string mode;     // "RW", "WO", "ERR", or "" while detached
};

// One entry of the Volume's Snapshots property.
struct SnapshotInfo {
  std::string name;
  std::string parent;        // "" for the first
  std::string created;       // RFC 3339 UTC
  bool user_created = true;  // false for a system snapshot (rebuild, backup)
  uint64_t size_held = 0;    // bytes allocated in its own layer
  bool removed = false;      // deleted, its data still being merged away
};

// One entry of the Volume's RecurringJobs property.
struct RecurringJobInfo {
  std::string name;
  std::string kind;      // snapshot or backup
  std::string schedule;  // cron's five fields, @daily, @every 6h, ...
  uint32_t retain = 0;
  std::string target;       // backup target URL; "" = the daemon's default
  std::string last_run;     // RFC 3339 UTC; "" never
  std::string last_result;  // "", "ok: ...", "failed: ..."
  std::string next_run;     // RFC 3339 UTC; "" unknown
};

struct VolumeInfo {
  std::string name;
  std::string object_path;
  uint64_t size = 0;
  std::string state;  // detached, attached, maintenance, moved
  std::vector<ReplicaInfo> replicas;
  std::string frontend_path;  // the FUSE file while attached
  std::string loop_device;    // /dev/loopN while attached as a block device
  uint64_t actual_size = 0;   // bytes allocated across the layer chain
  uint32_t replica_count = 0;
  std::string robustness;  // healthy, degraded, faulted, unknown
  // Why an attached volume is not healthy ("" when healthy or detached, and
  // from a daemon that predates the property).
  std::string robustness_reason;
  // The tags every replicad holding a replica must have (option
  // replica-tags), sorted; empty for none, and from an older daemon.
  std::vector<std::string> replica_tags;
  std::string state_reason;             // why State is what it is, when nobody asked; ""
  std::vector<SnapshotInfo> snapshots;  // in creation order
  std::vector<RecurringJobInfo> recurring_jobs;
  // Statistics: <op>_requests, <op>_bytes, <op>_errors, <op>_latency_us for
  // read, write, flush, discard; empty while the volume has no file here.
  std::map<std::string, uint64_t> statistics;
  // A DR standby (CreateStandbyVolume) follows the backups at
  // standby_source ("<target>?volume=<v>") until Activate. All false / ""
  // for an ordinary volume, and from a daemon that predates standbys.
  bool standby = false;
  std::string standby_source;
  std::string last_backup;          // the backup it holds (name)
  std::string last_backup_created;  // RFC 3339 UTC: that backup's creation, the recovery point
  std::string last_restored_at;     // RFC 3339 UTC: when it was applied
  std::string standby_error;        // the last poll's error; "" when it worked
};

// The properties of one org.shorthorn.Storage1.Job.
struct JobInfo {
  std::string object_path;
  std::string id;           // the last element of the path
  std::string operation;    // delete-snapshot, verify, rebuild, ...
  std::string volume;       // the volume's name ("" for none or unknown)
  std::string volume_path;  // its object path ("/" for none)
  std::string target;       // the snapshot name, or ""
  double progress = 0;      // 0..1
  uint64_t bytes = 0;
  uint64_t total_bytes = 0;  // 0 while unknown
  uint64_t rate = 0;         // bytes per second
  std::string state;         // running, completed, failed, cancelled
  std::string message;       // the result or the error, once ended
  bool cancellable = false;
};

// One entry of Manager.ListBackups.
struct BackupInfo {
  std::string url;  // what DeleteBackup and RestoreVolume take
  std::string name;
  std::string volume;
  std::string snapshot;  // the snapshot it was made from
  std::string created;   // RFC 3339 UTC
  uint64_t size = 0;     // the volume's size in bytes
  uint64_t blocks = 0;   // non-zero 2 MiB blocks
};

// One entry of Manager.ListReplicads.
struct ReplicadInfo {
  std::string address;            // host:port
  std::string state;              // up, draining, unreachable
  std::string host_id;            // replicads with the same host id are on one host; "" unreachable
  std::vector<std::string> tags;  // "ssd", "zone=a", ...
  uint64_t total_bytes = 0;       // its data directory's file system
  uint64_t free_bytes = 0;
  uint64_t provisioned_bytes = 0;  // the sum of its replicas' sizes
  uint32_t replicas = 0;           // replicas it holds (any volume, any fused)
  uint32_t rebuilds = 0;           // rebuilds this fused runs onto it now
  std::string message;             // why it is unreachable, or what a drain has left
};

enum class Frontend { kBlock, kFile };

// What Volume.Attach asks for.
struct AttachOptions {
  Frontend frontend = Frontend::kBlock;
  // Option maintenance: the engine only, no FUSE file and no loop device
  // (State "maintenance"; Attach returns ""); `frontend` is then unused.
  bool maintenance = false;
  // Option salvage: when no replica can be proven up to date, use the best
  // one reachable instead of failing.
  bool salvage = false;
};

// What CreateVolume asks for beyond name, size and replicas.
struct CreateOptions {
  // How many replicas the volume keeps (option replica-count, 1..5): those
  // named, the rest on the daemon's replicads; unset for the daemon's rule
  // (one per replica named, else one).
  std::optional<uint32_t> replica_count;
  // "VOLUME/SNAPSHOT" to make the volume a clone of that snapshot (option
  // from-snapshot); "" for an empty volume.
  std::string from_snapshot;
  // Option replica-tags ("ssd,zone=a"): tags every replicad holding a
  // replica must have; "" for none.
  std::string replica_tags;
};

class StorageClient {
 public:
  virtual ~StorageClient() = default;

  // Every volume with its properties, in the daemon's order.
  virtual Result<std::vector<VolumeInfo>> ListVolumes() = 0;
  // One volume; NotFound when there is none of that name. `operation` is the
  // verb for the message ("show", "attach").
  virtual Result<VolumeInfo> GetVolume(const std::string& operation, const std::string& name) = 0;
  // ImportVolume: the volume from the replicas on `replicads`.
  virtual Result<VolumeInfo> ImportVolume(const std::string& name,
                                          const std::vector<std::string>& replicads) = 0;
  // CreateVolume; an empty `replicas` means the daemon's defaults. A clone
  // (options.from_snapshot) with size 0 gets the snapshot's size; it is
  // returned as soon as it exists, while a job (Operation "clone", its
  // Volume the new volume) copies the data and every call on the volume is
  // Busy; a failed copy deletes it again.
  virtual Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                          const std::vector<std::string>& replicas,
                                          const CreateOptions& options) = 0;
  virtual Status DeleteVolume(const std::string& name, bool force) = 0;
  // Returns the block device or the FUSE file; "" in maintenance mode.
  virtual Result<std::string> Attach(const std::string& name, const AttachOptions& options) = 0;
  virtual Status Detach(const std::string& name) = 0;
  virtual Status Expand(const std::string& name, uint64_t size) = 0;
  // Starts a verify; returns the job's object path.
  virtual Result<std::string> Verify(const std::string& name) = 0;
  // Volume.Scrub: the job's object path.
  virtual Result<std::string> Scrub(const std::string& name) = 0;
  virtual Status SetReplicaCount(const std::string& name, uint32_t count) = 0;
  // Volume.Rebuild: the attached volume's failed replicas are replaced now
  // (as rebuild jobs) instead of after fused's replica-replenishment-wait.
  virtual Status Rebuild(const std::string& name) = 0;

  virtual Status CreateSnapshot(const std::string& volume, const std::string& snapshot) = 0;
  // Starts the merge; returns the job's object path.
  virtual Result<std::string> DeleteSnapshot(const std::string& volume,
                                             const std::string& snapshot) = 0;
  virtual Status RevertSnapshot(const std::string& volume, const std::string& snapshot) = 0;

  // Starts a backup of `snapshot` of `volume` to `target` (a URL; "" for
  // the daemon's configured target); returns the job's object path. The
  // job's Message, once it has completed, is the new backup's URL.
  virtual Result<std::string> CreateBackup(const std::string& volume, const std::string& snapshot,
                                           const std::string& target) = 0;
  // The backups of `volume` in `target` ("" for the default), oldest first;
  // NotFound when there are none.
  virtual Result<std::vector<BackupInfo>> ListBackups(const std::string& target,
                                                      const std::string& volume) = 0;
  // Starts deleting the backup at `url`; returns the job's object path.
  virtual Result<std::string> DeleteBackup(const std::string& url) = 0;
  // Starts restoring the backup at `url` into the new volume `name`, with
  // replicas as CreateVolume; `replica_count` unset means the daemon's
  // default, `replica_tags` "" none. Returns the job's object path.
  virtual Result<std::string> RestoreVolume(const std::string& name, const std::string& url,
                                            const std::vector<std::string>& replicas,
                                            std::optional<uint32_t> replica_count,
                                            const std::string& replica_tags) = 0;
  // Manager.CreateStandbyVolume: a DR standby `name` restored from the
  // newest backup at `source` ("<target>?volume=<backed-up volume>"), with
  // replicas (and replica_count, replica_tags) as RestoreVolume; then it
  // polls `source` every `poll_interval` seconds (unset: the daemon's
  // default, 300). Returns the job's object path (Operation "restore").
  virtual Result<std::string> CreateStandbyVolume(const std::string& name,
                                                  const std::string& source,
                                                  const std::vector<std::string>& replicas,
                                                  std::optional<uint32_t> replica_count,
                                                  const std::string& replica_tags,
                                                  std::optional<uint32_t> poll_interval) = 0;
  // Volume.Activate: the standby becomes an ordinary volume, after applying
  // the newest backup if one arrived. `force`: even when it holds no whole
  // backup and the source cannot be reached. InvalidArgument for a volume
  // that is not a standby.
  virtual Status Activate(const std::string& name, bool force) = 0;

  // Volume.AddRecurringJob with name, kind, schedule, retain and (when not
  // "") option target from `job`; the other fields are ignored.
  virtual Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job) = 0;
  virtual Status RemoveRecurringJob(const std::string& volume, const std::string& job) = 0;

  // Every job the daemon still knows (running, or ended within the last
  // minute), by id.
  virtual Result<std::vector<JobInfo>> ListJobs() = 0;
  // One job; NotFound when the daemon does not know it (any more).
  // `operation` is the verb for the message ("show", "wait for").
  virtual Result<JobInfo> GetJob(const std::string& operation, const std::string& path) = 0;
  // Returns the job's properties after at most `interval`, sooner if it
  // ends; how shorthornctl waits for a job without busy polling.
  virtual Result<JobInfo> WatchJob(const std::string& path, std::chrono::milliseconds interval) = 0;
  virtual Status CancelJob(const std::string& path) = 0;

  // Manager.ListReplicads: every replicad the daemon knows, as it found
  // them just now. Needs root or group shorthorn (NotAuthorized otherwise);
  // a daemon that predates placement has no such method (Failed, with the
  // bus's UnknownMethod in the message).
  virtual Result<std::vector<ReplicadInfo>> ListReplicads() = 0;
  // Manager.DrainReplicad: marks the replicad draining and starts the job
  // (Operation "drain", Target the address) that moves this fused's
  // replicas off it; returns the job's object path.
  virtual Result<std::string> DrainReplicad(const std::string& address) = 0;
  // Manager.UndrainReplicad: it takes new replicas again; a running drain
  // of it is cancelled. NotFound when it is not draining.
  virtual Status UndrainReplicad(const std::string& address) = 0;
};

}  // namespace shorthorn::ctl
