// FakeVolumeManager: an in-memory VolumeManager for tests of the D-Bus
// adapter. Volumes are records in a map; Attach "attaches" by filling in a
// made-up FUSE path and loop device (or neither, in maintenance). Snapshots
// are records in the volume; DeleteSnapshot and Verify start jobs that stay
// running until the test moves them with AdvanceJob, FinishJob and
// RemoveJob (or, with DeleteSnapshot option "finish", end at once). The listener is called after
// every change, with the lock released, on the calling thread (DeleteSnapshot and Verify report
// JobAdded before they return, as a real manager may). Snapshot can be held
// at a gate to stand for a slow manager call. Thread-safe. The longer bodies
// are in fake_volume_manager.cc.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/names.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused {

class FakeVolumeManager : public VolumeManager {
 public:
  std::vector<VolumeInfo> ListVolumes() override;

  Result<VolumeInfo> GetVolume(const std::string& name) override;

  Status CreateVolume(const std::string& name, uint64_t size,
                      const std::vector<std::string>& replicas, const Options& options) override;

  // Imports a 1 GiB volume with one replica per replicad.
  Status ImportVolume(const std::string& name, const std::vector<std::string>& replicads,
                      const Options& options) override;

  Status DeleteVolume(const std::string& name, const Options& options) override;

  Result<std::string> Attach(const std::string& name, const Options& options) override;

  Status Detach(const std::string& name, const Options& options) override;

  Status Snapshot(const std::string& volume, const std::string& snapshot,
                  const Options& options) override;

  Result<uint64_t> DeleteSnapshot(const std::string& volume, const std::string& snapshot,
                                  const Options& options) override;

  Status Revert(const std::string& volume, const std::string& snapshot,
                const Options& options) override;

  Status Expand(const std::string& volume, uint64_t size, const Options& options) override;

  Status SetReplicaCount(const std::string& volume, uint32_t count,
                         const Options& options) override;

  // Recurring jobs: kept in the volume's info; a duplicate name is
  // AlreadyExists, an unknown one NotFound (the real checks are the
  // service's, tested with it).
  Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job,
                         const Options& options) override;
  Status RemoveRecurringJob(const std::string& volume, const std::string& job,
                            const Options& options) override;

  // Placement: Rebuild is Busy for a detached volume; one fixed replicad
  // "127.0.0.1:9500" is listed; DrainReplicad starts a "drain" job and
  // UndrainReplicad is NotFound unless a drain was asked for.
  Status Rebuild(const std::string& volume, const Options& options) override;
  Result<std::vector<ReplicadStatus>> ListReplicads(const Options& options) override;
  Result<uint64_t> DrainReplicad(const std::string& address, const Options& options) override;
  Status UndrainReplicad(const std::string& address, const Options& options) override;

  // DR standby: a restore job for the new volume; Activate clears the
  // flag of a volume created with option "standby" (b) by CreateVolume.
  Result<uint64_t> CreateStandbyVolume(const std::string& name, const std::string& source_url,
                                       const std::vector<std::string>& replicas,
                                       const Options& options) override {
    return StartJob("restore", name, source_url, true);
  }
  Status Activate(const std::string& volume, const Options& options) override;

  // Backups: jobs like Verify's; the fake keeps no backups (ListBackups is
  // NotFound naming the volume).
  Result<uint64_t> Backup(const std::string& volume, const std::string& snapshot,
                          const Options& options) override;
  // Volume "with-backups" has one backup in every target, which is also
  // reported to the listener (as the real manager does).
  Result<std::vector<BackupInfo>> ListBackups(const std::string& target, const std::string& volume,
                                              const Options& options) override;
  Result<uint64_t> DeleteBackup(const std::string& backup_url, const Options& options) override {
    return StartJob("delete-backup", "", backup_url, true);
  }
  Result<uint64_t> RestoreVolume(const std::string& name, const std::string& backup_url,
                                 const std::vector<std::string>& replicas,
                                 const Options& options) override {
    return StartJob("restore", name, backup_url, true);
  }

  Result<uint64_t> Verify(const std::string& volume, const Options& options) override;

  Result<uint64_t> Scrub(const std::string& volume, const Options& options) override;

  std::map<std::string, uint64_t> Statistics(const std::string& name) override {
    std::lock_guard lock(mu_);
    if (volumes_.count(name) == 0) return {};
    return {{"write_requests", 7}, {"write_bytes", 7 * 4096}};
  }
  std::vector<JobInfo> ListJobs() override;

  Result<JobInfo> GetJob(uint64_t id) override;

  Status CancelJob(uint64_t id) override;

  void SetListener(VolumeListener* listener) override {
    std::lock_guard lock(mu_);
    listener_ = listener;
  }

  // Test hook: changes the state as a replica failure would, reporting it
  // on the calling thread.
  void SetState(const std::string& name, VolumeState state);

  // Test hook: Snapshot of `volume` waits (as a manager call waiting on an
  // unreachable replicad would) until OpenGate.
  void CloseGate(const std::string& volume) {
    std::lock_guard lock(mu_);
    gated_volume_ = volume;
  }
  void OpenGate();
  // Calls waiting at the gate now.
  int WaitingAtGate() {
    std::lock_guard lock(mu_);
    return waiting_at_gate_;
  }

  Options last_options() {
    std::lock_guard lock(mu_);
    return last_options_;
  }

  // Test hooks for jobs, each reporting on the calling thread.
  void AdvanceJob(uint64_t id, double progress);

  // Ends the job as `state`; a completed delete-snapshot job also drops the
  // snapshot from its volume (VolumeChanged).
  void FinishJob(uint64_t id, JobState state, const std::string& message);

  void RemoveJob(uint64_t id);

  std::vector<uint64_t> cancel_calls() {
    std::lock_guard lock(mu_);
    return cancel_calls_;
  }

 private:
  static Status NotFound(const std::string& name) {
    return Status(ErrorKind::kNotFound, "volume " + name + ": no such volume");
  }

  static Status JobNotFound(uint64_t id) {
    return Status(ErrorKind::kNotFound, "job " + std::to_string(id) + ": no such job");
  }

  // The job state a D-Bus option names ("completed", ...); kFailed for
  // anything else.
  static JobState ParseJobState(const std::string& name);
  // Volume `volume` when it lists `snapshot`; NotFound otherwise (`what`
  // starts the message of a missing snapshot). Caller holds mu_.
  Result<VolumeInfo*> SnapshotLocked(const std::string& volume, const std::string& snapshot,
                                     const std::string& what);
  static const SnapshotInfo* FindSnapshot(const VolumeInfo& volume, const std::string& name);

  uint64_t StartJob(const std::string& operation, const std::string& volume,
                    const std::string& target, bool report = true);

  void WaitAtGate(const std::string& volume);

  template <typename F>
  void Notify(F&& f) {
    VolumeListener* listener;
    {
      std::lock_guard lock(mu_);
      listener = listener_;
    }
    if (listener) f(listener);
  }

  std::mutex mu_;
  std::condition_variable gate_cv_;
  std::string gated_volume_;  // "" when the gate is open
  int waiting_at_gate_ = 0;
  std::map<std::string, VolumeInfo> volumes_;
  std::set<std::string> draining_;
  std::map<uint64_t, JobInfo> jobs_;
  uint64_t next_job_id_ = 1;
  std::vector<uint64_t> cancel_calls_;
  VolumeListener* listener_ = nullptr;
  Options last_options_;
};

}  // namespace shorthorn::fused
