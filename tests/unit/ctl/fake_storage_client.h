// FakeStorageClient: an in-memory StorageClient for the shorthornctl tests.
// It keeps volumes in a map, records the calls it gets, and fails the next
// call with `fail_next` when set, so tests check both output and exit codes.
// A job it starts goes through a script of states: GetJob shows the current
// one, each WatchJob moves to the next (no sleeping), the last is final.
// CreateVolume with from_snapshot checks its source and starts a "clone"
// job for the new volume (clone_job says how far it has got when looked
// at). Backups live in one list across targets; a backup job that completes has
// the backup's URL as its Message, as the daemon's does. Recurring jobs live
// in their volume's recurring_jobs, as the RecurringJobs property shows them;
// the fake checks only the kind of the values the daemon judges.
// CreateStandbyVolume adds a volume with Standby true holding the newest
// backup of its source, and a "restore" job (failing NotFound when the
// source has none); Activate clears the standby fields, as the D-Bus
// contract says an ordinary volume shows them ("" / false), unless
// activate_keeps_backup; it refuses a volume that is not a standby, and
// without force one that holds no whole backup (last_backup "").
// Replicads are a list the test fills: ListReplicads returns it (or fails
// with replicads_error, every time, as an unauthorized caller or an older
// daemon would), DrainReplicad marks one draining and starts a "drain" job
// (no volume, Target the address), UndrainReplicad marks it up again
// (NotFound when it is not draining). Rebuild is Busy unless the volume is
// attached; Attach with maintenance leaves State "maintenance" and no device.
// ForwardingClient lets RunCtl own a client while the test keeps the fake.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dbus/ctl/backup_url.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl::testing {

class FakeStorageClient : public StorageClient {
 public:
  std::map<std::string, VolumeInfo> volumes;
  std::vector<std::string> calls;                   // "CreateVolume vol1 1024 a:1,b:2", ...
  Status fail_next;                                 // returned (once) by the next call when not OK
  std::map<std::string, std::deque<JobInfo>> jobs;  // path -> current state, then the next ones
  // How the next job started ends: its final State and Message.
  std::string next_job_state = "completed";
  std::string next_job_message;
  // How far a clone's job has got by the time the client looks for it:
  // "running" (the usual script of states), "ended" (only its final state is
  // left), "forgotten" (no longer listed; when it failed, the volume is gone).
  std::string clone_job = "running";
  int watches = 0;                  // WatchJob calls
  std::vector<BackupInfo> backups;  // every target's, oldest first
  std::string default_backup_target = "file:///var/lib/shorthorn/backups";
  bool backup_job_reports_url = true;  // false: a completed backup job has no Message
  // true: after Activate the volume still reports LastBackup and
  // LastBackupCreated (a daemon that keeps them).
  bool activate_keeps_backup = false;
  std::vector<ReplicadInfo> replicads;
  Status replicads_error;  // when not OK, what every ListReplicads returns

  Result<std::vector<VolumeInfo>> ListVolumes() override;
  Result<VolumeInfo> GetVolume(const std::string& operation, const std::string& name) override;
  Result<VolumeInfo> ImportVolume(const std::string& name,
                                  const std::vector<std::string>& replicads) override;
  Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                  const std::vector<std::string>& replicas,
                                  const CreateOptions& options) override;
  Status DeleteVolume(const std::string& name, bool force) override;
  Result<std::string> Attach(const std::string& name, const AttachOptions& options) override;
  Status Detach(const std::string& name) override;

  Status Expand(const std::string& name, uint64_t size) override;
  Result<std::string> Verify(const std::string& name) override;
  Result<std::string> Scrub(const std::string& name) override;
  Status SetReplicaCount(const std::string& name, uint32_t count) override;
  Status Rebuild(const std::string& name) override;
  Status CreateSnapshot(const std::string& volume, const std::string& snapshot) override;
  Result<std::string> DeleteSnapshot(const std::string& volume,
                                     const std::string& snapshot) override;
  Status RevertSnapshot(const std::string& volume, const std::string& snapshot) override;
  Result<std::string> CreateBackup(const std::string& volume, const std::string& snapshot,
                                   const std::string& target) override;
  Result<std::vector<BackupInfo>> ListBackups(const std::string& target,
                                              const std::string& volume) override;
  Result<std::string> DeleteBackup(const std::string& url) override;
  Result<std::string> RestoreVolume(const std::string& name, const std::string& url,
                                    const std::vector<std::string>& replicas,
                                    std::optional<uint32_t> replica_count,
                                    const std::string& replica_tags) override;
  Result<std::string> CreateStandbyVolume(const std::string& name, const std::string& source,
                                          const std::vector<std::string>& replicas,
                                          std::optional<uint32_t> replica_count,
                                          const std::string& replica_tags,
                                          std::optional<uint32_t> poll_interval) override;
  Status Activate(const std::string& name, bool force) override;
  Status AddRecurringJob(const std::string& volume, const RecurringJobInfo& job) override;
  Status RemoveRecurringJob(const std::string& volume, const std::string& job) override;
  Result<std::vector<JobInfo>> ListJobs() override;
  Result<JobInfo> GetJob(const std::string& operation, const std::string& path) override;
  Result<JobInfo> WatchJob(const std::string& path, std::chrono::milliseconds interval) override;
  Status CancelJob(const std::string& path) override;
  Result<std::vector<ReplicadInfo>> ListReplicads() override;
  Result<std::string> DrainReplicad(const std::string& address) override;
  Status UndrainReplicad(const std::string& address) override;

  // Adds a job whose states are running at 0 %, running at 50 %, then
  // next_job_state; returns its path.
  std::string StartJob(const std::string& operation, const std::string& volume,
                       const std::string& target, bool cancellable, uint64_t total);
  // StartJob for a job that fails with `message`, whatever next_job_state says.
  std::string StartFailingJob(const std::string& operation, const std::string& volume,
                              const std::string& target, const std::string& message);

 private:
  // Checks a clone's source "VOLUME/SNAPSHOT" and `size` as the daemon does;
  // returns the snapshot's size (the fake's: its volume's).
  Result<uint64_t> CloneSource(const std::string& name, uint64_t size, const std::string& from);
  // The clone's copy job, as far as clone_job says it has got.
  void StartCloneJob(const std::string& name, const std::string& from, uint64_t size);
  Result<VolumeInfo*> Find(const std::string& operation, const std::string& name);
  // "ssd,zone=a" as the daemon keeps it: the tags, sorted.
  static std::vector<std::string> SplitTags(const std::string& text);
  ReplicadInfo* FindReplicad(const std::string& address);
  Status TakeFailure();
  int last_job_id_ = 0;
  int last_backup_id_ = 0;
};

