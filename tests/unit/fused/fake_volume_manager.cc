// The bodies of FakeVolumeManager's longer methods (fake_volume_manager.h).
#include "tests/unit/fused/fake_volume_manager.h"

namespace shorthorn::fused {

std::vector<VolumeInfo> FakeVolumeManager::ListVolumes() {
  std::lock_guard lock(mu_);
  std::vector<VolumeInfo> out;
  for (const auto& [name, info] : volumes_) out.push_back(info);
  return out;
}

Result<VolumeInfo> FakeVolumeManager::GetVolume(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(name);
  if (it == volumes_.end()) return NotFound(name);
  return it->second;
}

Status FakeVolumeManager::CreateVolume(const std::string& name, uint64_t size,
                                       const std::vector<std::string>& replicas,
                                       const Options& options) {
  SH_RETURN_IF_ERROR(ValidateName("volume", name));
  if (size == 0) return Status(ErrorKind::kInvalidArgument, "create volume " + name + ": size 0");
  VolumeInfo info;
  info.name = name;
  info.size = size;
  info.state = VolumeState::kDetached;
  for (size_t i = 0; i < replicas.size(); ++i) {
    info.replicas.push_back({replicas[i], name + "-r" + std::to_string(i), ""});
  }
  {
    std::lock_guard lock(mu_);
    last_options_ = options;
    if (volumes_.count(name)) {
      return Status(ErrorKind::kAlreadyExists, "create volume " + name + ": already exists");
    }
    volumes_[name] = info;
  }
  Notify([&](VolumeListener* l) { l->VolumeAdded(info); });
  return Status::Ok();
}

Status FakeVolumeManager::ImportVolume(const std::string& name,
                                       const std::vector<std::string>& replicads,
                                       const Options& options) {
  if (replicads.empty()) {
    return Status(ErrorKind::kInvalidArgument, "import volume " + name + ": no replicad given");
  }
  return CreateVolume(name, uint64_t{1} << 30, replicads, options);
}

Status FakeVolumeManager::DeleteVolume(const std::string& name, const Options& options) {
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return NotFound(name);
    if (it->second.state == VolumeState::kAttached) {
      return Status(ErrorKind::kBusy, "delete volume " + name + ": attached");
    }
    volumes_.erase(it);
  }
  Notify([&](VolumeListener* l) { l->VolumeRemoved(name); });
  return Status::Ok();
}

Result<std::string> FakeVolumeManager::Attach(const std::string& name, const Options& options) {
  std::string frontend = "block";
  bool maintenance = false;
  if (auto it = options.find("maintenance"); it != options.end()) {
    const bool* flag = std::get_if<bool>(&it->second);
    if (!flag) {
      return Status(ErrorKind::kInvalidArgument, "attach volume " + name + ": bad maintenance");
    }
    maintenance = *flag;
  }
  if (auto it = options.find("frontend"); it != options.end()) {
    const auto* text = std::get_if<std::string>(&it->second);
    if (!text || (*text != "block" && *text != "file")) {
      return Status(ErrorKind::kInvalidArgument, "attach volume " + name + ": bad frontend");
    }
    frontend = *text;
  }
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return NotFound(name);
    if (it->second.state == VolumeState::kAttached ||
        it->second.state == VolumeState::kMaintenance) {
      return Status(ErrorKind::kBusy, "attach volume " + name + ": already attached");
    }
    it->second.state = maintenance ? VolumeState::kMaintenance : VolumeState::kAttached;
    it->second.frontend_path = maintenance ? "" : "/run/shorthorn/volumes/" + name;
    it->second.loop_device = !maintenance && frontend == "block" ? "/dev/loop7" : "";
    for (auto& r : it->second.replicas) r.mode = "RW";
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  if (maintenance) return std::string();
  return frontend == "block" ? info.loop_device : info.frontend_path;
}

