// Design notes: VolumeService's backups (the store format and the block
// work are backup/; this file picks the replica, opens the target and runs
// the job).
//
//   Backup:  checks (volume, snapshot, target URL) on the bus thread
//            ─► job: pick the replica (RW when attached; else the newest
//            generation listing the snapshot) ─► open the target
//            ─► backup::RunBackup over READ_SNAPSHOT_VIEW ─► message = URL
//   Restore: checks, name reserved (restoring_) on the bus thread
//            ─► job: read the record ─► create the volume (its size)
//            ─► epoch+1, open every replica, a private engine (no FUSE, no
//            loop device) ─► backup::RunRestore writes through it ─► close
//            ─► reservation dropped; on any failure the volume is deleted
//   Delete:  job: backup::RunDelete
//   Clone:   CreateVolume with from-snapshot: checks, name reserved
//            (restoring_), source counted (cloning_from_) on the bus thread
//            ─► pick a replica of the source as a backup does ─► create the
//            volume (the snapshot's size) ─► job: private engine as a
//            restore ─► backup::RunCopy from READ_SNAPSHOT_VIEW ─► close
//            ─► reservation dropped; on any failure the volume is deleted
//
// While a volume is being restored (or cloned) every other call on it is
// Busy, so nothing can attach it (and fence the job) or delete it under the
// job; while a clone reads a volume, its snapshots cannot be deleted nor
// the volume itself.
#include <unistd.h>

#include <climits>

#include "backup/format.h"
#include "backup/runner.h"
#include "backup/store_factory.h"
#include "backup/target.h"
#include "common/log.h"
#include "common/names.h"
#include "common/net.h"
#include "fused/service/backup_adapters.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
void VolumeService::PublishBackups(const std::string& target, const std::string& volume,
                                   const std::vector<BackupInfo>& backups) {
  std::lock_guard lock(listener_mutex_);
  if (listener_ != nullptr) listener_->BackupsChanged(target, volume, backups);
}

void VolumeService::PublishBackups(backup::BackupStore& store, const std::string& volume) {
  auto listed = backup::ListBackups(store, volume);
  if (!listed.ok() && listed.status().kind() != ErrorKind::kNotFound) {
    LogDebug("publish backups of volume " + volume + ": " + listed.status().message());
    return;
  }
  std::vector<BackupInfo> out;
  if (listed.ok()) {
    for (const auto& b : listed->backups) {
      out.push_back({backup::BackupUrl(store.url(), volume, b.name), b.name, volume, b.snapshot,
                     b.created, b.size, b.blocks});
    }
  }
  PublishBackups(store.url(), volume, out);
}

void VolumeService::ScanBackups() {
  std::vector<std::string> volumes;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, record] : registry_.volumes()) volumes.push_back(name);
  }
  if (volumes.empty()) return;
  auto store = backup::OpenStore(settings_.backup_target, settings_.backup_credentials);
  if (!store.ok()) {
    LogInfo("backups of this host's volumes in " + settings_.backup_target +
            " are not listed on the bus: " + store.status().message());
    return;
  }
  for (const auto& v : volumes) {
    if (backup_scan_stopping_.load()) return;
    PublishBackups(**store, v);
  }
}

bool VolumeService::RestoringLocked(const std::string& volume, const std::string& what,
                                    Status* busy) const {
  auto it = restoring_.find(volume);
  if (it == restoring_.end()) return false;
  *busy = Status(ErrorKind::kBusy, what + ": it is being restored or cloned (job " +
                                       std::to_string(it->second) + "); wait for the job to end");
  return true;
}

