// Design notes: VolumeService's orchestration: start and shutdown (with
// the hand-over to the next fused), the notifier thread, the volume as
// shown (InfoLocked), and creating and deleting volumes. Attach and detach
// are in volume_attach.cc, the metrics in volume_metrics.cc, the option
// helpers in service_helpers.cc.
#include "fused/service/volume_service.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "common/clock.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/names.h"
#include "common/net.h"

namespace shorthorn::fused {

VolumeService::VolumeService(ServiceSettings settings, FuseFrontend& fuse)
    : settings_(std::move(settings)),
      fuse_(fuse),
      registry_(settings_.state_dir + "/volumes.json"),
      generations_(settings_.state_dir + "/generations") {}

VolumeService::~VolumeService() {
  {
    std::lock_guard lock(rebuild_mutex_);
    rebuild_stopping_ = true;
  }
  rebuild_cv_.notify_all();
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
  Shutdown();
  {
    std::lock_guard lock(events_mutex_);
    stopping_ = true;
  }
  events_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
}

void VolumeService::QueueChanged(const std::string& name) {
  {
    std::lock_guard lock(events_mutex_);
    events_.push_back(name);
  }
  events_cv_.notify_one();
}

void VolumeService::NotifierLoop() {
  std::unique_lock lock(events_mutex_);
  for (;;) {
    if (!events_cv_.wait_for(lock, kRefreshInterval,
                             [this] { return stopping_ || !events_.empty(); })) {
      lock.unlock();
      RefreshAttached();
      lock.lock();
      continue;
    }
    if (stopping_) return;
    std::string name = std::move(events_.front());
    events_.pop_front();
    lock.unlock();
    NotifyChanged(name);
    lock.lock();
  }
}

Status VolumeService::Start() {
  if (::mkdir(settings_.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "create state directory " + settings_.state_dir);
  }
  SH_RETURN_IF_ERROR(generations_.Init());
  std::lock_guard lock(mutex_);
  SH_RETURN_IF_ERROR(registry_.Load());
  // Symlinks of a previous run point at loop devices that are gone or reused.
  if (DIR* dir = ::opendir(settings_.dev_dir.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      if (e->d_type == DT_LNK && registry_.Find(e->d_name) != nullptr) {
        ::unlinkat(dirfd(dir), e->d_name, 0);
      }
    }
    ::closedir(dir);
  }
  const auto now = std::chrono::steady_clock::now();
  if (settings_.auto_attach) {
    for (const auto& [name, record] : registry_.volumes()) {
      if (!record.attach_frontend.empty()) auto_attach_[name].next = now;
    }
  }
  // Files the kernel still has open from before a restart: their I/O waits
  // until they are attached again.
  for (const auto& name : fuse_.Waiting()) {
    VolumeRecord* record = registry_.FindMutable(name);
    if (record == nullptr) {
      LogWarning("FUSE file " + name + " of the previous fused names no volume; removing it");
      fuse_.RemoveVolume(name);
      continue;
    }
    if (record->attach_frontend.empty()) MarkAttachedLocked(*record, "file");
    auto_attach_[name].next = now;
  }
  if (!auto_attach_.empty() && !auto_attach_thread_.joinable()) {
    LogInfo("auto-attach: attaching " + std::to_string(auto_attach_.size()) +
            " volume(s) that were attached when fused stopped");
    auto_attach_thread_ = std::thread([this] { AutoAttachLoop(); });
  }
  if (!notifier_.joinable()) notifier_ = std::thread([this] { NotifierLoop(); });
  if (!settings_.metrics_file.empty() && !metrics_thread_.joinable()) {
    metrics_thread_ = std::thread([this] { MetricsLoop(); });
  }
  if (!rebuild_thread_.joinable()) rebuild_thread_ = std::thread([this] { RebuildLoop(); });
  jobs_.SetNotify([this](const JobInfo& info, bool added, bool removed) {
    std::lock_guard lock(listener_mutex_);
    if (listener_ == nullptr) return;
    if (added) {
      listener_->JobAdded(info);
    } else if (removed) {
      listener_->JobRemoved(info.id);
    } else {
      listener_->JobChanged(info);
    }
  });
  // After SetNotify: its runs start jobs.
  if (!recurring_thread_.joinable()) recurring_thread_ = std::thread([this] { RecurringLoop(); });
  if (!standby_thread_.joinable()) standby_thread_ = std::thread([this] { StandbyLoop(); });
  LogInfo("registry " + settings_.state_dir +
          "/volumes.json: " + std::to_string(registry_.volumes().size()) + " volume(s)");
  return Status::Ok();
}

void VolumeService::Shutdown(bool hand_over) {
  // First: a run must not start a snapshot of a volume being handed over.
  StopRecurring();
  StopStandby();
  {
    std::lock_guard lock(metrics_mutex_);
    metrics_stopping_ = true;
  }
  metrics_cv_.notify_all();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  {
    std::lock_guard lock(mutex_);
    auto_attach_stopping_ = true;
  }
  auto_attach_cv_.notify_all();
  if (auto_attach_thread_.joinable()) auto_attach_thread_.join();
  {
    std::lock_guard lock(backup_scan_mutex_);
    backup_scan_stopping_ = true;
    if (backup_scan_.joinable()) backup_scan_.join();
  }
  {
    std::lock_guard lock(rebuild_mutex_);
    rebuild_stopping_ = true;
  }
  rebuild_cv_.notify_all();
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, a] : attached_) names.push_back(name);
  }
  for (const auto& name : names) {
    std::lock_guard lock(mutex_);
    auto it = attached_.find(name);
    // A restart changes nothing for a volume with a file: whoever uses its
    // loop device or file (a file system, a VM, a process; not all of them
    // show as Busy) keeps it.
    if (hand_over && it != attached_.end() && !it->second.maintenance) {
      HandOverLocked(name);
      continue;
    }
    Status s = DetachLocked(name);
    if (!s.ok()) LogWarning("shutdown: " + s.message());
  }
}

