// Design notes: CreateVolume with from-snapshot returns the new volume, not
// its copy job, so "volume create --from-snapshot" finds the job in
// ListJobs: Operation "clone" with the new volume as its Volume, the newest
// id when there are several (an earlier clone of that name that failed and
// was deleted may still be listed). The job is started before the call
// returns, so it is listed unless it has ended and been forgotten (a
// minute after its end); a job that ended is still followed, FollowJob
// reports its final state. A forgotten job is judged by the volume: a
// failed copy deletes it, so a volume still there was copied.
//
// "volume activate" reads the volume before and after Activate. The text
// uses the backup the volume reports after (fused keeps LastBackup* once
// the volume is no standby: the backup it was activated with); when those
// are empty it falls back to the value read before, which is what the
// volume holds unless activation applied a newer backup, and says so.
#include "dbus/ctl/volume_commands.h"

#include <optional>

#include <boost/json.hpp>

#include "dbus/ctl/job_commands.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// "Created volume db2 from snapshot db1/s1: 10 GiB, 2 replicas, detached.\n"
std::string CreatedText(const VolumeInfo& volume, const std::string& from_snapshot) {
  return "Created volume " + volume.name +
         (from_snapshot.empty() ? "" : " from snapshot " + from_snapshot) + ": " +
         FormatSize(volume.size) + ", " + Plural(volume.replicas.size(), "replica") + ", " +
         volume.state + ".\n";
}

// Job ids in the order the daemon gave them out: 10 after 9.
bool OlderJob(const JobInfo& a, const JobInfo& b) {
  return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
}

// The object path of the newest clone job of volume `name`, or "" when the
// daemon lists none (it ended and was forgotten).
Result<std::string> FindCloneJob(StorageClient& client, const std::string& name) {
  Result<std::vector<JobInfo>> jobs = client.ListJobs();
  if (!jobs.ok()) return jobs.status();
  const JobInfo* newest = nullptr;
  for (const JobInfo& j : *jobs) {
    if (j.operation != "clone" || j.volume != name) continue;
    if (newest == nullptr || OlderJob(*newest, j)) newest = &j;
  }
  return newest == nullptr ? std::string() : newest->object_path;
}

// After a clone was created: names its copy job, or with --wait waits for
// it (FollowJob) and shows the volume as it then is.
Status FollowClone(const Invocation& invocation, StorageClient& client, Output& output,
                   const VolumeInfo& volume, const std::string& from_snapshot) {
  const std::string what = "create volume " + volume.name + " from snapshot " + from_snapshot;
  Result<std::string> job = FindCloneJob(client, volume.name);
  if (!job.ok()) {
    return Status(job.status().kind(), what + ": the volume is created, but its copy job " +
                                           "could not be found: " + job.status().message());
  }
  boost::json::object json = VolumeToJson(volume);
  if (job->empty()) {
    // Ended over a minute ago and forgotten; a failed copy would have
    // deleted the volume, so one that is still there is complete.
    Result<VolumeInfo> now = client.GetVolume("create", volume.name);
    if (!now.ok() && now.status().kind() == ErrorKind::kNotFound) {
      return Status(ErrorKind::kFailed,
                    what +
                        ": the copy job has ended and is forgotten, and the volume is gone: "
                        "the copy failed (shorthorn-fused's log says why)");
    }
    if (!now.ok()) return now.status();
    json = VolumeToJson(*now);
    json["job"] = nullptr;
    output.Json(json);
    output.Text(CreatedText(*now, from_snapshot) +
                "Its copy job has already ended; shorthorn-fused no longer lists it.\n");
    return Status::Ok();
  }
  if (!invocation.Has("wait")) {
    json["job"] = *job;
    output.Json(json);
    output.Text("Created volume " + volume.name + " from snapshot " + from_snapshot +
                "; copying in job " + *job + ".\n");
    return Status::Ok();
  }
  return FollowJob(invocation, client, output, *job, std::move(json),
                   [&](const JobInfo&, boost::json::object& result) {
                     // The copy changed what the volume holds (ActualSize).
                     Result<VolumeInfo> now = client.GetVolume("show", volume.name);
                     if (!now.ok()) return CreatedText(volume, from_snapshot);
                     for (const auto& member : VolumeToJson(*now)) {
                       result[member.key()] = member.value();
                     }
                     return CreatedText(*now, from_snapshot);
                   });
}

