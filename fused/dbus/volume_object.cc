// Design notes
//
// Registration uses sdbus-c++'s low-level API (method_callback receiving the
// MethodCall) because the handlers need the message itself for the caller's
// credentials. Every handler and getter runs inside GuardHandler so that only
// sdbus::Error reaches sdbus-c++. A handler checks the caller and reads the
// arguments on the loop thread, then hands the manager call to AsyncCalls:
// the manager may hold its lock for seconds while a replicad does not answer,
// and the loop must keep serving properties and other volumes meanwhile.
// Long work (DeleteSnapshot, Verify) does not block the worker either: the
// manager starts a job and the method returns its object path.
//
// After the call (successful or not) the worker reads the volume from the
// manager and queues it; a started job gets a refresh request, read when the
// loop applies it. The loop applies the queued events before it sends the
// reply. Infos read on different threads can be queued out of order (the
// manager's notifier may push a read made before ours after it), so each
// carries the manager's revision and Update drops an older one. The manager
// may also have reported the change itself already: the object then just
// sees the same state twice, which emits nothing.
#include "fused/dbus/volume_object.h"

#include <tuple>
#include <utility>

#include <sdbus-c++/Types.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"
#include "fused/dbus/property_table.h"

namespace shorthorn::fused::dbus {
namespace {

using ReplicaStruct = sdbus::Struct<std::string, std::string, std::string>;
// (name, parent, created, user_created, size_held, removed)
using SnapshotStruct = sdbus::Struct<std::string, std::string, std::string, bool, uint64_t, bool>;

// (name, kind, schedule, retain, target, last_run, last_result, next_run)
using RecurringStruct = sdbus::Struct<std::string, std::string, std::string, uint32_t, std::string,
                                      std::string, std::string, std::string>;

std::vector<RecurringStruct> RecurringStructs(const std::vector<RecurringJobInfo>& jobs) {
  std::vector<RecurringStruct> out;
  out.reserve(jobs.size());
  for (const auto& j : jobs) {
    out.emplace_back(j.name, j.kind, j.schedule, j.retain, j.target, j.last_run, j.last_result,
                     j.next_run);
  }
  return out;
}

std::vector<ReplicaStruct> ReplicaStructs(const std::vector<ReplicaInfo>& replicas) {
  std::vector<ReplicaStruct> out;
  out.reserve(replicas.size());
  for (const auto& r : replicas) out.emplace_back(r.address, r.name, r.mode);
  return out;
}

std::vector<SnapshotStruct> SnapshotStructs(const std::vector<SnapshotInfo>& snapshots) {
  std::vector<SnapshotStruct> out;
  out.reserve(snapshots.size());
  for (const auto& s : snapshots) {
    out.emplace_back(s.name, s.parent, s.created, s.user_created, s.size_held, s.removed);
  }
  return out;
}

// The Volume interface's properties, in the XML's order.
const PropertyTable<VolumeInfo>& VolumeProperties() {
  static const PropertyTable<VolumeInfo> table = [] {
    PropertyTable<VolumeInfo> t;
    t.Add("Name", "s", true, [](const VolumeInfo& i) { return i.name; })
        .Add("Size", "t", false, [](const VolumeInfo& i) { return i.size; })
        .Add("ActualSize", "t", false, [](const VolumeInfo& i) { return i.actual_size; })
        .Add("State", "s", false,
             [](const VolumeInfo& i) { return std::string(VolumeStateName(i.state)); })
        .Add("Replicas", "a(sss)", false,
             [](const VolumeInfo& i) { return ReplicaStructs(i.replicas); })
        .Add("FrontendPath", "s", false, [](const VolumeInfo& i) { return i.frontend_path; })
        .Add("LoopDevice", "s", false, [](const VolumeInfo& i) { return i.loop_device; })
        .Add("Snapshots", "a(sssbtb)", false,
             [](const VolumeInfo& i) { return SnapshotStructs(i.snapshots); })
        .Add("ReplicaCount", "u", false, [](const VolumeInfo& i) { return i.replica_count; })
        .Add("Robustness", "s", false, [](const VolumeInfo& i) { return i.robustness; })
        .Add("StateReason", "s", false, [](const VolumeInfo& i) { return i.state_reason; })
        .Add("RobustnessReason", "s", false,
             [](const VolumeInfo& i) { return i.robustness_reason; })
        .Add("ReplicaTags", "as", false, [](const VolumeInfo& i) { return i.replica_tags; })
        .Add("RecurringJobs", "a(sssussss)", false,
             [](const VolumeInfo& i) { return RecurringStructs(i.recurring_jobs); })
        .Add("Standby", "b", false, [](const VolumeInfo& i) { return i.standby; })
        .Add("StandbySource", "s", false, [](const VolumeInfo& i) { return i.standby_source; })
        .Add("LastBackup", "s", false, [](const VolumeInfo& i) { return i.last_backup; })
        .Add("LastBackupCreated", "s", false,
             [](const VolumeInfo& i) { return i.last_backup_created; })
        .Add("LastRestoredAt", "s", false, [](const VolumeInfo& i) { return i.last_restored_at; })
        .Add("StandbyError", "s", false, [](const VolumeInfo& i) { return i.standby_error; });
    return t;
  }();
  return table;
}

// Reads the a{sv} argument of `call` and converts it, or throws the error.
Options ReadOptions(std::string_view method, sdbus::MethodCall& call) {
  DbusOptions raw;
  call >> raw;
  Result<Options> options = ConvertOptions(method, raw);
  if (!options.ok()) throw ToDbusError(options.status());
  return std::move(*options);
}

void ThrowIfError(const Status& status) {
  if (!status.ok()) throw ToDbusError(status);
}

}  // namespace

std::vector<std::string> ChangedVolumeProperties(const VolumeInfo& before,
                                                 const VolumeInfo& after) {
  return VolumeProperties().Changed(before, after);
}

VolumeObject::VolumeObject(sdbus::IConnection& connection, VolumeManager& manager,
                           const Authorizer& authorizer, VolumeEventQueue& events,
                           AsyncCalls& calls, VolumeInfo info)
    : manager_(manager),
      authorizer_(authorizer),
      events_(events),
      calls_(calls),
      info_(std::move(info)),
      object_(sdbus::createObject(connection, VolumeObjectPath(info_.name))) {
  RegisterProperties();
  RegisterMethods();
  object_->finishRegistration();
}

void VolumeObject::RegisterProperties() {
  VolumeProperties().Register(*object_, kVolumeInterface, info_);
  // Live figures, read when asked: changes every I/O, so no signal.
  sdbus::Flags flags;
  flags.set(sdbus::Flags::EMITS_NO_SIGNAL);
  object_->registerProperty(
      kVolumeInterface, "Statistics", "a{st}",
      [this](sdbus::PropertyGetReply& reply) {
        GuardHandler("Get Statistics", [&] { reply << manager_.Statistics(info_.name); });
      },
      flags);
}

void VolumeObject::RegisterMethods() {
  // Each handler runs in GuardHandler under its member name.
  auto add = [this](const char* name, const char* in, std::vector<std::string> in_names,
                    const char* out, std::vector<std::string> out_names,
                    void (VolumeObject::*handler)(sdbus::MethodCall)) {
    object_->registerMethod(kVolumeInterface, name, in, in_names, out, out_names,
                            [this, name, handler](sdbus::MethodCall call) {
                              GuardHandler(name, [&] { (this->*handler)(std::move(call)); });
                            });
  };
  add("Attach", "a{sv}", {"options"}, "s", {"device"}, &VolumeObject::HandleAttach);
  add("Detach", "a{sv}", {"options"}, "", {}, &VolumeObject::HandleDetach);
  add("Snapshot", "sa{sv}", {"name", "options"}, "", {}, &VolumeObject::HandleSnapshot);
  add("DeleteSnapshot", "sa{sv}", {"name", "options"}, "o", {"job"},
      &VolumeObject::HandleDeleteSnapshot);
  add("Revert", "sa{sv}", {"name", "options"}, "", {}, &VolumeObject::HandleRevert);
  add("Expand", "ta{sv}", {"size", "options"}, "", {}, &VolumeObject::HandleExpand);
  add("Verify", "a{sv}", {"options"}, "o", {"job"}, &VolumeObject::HandleVerify);
  add("Scrub", "a{sv}", {"options"}, "o", {"job"}, &VolumeObject::HandleScrub);
  add("Backup", "sa{sv}", {"snapshot", "options"}, "o", {"job"}, &VolumeObject::HandleBackup);
  add("SetReplicaCount", "ua{sv}", {"count", "options"}, "", {},
      &VolumeObject::HandleSetReplicaCount);
  add("Rebuild", "a{sv}", {"options"}, "", {}, &VolumeObject::HandleRebuild);
  add("AddRecurringJob", "sssua{sv}", {"name", "kind", "schedule", "retain", "options"}, "", {},
      &VolumeObject::HandleAddRecurringJob);
  add("RemoveRecurringJob", "sa{sv}", {"name", "options"}, "", {},
      &VolumeObject::HandleRemoveRecurringJob);
  add("Activate", "a{sv}", {"options"}, "", {}, &VolumeObject::HandleActivate);
}

void VolumeObject::Authorize(std::string_view method, const sdbus::MethodCall& call) const {
  ThrowIfError(authorizer_.CheckCaller(method, call));
}

void VolumeObject::RunChange(const std::string& method, sdbus::MethodCall call,
                             std::function<Status(VolumeManager&, const std::string&)> change) {
  RunCall(method, std::move(call),
          [change = std::move(change)](VolumeManager& manager,
                                       const std::string& volume) -> AsyncCalls::Reply {
            ThrowIfError(change(manager, volume));
            return ReplyWith();
          });
}

void VolumeObject::RunJob(
    const std::string& method, sdbus::MethodCall call,
    std::function<Result<uint64_t>(VolumeManager&, const std::string&)> start) {
  VolumeEventQueue* events = &events_;
  RunCall(method, std::move(call),
          [start = std::move(start), events](VolumeManager& manager,
                                             const std::string& volume) -> AsyncCalls::Reply {
            Result<uint64_t> job = start(manager, volume);
            ThrowIfError(job.status());
            // Its object exists before the reply: the loop applies the
            // events queued here before it sends the reply.
            events->RequestJobRefresh(*job);
            return ReplyWith(sdbus::ObjectPath(JobObjectPath(*job)));
          });
}

void VolumeObject::RunCall(const std::string& method, sdbus::MethodCall call, Work work) {
  // The work must not use this object: the volume may be deleted (and its
  // object destroyed) while the work runs.
  VolumeManager* manager = &manager_;
  VolumeEventQueue* events = &events_;
  calls_.Run(method, info_.name, std::move(call),
             [manager, events, volume = info_.name, work = std::move(work)] {
               try {
                 AsyncCalls::Reply reply = work(*manager, volume);
                 events->RefreshVolume(*manager, volume);
                 return reply;
               } catch (...) {
                 // A failed call may have changed something too (a partial
                 // snapshot marks replicas stale).
                 events->RefreshVolume(*manager, volume);
                 throw;
               }
             });
}

void VolumeObject::HandleAttach(sdbus::MethodCall call) {
  Authorize("Attach", call);
  Options options = ReadOptions("Attach", call);
  RunCall("Attach", std::move(call),
          [options](VolumeManager& manager, const std::string& volume) -> AsyncCalls::Reply {
            Result<std::string> device = manager.Attach(volume, options);
            ThrowIfError(device.status());
            return ReplyWith(*device);
          });
}

void VolumeObject::HandleDetach(sdbus::MethodCall call) {
  Authorize("Detach", call);
  Options options = ReadOptions("Detach", call);
  RunChange("Detach", std::move(call),
            [options](VolumeManager& manager, const std::string& volume) {
              return manager.Detach(volume, options);
            });
}

void VolumeObject::HandleSnapshot(sdbus::MethodCall call) {
  Authorize("Snapshot", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Snapshot", call);
  RunChange("Snapshot", std::move(call),
            [snapshot, options](VolumeManager& manager, const std::string& volume) {
              return manager.Snapshot(volume, snapshot, options);
            });
}

void VolumeObject::HandleDeleteSnapshot(sdbus::MethodCall call) {
  Authorize("DeleteSnapshot", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("DeleteSnapshot", call);
  RunJob("DeleteSnapshot", std::move(call),
         [snapshot, options](VolumeManager& manager, const std::string& volume) {
           return manager.DeleteSnapshot(volume, snapshot, options);
         });
}

void VolumeObject::HandleBackup(sdbus::MethodCall call) {
  Authorize("Backup", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Backup", call);
  if (auto it = options.find("target"); it != options.end()) {
    // Not a string: the manager refuses it.
    if (const auto* target = std::get_if<std::string>(&it->second)) {
      ThrowIfError(authorizer_.CheckTarget("Backup", call, *target));
    }
  }
  RunJob("Backup", std::move(call),
         [snapshot, options](VolumeManager& manager, const std::string& volume) {
           return manager.Backup(volume, snapshot, options);
         });
}

void VolumeObject::HandleRevert(sdbus::MethodCall call) {
  Authorize("Revert", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Revert", call);
  RunChange("Revert", std::move(call),
            [snapshot, options](VolumeManager& manager, const std::string& volume) {
              return manager.Revert(volume, snapshot, options);
            });
}

void VolumeObject::HandleExpand(sdbus::MethodCall call) {
  Authorize("Expand", call);
  uint64_t size = 0;
  call >> size;
  Options options = ReadOptions("Expand", call);
  RunChange("Expand", std::move(call),
            [size, options](VolumeManager& manager, const std::string& volume) {
              return manager.Expand(volume, size, options);
            });
}

void VolumeObject::HandleVerify(sdbus::MethodCall call) {
  Authorize("Verify", call);
  Options options = ReadOptions("Verify", call);
  RunJob("Verify", std::move(call), [options](VolumeManager& manager, const std::string& volume) {
    return manager.Verify(volume, options);
  });
}

void VolumeObject::HandleScrub(sdbus::MethodCall call) {
  Authorize("Scrub", call);
  Options options = ReadOptions("Scrub", call);
  RunJob("Scrub", std::move(call), [options](VolumeManager& manager, const std::string& volume) {
    return manager.Scrub(volume, options);
  });
}

void VolumeObject::HandleSetReplicaCount(sdbus::MethodCall call) {
  Authorize("SetReplicaCount", call);
  uint32_t count = 0;
  call >> count;
  Options options = ReadOptions("SetReplicaCount", call);
  RunChange("SetReplicaCount", std::move(call),
            [count, options](VolumeManager& manager, const std::string& volume) {
              return manager.SetReplicaCount(volume, count, options);
            });
}

void VolumeObject::HandleRebuild(sdbus::MethodCall call) {
  Authorize("Rebuild", call);
  Options options = ReadOptions("Rebuild", call);
  RunChange("Rebuild", std::move(call),
            [options](VolumeManager& manager, const std::string& volume) {
              return manager.Rebuild(volume, options);
            });
}

void VolumeObject::HandleAddRecurringJob(sdbus::MethodCall call) {
  Authorize("AddRecurringJob", call);
  RecurringJobInfo job;
  call >> job.name >> job.kind >> job.schedule >> job.retain;
  Options options = ReadOptions("AddRecurringJob", call);
  if (auto it = options.find("target"); it != options.end()) {
    // Not a string: the manager refuses it. The runs back up to it later,
    // so who may name it is decided now.
    if (const auto* target = std::get_if<std::string>(&it->second)) {
      ThrowIfError(authorizer_.CheckTarget("AddRecurringJob", call, *target));
    }
  }
  RunChange("AddRecurringJob", std::move(call),
            [job, options](VolumeManager& manager, const std::string& volume) {
              return manager.AddRecurringJob(volume, job, options);
            });
}

void VolumeObject::HandleRemoveRecurringJob(sdbus::MethodCall call) {
  Authorize("RemoveRecurringJob", call);
  std::string job;
  call >> job;
  Options options = ReadOptions("RemoveRecurringJob", call);
  RunChange("RemoveRecurringJob", std::move(call),
            [job, options](VolumeManager& manager, const std::string& volume) {
              return manager.RemoveRecurringJob(volume, job, options);
            });
}

void VolumeObject::HandleActivate(sdbus::MethodCall call) {
  Authorize("Activate", call);
  Options options = ReadOptions("Activate", call);
  RunChange("Activate", std::move(call),
            [options](VolumeManager& manager, const std::string& volume) {
              return manager.Activate(volume, options);
            });
}

void VolumeObject::Announce() { object_->emitInterfacesAddedSignal(); }

void VolumeObject::Withdraw() { object_->emitInterfacesRemovedSignal(); }

void VolumeObject::Update(const VolumeInfo& info) {
  // Infos are read on several threads and may arrive out of order; an older
  // read than the one shown is dropped (revision 0: not ordered, taken).
  if (info.revision != 0 && info.revision < info_.revision) return;
  std::vector<std::string> changed = ChangedVolumeProperties(info_, info);
  info_ = info;
  if (!changed.empty()) object_->emitPropertiesChangedSignal(kVolumeInterface, changed);
}

}  // namespace shorthorn::fused::dbus