Result<VolumeService::BackupSource> VolumeService::PickBackupSource(const std::string& volume,
                                                                    const std::string& snapshot) {
  const std::string what = "back up snapshot " + snapshot + " of volume " + volume;
  VolumeRecord record;
  std::vector<std::string> candidates;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* r = registry_.Find(volume);
    if (r == nullptr) return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    record = *r;
    auto it = attached_.find(volume);
    for (const auto& rep : record.replicas) candidates.push_back(rep.name);
    if (it != attached_.end()) {
      candidates.clear();
      for (const auto& s : it->second.engine->Replicas()) {
        if (s.mode == ReplicaMode::kRW) candidates.push_back(s.name);
      }
    }
  }
  std::optional<BackupSource> best;
  uint64_t best_generation = 0;
  std::string refused;
  for (const auto& rep : record.replicas) {
    if (std::find(candidates.begin(), candidates.end(), rep.name) == candidates.end()) continue;
    ReplicaTarget target = Target(record, rep);
    auto layers = ReplicaClient::ListLayers(target, record.epoch, settings_.client);
    if (!layers.ok()) {
      refused += "; replica " + rep.name + ": " + layers.status().message();
      continue;
    }
    if (layers->rebuilding) {
      refused += "; replica " + rep.name + ": it is being rebuilt";
      continue;
    }
    const msg::SnapshotLayer* s = layers->Find(snapshot);
    if (s == nullptr || s->removed) {
      refused += "; replica " + rep.name + ": it does not hold the snapshot";
      continue;
    }
    uint64_t generation = layers->generation;
    bool better = !best || generation > best_generation ||
                  (generation == best_generation && IsLocalAddress(rep.address) &&
                   !IsLocalAddress(best->target.address));
    if (better) {
      best = BackupSource{target, record.epoch, std::move(*layers)};
      best_generation = generation;
    }
  }
  if (!best) {
    return Status(ErrorKind::kUnavailable,
                  what + ": no replica can serve it" + (refused.empty() ? "" : refused));
  }
  return std::move(*best);
}

Result<uint64_t> VolumeService::Backup(const std::string& volume, const std::string& snapshot,
                                       const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Backup", options, {"target"}));
  const std::string what = "back up snapshot " + snapshot + " of volume " + volume;
  auto url = StringOption("Backup", options, "target", settings_.backup_target);
  if (!url.ok()) return url.status();
  auto target = backup::ParseTarget(*url);
  if (!target.ok()) return target.status().WithContext(what);
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr)
      return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy) || StandbyLocked(*record, what, &busy)) return busy;
    bool known = false;
    for (const auto& s : record->snapshots) known = known || (s.name == snapshot && !s.removed);
    if (!known) return Status(ErrorKind::kNotFound, what + ": no such snapshot");
    if (jobs_.Running(volume, "backup")) {
      return Status(ErrorKind::kBusy,
                    what + ": a backup of this volume is running; wait for it to end");
    }
  }
  const std::string url_text = target->url;
  return jobs_.Start(
      "backup", volume, snapshot, true, [this, volume, snapshot, url_text, what](JobHandle& job) {
        auto source = PickBackupSource(volume, snapshot);
        if (!source.ok()) return source.status();
        auto store = backup::OpenStore(url_text, settings_.backup_credentials);
        if (!store.ok()) return store.status().WithContext(what);
        auto snap = ReplicaSnapshotSource::Create(source->target, source->epoch, settings_.client,
                                                  snapshot, source->layers);
        if (!snap.ok()) return snap.status().WithContext(what);
        backup::RunOptions run = RunOptionsFor(job, settings_.backup_workers, true);
        auto result = backup::RunBackup(**store, **snap, volume, snapshot, run);
        if (!result.ok()) {
          LogError(result.status().message());
          return result.status();
        }
        const backup::BackupRecord& r = result->record;
        std::string address = backup::BackupUrl((*store)->url(), volume, r.name);
        LogInfo(what + ": backup " + r.name + " complete" +
                (result->incremental ? " (incremental to " + r.base + ")" : " (full)") + ": read " +
                std::to_string(r.bytes_read) + " bytes, uploaded " +
                std::to_string(r.bytes_uploaded) + " bytes in " +
                std::to_string(r.blocks_uploaded) + " blocks, from replica " +
                source->target.replica);
        PublishBackups(**store, volume);
        job.SetResult(address);
        return Status::Ok();
      });
}

Result<std::vector<BackupInfo>> VolumeService::ListBackups(const std::string& target,
                                                           const std::string& volume,
                                                           const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("ListBackups", options, {}));
  const std::string url = target.empty() ? settings_.backup_target : target;
  const std::string what = "list backups of volume " + volume + " on " + url;
  SH_RETURN_IF_ERROR(ValidateName("volume", volume).WithContext(what));
  auto store = backup::OpenStore(url, settings_.backup_credentials);
  if (!store.ok()) return store.status().WithContext(what);
  auto listed = backup::ListBackups(**store, volume);
  if (!listed.ok() && listed.status().kind() == ErrorKind::kNotFound) {
    PublishBackups((*store)->url(), volume, {});
  }
  if (!listed.ok()) return listed.status();
  if (listed->backups.empty()) {
    PublishBackups((*store)->url(), volume, {});
    return Status(ErrorKind::kNotFound, what + ": there are none (all were deleted)", ENOENT);
  }
  std::vector<BackupInfo> out;
  for (const auto& b : listed->backups) {
    out.push_back({backup::BackupUrl((*store)->url(), volume, b.name), b.name, volume, b.snapshot,
                   b.created, b.size, b.blocks});
  }
  PublishBackups((*store)->url(), volume, out);
  return out;
}