void VolumeService::HandOverLocked(const std::string& name) {
  auto it = attached_.find(name);
  if (it == attached_.end()) return;
  Attachment& a = it->second;
  // No new request reaches the engine (FuseFrontend::HandOver); finish and
  // flush those in flight, so that every acknowledged write is durable.
  Status paused = a.engine->Pause();
  if (!paused.ok()) {
    LogError("hand over volume " + name + ": " + paused.message() +
             " (the next fused writes the unanswered requests again)");
  }
  Status closed = a.engine->Close();
  if (!closed.ok()) LogWarning("hand over volume " + name + ": " + closed.message());
  std::string device = a.loop ? a.loop->path() : a.file;
  if (a.loop) a.loop->Abandon();
  attached_.erase(it);
  LogInfo("volume " + name + " handed over to the next fused; " + device + " stays");
}

void VolumeService::SetListener(VolumeListener* listener) {
  {
    std::lock_guard lock(listener_mutex_);
    listener_ = listener;
  }
  // Once someone listens, tell it the backups of our volumes in the default
  // target (in the background: the target may be slow or unreachable).
  std::lock_guard lock(backup_scan_mutex_);
  if (listener != nullptr && !backup_scan_.joinable()) {
    backup_scan_ = std::thread([this] { ScanBackups(); });
  }
}

ReplicaTarget VolumeService::Target(const VolumeRecord& v, const ReplicaRecord& r) const {
  return ReplicaTarget{r.address, v.name, r.name};
}