Status FakeVolumeManager::Detach(const std::string& name, const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return NotFound(name);
    it->second.state = VolumeState::kDetached;
    it->second.frontend_path.clear();
    it->second.loop_device.clear();
    for (auto& r : it->second.replicas) r.mode.clear();
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Status FakeVolumeManager::Snapshot(const std::string& volume, const std::string& snapshot,
                                   const Options& options) {
  SH_RETURN_IF_ERROR(ValidateName("snapshot", snapshot));
  WaitAtGate(volume);
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    auto& snapshots = it->second.snapshots;
    if (FindSnapshot(it->second, snapshot)) {
      return Status(ErrorKind::kAlreadyExists,
                    "snapshot volume " + volume + " as " + snapshot + ": snapshot exists");
    }
    SnapshotInfo s;
    s.name = snapshot;
    s.parent = snapshots.empty() ? "" : snapshots.back().name;
    s.created = "2024-05-01T12:00:0" + std::to_string(snapshots.size() % 10) + "Z";
    s.size_held = 4096 * (snapshots.size() + 1);
    snapshots.push_back(s);
    it->second.actual_size += s.size_held;
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Result<uint64_t> FakeVolumeManager::DeleteSnapshot(const std::string& volume,
                                                   const std::string& snapshot,
                                                   const Options& options) {
  {
    std::lock_guard lock(mu_);
    SH_RETURN_IF_ERROR(
        SnapshotLocked(volume, snapshot, "delete snapshot " + snapshot + " of volume " + volume)
            .status());
  }
  uint64_t id = StartJob("delete-snapshot", volume, snapshot);
  // Option "finish" (s): the job ends with that state and is reported
  // removed before the call returns, yet GetJob still finds it for a
  // while, as the manager's contract allows ("forgotten soon after").
  if (auto it = options.find("finish"); it != options.end()) {
    FinishJob(id, ParseJobState(std::get<std::string>(it->second)), "finished at once");
    Notify([&](VolumeListener* l) { l->JobRemoved(id); });
  }
  return id;
}

Status FakeVolumeManager::Revert(const std::string& volume, const std::string& snapshot,
                                 const Options& options) {
  std::lock_guard lock(mu_);
  auto found = SnapshotLocked(volume, snapshot, "revert volume " + volume + " to " + snapshot);
  if (!found.ok()) return found.status();
  if ((*found)->state == VolumeState::kAttached) {
    return Status(ErrorKind::kBusy, "revert volume " + volume + " to " + snapshot +
                                        ": attached; detach it or attach with maintenance=true");
  }
  return Status::Ok();  // the data is not modelled, so nothing visible changes
}

Status FakeVolumeManager::Expand(const std::string& volume, uint64_t size, const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    if (size < it->second.size) {
      return Status(ErrorKind::kInvalidArgument,
                    "expand volume " + volume + " to " + std::to_string(size) + ": smaller");
    }
    it->second.size = size;
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Status FakeVolumeManager::SetReplicaCount(const std::string& volume, uint32_t count,
                                          const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    if (count < 1 || count > 5) {
      return Status(ErrorKind::kInvalidArgument, "set replica count of volume " + volume + ": " +
                                                     std::to_string(count) + " is outside 1..5");
    }
    it->second.replica_count = count;
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Status FakeVolumeManager::AddRecurringJob(const std::string& volume, const RecurringJobInfo& job,
                                          const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    for (const auto& j : it->second.recurring_jobs) {
      if (j.name == job.name) {
        return Status(ErrorKind::kAlreadyExists,
                      "add recurring job " + job.name + " to volume " + volume + ": taken");
      }
    }
    RecurringJobInfo added = job;
    if (auto t = options.find("target"); t != options.end()) {
      added.target = std::get<std::string>(t->second);
    }
    added.next_run = "2026-12-07T02:00:00Z";
    it->second.recurring_jobs.push_back(added);
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Status FakeVolumeManager::RemoveRecurringJob(const std::string& volume, const std::string& job,
                                             const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    auto& jobs = it->second.recurring_jobs;
    auto j = std::find_if(jobs.begin(), jobs.end(),
                          [&job](const RecurringJobInfo& r) { return r.name == job; });
    if (j == jobs.end()) {
      return Status(ErrorKind::kNotFound,
                    "remove recurring job " + job + " of volume " + volume + ": no such job");
    }
    jobs.erase(j);
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Status FakeVolumeManager::Rebuild(const std::string& volume, const Options& options) {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(volume);
  if (it == volumes_.end()) return NotFound(volume);
  if (it->second.state == VolumeState::kDetached) {
    return Status(ErrorKind::kBusy, "rebuild volume " + volume + ": it is not attached");
  }
  return Status::Ok();
}

Result<std::vector<ReplicadStatus>> FakeVolumeManager::ListReplicads(const Options& options) {
  ReplicadStatus r;
  r.address = "127.0.0.1:9500";
  r.state = draining_.count(r.address) ? ReplicadState::kDraining : ReplicadState::kUp;
  r.host_id = "host-a";
  r.tags = {"ssd", "zone=z1"};
  r.total_bytes = 100ull << 30;
  r.free_bytes = 60ull << 30;
  r.provisioned_bytes = 10ull << 30;
  r.replicas = 3;
  return std::vector<ReplicadStatus>{r};
}

Result<uint64_t> FakeVolumeManager::DrainReplicad(const std::string& address,
                                                  const Options& options) {
  {
    std::lock_guard lock(mu_);
    draining_.insert(address);
  }
  return StartJob("drain", "", address, true);
}

Status FakeVolumeManager::UndrainReplicad(const std::string& address, const Options& options) {
  std::lock_guard lock(mu_);
  if (draining_.erase(address) == 0) {
    return Status(ErrorKind::kNotFound, "undrain replicad " + address + ": it is not draining");
  }
  return Status::Ok();
}

Status FakeVolumeManager::Activate(const std::string& volume, const Options& options) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(volume);
    if (it == volumes_.end()) return NotFound(volume);
    if (!it->second.standby) {
      return Status(ErrorKind::kInvalidArgument,
                    "activate volume " + volume + ": it is not a DR standby");
    }
    it->second.standby = false;
    info = it->second;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
  return Status::Ok();
}

Result<uint64_t> FakeVolumeManager::Backup(const std::string& volume, const std::string& snapshot,
                                           const Options& options) {
  {
    std::lock_guard lock(mu_);
    if (!volumes_.count(volume)) return NotFound(volume);
  }
  return StartJob("backup", volume, snapshot, true);
}

Result<std::vector<BackupInfo>> FakeVolumeManager::ListBackups(const std::string& target,
                                                               const std::string& volume,
                                                               const Options& options) {
  if (volume != "with-backups") {
    return Status(ErrorKind::kNotFound, "list backups of volume " + volume + ": there are none");
  }
  const std::string name = "backup-20261206T000000Z-00000001";
  std::vector<BackupInfo> out{{target + "?volume=" + volume + "&backup=" + name, name, volume, "s1",
                               "2026-12-06T00:00:00Z", 1 << 30, 3}};
  VolumeListener* listener = nullptr;
  {
    std::lock_guard lock(mu_);
    listener = listener_;
  }
  if (listener != nullptr) listener->BackupsChanged(target, volume, out);
  return out;
}

Result<uint64_t> FakeVolumeManager::Verify(const std::string& volume, const Options& options) {
  {
    std::lock_guard lock(mu_);
    if (!volumes_.count(volume)) return NotFound(volume);
  }
  // Option "unreported" (b): no JobAdded, as from a manager that reports
  // only later; the service must export the job all the same.
  auto it = options.find("unreported");
  bool report = it == options.end() || !std::get<bool>(it->second);
  return StartJob("verify", volume, "", report);
}

Result<uint64_t> FakeVolumeManager::Scrub(const std::string& volume, const Options& options) {
  {
    std::lock_guard lock(mu_);
    if (!volumes_.count(volume)) return NotFound(volume);
  }
  return StartJob("scrub", volume, "", true);
}

std::vector<JobInfo> FakeVolumeManager::ListJobs() {
  std::lock_guard lock(mu_);
  std::vector<JobInfo> out;
  for (const auto& [id, job] : jobs_) out.push_back(job);
  return out;
}

Result<JobInfo> FakeVolumeManager::GetJob(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return JobNotFound(id);
  return it->second;
}

Status FakeVolumeManager::CancelJob(uint64_t id) {
  JobInfo job;
  {
    std::lock_guard lock(mu_);
    cancel_calls_.push_back(id);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return JobNotFound(id);
    if (!it->second.cancellable || it->second.state != JobState::kRunning) {
      return Status(ErrorKind::kInvalidArgument,
                    "cancel job " + std::to_string(id) + ": not cancellable");
    }
    it->second.state = JobState::kCancelled;
    it->second.cancellable = false;
    it->second.message = "cancelled";
    job = it->second;
  }
  Notify([&](VolumeListener* l) { l->JobChanged(job); });
  return Status::Ok();
}

void FakeVolumeManager::SetState(const std::string& name, VolumeState state) {
  VolumeInfo info;
  {
    std::lock_guard lock(mu_);
    auto& v = volumes_.at(name);
    v.state = state;
    info = v;
  }
  Notify([&](VolumeListener* l) { l->VolumeChanged(info); });
}

void FakeVolumeManager::OpenGate() {
  {
    std::lock_guard lock(mu_);
    gated_volume_.clear();
  }
  gate_cv_.notify_all();
}

void FakeVolumeManager::AdvanceJob(uint64_t id, double progress) {
  JobInfo job;
  {
    std::lock_guard lock(mu_);
    auto& j = jobs_.at(id);
    j.progress = progress;
    j.bytes = static_cast<uint64_t>(progress * static_cast<double>(j.total_bytes));
    j.rate = 1 << 20;
    job = j;
  }
  Notify([&](VolumeListener* l) { l->JobChanged(job); });
}

void FakeVolumeManager::FinishJob(uint64_t id, JobState state, const std::string& message) {
  JobInfo job;
  std::optional<VolumeInfo> volume;
  {
    std::lock_guard lock(mu_);
    auto& j = jobs_.at(id);
    j.state = state;
    j.message = message;
    j.cancellable = false;
    if (state == JobState::kCompleted) {
      j.progress = 1;
      j.bytes = j.total_bytes;
    }
    job = j;
    auto v = volumes_.find(j.volume);
    if (state == JobState::kCompleted && j.operation == "delete-snapshot" && v != volumes_.end()) {
      auto& snapshots = v->second.snapshots;
      std::erase_if(snapshots, [&](const SnapshotInfo& s) { return s.name == j.target; });
      volume = v->second;
    }
  }
  Notify([&](VolumeListener* l) { l->JobChanged(job); });
  if (volume) Notify([&](VolumeListener* l) { l->VolumeChanged(*volume); });
}

void FakeVolumeManager::RemoveJob(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    jobs_.erase(id);
  }
  Notify([&](VolumeListener* l) { l->JobRemoved(id); });
}

const SnapshotInfo* FakeVolumeManager::FindSnapshot(const VolumeInfo& volume,
                                                    const std::string& name) {
  for (const auto& s : volume.snapshots) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

uint64_t FakeVolumeManager::StartJob(const std::string& operation, const std::string& volume,
                                     const std::string& target, bool report) {
  JobInfo job;
  {
    std::lock_guard lock(mu_);
    job.id = next_job_id_++;
    job.operation = operation;
    job.volume = volume;
    job.target = target;
    job.total_bytes = 1 << 20;
    job.state = JobState::kRunning;
    job.cancellable = true;
    jobs_[job.id] = job;
  }
  if (report) Notify([&](VolumeListener* l) { l->JobAdded(job); });
  return job.id;
}

void FakeVolumeManager::WaitAtGate(const std::string& volume) {
  std::unique_lock lock(mu_);
  if (gated_volume_ != volume) return;
  ++waiting_at_gate_;
  gate_cv_.wait(lock, [&] { return gated_volume_ != volume; });
  --waiting_at_gate_;
}

JobState FakeVolumeManager::ParseJobState(const std::string& name) {
  for (JobState state : {JobState::kQueued, JobState::kRunning, JobState::kCompleted,
                         JobState::kFailed, JobState::kCancelled}) {
    if (name == JobStateName(state)) return state;
  }
  return JobState::kFailed;
}

Result<VolumeInfo*> FakeVolumeManager::SnapshotLocked(const std::string& volume,
                                                      const std::string& snapshot,
                                                      const std::string& what) {
  auto it = volumes_.find(volume);
  if (it == volumes_.end()) return NotFound(volume);
  if (!FindSnapshot(it->second, snapshot)) {
    return Status(ErrorKind::kNotFound, what + ": no such snapshot");
  }
  return &it->second;
}

}  // namespace shorthorn::fused