// The value of count option `name` (checked by the parser), unset when absent.
Result<std::optional<uint32_t>> OptionalCount(const Invocation& invocation, std::string_view name) {
  if (!invocation.Has(name)) return std::optional<uint32_t>();
  Result<uint32_t> count = ParseCount(invocation.Value(name));
  if (!count.ok()) return count.status();
  return std::optional<uint32_t>(*count);
}

// "Activated volume db1-dr: it holds backup B (created C, RPO at
// activation: 3m12s).\n", from `after` or else `before` (design notes).
std::string ActivatedText(const VolumeInfo& before, const VolumeInfo& after, std::time_t now) {
  const bool exact = !after.last_backup_created.empty();
  const VolumeInfo& v = exact ? after : before;
  const std::string head = "Activated volume " + after.name + ": ";
  if (v.last_backup_created.empty()) {
    return head +
           "shorthorn-fused reports no backup it holds (LastBackupCreated is empty), so its "
           "recovery point is unknown.\n";
  }
  const std::string age = AgeSince(v.last_backup_created, now);
  std::string text = head + "it holds backup " + (v.last_backup.empty() ? "?" : v.last_backup) +
                     " (created " + v.last_backup_created +
                     ", RPO at activation: " + (age.empty() ? "unknown" : age) + ")";
  if (!exact) text += ", unless activation applied a newer one (shorthorn-fused's log names it)";
  return text + ".\n";
}

}  // namespace

Status VolumeCreate(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  uint64_t size = 0;  // a clone's default: the snapshot's size
  if (invocation.Has("size")) {
    Result<uint64_t> parsed = ParseSize(invocation.Value("size"));  // checked by the parser
    if (!parsed.ok()) return parsed.status();
    size = *parsed;
  }
  CreateOptions options;
  if (invocation.Has("replica-count")) {
    Result<uint32_t> count = ParseCount(invocation.Value("replica-count"));  // checked too
    if (!count.ok()) return count.status();
    options.replica_count = *count;
  }
  options.from_snapshot = invocation.Value("from-snapshot");
  options.replica_tags = invocation.Value("replica-tags");  // non-empty when given (the parser)
  Result<VolumeInfo> volume =
      client.CreateVolume(name, size, invocation.Values("replica"), options);
  if (!volume.ok()) return volume.status();
  if (!options.from_snapshot.empty()) {
    return FollowClone(invocation, client, output, *volume, options.from_snapshot);
  }
  output.Json(VolumeToJson(*volume));
  output.Text(CreatedText(*volume, ""));
  return Status::Ok();
}

Status VolumeImport(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<VolumeInfo> volume = client.ImportVolume(name, invocation.Values("replicad"));
  if (!volume.ok()) return volume.status();
  output.Json(VolumeToJson(*volume));
  output.Text("Imported volume " + volume->name + ": " + FormatSize(volume->size) + ", " +
              Plural(volume->replicas.size(), "current replica") + ", " + volume->state +
              ". Its previous fused is fenced.\n");
  return Status::Ok();
}

Status VolumeList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::vector<VolumeInfo>> volumes = client.ListVolumes();
  if (!volumes.ok()) return volumes.status();
  boost::json::array array;
  for (const VolumeInfo& v : *volumes) array.push_back(VolumeToJson(v));
  output.Json(array);
  if (invocation.Has("quiet")) {
    std::string names;
    for (const VolumeInfo& v : *volumes) names += v.name + "\n";
    output.Text(names);
  } else {
    output.Text(VolumesTable(*volumes));
  }
  return Status::Ok();
}

