// VolumeService: the VolumeManager of shorthorn-fused. It ties the registry
// (what volumes exist), the replica clients and engines (the data path of
// attached volumes), the FUSE frontend (their files) and loop devices (their
// block devices) together.
//
// Threads: public methods may be called from any thread; one mutex
// serializes them (attach and detach talk to replicads while holding it).
// Listener calls are made after the mutex is released, or from a replica's
// completion thread when its mode changes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backup/format.h"
#include "backup/store.h"
#include "fused/core/generation_store.h"
#include "fused/core/io_stats.h"
#include "fused/core/registry.h"
#include "fused/core/replica_rules.h"
#include "fused/core/volume_manager.h"
#include "fused/engine/engine.h"
#include "fused/fuse/fuse_frontend.h"
#include "fused/loop/loop_device.h"
#include "fused/net/replica_client.h"
#include "fused/service/backup_adapters.h"
#include "fused/service/job_runner.h"
#include "fused/service/task_queue.h"

namespace shorthorn::fused {

struct ServiceSettings {
  std::string state_dir;
  std::string dev_dir;
  std::vector<std::string> default_replicads;
  ClientOptions client;
  int connections_per_replica = 4;
  std::chrono::minutes stale_replica_timeout{2880};
  uint64_t rebuild_bandwidth = 0;  // bytes/s, 0 = unlimited
  // How often the rebuild loop looks for volumes short of replicas.
  std::chrono::milliseconds rebuild_check{2000};
  uint64_t scrub_bandwidth = 64ull << 20;  // bytes/s, 0 = unlimited
  std::chrono::hours scrub_interval{0};    // 0 = on request only
  std::string backup_target = "file:///var/lib/shorthorn/backups";
  std::string backup_credentials = "/etc/shorthorn/backup-credentials";
  int backup_workers = 4;
  // max-volume-size: CreateVolume, RestoreVolume and Expand refuse a larger
  // size (CheckVolumeSize).
  uint64_t max_volume_size_gib = 65536;
  // auto-attach: attach again at Start the volumes the registry marks
  // (VolumeRecord::attach_frontend), retrying with backoff.
  bool auto_attach = true;
  // Placement and replacement (placement.cc): the rules for new replicas,
  // how long a failed replica that can catch up gets to come back, and how
  // many rebuilds (and catch-ups) run onto one replicad at a time.
  PlacementRules placement;
  std::chrono::seconds replenishment_wait{600};
  uint32_t rebuilds_per_replicad = 1;
  // metrics-file: where MetricsLoop writes the figures ("" for nowhere).
  std::string metrics_file;
  std::chrono::milliseconds metrics_interval{10000};
};

class FullRebuild;

class VolumeService : public VolumeManager {
 public:
  VolumeService(ServiceSettings settings, FuseFrontend& fuse);
  ~VolumeService() override;

  // Loads the registry; every volume starts detached. Removes symlinks in
  // dev_dir left by a previous run. Starts attaching (AutoAttachLoop) the
  // volumes whose FUSE files were taken over from the previous fused
  // (always: the kernel still uses them) and, with auto_attach, those that
  // were attached when fused last stopped.
  Status Start();
  // Stops auto-attach, then detaches every attached volume (best effort,
  // logged); they stay marked for the next start.
  //
  // With `hand_over` (a restart: the FUSE connection is kept for the next
  // fused) every volume with a file is handed over instead: its I/O in
  // flight is finished and flushed, its replicas closed, and its loop
  // device and FUSE file left in place (whoever uses them keeps them).
  void Shutdown(bool hand_over = false);

  std::vector<VolumeInfo> ListVolumes() override;
  Result<VolumeInfo> GetVolume(const std::string& name) override;
  Status CreateVolume(const std::string& name, uint64_t size,
                      const std::vector<std::string>& replicas, const Options& options) override;
  Status DeleteVolume(const std::string& name, const Options& options) override;
  // volume_import.cc.
  Status ImportVolume(const std::string& name, const std::vector<std::string>& replicads,
                      const Options& options) override;
  // Attach and Detach: volume_attach.cc.
  Result<std::string> Attach(const std::string& name, const Options& options) override;
  Status Detach(const std::string& name, const Options& options) override;
  void SetListener(VolumeListener* listener) override;