Result<uint64_t> VolumeService::DeleteBackup(const std::string& backup_url,
                                             const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("DeleteBackup", options, {}));
  auto address = backup::ParseBackupUrl(backup_url);
  if (!address.ok()) return address.status();
  auto target = backup::ParseTarget(address->target_url);
  if (!target.ok()) return target.status().WithContext("delete backup " + backup_url);
  SH_RETURN_IF_ERROR(
      ValidateName("volume", address->volume).WithContext("delete backup " + backup_url));
  backup::BackupAddress a = *address;
  return jobs_.Start("delete-backup", a.volume, a.backup, false, [this, a](JobHandle& job) {
    const std::string what = "delete backup " + a.backup + " of volume " + a.volume;
    auto store = backup::OpenStore(a.target_url, settings_.backup_credentials);
    if (!store.ok()) return store.status().WithContext(what);
    backup::RunOptions run = RunOptionsFor(job, settings_.backup_workers, false);
    auto result = backup::RunDelete(**store, a.volume, a.backup, run);
    PublishBackups(**store, a.volume);
    if (!result.ok()) {
      LogError(result.status().message());
      return result.status();
    }
    std::string message = "deleted backup " + a.backup + " of volume " + a.volume + ": " +
                          std::to_string(result->blocks_deleted) + " blocks removed, " +
                          std::to_string(result->blocks_kept) + " kept for other backups";
    LogInfo(message);
    job.SetResult(message);
    return Status::Ok();
  });
}

Result<uint64_t> VolumeService::RestoreVolume(const std::string& name,
                                              const std::string& backup_url,
                                              const std::vector<std::string>& replicas,
                                              const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("RestoreVolume", options, {"replica-count", "replica-tags"}));
  SH_RETURN_IF_ERROR(ReplicaTagsOption("restore volume " + name, options).status());
  const std::string what = "restore volume " + name + " from " + backup_url;
  SH_RETURN_IF_ERROR(ValidateName("volume", name).WithContext(what));
  auto address = backup::ParseBackupUrl(backup_url);
  if (!address.ok()) return address.status();
  auto target = backup::ParseTarget(address->target_url);
  if (!target.ok()) return target.status().WithContext(what);
  uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    if (registry_.Find(name) != nullptr || restoring_.count(name) != 0) {
      return Status(ErrorKind::kAlreadyExists,
                    what + ": volume " + name + " already exists" +
                        (restoring_.count(name) ? " (being restored)" : ""));
    }
    restoring_[name] = 0;
    backup::BackupAddress a = *address;
    id = jobs_.Start("restore", name, backup_url, true,
                     [this, name, a, replicas, options, what](JobHandle& job) {
                       Status s = RunRestoreJob(name, a, replicas, options, job);
                       if (!s.ok()) LogError(s.message());
                       return s;
                     });
    restoring_[name] = id;
  }
  return id;
}

Result<std::shared_ptr<Engine>> VolumeService::OpenPrivateEngine(const std::string& name,
                                                                 const std::string& doing) {
  VolumeRecord record;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* rec = registry_.FindMutable(name);
    if (rec == nullptr) {
      return Status(ErrorKind::kFailed, "volume " + name + " vanished while being " + doing);
    }
    rec->epoch++;
    SH_RETURN_IF_ERROR(registry_.Save());
    record = *rec;
  }
  std::vector<EngineReplica> members;
  for (const auto& rep : record.replicas) {
    auto client = ReplicaClient::Open(Target(record, rep), record.epoch,
                                      settings_.connections_per_replica, settings_.client);
    if (!client.ok()) return client.status();
    members.push_back({rep.name, std::shared_ptr<Backend>(std::move(*client)), ReplicaMode::kRW,
                       IsLocalAddress(rep.address)});
  }
  return std::make_shared<Engine>(name, record.size, std::move(members));
}

Status VolumeService::EndMadeVolume(const std::string& name, Engine* engine, bool created, Status s,
                                    const std::string& what) {
  if (engine != nullptr) {
    Status closed = engine->Close();
    if (s.ok() && !closed.ok()) s = closed.WithContext(what);
  }
  {
    std::lock_guard lock(mutex_);
    restoring_.erase(name);
  }
  if (!s.ok()) {
    if (created) {
      Status undone = DeleteVolume(name, {{"force", true}});
      if (!undone.ok()) LogError(what + ": removing the half-made volume: " + undone.message());
    }
    return s;
  }
  {
    std::lock_guard lock(mutex_);
    if (VolumeRecord* record = registry_.FindMutable(name)) (void)RefreshLayersLocked(*record);
  }
  NotifyChanged(name);
  return s;
}