Status VolumeShow(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume = client.GetVolume("show", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  output.Json(VolumeToJson(*volume));
  output.Text(VolumeDetails(*volume, output.Now()));
  return Status::Ok();
}

Status VolumeAttach(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  AttachOptions options;
  options.frontend = invocation.Has("file") ? Frontend::kFile : Frontend::kBlock;
  options.maintenance = invocation.Has("maintenance");  // not with --file (the parser)
  options.salvage = invocation.Has("salvage");
  // --wait is accepted and means nothing: Attach returns once the device
  // exists. It will wait for the job if Attach ever becomes one.
  Result<std::string> device = client.Attach(name, options);
  if (!device.ok()) return device.status();
  const char* frontend = options.maintenance                   ? "none"
                         : options.frontend == Frontend::kFile ? "file"
                                                               : "block";
  output.Json(boost::json::object{{"name", name},
                                  {"frontend", frontend},
                                  {"device", *device},
                                  {"maintenance", options.maintenance},
                                  {"salvage", options.salvage}});
  if (options.maintenance) {
    output.Text("Attached volume " + name +
                " in maintenance mode: its engine runs without a file or device (for snapshot "
                "revert); detach it when done.\n");
  } else {
    output.Text(*device + "\n");
  }
  return Status::Ok();
}

Status VolumeDetach(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.Detach(name));
  output.Json(boost::json::object{{"name", name}, {"state", "detached"}});
  output.Text("Detached volume " + name + ".\n");
  return Status::Ok();
}

Status VolumeDelete(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.DeleteVolume(name, invocation.Has("force")));
  output.Json(boost::json::object{{"name", name}, {"deleted", true}});
  output.Text("Deleted volume " + name + ".\n");
  return Status::Ok();
}

Status VolumeExpand(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<uint64_t> size = ParseSize(invocation.arguments.at(1));  // checked by the parser
  if (!size.ok()) return size.status();
  SH_RETURN_IF_ERROR(client.Expand(name, *size));
  output.Json(boost::json::object{{"name", name}, {"size", *size}});
  output.Text("Expanded volume " + name + " to " + FormatSize(*size) +
              "; grow its file system to match (e.g. resize2fs).\n");
  return Status::Ok();
}

Status VolumeVerify(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<std::string> job = client.Verify(name);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job, boost::json::object{{"volume", name}},
                   "Verified volume " + name + ": every snapshot layer matches its checksum.\n");
}

Status VolumeScrub(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<std::string> job = client.Scrub(name);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job, boost::json::object{{"volume", name}},
                   "Scrubbed volume " + name + ": its replicas hold the same data.\n");
}

Status VolumeRebuild(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.Rebuild(name));
  output.Json(boost::json::object{{"name", name}, {"rebuild_started", true}});
  output.Text("Started replacing the failed replicas of volume " + name +
              "; the rebuilds run as jobs (shorthornctl job list).\n");
  return Status::Ok();
}

Status VolumeCreateStandby(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  const std::string& source = invocation.arguments.at(1);
  Result<std::optional<uint32_t>> replica_count = OptionalCount(invocation, "replica-count");
  if (!replica_count.ok()) return replica_count.status();
  Result<std::optional<uint32_t>> poll_interval = OptionalCount(invocation, "poll-interval");
  if (!poll_interval.ok()) return poll_interval.status();
  Result<std::string> job =
      client.CreateStandbyVolume(name, source, invocation.Values("replica"), *replica_count,
                                 invocation.Value("replica-tags"), *poll_interval);
  if (!job.ok()) return job.status();
  const std::string created = "Created standby volume " + name + " of " + source;
  return FollowJob(invocation, client, output, *job,
                   boost::json::object{{"name", name}, {"source", source}},
                   [&](const JobInfo&, boost::json::object& result) -> std::string {
                     Result<VolumeInfo> now = client.GetVolume("show", name);
                     if (!now.ok() || now->last_backup.empty()) return created + ".\n";
                     result["volume"] = VolumeToJson(*now);
                     return created + ": it holds backup " + now->last_backup + " (created " +
                            now->last_backup_created + ").\n";
                   });
}

Status VolumeActivate(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<VolumeInfo> before = client.GetVolume("activate", name);
  if (!before.ok()) return before.status();
  SH_RETURN_IF_ERROR(client.Activate(name, invocation.Has("force")));
  Result<VolumeInfo> after = client.GetVolume("show", name);
  if (!after.ok()) {
    return Status(after.status().kind(),
                  "activate volume " + name +
                      ": it is activated, but reading it back failed: " + after.status().message());
  }
  output.Json(VolumeToJson(*after));
  output.Text(ActivatedText(*before, *after, output.Now()));
  return Status::Ok();
}

}  // namespace shorthorn::ctl
