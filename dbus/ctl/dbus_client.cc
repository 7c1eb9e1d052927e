// Design notes: volumes are found by their Name property in one
// GetManagedObjects call rather than by escaping the name into an object
// path, so the client does not depend on the escaping rule and a missing
// volume is a NotFound with a plain message, not UnknownObject. Mutating calls
// get a long timeout (attach may wait on replicas' connect timeouts; sd-bus's
// default of 25 s could expire first and report a failure for an attach that
// then succeeds; the backup calls talk to the backup target, S3 perhaps, so
// they get it too). Every sdbus::Error is caught at this edge; messages of
// org.shorthorn.Storage1.Error.* are passed on as is, the bus's own errors get
// a hint in front. A job is read with one GetAll; its object being gone
// (UnknownObject) is a NotFound saying that finished jobs are forgotten.
// CreateVolume reads the new volume's properties also for a clone: while
// its copy job runs only the volume's methods are Busy, not its properties.
// Waiting for a job sleeps between reads (job_wait.h says why polling).
// Properties newer than the oldest daemon shorthornctl talks to (Standby*,
// RobustnessReason, ReplicaTags) come from the same GetManagedObjects map
// and read as "" / empty when absent, so an older fused still works.
#include "dbus/ctl/dbus_client.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <sdbus-c++/sdbus-c++.h>

#include "common/bus_names.h"
#include "dbus/ctl/exit_codes.h"
#include "dbus/ctl/job_reference.h"

