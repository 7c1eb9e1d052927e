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
//
// While a volume is being restored every other call on it is Busy, so
// nothing can attach it (and fence the restore) or delete it under the job.
#include <unistd.h>

#include <climits>

#include "backup/format.h"
#include "backup/runner.h"
#include "backup/store_factory.h"
#include "backup/target.h"
#include "common/log.h"
#include "common/names.h"
#include "fused/engine/net_util.h"
#include "fused/service/backup_adapters.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace json = boost::json;
namespace {

std::string Owner() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "unknown");
  return std::string("shorthorn-fused on ") + host + " pid " + std::to_string(getpid());
}

// A job's options for the backup runners: progress into the job, and a
// cancelled job stops the run when `cancellable`.
backup::RunOptions RunOptionsFor(JobHandle& job, int workers, bool cancellable) {
  backup::RunOptions run;
  run.workers = workers;
  run.owner = Owner();
  run.progress = [&job, cancellable](uint64_t done, uint64_t total) {
    job.Update(done, total);
    return !(cancellable && job.cancelled());
  };
  return run;
}

Result<std::string> StringOption(const char* method, const Options& options, const char* key,
                                 const std::string& fallback) {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  const auto* s = std::get_if<std::string>(&it->second);
  if (s == nullptr) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(method) + ": option '" + key + "' must be a string");
  }
  return *s;
}

const json::object* FindSnapshotIn(const json::object& layers, const std::string& name) {
  const json::value* list = layers.if_contains("snapshots");
  if (list == nullptr || !list->is_array()) return nullptr;
  for (const auto& item : list->as_array()) {
    const json::object* o = item.if_object();
    if (o == nullptr) continue;
    const json::value* n = o->if_contains("name");
    if (n != nullptr && n->is_string() && n->as_string() == name) return o;
  }
  return nullptr;
}

}  // namespace

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
  *busy = Status(ErrorKind::kBusy, what + ": it is being restored (job " +
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
    auto layers =
        ReplicaClient::Call(target, record.epoch, wire::Op::kListLayers, {}, settings_.client);
    if (!layers.ok()) {
      refused += "; replica " + rep.name + ": " + layers.status().message();
      continue;
    }
    const json::value* rebuilding = layers->if_contains("rebuilding");
    if (rebuilding != nullptr && rebuilding->is_bool() && rebuilding->as_bool()) {
      refused += "; replica " + rep.name + ": it is being rebuilt";
      continue;
    }
    const json::object* s = FindSnapshotIn(*layers, snapshot);
    const json::value* removed = s == nullptr ? nullptr : s->if_contains("removed");
    if (s == nullptr || (removed != nullptr && removed->is_bool() && removed->as_bool())) {
      refused += "; replica " + rep.name + ": it does not hold the snapshot";
      continue;
    }
    const json::value* g = layers->if_contains("generation");
    uint64_t generation = g != nullptr && g->is_number() ? g->to_number<uint64_t>() : 0;
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
    if (RestoringLocked(volume, what, &busy)) return busy;
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
  SH_RETURN_IF_ERROR(CheckOptions("RestoreVolume", options, {"replica-count"}));
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

Status VolumeService::RunRestoreJob(const std::string& name, const backup::BackupAddress& a,
                                    const std::vector<std::string>& replicas,
                                    const Options& options, JobHandle& job) {
  const std::string what =
      "restore volume " + name + " from backup " + a.backup + " of volume " + a.volume;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<EngineSink> sink;
  bool created = false;
  auto finish = [&](Status s) {
    if (engine) {
      Status closed = engine->Close();
      if (s.ok() && !closed.ok()) s = closed.WithContext(what);
    }
    {
      std::lock_guard lock(mutex_);
      restoring_.erase(name);
    }
    if (!s.ok() && created) {
      Status undone = DeleteVolume(name, {{"force", true}});
      if (!undone.ok()) LogError(what + ": removing the half-made volume: " + undone.message());
    }
    if (s.ok()) {
      {
        std::lock_guard lock(mutex_);
        if (VolumeRecord* record = registry_.FindMutable(name)) (void)RefreshLayersLocked(*record);
      }
      NotifyChanged(name);
    }
    return s;
  };
  auto store = backup::OpenStore(a.target_url, settings_.backup_credentials);
  if (!store.ok()) return finish(store.status().WithContext(what));
  auto prepare = [&](const backup::BackupRecord& r) -> Result<backup::VolumeSink*> {
    SH_RETURN_IF_ERROR(CreateVolumeImpl(name, r.size, replicas, options, true));
    created = true;
    VolumeRecord record;
    {
      std::lock_guard lock(mutex_);
      VolumeRecord* rec = registry_.FindMutable(name);
      if (rec == nullptr) {
        return Status(ErrorKind::kFailed, "volume " + name + " vanished while being restored");
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
    engine = std::make_shared<Engine>(name, record.size, std::move(members));
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
  Status s = finish(Status::Ok());
  if (!s.ok()) return s;
  LogInfo(what + ": done (" + std::to_string(restored->blocks.size()) + " blocks)");
  job.SetResult("restored volume " + name + " from " +
                backup::BackupUrl((*store)->url(), a.volume, a.backup));
  return Status::Ok();
}

}  // namespace shorthorn::fused