// Passes every call on to a FakeStorageClient that outlives it.
class ForwardingClient : public StorageClient {
 public:
  explicit ForwardingClient(FakeStorageClient& f) : f_(f) {}
  Result<std::vector<VolumeInfo>> ListVolumes() override { return f_.ListVolumes(); }
  Result<VolumeInfo> GetVolume(const std::string& o, const std::string& n) override {
    return f_.GetVolume(o, n);
  }
  Result<VolumeInfo> CreateVolume(const std::string& n, uint64_t s,
                                  const std::vector<std::string>& r,
                                  const CreateOptions& o) override {
    return f_.CreateVolume(n, s, r, o);
  }
  Result<VolumeInfo> ImportVolume(const std::string& n,
                                  const std::vector<std::string>& r) override {
    return f_.ImportVolume(n, r);
  }
  Status DeleteVolume(const std::string& n, bool force) override {
    return f_.DeleteVolume(n, force);
  }
  Result<std::string> Attach(const std::string& n, const AttachOptions& o) override {
    return f_.Attach(n, o);
  }
  Status Detach(const std::string& n) override { return f_.Detach(n); }
  Status Expand(const std::string& n, uint64_t s) override { return f_.Expand(n, s); }
  Result<std::string> Verify(const std::string& n) override { return f_.Verify(n); }
  Result<std::string> Scrub(const std::string& n) override { return f_.Scrub(n); }
  Status SetReplicaCount(const std::string& n, uint32_t c) override {
    return f_.SetReplicaCount(n, c);
  }
  Status Rebuild(const std::string& n) override { return f_.Rebuild(n); }
  Status CreateSnapshot(const std::string& v, const std::string& s) override {
    return f_.CreateSnapshot(v, s);
  }
  Result<std::string> DeleteSnapshot(const std::string& v, const std::string& s) override {
    return f_.DeleteSnapshot(v, s);
  }
  Status RevertSnapshot(const std::string& v, const std::string& s) override {
    return f_.RevertSnapshot(v, s);
  }
  Result<std::string> CreateBackup(const std::string& v, const std::string& s,
                                   const std::string& t) override {
    return f_.CreateBackup(v, s, t);
  }
  Result<std::vector<BackupInfo>> ListBackups(const std::string& t, const std::string& v) override {
    return f_.ListBackups(t, v);
  }
  Result<std::string> DeleteBackup(const std::string& u) override { return f_.DeleteBackup(u); }
  Result<std::string> RestoreVolume(const std::string& n, const std::string& u,
                                    const std::vector<std::string>& r, std::optional<uint32_t> c,
                                    const std::string& t) override {
    return f_.RestoreVolume(n, u, r, c, t);
  }
  Result<std::string> CreateStandbyVolume(const std::string& n, const std::string& s,
                                          const std::vector<std::string>& r,
                                          std::optional<uint32_t> c, const std::string& t,
                                          std::optional<uint32_t> i) override {
    return f_.CreateStandbyVolume(n, s, r, c, t, i);
  }
  Status Activate(const std::string& n, bool force) override { return f_.Activate(n, force); }
  Status AddRecurringJob(const std::string& v, const RecurringJobInfo& j) override {
    return f_.AddRecurringJob(v, j);
  }
  Status RemoveRecurringJob(const std::string& v, const std::string& j) override {
    return f_.RemoveRecurringJob(v, j);
  }
  Result<std::vector<JobInfo>> ListJobs() override { return f_.ListJobs(); }
  Result<JobInfo> GetJob(const std::string& o, const std::string& p) override {
    return f_.GetJob(o, p);
  }
  Result<JobInfo> WatchJob(const std::string& p, std::chrono::milliseconds i) override {
    return f_.WatchJob(p, i);
  }
  Status CancelJob(const std::string& p) override { return f_.CancelJob(p); }
  Result<std::vector<ReplicadInfo>> ListReplicads() override { return f_.ListReplicads(); }
  Result<std::string> DrainReplicad(const std::string& a) override { return f_.DrainReplicad(a); }
  Status UndrainReplicad(const std::string& a) override { return f_.UndrainReplicad(a); }

 private:
  FakeStorageClient& f_;
};

}  // namespace shorthorn::ctl::testing
