#include "tests/unit/ctl/fake_storage_client.h"

namespace shorthorn::ctl::testing {

Result<std::vector<VolumeInfo>> FakeStorageClient::ListVolumes() {
  calls.push_back("ListVolumes");
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::vector<VolumeInfo> list;
  for (const auto& [name, v] : volumes) list.push_back(v);
  return list;
}

Result<VolumeInfo> FakeStorageClient::GetVolume(const std::string& operation,
                                                const std::string& name) {
  calls.push_back("GetVolume " + operation + " " + name);
  if (Status s = TakeFailure(); !s.ok()) return s;
  auto it = volumes.find(name);
  if (it == volumes.end()) {
    return Status(ErrorKind::kNotFound, operation + " volume " + name + ": it does not exist");
  }
  return it->second;
}

Result<VolumeInfo> FakeStorageClient::ImportVolume(const std::string& name,
                                                   const std::vector<std::string>& replicads) {
  std::string joined;
  for (const auto& r : replicads) joined += (joined.empty() ? "" : ",") + r;
  calls.push_back("ImportVolume " + name + " " + joined);
  if (Status s = TakeFailure(); !s.ok()) return s;
  VolumeInfo v;
  v.name = name;
  v.object_path = "/org/shorthorn/Storage1/volumes/" + name;
  v.size = uint64_t{1} << 30;
  v.state = "detached";
  for (const auto& r : replicads) v.replicas.push_back({r, "r-" + name, ""});
  volumes[name] = v;
  return v;
}

Result<VolumeInfo> FakeStorageClient::CreateVolume(const std::string& name, uint64_t size,
                                                   const std::vector<std::string>& replicas,
                                                   const CreateOptions& options) {
  std::string joined;
  for (const auto& r : replicas) joined += (joined.empty() ? "" : ",") + r;
  calls.push_back(
      "CreateVolume " + name + " " + std::to_string(size) + " " + (joined.empty() ? "-" : joined) +
      (options.replica_count ? " count=" + std::to_string(*options.replica_count) : "") +
      (options.from_snapshot.empty() ? "" : " from=" + options.from_snapshot) +
      (options.replica_tags.empty() ? "" : " tags=" + options.replica_tags));
  if (Status s = TakeFailure(); !s.ok()) return s;
  if (!options.from_snapshot.empty()) {
    Result<uint64_t> source = CloneSource(name, size, options.from_snapshot);
    if (!source.ok()) return source.status();
    if (size == 0) size = *source;
  }
  VolumeInfo v;
  v.name = name;
  v.object_path = "/org/shorthorn/Storage1/volumes/" + name;
  v.size = size;
  v.state = "detached";
  if (options.replica_count) v.replica_count = *options.replica_count;
  for (const auto& r : replicas) v.replicas.push_back({r, "r-" + name, ""});
  v.replica_tags = SplitTags(options.replica_tags);
  volumes[name] = v;
  if (!options.from_snapshot.empty()) StartCloneJob(name, options.from_snapshot, size);
  return v;
}

Status FakeStorageClient::DeleteVolume(const std::string& name, bool force) {
  calls.push_back("DeleteVolume " + name + (force ? " force" : ""));
  if (Status s = TakeFailure(); !s.ok()) return s;
  volumes.erase(name);
  return Status::Ok();
}

Result<std::string> FakeStorageClient::Attach(const std::string& name,
                                              const AttachOptions& options) {
  const Frontend frontend = options.frontend;
  calls.push_back("Attach " + name + (frontend == Frontend::kFile ? " file" : " block") +
                  (options.maintenance ? " maintenance" : "") +
                  (options.salvage ? " salvage" : ""));
  if (Status s = TakeFailure(); !s.ok()) return s;
  VolumeInfo& v = volumes.at(name);
  if (options.maintenance) {
    v.state = "maintenance";
    return std::string();
  }
  v.state = "attached";
  v.frontend_path = "/run/shorthorn/volumes/" + name;
  if (frontend == Frontend::kBlock) v.loop_device = "/dev/loop7";
  return frontend == Frontend::kBlock ? v.loop_device : v.frontend_path;
}

Status FakeStorageClient::Detach(const std::string& name) {
  calls.push_back("Detach " + name);
  if (Status s = TakeFailure(); !s.ok()) return s;
  VolumeInfo& v = volumes.at(name);
  v.state = "detached";
  v.frontend_path.clear();
  v.loop_device.clear();
  return Status::Ok();
}

Status FakeStorageClient::Expand(const std::string& name, uint64_t size) {
  calls.push_back("Expand " + name + " " + std::to_string(size));
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("expand", name);
  if (!v.ok()) return v.status();
  if (size < (*v)->size) {
    return Status(ErrorKind::kInvalidArgument, "expand volume " + name + ": smaller size");
  }
  (*v)->size = size;
  return Status::Ok();
}

Result<std::string> FakeStorageClient::Verify(const std::string& name) {
  calls.push_back("Verify " + name);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("verify", name);
  if (!v.ok()) return v.status();
  return StartJob("verify", name, "", false, 4096);
}

Result<std::string> FakeStorageClient::Scrub(const std::string& name) {
  calls.push_back("Scrub " + name);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("scrub", name);
  if (!v.ok()) return v.status();
  return StartJob("scrub", name, "", false, 4096);
}

Status FakeStorageClient::SetReplicaCount(const std::string& name, uint32_t count) {
  calls.push_back("SetReplicaCount " + name + " " + std::to_string(count));
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("set the replica count of", name);
  if (!v.ok()) return v.status();
  (*v)->replica_count = count;
  return Status::Ok();
}

Status FakeStorageClient::Rebuild(const std::string& name) {
  calls.push_back("Rebuild " + name);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("rebuild", name);
  if (!v.ok()) return v.status();
  if ((*v)->state != "attached") {
    return Status(ErrorKind::kBusy, "rebuild volume " + name + ": it is " + (*v)->state);
  }
  return Status::Ok();
}

Status FakeStorageClient::CreateSnapshot(const std::string& volume, const std::string& snapshot) {
  calls.push_back("CreateSnapshot " + volume + " " + snapshot);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("snapshot", volume);
  if (!v.ok()) return v.status();
  auto& list = (*v)->snapshots;
  for (const auto& s : list) {
    if (s.name == snapshot) {
      return Status(ErrorKind::kAlreadyExists,
                    "snapshot volume " + volume + ": snapshot " + snapshot + " exists");
    }
  }
  list.push_back({snapshot, list.empty() ? "" : list.back().name, "2025-01-02T03:04:05Z", true,
                  1 << 20, false});
  return Status::Ok();
}

Result<std::string> FakeStorageClient::DeleteSnapshot(const std::string& volume,
                                                      const std::string& snapshot) {
  calls.push_back("DeleteSnapshot " + volume + " " + snapshot);
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::string what = "delete snapshot " + snapshot + " of volume " + volume;
  Result<VolumeInfo*> v = Find("delete snapshot " + snapshot + " of", volume);
  if (!v.ok()) return v.status();
  auto& list = (*v)->snapshots;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->name == snapshot) {
      list.erase(it);
      return StartJob("delete-snapshot", volume, snapshot, false, 8 << 20);
    }
  }
  return Status(ErrorKind::kNotFound, what + ": no such snapshot");
}