  // Snapshots, revert, expand, verify and jobs: volume_snapshots.cc.
  Status Snapshot(const std::string& volume, const std::string& snapshot,
                  const Options& options) override;
  Result<uint64_t> DeleteSnapshot(const std::string& volume, const std::string& snapshot,
                                  const Options& options) override;
  Status Revert(const std::string& volume, const std::string& snapshot,
                const Options& options) override;
  Status Expand(const std::string& volume, uint64_t size, const Options& options) override;
  Result<uint64_t> Verify(const std::string& volume, const Options& options) override;
  // Replica comparison: replica_compare.cc.
  Result<uint64_t> Scrub(const std::string& volume, const Options& options) override;
  // Replication: replication.cc (attach's replicas, generations, replica
  // count), rebuild_loop.cc (rebuild loop, catch-up), full_rebuild.cc.
  Status SetReplicaCount(const std::string& volume, uint32_t count,
                         const Options& options) override;
  // Placement, drains and forced rebuilds: placement.cc.
  Status Rebuild(const std::string& volume, const Options& options) override;
  Result<std::vector<ReplicadStatus>> ListReplicads(const Options& options) override;
  Result<uint64_t> DrainReplicad(const std::string& address, const Options& options) override;
  Status UndrainReplicad(const std::string& address, const Options& options) override;

  // Backups: volume_backups.cc.
  Result<uint64_t> Backup(const std::string& volume, const std::string& snapshot,
                          const Options& options) override;
  Result<std::vector<BackupInfo>> ListBackups(const std::string& target, const std::string& volume,
                                              const Options& options) override;
  Result<uint64_t> DeleteBackup(const std::string& backup_url, const Options& options) override;
  Result<uint64_t> RestoreVolume(const std::string& name, const std::string& backup_url,
                                 const std::vector<std::string>& replicas,
                                 const Options& options) override;

  // Recurring jobs: recurring_jobs.cc.
  Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job,
                         const Options& options) override;
  Status RemoveRecurringJob(const std::string& volume, const std::string& job,
                            const Options& options) override;

  // DR standby volumes: volume_standby.cc.
  Result<uint64_t> CreateStandbyVolume(const std::string& name, const std::string& source_url,
                                       const std::vector<std::string>& replicas,
                                       const Options& options) override;
  Status Activate(const std::string& volume, const Options& options) override;

  // volume_metrics.cc.
  std::map<std::string, uint64_t> Statistics(const std::string& name) override;
  std::vector<JobInfo> ListJobs() override { return jobs_.List(); }
  Result<JobInfo> GetJob(uint64_t id) override { return jobs_.Get(id); }
  Status CancelJob(uint64_t id) override { return jobs_.Cancel(id); }

  static constexpr size_t kMaxSnapshots = 250;

 private:
  // What a membership change needs, shared with the engine's failure
  // callback (which runs without mutex_).
  struct AttachContext {
    std::string volume;
    uint64_t epoch = 0;
    std::mutex mutex;
    std::map<std::string, ReplicaTarget> targets;  // by replica name
    std::weak_ptr<Engine> engine;
  };

  struct Attachment {
    std::shared_ptr<AttachContext> ctx;
    std::shared_ptr<Engine> engine;
    std::vector<ReplicaTarget> targets;
    std::string file;
    std::optional<LoopDevice> loop;
    bool maintenance = false;  // engine only: no FUSE file, no loop device
  };