VolumeInfo VolumeService::InfoLocked(const VolumeRecord& record) {
  VolumeInfo info;
  info.revision = ++info_revision_;  // under mutex_: in the order of the reads
  info.name = record.name;
  info.size = record.size;
  info.state = VolumeState::kDetached;
  for (const auto& r : record.replicas) info.replicas.push_back({r.address, r.name, ""});
  info.actual_size = record.actual_size;
  info.snapshots = record.snapshots;
  info.recurring_jobs = RecurringInfosLocked(record);
  if (record.standby) {
    const StandbyRecord& sb = *record.standby;
    info.standby = !sb.activated;
    info.standby_source = sb.target + "?volume=" + sb.source;
    info.last_backup = sb.last_backup;
    info.last_backup_created = sb.last_backup_created;
    info.last_restored_at = sb.last_restored_at == 0
                                ? std::string()
                                : Rfc3339(static_cast<std::time_t>(sb.last_restored_at));
    if (auto e = standby_errors_.find(record.name); !sb.activated && e != standby_errors_.end()) {
      info.standby_error = e->second;
    }
  }
  info.replica_count = record.replica_count;
  info.replica_tags = record.replica_tags;
  info.robustness = "unknown";
  if (auto m = moved_.find(record.name); m != moved_.end() && !attached_.count(record.name)) {
    info.state = VolumeState::kMoved;
    info.state_reason = m->second;
  }
  auto waiting = attached_.count(record.name) ? auto_attach_.end() : auto_attach_.find(record.name);
  if (waiting != auto_attach_.end()) {
    const AutoAttach& a = waiting->second;
    if (a.error.empty()) {
      info.state_reason = "attaching again at start";
    } else {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          a.next - std::chrono::steady_clock::now());
      int64_t seconds = std::max<int64_t>(0, (left.count() + 999) / 1000);  // rounded up
      info.state_reason =
          "attach at start failed: " + a.error + "; next try in " + std::to_string(seconds) + " s";
    }
  }
  auto it = attached_.find(record.name);
  if (it != attached_.end()) {
    info.state = it->second.maintenance ? VolumeState::kMaintenance : VolumeState::kAttached;
    info.frontend_path = it->second.file;
    if (it->second.loop) info.loop_device = it->second.loop->path();
    size_t rw = 0;
    for (const auto& state : it->second.engine->Replicas()) {
      rw += state.mode == ReplicaMode::kRW;
      for (auto& r : info.replicas) {
        if (r.name == state.name) r.mode = ReplicaModeName(state.mode);
      }
    }
    for (auto& r : info.replicas) {
      if (r.mode.empty()) r.mode = "ERR";  // not in the engine: unreachable or stale
    }
    info.robustness = RobustnessOf(rw, record.replica_count);
    info.robustness_reason = RobustnessReasonLocked(record);
  }
  return info;
}

std::vector<VolumeInfo> VolumeService::ListVolumes() {
  std::lock_guard lock(mutex_);
  std::vector<VolumeInfo> out;
  for (const auto& [name, record] : registry_.volumes()) out.push_back(InfoLocked(record));
  return out;
}

Result<VolumeInfo> VolumeService::GetVolume(const std::string& name) {
  std::lock_guard lock(mutex_);
  const VolumeRecord* record = registry_.Find(name);
  if (record == nullptr) return Status(ErrorKind::kNotFound, "volume " + name + " does not exist");
  return InfoLocked(*record);
}

void VolumeService::NotifyChanged(const std::string& name) {
  auto info = GetVolume(name);
  std::lock_guard lock(listener_mutex_);
  if (listener_ == nullptr) return;
  if (info.ok()) {
    listener_->VolumeChanged(*info);
  } else {
    listener_->VolumeRemoved(name);
  }
}

Status VolumeService::CreateVolume(const std::string& name, uint64_t size,
                                   const std::vector<std::string>& replicas,
                                   const Options& options) {
  if (options.count("from-snapshot") != 0) return CreateClone(name, size, replicas, options);
  return CreateVolumeImpl(name, size, replicas, options, false);
}

