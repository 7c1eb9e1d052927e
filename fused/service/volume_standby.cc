// Design notes: VolumeService's DR standby volumes (a volume that follows
// the backups of a volume elsewhere; the apply itself is backup::RunApply).
//
//   CreateStandbyVolume: checks, name reserved (restoring_) on the bus
//     thread ─► job "restore": newest backup at the source ─► RunRestoreJob
//     with the standby record, set as soon as the volume exists
//   StandbyLoop (one thread): every second, each standby whose interval
//     passed ─► PollStandby
//   PollStandby: list the source's backups ─► newest is held: done
//     ─► else the held backup's record (gone: apply in full) ─► grow the
//     volume if the backup is larger ─► private engine at a new epoch
//     ─► RunApply ─► record the new backup ─► close
//   Activate: mark activating (the loop leaves it alone), wait for a poll
//     in progress ─► one last poll (failure logged: the source may be the
//     site that was lost) ─► mark the standby record activated: an
//     ordinary volume whose properties still say which backup it came from
//
// A standby is never attached, so nothing else writes its replicas. A poll
// whose apply fails part-way may have written some blocks: the record then
// holds no backup name (`last_backup` ""), so the next apply writes
// everything; Activate refuses such a volume unless its last poll works or
// option force is given.
#include <ctime>

#include "backup/format.h"
#include "backup/runner.h"
#include "backup/store_factory.h"
#include "backup/target.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/names.h"
#include "fused/service/backup_adapters.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

constexpr uint64_t kDefaultStandbyInterval = 300;

}  // namespace

bool VolumeService::StandbyLocked(const VolumeRecord& record, const std::string& what,
                                  Status* busy) const {
  if (!IsStandby(record)) return false;
  *busy = Status(ErrorKind::kBusy, what + ": it is a DR standby of " + record.standby->target +
                                       "?volume=" + record.standby->source +
                                       "; activate it first (Volume.Activate)");
  return true;
}

Result<uint64_t> VolumeService::CreateStandbyVolume(const std::string& name,
                                                    const std::string& source_url,
                                                    const std::vector<std::string>& replicas,
                                                    const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("CreateStandbyVolume", options,
                                  {"replica-count", "replica-tags", "poll-interval"}));
  SH_RETURN_IF_ERROR(ReplicaTagsOption("create standby volume " + name, options).status());
  const std::string what = "create standby volume " + name + " of " + source_url;
  SH_RETURN_IF_ERROR(ValidateName("volume", name).WithContext(what));
  auto address = backup::ParseBackupVolumeUrl(source_url);
  if (!address.ok()) return address.status().WithContext(what);
  SH_RETURN_IF_ERROR(ValidateName("volume", address->volume).WithContext(what));
  auto target = backup::ParseTarget(address->target_url);
  if (!target.ok()) return target.status().WithContext(what);
  StandbyRecord standby;
  standby.target = target->url;
  standby.source = address->volume;
  standby.interval = kDefaultStandbyInterval;
  Options create = options;
  if (auto it = options.find("poll-interval"); it != options.end()) {
    const auto* i = std::get_if<int64_t>(&it->second);
    const auto* u = std::get_if<uint64_t>(&it->second);
    const int64_t seconds = i != nullptr ? *i : u != nullptr ? static_cast<int64_t>(*u) : -1;
    if (seconds < static_cast<int64_t>(kMinStandbyInterval) ||
        seconds > static_cast<int64_t>(kMaxStandbyInterval)) {
      return Status(ErrorKind::kInvalidArgument,
                    what + ": option 'poll-interval' must be a number of seconds in " +
                        std::to_string(kMinStandbyInterval) + ".." +
                        std::to_string(kMaxStandbyInterval));
    }
    standby.interval = static_cast<uint64_t>(seconds);
    create.erase("poll-interval");
  }
  std::lock_guard lock(mutex_);
  if (registry_.Find(name) != nullptr || restoring_.count(name) != 0) {
    return Status(ErrorKind::kAlreadyExists, what + ": volume " + name + " already exists");
  }
  restoring_[name] = 0;
  const uint64_t id = jobs_.Start(
      "restore", name, source_url, true,
      [this, name, standby, replicas, create, what](JobHandle& job) -> Status {
        auto fail = [&](const Status& s) {
          {
            std::lock_guard lock(mutex_);
            restoring_.erase(name);
          }
          LogError(s.message());
          return s;
        };
        auto store = backup::OpenStore(standby.target, settings_.backup_credentials);
        if (!store.ok()) return fail(store.status().WithContext(what));
        auto listed = backup::ListBackups(**store, standby.source);
        if (!listed.ok()) return fail(listed.status().WithContext(what));
        if (listed->backups.empty()) {
          return fail(Status(ErrorKind::kNotFound, what + ": the source has no backups"));
        }
        backup::BackupAddress a{standby.target, standby.source, listed->backups.back().name};
        Status s = RunRestoreJob(name, a, replicas, create, job, &standby);
        if (!s.ok()) LogError(s.message());
        return s;
      });
  restoring_[name] = id;
  return id;
}