  // Opens the replicas for an attach at record.epoch and keeps those that
  // are provably up to date (PlanAttach). When they did not all end their
  // last session cleanly, `authority` names the one that stays RW; the
  // others come back WO, for RunResync.
  Result<std::vector<EngineReplica>> OpenForAttach(const VolumeRecord& record, bool salvage,
                                                   AttachContext& ctx, std::string* authority);
  // Bumps the generation of the engine's RW replicas and records it; then
  // releases the engine's held acknowledgements. Runs on membership_.
  void RecordMembership(const std::shared_ptr<AttachContext>& ctx);
  // Generation + 1 on the engine's RW replicas and `joining` (a WO replica
  // about to become RW), as they are when the volume's bump lock is taken
  // (GenerationStore::Bump: the one owner of generations while attached).
  Result<uint64_t> BumpGeneration(AttachContext& ctx, const std::string& joining = "");
  // SET_GENERATION on `replicas`; a replica that fails it is marked ERR.
  // Ok when at least one took it.
  Status ApplyGeneration(AttachContext& ctx, const std::vector<std::string>& replicas,
                         uint64_t generation);
  // A layer op (SNAPSHOT, DELETE_SNAPSHOT, REVERT) on every replica of a
  // detached volume (volume_snapshots.cc). When it reaches only some, the
  // ones it reached get a generation above every other, so the next attach
  // trusts only them and rebuilds the rest. A reply of kind `also_done`
  // (e.g. NotFound for a delete: gone there already) counts as reached.
  // Fails only when it reached none. Caller holds mutex_.
  Status ApplyDetachedLocked(VolumeRecord& record, const ReplicaCall& call, const std::string& what,
                             ErrorKind also_done = ErrorKind::kFailed);
  // The steps of a full rebuild (full_rebuild.h) use the members below.
  friend class FullRebuild;
  void RebuildLoop();
  void CheckVolumes();
  // `allow_full`: when no catch-up succeeds, rebuild a new replica
  // elsewhere; otherwise only catch-ups are tried.
  Status RunRebuild(const std::string& volume, bool allow_full, JobHandle& job);
  Status RebuildOnce(const std::string& volume, bool allow_full, JobHandle& job);
  Status CatchUp(const std::string& volume, const std::shared_ptr<AttachContext>& ctx,
                 const std::shared_ptr<Engine>& engine, const std::string& replica, JobHandle& job);
  // Deletes on `replica` (catching up) the snapshots an RW replica no
  // longer lists: they were deleted while it was ERR.
  Status DeleteMissedSnapshots(AttachContext& ctx, const std::shared_ptr<Engine>& engine,
                               const std::string& replica);
  std::string Robustness(const std::string& volume, uint32_t count);