Status FakeStorageClient::RevertSnapshot(const std::string& volume, const std::string& snapshot) {
  calls.push_back("RevertSnapshot " + volume + " " + snapshot);
  if (Status s = TakeFailure(); !s.ok()) return s;
  return Status::Ok();
}

Result<std::string> FakeStorageClient::CreateBackup(const std::string& volume,
                                                    const std::string& snapshot,
                                                    const std::string& target) {
  calls.push_back("CreateBackup " + volume + " " + snapshot + (target.empty() ? "" : " " + target));
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("back up", volume);
  if (!v.ok()) return v.status();
  bool known = false;
  for (const auto& s : (*v)->snapshots) known = known || s.name == snapshot;
  if (!known) {
    return Status(ErrorKind::kNotFound,
                  "back up snapshot " + snapshot + " of volume " + volume + ": no such snapshot");
  }
  BackupInfo b;
  b.name = "backup-" + std::to_string(++last_backup_id_);
  b.volume = volume;
  b.snapshot = snapshot;
  b.created = "2025-01-02T03:04:0" + std::to_string(last_backup_id_) + "Z";
  b.size = (*v)->size;
  b.blocks = 3;
  b.url =
      (target.empty() ? default_backup_target : target) + "?volume=" + volume + "&backup=" + b.name;
  std::string path = StartJob("backup", volume, snapshot, true, b.size);
  if (next_job_state == "completed") {
    backups.push_back(b);
    jobs[path].back().message = backup_job_reports_url ? b.url : "";
  }
  return path;
}

Result<std::vector<BackupInfo>> FakeStorageClient::ListBackups(const std::string& target,
                                                               const std::string& volume) {
  calls.push_back("ListBackups " + (target.empty() ? "-" : target) + " " + volume);
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::string where = target.empty() ? default_backup_target : target;
  std::vector<BackupInfo> list;
  for (const BackupInfo& b : backups) {
    if (b.volume == volume && b.url.starts_with(where + "?")) list.push_back(b);
  }
  if (list.empty()) {
    return Status(ErrorKind::kNotFound,
                  "list backups of volume " + volume + " on " + where + ": there are none");
  }
  return list;
}