Status VolumeService::RunRestoreJob(const std::string& name, const backup::BackupAddress& a,
                                    const std::vector<std::string>& replicas,
                                    const Options& options, JobHandle& job,
                                    const StandbyRecord* standby) {
  const std::string what =
      "restore volume " + name + " from backup " + a.backup + " of volume " + a.volume;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<EngineSink> sink;
  bool created = false;
  auto finish = [&](Status s) { return EndMadeVolume(name, engine.get(), created, s, what); };
  auto store = backup::OpenStore(a.target_url, settings_.backup_credentials);
  if (!store.ok()) return finish(store.status().WithContext(what));
  auto prepare = [&](const backup::BackupRecord& r) -> Result<backup::VolumeSink*> {
    SH_RETURN_IF_ERROR(CreateVolumeImpl(name, r.size, replicas, options, true));
    created = true;
    if (standby != nullptr) {
      std::lock_guard lock(mutex_);
      VolumeRecord* rec = registry_.FindMutable(name);
      if (rec == nullptr) return Status(ErrorKind::kFailed, "volume " + name + " vanished");
      rec->standby = *standby;
      rec->standby->last_backup = r.name;
      rec->standby->last_backup_created = r.created;
      SH_RETURN_IF_ERROR(registry_.Save());
    }
    auto opened = OpenPrivateEngine(name, "restored");
    if (!opened.ok()) return opened.status();
    engine = std::move(*opened);
    sink = std::make_unique<EngineSink>(engine);
    return sink.get();
  };
  backup::RunOptions run = RunOptionsFor(job, settings_.backup_workers, true);
  auto restored = backup::RunRestore(**store, a.volume, a.backup, prepare, run);
  if (!restored.ok()) return finish(restored.status());
  // A replica that failed on the way missed writes: the restore is not whole.
  if (engine->Count(ReplicaMode::kRW) != engine->Replicas().size()) {
    return finish(Status(ErrorKind::kUnavailable, what + ": a replica failed during the restore"));
  }
  if (standby != nullptr) {
    std::lock_guard lock(mutex_);
    if (VolumeRecord* rec = registry_.FindMutable(name); rec != nullptr && rec->standby) {
      rec->standby->last_restored_at = static_cast<uint64_t>(std::time(nullptr));
      Status saved = registry_.Save();
      if (!saved.ok()) LogError(what + ": " + saved.message());
    }
  }
  Status s = finish(Status::Ok());
  if (!s.ok()) return s;
  LogInfo(what + ": done (" + std::to_string(restored->blocks.size()) + " blocks)");
  job.SetResult("restored volume " + name + " from " +
                backup::BackupUrl((*store)->url(), a.volume, a.backup));
  return Status::Ok();
}

}  // namespace shorthorn::fused