Status VolumeService::CreateVolumeImpl(const std::string& name, uint64_t size,
                                       const std::vector<std::string>& replicas,
                                       const Options& options, bool restore) {
  SH_RETURN_IF_ERROR(CheckOptions("CreateVolume", options, {"replica-count", "replica-tags"}));
  SH_RETURN_IF_ERROR(ValidateNewVolume(name, size));
  auto tags = ReplicaTagsOption("create volume " + name, options);
  if (!tags.ok()) return tags.status();
  SH_RETURN_IF_ERROR(CheckVolumeSize("create volume " + name, size, settings_.max_volume_size_gib));
  std::vector<std::string> addresses = replicas;
  uint64_t wanted = replicas.empty() ? 1 : replicas.size();
  if (auto it = options.find("replica-count"); it != options.end()) {
    const auto* i = std::get_if<int64_t>(&it->second);
    const auto* u = std::get_if<uint64_t>(&it->second);
    if (i == nullptr && u == nullptr) {
      return Status(ErrorKind::kInvalidArgument,
                    "create volume " + name + ": option 'replica-count' must be a number");
    }
    wanted = i != nullptr ? static_cast<uint64_t>(std::max<int64_t>(*i, 0)) : *u;
    if (wanted < 1 || wanted > 5) {
      return Status(ErrorKind::kInvalidArgument,
                    "create volume " + name + ": option 'replica-count' is outside 1..5");
    }
    if (!replicas.empty() && wanted < replicas.size()) {
      return Status(ErrorKind::kInvalidArgument,
                    "create volume " + name + ": replica-count " + std::to_string(wanted) +
                        " is below the " + std::to_string(replicas.size()) + " addresses given");
    }
  }
  if (addresses.empty() && settings_.default_replicads.empty()) {
    return Status(ErrorKind::kInvalidArgument,
                  "create volume " + name + ": no replica address given and none configured");
  }
  if (addresses.size() > 5) {
    return Status(ErrorKind::kInvalidArgument, "create volume " + name + ": at most 5 replicas, " +
                                                   std::to_string(addresses.size()) + " given");
  }
  std::set<std::string> seen;
  for (const auto& a : addresses) {
    Status s = ParseHostPort(a).status();
    if (!s.ok()) return s.WithContext("create volume " + name);
    if (!seen.insert(a).second) {
      return Status(ErrorKind::kInvalidArgument,
                    "create volume " + name + ": replicad " + a + " is named twice");
    }
  }
  // Where: the named replicads (checked by the rules too), filled up from
  // the configured ones by the placement rules.
  {
    std::set<std::string> draining;
    {
      std::lock_guard lock(mutex_);
      draining.insert(registry_.draining().begin(), registry_.draining().end());
    }
    std::vector<std::string> all = addresses;
    all.insert(all.end(), settings_.default_replicads.begin(), settings_.default_replicads.end());
    PlacementRequest request;
    request.size = size;
    request.count = wanted;
    request.required_tags = *tags;
    request.fixed = addresses;
    auto placed = PlaceReplicas(settings_.placement, request, GatherCandidates(all, draining));
    if (!placed.ok()) return placed.status().WithContext("create volume " + name);
    for (const auto& w : placed->warnings) LogWarning("create volume " + name + ": " + w);
    addresses = placed->chosen;
  }
  VolumeRecord record;
  {
    std::lock_guard lock(mutex_);
    if (registry_.Find(name) != nullptr || (!restore && restoring_.count(name) != 0)) {
      return Status(ErrorKind::kAlreadyExists,
                    "create volume " + name + ": it already exists" +
                        (registry_.Find(name) == nullptr ? " (being restored or cloned)" : ""));
    }
    record.name = name;
    record.size = size;
    record.replica_count = static_cast<uint32_t>(addresses.size());
    record.replica_tags = *tags;
    std::string prefix = name.substr(0, 46);
    for (const auto& a : addresses) record.replicas.push_back({a, prefix + "-" + RandomHex64()});
    std::vector<ReplicaRecord> created;
    for (const auto& r : record.replicas) {
      Status s = ReplicaClient::CreateReplica(Target(record, r), size, settings_.client);
      if (!s.ok()) {
        for (const auto& c : created) {
          Status undo =
              ReplicaClient::DeleteReplica(Target(record, c), record.epoch, settings_.client);
          if (!undo.ok()) LogWarning("undo create volume " + name + ": " + undo.message());
        }
        return s.WithContext("create volume " + name);
      }
      created.push_back(r);
    }
    registry_.Put(record);
    Status saved = registry_.Save();
    if (!saved.ok()) {
      registry_.Erase(name);
      for (const auto& c : created)
        (void)ReplicaClient::DeleteReplica(Target(record, c), record.epoch, settings_.client);
      return saved.WithContext("create volume " + name);
    }
  }
  LogInfo("created volume " + name + " (" + std::to_string(size) + " bytes, " +
          std::to_string(record.replicas.size()) + " replica(s))");
  auto info = GetVolume(name);
  std::lock_guard lock(listener_mutex_);
  if (listener_ != nullptr && info.ok()) listener_->VolumeAdded(*info);
  return Status::Ok();
}