Result<std::string> FakeStorageClient::DeleteBackup(const std::string& url) {
  calls.push_back("DeleteBackup " + url);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<BackupUrl> parsed = ParseBackupUrl(url);
  if (!parsed.ok()) return parsed.status();
  for (auto it = backups.begin(); it != backups.end(); ++it) {
    if (it->url == url) {
      backups.erase(it);
      return StartJob("delete-backup", parsed->volume, parsed->backup, false, 4096);
    }
  }
  return StartFailingJob(
      "delete-backup", parsed->volume, parsed->backup,
      "delete backup " + parsed->backup + " of volume " + parsed->volume + ": no such backup");
}

Result<std::string> FakeStorageClient::RestoreVolume(const std::string& name,
                                                     const std::string& url,
                                                     const std::vector<std::string>& replicas,
                                                     std::optional<uint32_t> replica_count,
                                                     const std::string& replica_tags) {
  std::string joined;
  for (const auto& r : replicas) joined += (joined.empty() ? "" : ",") + r;
  calls.push_back("RestoreVolume " + name + " " + url + " " + (joined.empty() ? "-" : joined) +
                  " " + (replica_count ? std::to_string(*replica_count) : "-") +
                  (replica_tags.empty() ? "" : " tags=" + replica_tags));
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::string what = "restore volume " + name + " from " + url;
  if (volumes.count(name) != 0) {
    return Status(ErrorKind::kAlreadyExists, what + ": volume " + name + " already exists");
  }
  for (const BackupInfo& b : backups) {
    if (b.url != url) continue;
    VolumeInfo v;
    v.name = name;
    v.object_path = "/org/shorthorn/Storage1/volumes/" + name;
    v.size = b.size;
    v.state = "detached";
    v.replica_count = replica_count.value_or(2);
    for (const auto& r : replicas) v.replicas.push_back({r, "r-" + name, ""});
    volumes[name] = v;
    return StartJob("restore", name, url, true, b.size);
  }
  return StartFailingJob("restore", name, url, what + ": no such backup");
}

Result<std::string> FakeStorageClient::CreateStandbyVolume(const std::string& name,
                                                           const std::string& source,
                                                           const std::vector<std::string>& replicas,
                                                           std::optional<uint32_t> replica_count,
                                                           const std::string& replica_tags,
                                                           std::optional<uint32_t> poll_interval) {
  std::string joined;
  for (const auto& r : replicas) joined += (joined.empty() ? "" : ",") + r;
  calls.push_back("CreateStandbyVolume " + name + " " + source + " " +
                  (joined.empty() ? "-" : joined) + " " +
                  (replica_count ? std::to_string(*replica_count) : "-") + " " +
                  (poll_interval ? std::to_string(*poll_interval) : "-") +
                  (replica_tags.empty() ? "" : " tags=" + replica_tags));
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::string what = "create standby volume " + name + " of " + source;
  if (volumes.count(name) != 0) {
    return Status(ErrorKind::kAlreadyExists, what + ": volume " + name + " already exists");
  }
  const BackupInfo* newest = nullptr;
  for (const BackupInfo& b : backups) {
    if (b.url.starts_with(source + "&backup=")) newest = &b;
  }
  if (newest == nullptr) {
    return StartFailingJob("restore", name, source, what + ": the source has no backups");
  }
  VolumeInfo v;
  v.name = name;
  v.object_path = "/org/shorthorn/Storage1/volumes/" + name;
  v.size = newest->size;
  v.state = "detached";
  v.replica_count = replica_count.value_or(2);
  for (const auto& r : replicas) v.replicas.push_back({r, "r-" + name, ""});
  v.standby = true;
  v.standby_source = source;
  v.last_backup = newest->name;
  v.last_backup_created = newest->created;
  v.last_restored_at = "2025-01-02T03:05:00Z";
  volumes[name] = v;
  return StartJob("restore", name, source, true, v.size);
}