namespace shorthorn::ctl {
namespace {

using bus::kBusName;
using bus::kJobInterface;
using bus::kManagerInterface;
using bus::kManagerPath;
using bus::kRootPath;
using bus::kVolumeInterface;
constexpr char kObjectManagerInterface[] = "org.freedesktop.DBus.ObjectManager";
constexpr char kPropertiesInterface[] = "org.freedesktop.DBus.Properties";
using bus::kErrorPrefix;
constexpr auto kChangeTimeout = std::chrono::minutes(5);

using Properties = std::map<std::string, sdbus::Variant>;
using ManagedObjects = std::map<sdbus::ObjectPath, std::map<std::string, Properties>>;
using ReplicaStruct = sdbus::Struct<std::string, std::string, std::string>;
using SnapshotStruct = sdbus::Struct<std::string, std::string, std::string, bool, uint64_t, bool>;
// (name, kind, schedule, retain, target, last_run, last_result, next_run).
using RecurringJobStruct = sdbus::Struct<std::string, std::string, std::string, uint32_t,
                                         std::string, std::string, std::string, std::string>;
// (url, name, volume, snapshot, created, size, blocks) of ListBackups.
using BackupStruct = sdbus::Struct<std::string, std::string, std::string, std::string, std::string,
                                   uint64_t, uint64_t>;
// (address, state, host_id, tags, total_bytes, free_bytes,
// provisioned_bytes, replicas, rebuilds, message) of ListReplicads.
using ReplicadStruct =
    sdbus::Struct<std::string, std::string, std::string, std::vector<std::string>, uint64_t,
                  uint64_t, uint64_t, uint32_t, uint32_t, std::string>;

Status FromDbusError(const sdbus::Error& e, const std::string& what) {
  ErrorKind kind = KindForDbusError(e.getName());
  if (e.getName().starts_with(kErrorPrefix)) return Status(kind, e.getMessage());
  std::string message = what + ": " + e.getMessage() + " (" + e.getName() + ")";
  if (e.getName() == "org.freedesktop.DBus.Error.UnknownMethod") {
    message = what + ": " + e.getMessage() + " (" + e.getName() +
              "; shorthorn-fused is older than this shorthornctl)";
  }
  if (e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
      e.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner") {
    message = what + ": " + kBusName + " is not on the system bus; is shorthorn-fused running?";
  }
  return Status(kind, message);
}

// Runs `body`, turning whatever it throws into a Status.
template <typename Body>
Status Guard(const std::string& what, Body&& body) {
  try {
    body();
    return Status::Ok();
  } catch (const sdbus::Error& e) {
    return FromDbusError(e, what);
  } catch (const std::exception& e) {
    return Status(ErrorKind::kFailed, what + ": " + e.what());
  }
}

// A method call that changes something: `method` of `interface` on the
// object at `path` with `args`, under the long timeout of a change; `what`
// names it in errors.
template <typename... Args>
Status Change(sdbus::IConnection& bus, const std::string& what, const std::string& path,
              const char* interface, const char* method, const Args&... args) {
  return Guard(what, [&] {
    auto proxy = sdbus::createProxy(bus, kBusName, path);
    proxy->callMethod(method)
        .onInterface(interface)
        .withTimeout(kChangeTimeout)
        .withArguments(args...);
  });
}

// The same for a method that returns one value.
template <typename Reply, typename... Args>
Result<Reply> ChangeFor(sdbus::IConnection& bus, const std::string& what, const std::string& path,
                        const char* interface, const char* method, const Args&... args) {
  Reply reply{};
  SH_RETURN_IF_ERROR(Guard(what, [&] {
    auto proxy = sdbus::createProxy(bus, kBusName, path);
    proxy->callMethod(method)
        .onInterface(interface)
        .withTimeout(kChangeTimeout)
        .withArguments(args...)
        .storeResultsTo(reply);
  }));
  return reply;
}

// A method that starts a job: the job's object path.
template <typename... Args>
Result<std::string> StartJob(sdbus::IConnection& bus, const std::string& what,
                             const std::string& path, const char* interface, const char* method,
                             const Args&... args) {
  Result<sdbus::ObjectPath> job =
      ChangeFor<sdbus::ObjectPath>(bus, what, path, interface, method, args...);
  if (!job.ok()) return job.status();
  return std::string(*job);
}

template <typename T>
T Property(const Properties& properties, const char* name) {
  auto it = properties.find(name);
  if (it == properties.end()) return T{};
  return it->second.get<T>();
}

VolumeInfo ToVolumeInfo(const std::string& path, const Properties& properties) {
  VolumeInfo v;
  v.object_path = path;
  v.name = Property<std::string>(properties, "Name");
  v.size = Property<uint64_t>(properties, "Size");
  v.state = Property<std::string>(properties, "State");
  v.frontend_path = Property<std::string>(properties, "FrontendPath");
  v.loop_device = Property<std::string>(properties, "LoopDevice");
  for (const ReplicaStruct& r : Property<std::vector<ReplicaStruct>>(properties, "Replicas")) {
    v.replicas.push_back({r.get<0>(), r.get<1>(), r.get<2>()});
  }
  v.actual_size = Property<uint64_t>(properties, "ActualSize");
  v.replica_count = Property<uint32_t>(properties, "ReplicaCount");
  v.robustness = Property<std::string>(properties, "Robustness");
  v.robustness_reason = Property<std::string>(properties, "RobustnessReason");
  v.replica_tags = Property<std::vector<std::string>>(properties, "ReplicaTags");
  v.state_reason = Property<std::string>(properties, "StateReason");
  v.statistics = Property<std::map<std::string, uint64_t>>(properties, "Statistics");
  for (const SnapshotStruct& s : Property<std::vector<SnapshotStruct>>(properties, "Snapshots")) {
    v.snapshots.push_back({s.get<0>(), s.get<1>(), s.get<2>(), s.get<3>(), s.get<4>(), s.get<5>()});
  }
  for (const RecurringJobStruct& j :
       Property<std::vector<RecurringJobStruct>>(properties, "RecurringJobs")) {
    v.recurring_jobs.push_back({j.get<0>(), j.get<1>(), j.get<2>(), j.get<3>(), j.get<4>(),
                                j.get<5>(), j.get<6>(), j.get<7>()});
  }
  v.standby = Property<bool>(properties, "Standby");
  v.standby_source = Property<std::string>(properties, "StandbySource");
  v.last_backup = Property<std::string>(properties, "LastBackup");
  v.last_backup_created = Property<std::string>(properties, "LastBackupCreated");
  v.last_restored_at = Property<std::string>(properties, "LastRestoredAt");
  v.standby_error = Property<std::string>(properties, "StandbyError");
  return v;
}

JobInfo ToJobInfo(const std::string& path, const Properties& properties) {
  JobInfo j;
  j.object_path = path;
  j.id = JobIdOf(path);
  j.operation = Property<std::string>(properties, "Operation");
  j.volume_path = Property<sdbus::ObjectPath>(properties, "Volume");
  j.target = Property<std::string>(properties, "Target");
  j.progress = Property<double>(properties, "Progress");
  j.bytes = Property<uint64_t>(properties, "Bytes");
  j.total_bytes = Property<uint64_t>(properties, "TotalBytes");
  j.rate = Property<uint64_t>(properties, "Rate");
  j.state = Property<std::string>(properties, "State");
  j.message = Property<std::string>(properties, "Message");
  j.cancellable = Property<bool>(properties, "Cancellable");
  return j;
}

// "show job 7" for the messages of calls on a job.
std::string JobWhat(const std::string& operation, const std::string& path) {
  return operation + " job " + JobIdOf(path);
}

// A job object that is not (or no longer) exported.
Status JobGone(const std::string& operation, const std::string& path) {
  return Status(ErrorKind::kNotFound,
                JobWhat(operation, path) +
                    ": shorthorn-fused does not know it (a job is forgotten about a minute "
                    "after it ends)");
}

bool IsUnknownObject(const sdbus::Error& e) {
  return e.getName() == "org.freedesktop.DBus.Error.UnknownObject" ||
         e.getName() == "org.freedesktop.DBus.Error.UnknownInterface";
}

}  // namespace

Result<std::unique_ptr<StorageClient>> DbusStorageClient::Connect() {
  std::unique_ptr<sdbus::IConnection> connection;
  Status s =
      Guard("connect to the system bus", [&] { connection = sdbus::createSystemBusConnection(); });
  if (!s.ok()) return Status(ErrorKind::kUnavailable, s.message());
  return std::unique_ptr<StorageClient>(new DbusStorageClient(std::move(connection)));
}

Result<std::vector<VolumeInfo>> DbusStorageClient::ListVolumes() {
  ManagedObjects objects;
  SH_RETURN_IF_ERROR(Guard("list volumes", [&] {
    auto proxy = sdbus::createProxy(*connection_, kBusName, kRootPath);
    proxy->callMethod("GetManagedObjects")
        .onInterface(kObjectManagerInterface)
        .storeResultsTo(objects);
  }));
  std::vector<VolumeInfo> volumes;
  Status converted = Guard("list volumes", [&] {
    for (const auto& [path, interfaces] : objects) {
      auto it = interfaces.find(kVolumeInterface);
      if (it != interfaces.end()) volumes.push_back(ToVolumeInfo(path, it->second));
    }
  });
  SH_RETURN_IF_ERROR(converted);
  std::sort(volumes.begin(), volumes.end(),
            [](const VolumeInfo& a, const VolumeInfo& b) { return a.name < b.name; });
  return volumes;
}

Result<VolumeInfo> DbusStorageClient::GetVolume(const std::string& operation,
                                                const std::string& name) {
  Result<std::vector<VolumeInfo>> volumes = ListVolumes();
  if (!volumes.ok()) return volumes.status();
  for (VolumeInfo& v : *volumes) {
    if (v.name == name) return std::move(v);
  }
  return Status(ErrorKind::kNotFound, operation + " volume " + name + ": it does not exist");
}

Result<VolumeInfo> DbusStorageClient::ImportVolume(const std::string& name,
                                                   const std::vector<std::string>& replicads) {
  SH_RETURN_IF_ERROR(Change(*connection_, "import volume " + name, kManagerPath, kManagerInterface,
                            "ImportVolume", name, replicads, Properties{}));
  return GetVolume("import", name);
}

Result<VolumeInfo> DbusStorageClient::CreateVolume(const std::string& name, uint64_t size,
                                                   const std::vector<std::string>& replicas,
                                                   const CreateOptions& options) {
  Properties dbus_options;
  if (options.replica_count.has_value()) {
    dbus_options["replica-count"] = sdbus::Variant(*options.replica_count);
  }
  if (!options.from_snapshot.empty()) {
    dbus_options["from-snapshot"] = sdbus::Variant(options.from_snapshot);
  }
  if (!options.replica_tags.empty()) {
    dbus_options["replica-tags"] = sdbus::Variant(options.replica_tags);
  }
  Result<sdbus::ObjectPath> path = ChangeFor<sdbus::ObjectPath>(
      *connection_, "create volume " + name, kManagerPath, kManagerInterface, "CreateVolume", name,
      size, replicas, dbus_options);
  if (!path.ok()) return path.status();
  Properties properties;
  SH_RETURN_IF_ERROR(Guard("read volume " + name, [&] {
    auto volume = sdbus::createProxy(*connection_, kBusName, *path);
    volume->callMethod("GetAll")
        .onInterface(kPropertiesInterface)
        .withArguments(std::string(kVolumeInterface))
        .storeResultsTo(properties);
  }));
  VolumeInfo info;
  SH_RETURN_IF_ERROR(Guard("read volume " + name, [&] { info = ToVolumeInfo(*path, properties); }));
  return info;
}

Status DbusStorageClient::DeleteVolume(const std::string& name, bool force) {
  Properties options;
  if (force) options["force"] = sdbus::Variant(true);
  return Change(*connection_, "delete volume " + name, kManagerPath, kManagerInterface,
                "DeleteVolume", name, options);
}

Result<std::string> DbusStorageClient::Attach(const std::string& name,
                                              const AttachOptions& attach) {
  Result<std::string> path = VolumePath("attach", name);
  if (!path.ok()) return path.status();
  Properties options;
  if (attach.maintenance) {
    options["maintenance"] = sdbus::Variant(true);
  } else if (attach.frontend == Frontend::kFile) {
    options["frontend"] = sdbus::Variant(std::string("file"));
  }
  if (attach.salvage) options["salvage"] = sdbus::Variant(true);
  return ChangeFor<std::string>(*connection_, "attach volume " + name, *path, kVolumeInterface,
                                "Attach", options);
}

Status DbusStorageClient::Detach(const std::string& name) {
  Result<std::string> path = VolumePath("detach", name);
  if (!path.ok()) return path.status();
  return Change(*connection_, "detach volume " + name, *path, kVolumeInterface, "Detach",
                Properties{});
}

Result<std::string> DbusStorageClient::VolumePath(const std::string& operation,
                                                  const std::string& name) {
  Result<VolumeInfo> volume = GetVolume(operation, name);
  if (!volume.ok()) return volume.status();
  return volume->object_path;
}

Status DbusStorageClient::Expand(const std::string& name, uint64_t size) {
  Result<std::string> path = VolumePath("expand", name);
  if (!path.ok()) return path.status();
  return Change(*connection_, "expand volume " + name, *path, kVolumeInterface, "Expand", size,
                Properties{});
}

Result<std::string> DbusStorageClient::Verify(const std::string& name) {
  Result<std::string> path = VolumePath("verify", name);
  if (!path.ok()) return path.status();
  return StartJob(*connection_, "verify volume " + name, *path, kVolumeInterface, "Verify",
                  Properties{});
}

Result<std::string> DbusStorageClient::Scrub(const std::string& name) {
  Result<std::string> path = VolumePath("scrub", name);
  if (!path.ok()) return path.status();
  return StartJob(*connection_, "scrub volume " + name, *path, kVolumeInterface, "Scrub",
                  Properties{});
}

Status DbusStorageClient::SetReplicaCount(const std::string& name, uint32_t count) {
  Result<std::string> path = VolumePath("set the replica count of", name);
  if (!path.ok()) return path.status();
  return Change(*connection_, "set the replica count of volume " + name, *path, kVolumeInterface,
                "SetReplicaCount", count, Properties{});
}

Status DbusStorageClient::Rebuild(const std::string& name) {
  Result<std::string> path = VolumePath("rebuild", name);
  if (!path.ok()) return path.status();
  return Change(*connection_, "rebuild volume " + name, *path, kVolumeInterface, "Rebuild",
                Properties{});
}

Status DbusStorageClient::CreateSnapshot(const std::string& volume, const std::string& snapshot) {
  Result<std::string> path = VolumePath("snapshot", volume);
  if (!path.ok()) return path.status();
  return Change(*connection_, "snapshot volume " + volume, *path, kVolumeInterface, "Snapshot",
                snapshot, Properties{});
}

Result<std::string> DbusStorageClient::DeleteSnapshot(const std::string& volume,
                                                      const std::string& snapshot) {
  Result<std::string> path = VolumePath("delete snapshot " + snapshot + " of", volume);
  if (!path.ok()) return path.status();
  return StartJob(*connection_, "delete snapshot " + snapshot + " of volume " + volume, *path,
                  kVolumeInterface, "DeleteSnapshot", snapshot, Properties{});
}

Status DbusStorageClient::RevertSnapshot(const std::string& volume, const std::string& snapshot) {
  Result<std::string> path = VolumePath("revert", volume);
  if (!path.ok()) return path.status();
  return Change(*connection_, "revert volume " + volume + " to snapshot " + snapshot, *path,
                kVolumeInterface, "Revert", snapshot, Properties{});
}

Result<std::string> DbusStorageClient::CreateBackup(const std::string& volume,
                                                    const std::string& snapshot,
                                                    const std::string& target) {
  Result<std::string> path = VolumePath("back up", volume);
  if (!path.ok()) return path.status();
  Properties options;
  if (!target.empty()) options["target"] = sdbus::Variant(target);
  return StartJob(*connection_, "back up snapshot " + snapshot + " of volume " + volume, *path,
                  kVolumeInterface, "Backup", snapshot, options);
}

Result<std::vector<BackupInfo>> DbusStorageClient::ListBackups(const std::string& target,
                                                               const std::string& volume) {
  auto found = ChangeFor<std::vector<BackupStruct>>(
      *connection_, "list backups of volume " + volume, kManagerPath, kManagerInterface,
      "ListBackups", target, volume, Properties{});
  if (!found.ok()) return found.status();
  std::vector<BackupInfo> backups;
  for (const BackupStruct& b : *found) {
    backups.push_back(
        {b.get<0>(), b.get<1>(), b.get<2>(), b.get<3>(), b.get<4>(), b.get<5>(), b.get<6>()});
  }
  return backups;
}

Result<std::string> DbusStorageClient::DeleteBackup(const std::string& url) {
  return StartJob(*connection_, "delete backup " + url, kManagerPath, kManagerInterface,
                  "DeleteBackup", url, Properties{});
}

Result<std::string> DbusStorageClient::RestoreVolume(const std::string& name,
                                                     const std::string& url,
                                                     const std::vector<std::string>& replicas,
                                                     std::optional<uint32_t> replica_count,
                                                     const std::string& replica_tags) {
  Properties options;
  if (replica_count.has_value()) options["replica-count"] = sdbus::Variant(*replica_count);
  if (!replica_tags.empty()) options["replica-tags"] = sdbus::Variant(replica_tags);
  return StartJob(*connection_, "restore volume " + name + " from " + url, kManagerPath,
                  kManagerInterface, "RestoreVolume", name, url, replicas, options);
}

Result<std::string> DbusStorageClient::CreateStandbyVolume(const std::string& name,
                                                           const std::string& source,
                                                           const std::vector<std::string>& replicas,
                                                           std::optional<uint32_t> replica_count,
                                                           const std::string& replica_tags,
                                                           std::optional<uint32_t> poll_interval) {
  Properties options;
  if (replica_count.has_value()) options["replica-count"] = sdbus::Variant(*replica_count);
  if (!replica_tags.empty()) options["replica-tags"] = sdbus::Variant(replica_tags);
  if (poll_interval.has_value()) options["poll-interval"] = sdbus::Variant(*poll_interval);
  return StartJob(*connection_, "create standby volume " + name + " of " + source, kManagerPath,
                  kManagerInterface, "CreateStandbyVolume", name, source, replicas, options);
}

Status DbusStorageClient::Activate(const std::string& name, bool force) {
  Result<std::string> path = VolumePath("activate", name);
  if (!path.ok()) return path.status();
  Properties options;
  if (force) options["force"] = sdbus::Variant(true);
  return Change(*connection_, "activate volume " + name, *path, kVolumeInterface, "Activate",
                options);
}

Status DbusStorageClient::AddRecurringJob(const std::string& volume, const RecurringJobInfo& job) {
  Result<std::string> path = VolumePath("add recurring job " + job.name + " to", volume);
  if (!path.ok()) return path.status();
  Properties options;
  if (!job.target.empty()) options["target"] = sdbus::Variant(job.target);
  return Change(*connection_, "add recurring job " + job.name + " to volume " + volume, *path,
                kVolumeInterface, "AddRecurringJob", job.name, job.kind, job.schedule, job.retain,
                options);
}

Status DbusStorageClient::RemoveRecurringJob(const std::string& volume, const std::string& job) {
  Result<std::string> path = VolumePath("remove recurring job " + job + " from", volume);
  if (!path.ok()) return path.status();
  return Change(*connection_, "remove recurring job " + job + " from volume " + volume, *path,
                kVolumeInterface, "RemoveRecurringJob", job, Properties{});
}

Result<JobInfo> DbusStorageClient::ReadJob(const std::string& operation, const std::string& path) {
  Properties properties;
  bool gone = false;
  SH_RETURN_IF_ERROR(Guard(JobWhat(operation, path), [&] {
    try {
      auto proxy = sdbus::createProxy(*connection_, kBusName, path);
      proxy->callMethod("GetAll")
          .onInterface(kPropertiesInterface)
          .withArguments(std::string(kJobInterface))
          .storeResultsTo(properties);
    } catch (const sdbus::Error& e) {
      if (!IsUnknownObject(e)) throw;
      gone = true;
    }
  }));
  if (gone) return JobGone(operation, path);
  JobInfo job;
  SH_RETURN_IF_ERROR(Guard(JobWhat(operation, path), [&] { job = ToJobInfo(path, properties); }));
  return job;
}

std::string DbusStorageClient::VolumeNameAt(const std::string& path) {
  if (path.empty() || path == "/") return "";
  std::string name;
  Status s = Guard("read volume " + path, [&] {
    auto proxy = sdbus::createProxy(*connection_, kBusName, path);
    name = proxy->getProperty("Name").onInterface(kVolumeInterface).get<std::string>();
  });
  return s.ok() ? name : "";
}

Result<std::vector<JobInfo>> DbusStorageClient::ListJobs() {
  std::vector<sdbus::ObjectPath> paths;
  SH_RETURN_IF_ERROR(Guard("list jobs", [&] {
    auto manager = sdbus::createProxy(*connection_, kBusName, kManagerPath);
    manager->callMethod("ListJobs").onInterface(kManagerInterface).storeResultsTo(paths);
  }));
  Result<std::vector<VolumeInfo>> volumes = ListVolumes();
  if (!volumes.ok()) return volumes.status();
  std::map<std::string, std::string> names;  // object path -> volume name
  for (const VolumeInfo& v : *volumes) names[v.object_path] = v.name;
  std::vector<JobInfo> jobs;
  for (const sdbus::ObjectPath& path : paths) {
    Result<JobInfo> job = ReadJob("list", path);
    if (!job.ok() && job.status().kind() == ErrorKind::kNotFound) continue;  // just forgotten
    if (!job.ok()) return job.status();
    job->volume = names.count(job->volume_path) ? names[job->volume_path] : "";
    jobs.push_back(std::move(*job));
  }
  // By id, as numbers: job 10 comes after job 9.
  std::sort(jobs.begin(), jobs.end(), [](const JobInfo& a, const JobInfo& b) {
    return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
  });
  return jobs;
}

Result<JobInfo> DbusStorageClient::GetJob(const std::string& operation, const std::string& path) {
  Result<JobInfo> job = ReadJob(operation, path);
  if (!job.ok()) return job.status();
  job->volume = VolumeNameAt(job->volume_path);
  return job;
}

Result<JobInfo> DbusStorageClient::WatchJob(const std::string& path,
                                            std::chrono::milliseconds interval) {
  std::this_thread::sleep_for(interval);
  return GetJob("wait for", path);
}

Status DbusStorageClient::CancelJob(const std::string& path) {
  bool gone = false;
  SH_RETURN_IF_ERROR(Guard(JobWhat("cancel", path), [&] {
    try {
      auto proxy = sdbus::createProxy(*connection_, kBusName, path);
      auto call = proxy->createMethodCall(kJobInterface, "Cancel");
      proxy->callMethod(
          call, std::chrono::duration_cast<std::chrono::microseconds>(kChangeTimeout).count());
    } catch (const sdbus::Error& e) {
      if (!IsUnknownObject(e)) throw;
      gone = true;
    }
  }));
  return gone ? JobGone("cancel", path) : Status::Ok();
}

Result<std::vector<ReplicadInfo>> DbusStorageClient::ListReplicads() {
  auto found =
      ChangeFor<std::vector<ReplicadStruct>>(*connection_, "list replicads", kManagerPath,
                                             kManagerInterface, "ListReplicads", Properties{});
  if (!found.ok()) return found.status();
  std::vector<ReplicadInfo> replicads;
  for (const ReplicadStruct& r : *found) {
    replicads.push_back({r.get<0>(), r.get<1>(), r.get<2>(), r.get<3>(), r.get<4>(), r.get<5>(),
                         r.get<6>(), r.get<7>(), r.get<8>(), r.get<9>()});
  }
  return replicads;
}

Result<std::string> DbusStorageClient::DrainReplicad(const std::string& address) {
  return StartJob(*connection_, "drain replicad " + address, kManagerPath, kManagerInterface,
                  "DrainReplicad", address, Properties{});
}

Status DbusStorageClient::UndrainReplicad(const std::string& address) {
  return Change(*connection_, "undrain replicad " + address, kManagerPath, kManagerInterface,
                "UndrainReplicad", address, Properties{});
}

}  // namespace shorthorn::ctl
