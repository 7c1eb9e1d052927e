// The Manager interface's method handlers (org.shorthorn.Storage1.Manager):
// each checks the caller, converts the arguments and runs the manager call on
// AsyncCalls' workers (see the design notes in dbus_service.cc). They run on
// the loop thread and never block it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sdbus-c++/Types.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"
#include "fused/dbus/dbus_service.h"

namespace shorthorn::fused::dbus {

void DbusService::HandleCreateVolume(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("CreateVolume", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string name;
  uint64_t size = 0;
  std::vector<std::string> replicas;
  DbusOptions raw_options;
  call >> name >> size >> replicas >> raw_options;
  Status replicads = authorizer_.CheckReplicas("CreateVolume", call, replicas);
  if (!replicads.ok()) throw ToDbusError(replicads);
  Result<Options> options = ConvertOptions("CreateVolume", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("CreateVolume", name, std::move(call),
              [this, name, size, replicas, options = std::move(*options)]() -> AsyncCalls::Reply {
                Status created = manager_.CreateVolume(name, size, replicas, options);
                if (!created.ok()) throw ToDbusError(created);
                // Export the object before the reply even if the listener is late.
                Result<VolumeInfo> info = manager_.GetVolume(name);
                if (info.ok()) events_->VolumeAdded(*info);
                return ReplyWith(sdbus::ObjectPath(VolumeObjectPath(name)));
              });
}

void DbusService::HandleImportVolume(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("ImportVolume", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string name;
  std::vector<std::string> replicads;
  DbusOptions raw_options;
  call >> name >> replicads >> raw_options;
  Status reachable = authorizer_.CheckReplicas("ImportVolume", call, replicads);
  if (!reachable.ok()) throw ToDbusError(reachable);
  Result<Options> options = ConvertOptions("ImportVolume", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("ImportVolume", name, std::move(call),
              [this, name, replicads, options = std::move(*options)]() -> AsyncCalls::Reply {
                Status imported = manager_.ImportVolume(name, replicads, options);
                if (!imported.ok()) throw ToDbusError(imported);
                Result<VolumeInfo> info = manager_.GetVolume(name);
                if (info.ok()) events_->VolumeAdded(*info);
                return ReplyWith(sdbus::ObjectPath(VolumeObjectPath(name)));
              });
}

void DbusService::HandleDeleteVolume(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("DeleteVolume", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string name;
  DbusOptions raw_options;
  call >> name >> raw_options;
  Result<Options> options = ConvertOptions("DeleteVolume", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("DeleteVolume", name, std::move(call),
              [this, name, options = std::move(*options)]() -> AsyncCalls::Reply {
                Status deleted = manager_.DeleteVolume(name, options);
                if (!deleted.ok()) throw ToDbusError(deleted);
                events_->VolumeRemoved(name);
                return ReplyWith();
              });
}

void DbusService::HandleListVolumes(sdbus::MethodCall call) {
  // The exported objects, which are what a caller can use next.
  std::vector<sdbus::ObjectPath> paths;
  paths.reserve(volumes_.size());
  for (const auto& [name, object] : volumes_) paths.emplace_back(object->path());
  auto reply = call.createReply();
  reply << paths;
  reply.send();
}

void DbusService::HandleListJobs(sdbus::MethodCall call) {
  std::vector<sdbus::ObjectPath> paths;
  paths.reserve(jobs_.size());
  for (const auto& [id, object] : jobs_) paths.emplace_back(object->path());
  auto reply = call.createReply();
  reply << paths;
  reply.send();
}

AsyncCalls::Reply DbusService::JobReply(uint64_t id) {
  events_->RequestJobRefresh(id);  // applied before the reply is sent
  return ReplyWith(sdbus::ObjectPath(JobObjectPath(id)));
}

// ListBackups talks to the target with fused's credentials (and to any
// directory a file:// URL names), so it needs the same rights as a change.
void DbusService::HandleListBackups(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("ListBackups", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string target, volume;
  DbusOptions raw_options;
  call >> target >> volume >> raw_options;
  Status target_allowed = authorizer_.CheckTarget("ListBackups", call, target);
  if (!target_allowed.ok()) throw ToDbusError(target_allowed);
  Result<Options> options = ConvertOptions("ListBackups", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("ListBackups", kBackupsKey, std::move(call),
              [this, target, volume, options = std::move(*options)]() -> AsyncCalls::Reply {
                auto backups = manager_.ListBackups(target, volume, options);
                if (!backups.ok()) throw ToDbusError(backups.status());
                std::vector<sdbus::Struct<std::string, std::string, std::string, std::string,
                                          std::string, uint64_t, uint64_t>>
                    out;
                for (const auto& b : *backups) {
                  out.emplace_back(b.url, b.name, b.volume, b.snapshot, b.created, b.size,
                                   b.blocks);
                }
                return ReplyWith(std::move(out));
              });
}

void DbusService::HandleDeleteBackup(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("DeleteBackup", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string url;
  DbusOptions raw_options;
  call >> url >> raw_options;
  Status target_allowed = authorizer_.CheckTarget("DeleteBackup", call, BackupUrlTarget(url));
  if (!target_allowed.ok()) throw ToDbusError(target_allowed);
  Result<Options> options = ConvertOptions("DeleteBackup", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("DeleteBackup", kBackupsKey, std::move(call),
              [this, url, options = std::move(*options)]() -> AsyncCalls::Reply {
                auto job = manager_.DeleteBackup(url, options);
                if (!job.ok()) throw ToDbusError(job.status());
                return JobReply(*job);
              });
}

void DbusService::HandleRestoreVolume(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("RestoreVolume", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string name, url;
  std::vector<std::string> replicas;
  DbusOptions raw_options;
  call >> name >> url >> replicas >> raw_options;
  Status replicads = authorizer_.CheckReplicas("RestoreVolume", call, replicas);
  if (!replicads.ok()) throw ToDbusError(replicads);
  Status target_allowed = authorizer_.CheckTarget("RestoreVolume", call, BackupUrlTarget(url));
  if (!target_allowed.ok()) throw ToDbusError(target_allowed);
  Result<Options> options = ConvertOptions("RestoreVolume", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("RestoreVolume", name, std::move(call),
              [this, name, url, replicas, options = std::move(*options)]() -> AsyncCalls::Reply {
                auto job = manager_.RestoreVolume(name, url, replicas, options);
                if (!job.ok()) throw ToDbusError(job.status());
                return JobReply(*job);
              });
}

void DbusService::HandleCreateStandbyVolume(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("CreateStandbyVolume", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string name, url;
  std::vector<std::string> replicas;
  DbusOptions raw_options;
  call >> name >> url >> replicas >> raw_options;
  Status replicads = authorizer_.CheckReplicas("CreateStandbyVolume", call, replicas);
  if (!replicads.ok()) throw ToDbusError(replicads);
  // The standby reads the target on every poll, as root.
  Status target_allowed =
      authorizer_.CheckTarget("CreateStandbyVolume", call, BackupUrlTarget(url));
  if (!target_allowed.ok()) throw ToDbusError(target_allowed);
  Result<Options> options = ConvertOptions("CreateStandbyVolume", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run("CreateStandbyVolume", name, std::move(call),
              [this, name, url, replicas, options = std::move(*options)]() -> AsyncCalls::Reply {
                auto job = manager_.CreateStandbyVolume(name, url, replicas, options);
                if (!job.ok()) throw ToDbusError(job.status());
                return JobReply(*job);
              });
}

// ListReplicads connects to replicads with the cluster key: as a change.
void DbusService::HandleListReplicads(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("ListReplicads", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  DbusOptions raw_options;
  call >> raw_options;
  Result<Options> options = ConvertOptions("ListReplicads", raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run(
      "ListReplicads", kReplicadsKey, std::move(call),
      [this, options = std::move(*options)]() -> AsyncCalls::Reply {
        auto listed = manager_.ListReplicads(options);
        if (!listed.ok()) throw ToDbusError(listed.status());
        std::vector<sdbus::Struct<std::string, std::string, std::string, std::vector<std::string>,
                                  uint64_t, uint64_t, uint64_t, uint32_t, uint32_t, std::string>>
            out;
        for (const auto& r : *listed) {
          out.emplace_back(r.address, ReplicadStateName(r.state), r.host_id, r.tags, r.total_bytes,
                           r.free_bytes, r.provisioned_bytes, r.replicas, r.rebuilds, r.message);
        }
        return ReplyWith(std::move(out));
      });
}

void DbusService::HandleDrainReplicad(sdbus::MethodCall call, bool drain) {
  const char* method = drain ? "DrainReplicad" : "UndrainReplicad";
  Status allowed = authorizer_.CheckCaller(method, call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  std::string address;
  DbusOptions raw_options;
  call >> address >> raw_options;
  Result<Options> options = ConvertOptions(method, raw_options);
  if (!options.ok()) throw ToDbusError(options.status());
  calls_->Run(method, kReplicadsKey, std::move(call),
              [this, drain, address, options = std::move(*options)]() -> AsyncCalls::Reply {
                if (!drain) {
                  Status s = manager_.UndrainReplicad(address, options);
                  if (!s.ok()) throw ToDbusError(s);
                  return ReplyWith();
                }
                auto job = manager_.DrainReplicad(address, options);
                if (!job.ok()) throw ToDbusError(job.status());
                return JobReply(*job);
              });
}

}  // namespace shorthorn::fused::dbus