Status FakeStorageClient::Activate(const std::string& name, bool force) {
  calls.push_back("Activate " + name + (force ? " force" : ""));
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("activate", name);
  if (!v.ok()) return v.status();
  if (!(*v)->standby) {
    return Status(ErrorKind::kInvalidArgument,
                  "activate volume " + name + ": it is not a DR standby");
  }
  VolumeInfo& volume = **v;
  if (volume.last_backup.empty() && !force) {
    return Status(ErrorKind::kFailed, "activate volume " + name +
                                          ": an apply was interrupted, so it holds no whole "
                                          "backup; activate with option force=true");
  }
  volume.standby = false;
  volume.standby_source.clear();
  volume.last_restored_at.clear();
  volume.standby_error.clear();
  if (!activate_keeps_backup) {
    volume.last_backup.clear();
    volume.last_backup_created.clear();
  }
  return Status::Ok();
}

Status FakeStorageClient::AddRecurringJob(const std::string& volume, const RecurringJobInfo& job) {
  calls.push_back("AddRecurringJob " + volume + " " + job.name + " " + job.kind + " [" +
                  job.schedule + "] " + std::to_string(job.retain) +
                  (job.target.empty() ? "" : " " + job.target));
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::string what = "add recurring job " + job.name + " to volume " + volume;
  Result<VolumeInfo*> v = Find("add recurring job " + job.name + " to", volume);
  if (!v.ok()) return v.status();
  if (job.kind != "snapshot" && job.kind != "backup") {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": kind '" + job.kind + "' is neither snapshot nor backup");
  }
  auto& list = (*v)->recurring_jobs;
  for (const RecurringJobInfo& j : list) {
    if (j.name == job.name) return Status(ErrorKind::kAlreadyExists, what + ": it exists");
  }
  RecurringJobInfo added = job;  // as the daemon reports a job that never ran
  added.last_run.clear();
  added.last_result.clear();
  added.next_run = "2025-01-03T02:00:00Z";
  list.push_back(added);
  return Status::Ok();
}

Status FakeStorageClient::RemoveRecurringJob(const std::string& volume, const std::string& job) {
  calls.push_back("RemoveRecurringJob " + volume + " " + job);
  if (Status s = TakeFailure(); !s.ok()) return s;
  Result<VolumeInfo*> v = Find("remove recurring job " + job + " from", volume);
  if (!v.ok()) return v.status();
  auto& list = (*v)->recurring_jobs;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->name == job) {
      list.erase(it);
      return Status::Ok();
    }
  }
  return Status(ErrorKind::kNotFound,
                "remove recurring job " + job + " from volume " + volume + ": no such job");
}

Result<std::vector<JobInfo>> FakeStorageClient::ListJobs() {
  calls.push_back("ListJobs");
  if (Status s = TakeFailure(); !s.ok()) return s;
  std::vector<JobInfo> list;
  for (const auto& [path, states] : jobs) list.push_back(states.front());
  return list;
}

Result<JobInfo> FakeStorageClient::GetJob(const std::string& operation, const std::string& path) {
  calls.push_back("GetJob " + operation + " " + path);
  if (Status s = TakeFailure(); !s.ok()) return s;
  auto it = jobs.find(path);
  if (it == jobs.end()) {
    return Status(ErrorKind::kNotFound, operation + " job " + path + ": unknown");
  }
  return it->second.front();
}

Result<JobInfo> FakeStorageClient::WatchJob(const std::string& path,
                                            std::chrono::milliseconds interval) {
  ++watches;
  auto it = jobs.find(path);
  if (it != jobs.end() && it->second.size() > 1) it->second.pop_front();
  return GetJob("wait for", path);
}

Status FakeStorageClient::CancelJob(const std::string& path) {
  calls.push_back("CancelJob " + path);
  if (Status s = TakeFailure(); !s.ok()) return s;
  auto it = jobs.find(path);
  if (it == jobs.end()) return Status(ErrorKind::kNotFound, "cancel job " + path + ": unknown");
  JobInfo last = it->second.front();
  if (!last.cancellable) {
    return Status(ErrorKind::kInvalidArgument, "cancel job " + last.id + ": cannot be cancelled");
  }
  it->second.resize(1);
  last.state = "cancelled";
  last.message = "cancelled";
  it->second.push_back(last);
  return Status::Ok();
}

Result<std::vector<ReplicadInfo>> FakeStorageClient::ListReplicads() {
  calls.push_back("ListReplicads");
  if (Status s = TakeFailure(); !s.ok()) return s;
  if (!replicads_error.ok()) return replicads_error;
  return replicads;
}

Result<std::string> FakeStorageClient::DrainReplicad(const std::string& address) {
  calls.push_back("DrainReplicad " + address);
  if (Status s = TakeFailure(); !s.ok()) return s;
  ReplicadInfo* r = FindReplicad(address);
  if (r == nullptr) {
    return Status(ErrorKind::kInvalidArgument,
                  "drain replicad " + address + ": this fused does not know it");
  }
  r->state = "draining";
  std::string path = StartJob("drain", "", address, true, 8 << 20);
  for (JobInfo& state : jobs[path]) state.volume_path = "/";
  return path;
}