  // ---- placement.cc
  // The facts of every replicad in `addresses` (REPLICAD_INFO, in
  // parallel, each within the connect timeout); those in `draining` are
  // excluded ("draining"). Outside mutex_.
  std::vector<PlacementCandidate> GatherCandidates(const std::vector<std::string>& addresses,
                                                   const std::set<std::string>& draining);
  // What PlaceReplicas needs for `count` new replicas of `record`: the
  // facts of its replicas' replicads and the configured ones, those in
  // `holders` (address -> a usable replica of it there) excluded and, unless
  // draining, counted as kept; `preferred` tried first. Outside mutex_.
  struct PlacementInput {
    PlacementRequest request;
    std::vector<PlacementCandidate> candidates;
  };
  PlacementInput PlacementFor(const VolumeRecord& record, size_t count,
                              const std::map<std::string, std::string>& holders,
                              const std::vector<std::string>& preferred);
  // Blocks until a rebuild onto `address` may start (at most
  // rebuilds_per_replicad at once), the job queued meanwhile; false when
  // the job was cancelled. Release with ReleaseRebuildSlot.
  bool AcquireRebuildSlot(const std::string& address, const std::string& volume, JobHandle& job);
  void ReleaseRebuildSlot(const std::string& address);
  // Why an attached volume is not healthy (RobustnessReason). Caller holds
  // mutex_.
  std::string RobustnessReasonLocked(const VolumeRecord& record);
  // A replica's replicad is draining (registry). Caller holds mutex_.
  bool DrainingLocked(const std::string& address) const;
  Status RunDrain(const std::string& address, JobHandle& job);
  // Removes from an attached volume a usable replica on a draining
  // replicad once the others are enough, deleting its data.
  Status DropLeavingReplica(const std::string& volume, const std::shared_ptr<AttachContext>& ctx,
                            const std::shared_ptr<Engine>& engine);
  std::mutex slots_mutex_;
  std::condition_variable slots_cv_;
  std::map<std::string, uint32_t> rebuilds_running_;  // address -> running; slots_mutex_
  // Guarded by mutex_: when each ERR replica of an attached volume was first
  // seen ERR (volume -> replica -> time); volumes whose rebuild the operator
  // forced; what the rebuild of a volume last said (queued, no placement);
  // running drain jobs by address.
  std::map<std::string, std::map<std::string, std::chrono::steady_clock::time_point>> failed_at_;
  std::set<std::string> rebuild_forced_;
  std::map<std::string, std::string> rebuild_notes_;
  struct RebuildFailure {
    std::chrono::steady_clock::time_point at;
    std::string message;
  };
  std::map<std::string, RebuildFailure> rebuild_failures_;
  std::map<std::string, uint64_t> drain_jobs_;
  // replica_compare.cc: the resync job after an attach whose replicas did
  // not all end cleanly, and the scrub job.
  Status RunResync(const std::string& volume, JobHandle& job);
  Status RunScrub(const std::string& volume, JobHandle& job);
  Result<std::vector<uint64_t>> ChecksumOf(AttachContext& ctx, const std::string& replica,
                                           uint64_t offset, uint64_t length);
  // When each attached volume is scrubbed next (scrub-interval); guarded by
  // mutex_.
  std::map<std::string, std::chrono::steady_clock::time_point> next_scrub_;
  // The replica a backup of `snapshot` reads: an RW one when attached, else
  // the one with the newest generation that lists the snapshot and is not
  // being rebuilt; a local one (loopback address) among equals. Also its
  // LIST_LAYERS reply and the epoch to bind at. Outside mutex_.
  struct BackupSource {
    ReplicaTarget target;
    uint64_t epoch = 0;
    msg::LayerList layers;
  };
  Result<BackupSource> PickBackupSource(const std::string& volume, const std::string& snapshot);
  // Volumes a restore is creating: every other call on them is Busy.
  bool RestoringLocked(const std::string& volume, const std::string& what, Status* busy) const;
  std::map<std::string, uint64_t> restoring_;  // volume -> job id; guarded by mutex_
  // Tells the listener the backups of `volume` in `store` (none when the
  // listing fails with NotFound; nothing when it fails otherwise).
  void PublishBackups(backup::BackupStore& store, const std::string& volume);
  void PublishBackups(const std::string& target, const std::string& volume,
                      const std::vector<BackupInfo>& backups);
  // At start: PublishBackups for every volume in the default target.
  void ScanBackups();
  std::mutex backup_scan_mutex_;
  std::thread backup_scan_;  // guarded by backup_scan_mutex_
  std::atomic<bool> backup_scan_stopping_{false};
  // `standby`: the volume is made a DR standby of its source (set in its
  // record as soon as it exists).
  Status RunRestoreJob(const std::string& name, const backup::BackupAddress& address,
                       const std::vector<std::string>& replicas, const Options& options,
                       JobHandle& job, const StandbyRecord* standby = nullptr);
  // The end of a job that made volume `name` (restore, clone): closes
  // `engine`, drops the reservation (restoring_); on failure deletes the
  // volume when it was `created`, on success refreshes its layers.
  // Returns `s` (or the close's error).
  Status EndMadeVolume(const std::string& name, Engine* engine, bool created, Status s,
                       const std::string& what);
  Status ExpandImpl(const std::string& volume, uint64_t size, const Options& options,
                    bool standby_apply);
  // DR standbys (volume_standby.cc). Busy naming the source when `record`
  // is a standby (attach, snapshot, backup, revert, expand, recurring jobs).
  bool StandbyLocked(const VolumeRecord& record, const std::string& what, Status* busy) const;
  // Polls every standby when its interval has passed, one at a time, until
  // StopStandby.
  void StandbyLoop();
  void StopStandby();
  // One poll of standby `name`: applies the newest backup when it is not
  // the one held. `activating`: the final poll of Activate. Records and
  // returns the error (kept in standby_errors_ for StandbyError).
  Status PollStandby(const std::string& name, bool activating);
  std::set<std::string> standby_applying_;             // guarded by mutex_
  std::set<std::string> standby_activating_;           // guarded by mutex_
  std::map<std::string, std::string> standby_errors_;  // guarded by mutex_
  std::condition_variable standby_cv_;                 // with mutex_: applying_ changed
  std::map<std::string, std::chrono::steady_clock::time_point> standby_next_;  // loop only
  std::mutex standby_stop_mutex_;
  std::condition_variable standby_stop_cv_;
  bool standby_stopping_ = false;  // guarded by standby_stop_mutex_
  std::atomic<bool> standby_stop_flag_{false};
  std::thread standby_thread_;
  // A private engine over every replica of `name` (a volume a job is
  // making: restore, clone) at a new epoch; `doing` ("restored") for the
  // error when the volume is gone.
  Result<std::shared_ptr<Engine>> OpenPrivateEngine(const std::string& name,
                                                    const std::string& doing);
  // CreateVolume with option from-snapshot (volume_backups.cc): creates the
  // volume and starts the clone job (Operation "clone", Volume `name`,
  // Target "<source>/<snapshot>").
  Status CreateClone(const std::string& name, uint64_t size,
                     const std::vector<std::string>& replicas, const Options& options);
  Status RunCloneJob(const std::string& name, const std::string& source,
                     const std::string& snapshot, const std::string& replica,
                     ReplicaSnapshotSource& snap, JobHandle& job);
  // Volumes a clone is reading: their snapshots cannot be deleted, nor they.
  std::map<std::string, int> cloning_from_;  // guarded by mutex_
  // CreateVolume; `restore`: called by the restore job of `name` (which
  // holds the name reserved).
  Status CreateVolumeImpl(const std::string& name, uint64_t size,
                          const std::vector<std::string>& replicas, const Options& options,
                          bool restore);