Status VolumeService::PollStandby(const std::string& name, bool activating) {
  StandbyRecord standby;
  {
    std::unique_lock lock(mutex_);
    const VolumeRecord* record = registry_.Find(name);
    if (record == nullptr || !IsStandby(*record) || restoring_.count(name) != 0)
      return Status::Ok();
    if (!activating && standby_activating_.count(name) != 0) return Status::Ok();
    if (standby_applying_.count(name) != 0) return Status::Ok();
    standby_applying_.insert(name);
    standby = *record->standby;
  }
  const std::string what =
      "standby volume " + name + " of " + standby.target + "?volume=" + standby.source;
  const auto start = std::chrono::steady_clock::now();
  std::string applied;  // what the poll did, for the log
  std::string newest_name, newest_created;
  bool wrote = false;  // the engine was opened: the replicas may have changed
  Status result = [&]() -> Status {
    auto store = backup::OpenStore(standby.target, settings_.backup_credentials);
    if (!store.ok()) return store.status().WithContext(what);
    auto listed = backup::ListBackups(**store, standby.source);
    if (!listed.ok()) {
      if (listed.status().kind() == ErrorKind::kNotFound) {
        return Status(ErrorKind::kNotFound,
                      what + ": the source has no backups any more; keeping backup " +
                          (standby.last_backup.empty() ? "(none)" : standby.last_backup));
      }
      return listed.status().WithContext(what);
    }
    if (listed->backups.empty()) {
      return Status(ErrorKind::kNotFound, what + ": the source has no backups any more");
    }
    const backup::BackupSummary& newest = listed->backups.back();
    if (newest.name == standby.last_backup) return Status::Ok();
    newest_name = newest.name;
    newest_created = newest.created;
    std::optional<backup::BackupRecord> held;
    if (!standby.last_backup.empty()) {
      auto record = backup::ReadBackupRecord(**store, standby.source, standby.last_backup);
      if (record.ok()) {
        held = std::move(*record);
      } else if (record.status().kind() != ErrorKind::kNotFound) {
        return record.status().WithContext(what);
      } else {
        LogWarning(what + ": backup " + standby.last_backup +
                   " is gone from the source; applying " + newest.name + " in full");
      }
    }
    uint64_t size = 0;
    {
      std::lock_guard lock(mutex_);
      const VolumeRecord* record = registry_.Find(name);
      if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": the volume was deleted");
      size = record->size;
    }
    if (newest.size > size) {
      SH_RETURN_IF_ERROR(ExpandImpl(name, newest.size, {}, true).WithContext(what));
    } else if (newest.size < size) {
      return Status(ErrorKind::kInvalidArgument,
                    what + ": backup " + newest.name + " is of a smaller volume (" +
                        std::to_string(newest.size) + " bytes, this one " + std::to_string(size) +
                        "); volumes cannot shrink");
    }
    auto engine = OpenPrivateEngine(name, "updated from its backups");
    if (!engine.ok()) return engine.status().WithContext(what);
    wrote = true;
    EngineSink sink(*engine);
    backup::RunOptions run;
    run.workers = settings_.backup_workers;
    run.progress = [this](uint64_t, uint64_t) { return !standby_stop_flag_.load(); };
    auto done =
        backup::RunApply(**store, standby.source, held ? &*held : nullptr, newest.name, sink, run);
    Status closed = (*engine)->Close();
    if (!done.ok()) return done.status();
    if ((*engine)->Count(ReplicaMode::kRW) != (*engine)->Replicas().size()) {
      return Status(ErrorKind::kUnavailable,
                    what + ": a replica failed while backup " + newest.name + " was applied");
    }
    if (!closed.ok()) return closed.WithContext(what);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    applied = "applied backup " + newest.name + " (created " + newest.created + ") " +
              (held ? "over " + held->name : std::string("in full")) + ": wrote " +
              std::to_string(done->bytes_written) + " bytes in " +
              std::to_string(done->blocks_written) + " blocks and " +
              std::to_string(done->bytes_zeroed) + " bytes of zeros, in " +
              std::to_string(static_cast<int>(seconds * 1000)) + " ms";
    return Status::Ok();
  }();
  {
    std::lock_guard lock(mutex_);
    standby_applying_.erase(name);
    VolumeRecord* record = registry_.FindMutable(name);
    if (record != nullptr && IsStandby(*record)) {
      bool changed = false;
      if (result.ok() && !newest_name.empty()) {
        record->standby->last_backup = newest_name;
        record->standby->last_backup_created = newest_created;
        record->standby->last_restored_at = static_cast<uint64_t>(std::time(nullptr));
        changed = true;
      } else if (!result.ok() && wrote && !record->standby->last_backup.empty()) {
        // Some blocks of the newer backup may be in place: what the volume
        // holds is no backup. The next apply writes everything.
        record->standby->last_backup = "";
        changed = true;
      }
      if (changed) {
        Status saved = registry_.Save();
        if (!saved.ok()) LogError(what + ": " + saved.message());
      }
      if (result.ok()) {
        standby_errors_.erase(name);
      } else {
        standby_errors_[name] = result.message();
      }
    }
  }
  standby_cv_.notify_all();
  if (!applied.empty()) LogInfo(what + ": " + applied);
  if (!result.ok()) LogWarning(result.message() + "; kept what it holds, trying again");
  NotifyChanged(name);
  return result;
}