Status FakeStorageClient::UndrainReplicad(const std::string& address) {
  calls.push_back("UndrainReplicad " + address);
  if (Status s = TakeFailure(); !s.ok()) return s;
  ReplicadInfo* r = FindReplicad(address);
  if (r == nullptr || r->state != "draining") {
    return Status(ErrorKind::kNotFound, "undrain replicad " + address + ": it is not draining");
  }
  r->state = "up";
  return Status::Ok();
}

std::string FakeStorageClient::StartJob(const std::string& operation, const std::string& volume,
                                        const std::string& target, bool cancellable,
                                        uint64_t total) {
  JobInfo job;
  job.id = std::to_string(++last_job_id_);
  job.object_path = "/org/shorthorn/Storage1/jobs/" + job.id;
  job.operation = operation;
  job.volume = volume;
  job.volume_path = "/org/shorthorn/Storage1/volumes/" + volume;
  job.target = target;
  job.total_bytes = total;
  job.state = "running";
  job.cancellable = cancellable;
  std::deque<JobInfo>& states = jobs[job.object_path];
  states.push_back(job);
  job.progress = 0.5;
  job.bytes = total / 2;
  job.rate = total;
  states.push_back(job);
  job.state = next_job_state;
  job.message = next_job_message;
  if (job.state == "completed") {
    job.progress = 1;
    job.bytes = total;
  }
  states.push_back(job);
  return job.object_path;
}

std::string FakeStorageClient::StartFailingJob(const std::string& operation,
                                               const std::string& volume, const std::string& target,
                                               const std::string& message) {
  std::string state = next_job_state, text = next_job_message;
  next_job_state = "failed";
  next_job_message = message;
  std::string path = StartJob(operation, volume, target, false, 0);
  next_job_state = state;
  next_job_message = text;
  return path;
}

Result<uint64_t> FakeStorageClient::CloneSource(const std::string& name, uint64_t size,
                                                const std::string& from) {
  std::string what = "create volume " + name + " from snapshot " + from;
  size_t slash = from.find('/');
  if (slash == std::string::npos) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": from-snapshot must be VOLUME/SNAPSHOT, e.g. db1/s1");
  }
  std::string source = from.substr(0, slash), snapshot = from.substr(slash + 1);
  auto it = volumes.find(source);
  if (it == volumes.end()) {
    return Status(ErrorKind::kNotFound, what + ": volume " + source + " does not exist");
  }
  bool known = false;
  for (const auto& s : it->second.snapshots) known = known || (s.name == snapshot && !s.removed);
  if (!known) {
    return Status(ErrorKind::kNotFound,
                  what + ": volume " + source + " has no snapshot " + snapshot);
  }
  if (volumes.count(name) != 0) {
    return Status(ErrorKind::kAlreadyExists, what + ": volume " + name + " already exists");
  }
  if (size != 0 && size < it->second.size) {
    return Status(ErrorKind::kInvalidArgument, what + ": size " + std::to_string(size) +
                                                   " is smaller than the snapshot's " +
                                                   std::to_string(it->second.size));
  }
  return it->second.size;
}

void FakeStorageClient::StartCloneJob(const std::string& name, const std::string& from,
                                      uint64_t size) {
  if (clone_job == "forgotten") {
    if (next_job_state != "completed") volumes.erase(name);  // a failed copy deletes it
    return;
  }
  std::string path = StartJob("clone", name, from, true, size);
  if (clone_job == "ended") jobs[path].erase(jobs[path].begin(), jobs[path].end() - 1);
}

Result<VolumeInfo*> FakeStorageClient::Find(const std::string& operation, const std::string& name) {
  auto it = volumes.find(name);
  if (it == volumes.end()) {
    return Status(ErrorKind::kNotFound, operation + " volume " + name + ": it does not exist");
  }
  return &it->second;
}

std::vector<std::string> FakeStorageClient::SplitTags(const std::string& text) {
  std::vector<std::string> tags;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find(',', start), text.size());
    tags.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  std::sort(tags.begin(), tags.end());
  return tags;
}

ReplicadInfo* FakeStorageClient::FindReplicad(const std::string& address) {
  for (ReplicadInfo& r : replicads) {
    if (r.address == address) return &r;
  }
  return nullptr;
}

Status FakeStorageClient::TakeFailure() {
  Status s = fail_next;
  fail_next = Status::Ok();
  return s;
}

}  // namespace shorthorn::ctl::testing