  // Sends `call` to every usable replica of `record` (the engine's non-ERR
  // ones when attached, all when detached). Attached, a replica that fails
  // is marked ERR and the call succeeds while one answered; detached, any
  // failure fails the call. A reply of kind `also_done` counts as success
  // (kFailed: none does). Returns how many replicas it reached. Caller
  // holds mutex_.
  Result<size_t> CallAllLocked(const VolumeRecord& record, const ReplicaCall& call,
                               ErrorKind also_done = ErrorKind::kFailed);
  // LIST_LAYERS of every replica (attached: not the ERR ones) into the
  // registry: the snapshots as the first that answers lists them, the
  // actual size the largest any reports (saved only when something
  // changed; `changed` tells).
  // `merging`: the snapshots whose deletion (merge) the replica asked is
  // still running.
  Status RefreshLayersLocked(VolumeRecord& record, bool* changed = nullptr,
                             std::vector<std::string>* merging = nullptr);
  // The delete-snapshot Job: follows the replicas' merge of `snapshot` to
  // its end (also started at attach for a merge a previous fused began).
  uint64_t StartSnapshotDeleteJob(const std::string& volume, const std::string& snapshot);
  // Refreshes every attached volume's ActualSize and Snapshots (the
  // notifier thread does this every kRefreshInterval).
  void RefreshAttached();
  static constexpr std::chrono::seconds kRefreshInterval{5};
  // Job body helper: LIST_LAYERS of every replica, outside mutex_.
  // Attached, only the replicas the engine does not hold ERR. `names`, when
  // given: "replica <name> on <address>" for each reply.
  std::vector<msg::LayerList> ListLayersUnlocked(const std::string& volume,
                                                 std::vector<std::string>* names = nullptr);