void VolumeService::StandbyLoop() {
  for (;;) {
    {
      std::unique_lock lock(standby_stop_mutex_);
      if (standby_stop_cv_.wait_for(lock, std::chrono::seconds(1),
                                    [this] { return standby_stopping_; })) {
        return;
      }
    }
    std::vector<std::pair<std::string, uint64_t>> standbys;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [name, record] : registry_.volumes()) {
        if (IsStandby(record)) standbys.emplace_back(name, record.standby->interval);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [name, interval] : standbys) {
      if (standby_stop_flag_.load()) return;
      auto it = standby_next_.find(name);
      if (it != standby_next_.end() && it->second > now) continue;
      (void)PollStandby(name, false);
      standby_next_[name] = std::chrono::steady_clock::now() + std::chrono::seconds(interval);
    }
  }
}

void VolumeService::StopStandby() {
  standby_stop_flag_ = true;
  {
    std::lock_guard lock(standby_stop_mutex_);
    standby_stopping_ = true;
  }
  standby_stop_cv_.notify_all();
  if (standby_thread_.joinable()) standby_thread_.join();
}

Status VolumeService::Activate(const std::string& volume, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Activate", options, {"force"}));
  bool force = false;
  SH_RETURN_IF_ERROR(BoolOption("Activate", options, "force", &force));
  const std::string what = "activate volume " + volume;
  const auto start = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy)) return busy;
    if (!IsStandby(*record)) {
      return Status(ErrorKind::kInvalidArgument, what + ": it is not a DR standby");
    }
    if (!standby_activating_.insert(volume).second) {
      return Status(ErrorKind::kBusy, what + ": it is being activated");
    }
    standby_cv_.wait(lock, [&] { return standby_applying_.count(volume) == 0; });
  }
  // The newest backup, if one arrived; the source may be unreachable (the
  // site that was lost): then the volume is activated with what it holds.
  Status last = PollStandby(volume, true);
  std::string held;
  {
    std::lock_guard lock(mutex_);
    standby_activating_.erase(volume);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr || !IsStandby(*record)) {
      return Status(ErrorKind::kNotFound, what + ": it was deleted meanwhile");
    }
    if (record->standby->last_backup.empty() && !force) {
      return Status(ErrorKind::kFailed,
                    what +
                        ": an apply was interrupted, so it holds no whole backup, and the "
                        "last poll failed (" +
                        last.message() + "); activate with option force=true to take it as it is");
    }
    held = record->standby->last_backup + " (created " + record->standby->last_backup_created + ")";
    // Kept, activated: the properties go on saying where the data came from.
    record->standby->activated = true;
    standby_errors_.erase(volume);
    Status saved = registry_.Save();
    if (!saved.ok()) return saved.WithContext(what);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  LogInfo(what + ": it is an ordinary volume now, with backup " + held + "; took " +
          std::to_string(ms) + " ms" +
          (last.ok() ? "" : " (the last poll failed: " + last.message() + ")"));
  NotifyChanged(volume);
  return Status::Ok();
}

}  // namespace shorthorn::fused