Status VolumeService::DeleteVolume(const std::string& name, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("DeleteVolume", options, {"force"}));
  bool force = false;
  SH_RETURN_IF_ERROR(BoolOption("DeleteVolume", options, "force", &force));
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(name);
    if (record == nullptr) {
      return Status(ErrorKind::kNotFound, "delete volume " + name + ": it does not exist");
    }
    Status busy;
    if (RestoringLocked(name, "delete volume " + name, &busy)) return busy;
    if (attached_.count(name) != 0) {
      return Status(ErrorKind::kBusy,
                    "delete volume " + name + ": it is attached; detach it first");
    }
    if (standby_applying_.count(name) != 0) {
      return Status(ErrorKind::kBusy, "delete volume " + name +
                                          ": a backup is being applied to this standby; try "
                                          "again when it is done");
    }
    if (cloning_from_.count(name) != 0) {
      return Status(ErrorKind::kBusy, "delete volume " + name +
                                          ": a clone of one of its snapshots is being made; "
                                          "wait for the clone job to end");
    }
    if (jobs_.Running(name, "delete-snapshot") || jobs_.Running(name, "verify") ||
        jobs_.Running(name, "backup")) {
      return Status(ErrorKind::kBusy,
                    "delete volume " + name + ": a job on it is running; wait for it to end");
    }
    std::vector<ReplicaRecord> remaining;
    Status first_error;
    for (const auto& r : record->replicas) {
      Status s = ReplicaClient::DeleteReplica(Target(*record, r), record->epoch, settings_.client);
      if (s.ok() || s.kind() == ErrorKind::kNotFound) continue;
      if (s.kind() == ErrorKind::kMoved) {
        LogInfo("delete volume " + name + ": " + s.message() + "; forgetting it here");
        continue;
      }
      if (force) {
        LogWarning("delete volume " + name + " (forced): " + s.message());
        continue;
      }
      remaining.push_back(r);
      if (first_error.ok()) first_error = s;
    }
    if (!first_error.ok()) {
      record->replicas = remaining;
      Status saved = registry_.Save();
      if (!saved.ok()) LogError(saved.message());
      return first_error.WithContext("delete volume " + name +
                                     " (use option force=true to forget unreachable replicas)");
    }
    for (const auto& r : record->stale) {
      (void)ReplicaClient::DeleteReplica({r.address, name, r.name}, record->epoch,
                                         settings_.client);
    }
    registry_.Erase(name);
    SH_RETURN_IF_ERROR(registry_.Save());
    moved_.erase(name);
    standby_errors_.erase(name);
    generations_.Forget(name);
    fuse_.RemoveVolume(name);  // a file still waiting from before a restart
  }
  LogInfo("deleted volume " + name);
  std::lock_guard lock(listener_mutex_);
  if (listener_ != nullptr) listener_->VolumeRemoved(name);
  return Status::Ok();
}

}  // namespace shorthorn::fused