  // The volume as it is now, numbered (VolumeInfo::revision) so that a
  // listener can tell which of two reads is newer.
  VolumeInfo InfoLocked(const VolumeRecord& record);
  // Records (and saves) whether volume `name` is attached on purpose, for
  // the next start: `frontend` "block"/"file", or "" when it was detached.
  // Caller holds mutex_. A failed save is logged: the attach or detach
  // itself stands.
  void MarkAttachedLocked(VolumeRecord& record, const std::string& frontend);
  // Attaches the marked volumes in the background: each is tried at once,
  // then after 1 s, 2 s, ... up to 60 s between tries, until it is attached,
  // detached by someone (unmarked), deleted, or the service stops.
  void AutoAttachLoop();
  struct AutoAttach {
    std::chrono::steady_clock::time_point next;
    std::chrono::seconds delay{1};
    std::string error;  // of the last try
  };
  std::map<std::string, AutoAttach> auto_attach_;  // guarded by mutex_
  // Volumes another fused imported (their replicas refuse us): why, for
  // StateReason. Guarded by mutex_.
  std::map<std::string, std::string> moved_;
  // An attach found that `record` was imported by another fused: it is
  // shown as moved and no longer attached at start; a file kept from the
  // previous fused goes (its held requests fail with EIO) with its loop
  // device.
  void MarkMovedLocked(VolumeRecord& record, const Status& why);
  std::condition_variable auto_attach_cv_;  // with mutex_
  bool auto_attach_stopping_ = false;       // guarded by mutex_
  std::thread auto_attach_thread_;
  // Recurring jobs (recurring_jobs.cc): the loop starts a run thread for
  // each volume with a due job (one run per volume at a time) until
  // StopRecurring, which waits for the runs (a run waiting for a job stops
  // waiting and records that it was interrupted).
  void RecurringLoop();
  void StopRecurring();
  bool RecurringStopping();
  void RunRecurring(const std::string& volume, const RecurringJobRecord& job);
  // Deletes job `job`'s snapshots of `volume` but the newest `keep` and
  // `except`, oldest first, waiting for each merge; appends what it did to
  // `summary`.
  Status DeleteJobSnapshots(const std::string& volume, const std::string& job, size_t keep,
                            const std::string& except, std::string* summary);
  // Deletes the job's backups in its target beyond the newest `retain`.
  Status DeleteJobBackups(const std::string& volume, const RecurringJobRecord& job,
                          std::string* summary);
  // Polls job `id` until it ends; fails when the service stops first.
  Result<JobInfo> WaitForJob(uint64_t id, const std::string& what);
  // For VolumeInfo (next_run computed now). Caller holds mutex_.
  std::vector<RecurringJobInfo> RecurringInfosLocked(const VolumeRecord& record);
  struct RecurringRun {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex recurring_mutex_;  // never held together with mutex_
  std::condition_variable recurring_cv_;
  bool recurring_stopping_ = false;                     // guarded by recurring_mutex_
  bool recurring_wake_ = false;                         // guarded by recurring_mutex_
  std::map<std::string, RecurringRun> recurring_runs_;  // by volume; guarded by recurring_mutex_
  std::thread recurring_thread_;
  // Writes settings_.metrics_file every metrics_interval until Shutdown
  // (volume_metrics.cc).
  void MetricsLoop();
  // The figures of every volume and running job, for the metrics file.
  std::string CollectMetrics();
  std::mutex metrics_mutex_;
  std::condition_variable metrics_cv_;
  bool metrics_stopping_ = false;  // guarded by metrics_mutex_
  std::thread metrics_thread_;
  uint64_t info_revision_ = 0;  // guarded by mutex_
  // The context and engine of attached volume `volume`, for a job that
  // works on it outside mutex_; Busy "<what>: it is not attached"
  // otherwise. Takes mutex_.
  struct LiveParts {
    std::shared_ptr<AttachContext> ctx;
    std::shared_ptr<Engine> engine;
  };
  Result<LiveParts> LiveAttachment(const std::string& volume, const std::string& what);
  Status DetachLocked(const std::string& name);
  void HandOverLocked(const std::string& name);
  void NotifyChanged(const std::string& name);
  // For engine callbacks, which run on replica threads and may not take
  // mutex_ (the D-Bus thread can hold it while waiting for that replica).
  void QueueChanged(const std::string& name);
  void NotifierLoop();
  ReplicaTarget Target(const VolumeRecord& v, const ReplicaRecord& r) const;

  const ServiceSettings settings_;
  FuseFrontend& fuse_;
  std::mutex mutex_;
  Registry registry_;
  std::map<std::string, Attachment> attached_;
  std::mutex listener_mutex_;
  VolumeListener* listener_ = nullptr;

  JobRunner jobs_;
  GenerationStore generations_;
  TaskQueue membership_;
  std::mutex rebuild_mutex_;
  std::condition_variable rebuild_cv_;
  bool rebuild_stopping_ = false;
  std::map<std::string, std::chrono::steady_clock::time_point> rebuild_backoff_;
  std::thread rebuild_thread_;

  std::mutex events_mutex_;
  std::condition_variable events_cv_;
  std::deque<std::string> events_;
  bool stopping_ = false;
  std::thread notifier_;
};

// Checks an a{sv} map against the keys a method accepts; InvalidArgument
// naming the method and the key otherwise.
Status CheckOptions(const char* method, const Options& options,
                    std::initializer_list<const char*> allowed);
// Boolean option `key` into `*value` (left alone when absent);
// InvalidArgument "<what>: option '<key>' must be a boolean" otherwise.
Status BoolOption(const std::string& what, const Options& options, const char* key, bool* value);
// The option "replica-tags" ("ssd,zone=a"): its tags, each ValidateTag,
// sorted, without duplicates; none when the option is absent or "".
Result<std::vector<std::string>> ReplicaTagsOption(const std::string& what, const Options& options);
// InvalidArgument "<what>: size <size> bytes exceeds max-volume-size <limit>
// GiB" when `size` is more than `limit_gib` GiB.
Status CheckVolumeSize(const std::string& what, uint64_t size, uint64_t limit_gib);
// 16 random lowercase hex digits (a suffix that makes replica and system
// snapshot names unique).
std::string RandomHex64();
// True when `snapshot` is one of recurring job `job`'s: "<job>-" and a UTC
// time YYYYMMDDTHHMMSSZ (recurring_jobs.cc).
bool IsRecurringJobSnapshot(const std::string& job, const std::string& snapshot);

}  // namespace shorthorn::fused