namespace shorthorn::fused {

Status VolumeService::CreateClone(const std::string& name, uint64_t size,
                                  const std::vector<std::string>& replicas,
                                  const Options& options) {
  SH_RETURN_IF_ERROR(
      CheckOptions("CreateVolume", options, {"replica-count", "replica-tags", "from-snapshot"}));
  SH_RETURN_IF_ERROR(ReplicaTagsOption("create volume " + name, options).status());
  auto from = StringOption("CreateVolume", options, "from-snapshot", "");
  if (!from.ok()) return from.status();
  const std::string what = "create volume " + name + " from snapshot " + *from;
  const size_t slash = from->find('/');
  if (slash == std::string::npos) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": from-snapshot must be VOLUME/SNAPSHOT, e.g. db1/s1");
  }
  const std::string source = from->substr(0, slash);
  const std::string snapshot = from->substr(slash + 1);
  SH_RETURN_IF_ERROR(ValidateName("volume", name).WithContext(what));
  SH_RETURN_IF_ERROR(ValidateName("volume", source).WithContext(what));
  SH_RETURN_IF_ERROR(ValidateName("snapshot", snapshot).WithContext(what));
  if (size % 4096 != 0) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": size " + std::to_string(size) + " is not a multiple of 4096");
  }
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(source);
    if (record == nullptr) {
      return Status(ErrorKind::kNotFound, what + ": volume " + source + " does not exist");
    }
    Status busy;
    if (RestoringLocked(source, what, &busy)) return busy;
    bool known = false;
    for (const auto& sn : record->snapshots) known = known || (sn.name == snapshot && !sn.removed);
    if (!known) {
      return Status(ErrorKind::kNotFound,
                    what + ": volume " + source + " has no snapshot " + snapshot);
    }
    if (registry_.Find(name) != nullptr || restoring_.count(name) != 0) {
      return Status(ErrorKind::kAlreadyExists, what + ": volume " + name + " already exists");
    }
    restoring_[name] = 0;
    cloning_from_[source]++;
  }
  // Until the job owns them: the reservation and the count go on failure.
  auto release = [this, &name, &source] {
    std::lock_guard lock(mutex_);
    restoring_.erase(name);
    if (--cloning_from_[source] == 0) cloning_from_.erase(source);
  };
  auto picked = PickBackupSource(source, snapshot);
  if (!picked.ok()) {
    release();
    return picked.status().WithContext("create volume " + name);
  }
  auto made = ReplicaSnapshotSource::Create(picked->target, picked->epoch, settings_.client,
                                            snapshot, picked->layers);
  if (!made.ok()) {
    release();
    return made.status().WithContext(what);
  }
  std::shared_ptr<ReplicaSnapshotSource> snap = std::move(*made);
  if (size == 0) size = snap->size();
  if (size < snap->size()) {
    release();
    return Status(ErrorKind::kInvalidArgument, what + ": size " + std::to_string(size) +
                                                   " is smaller than the snapshot's " +
                                                   std::to_string(snap->size()));
  }
  Options create = options;
  create.erase("from-snapshot");
  Status created = CreateVolumeImpl(name, size, replicas, create, true);
  if (!created.ok()) {
    release();
    return created;
  }
  std::lock_guard lock(mutex_);
  restoring_[name] = jobs_.Start(
      "clone", name, *from, true,
      [this, name, source, snapshot, snap, replica = picked->target.replica](JobHandle& job) {
        Status s = RunCloneJob(name, source, snapshot, replica, *snap, job);
        if (!s.ok()) LogError(s.message());
        return s;
      });
  LogInfo(what + ": volume created, copying from replica " + picked->target.replica + " (job " +
          std::to_string(restoring_[name]) + ")");
  return Status::Ok();
}

Status VolumeService::RunCloneJob(const std::string& name, const std::string& source,
                                  const std::string& snapshot, const std::string& replica,
                                  ReplicaSnapshotSource& snap, JobHandle& job) {
  const std::string what = "create volume " + name + " from snapshot " + source + "/" + snapshot;
  const auto start = std::chrono::steady_clock::now();
  std::shared_ptr<Engine> engine;
  auto finish = [&](Status s) {
    {
      std::lock_guard lock(mutex_);
      if (--cloning_from_[source] == 0) cloning_from_.erase(source);
    }
    return EndMadeVolume(name, engine.get(), true, s, what);
  };
  auto opened = OpenPrivateEngine(name, "cloned");
  if (!opened.ok()) return finish(opened.status().WithContext(what));
  engine = std::move(*opened);
  EngineSink sink(engine);
  backup::RunOptions run = RunOptionsFor(job, settings_.backup_workers, true);
  // A clone copies onto new replicas as a rebuild does: rebuild-bandwidth
  // limits it too. (Progress calls come one at a time: the sleep holds the
  // other workers back.)
  JobPacer pacer(job, settings_.rebuild_bandwidth);
  run.progress = [&job, &pacer](uint64_t done, uint64_t total) {
    job.Update(done, total);
    return !pacer.Throttle(done);
  };
  auto copied = backup::RunCopy(snap, sink, what, run);
  if (!copied.ok()) return finish(copied.status());
  // A replica that failed on the way missed writes: the copy is not whole.
  if (engine->Count(ReplicaMode::kRW) != engine->Replicas().size()) {
    return finish(Status(ErrorKind::kUnavailable, what + ": a replica failed during the copy"));
  }
  Status s = finish(Status::Ok());
  if (!s.ok()) return s;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char rate[64];
  std::snprintf(rate, sizeof(rate), "%.1f MiB/s",
                seconds > 0 ? static_cast<double>(copied->bytes_read) / seconds / (1 << 20) : 0.0);
  const std::string message =
      "cloned snapshot " + snapshot + " of volume " + source + " to volume " + name + ": read " +
      std::to_string(copied->bytes_read) + " bytes from replica " + replica + ", wrote " +
      std::to_string(copied->bytes_written) + " (zeros skipped), " + rate;
  LogInfo(message);
  job.SetResult(message);
  return Status::Ok();
}

}  // namespace shorthorn::fused
