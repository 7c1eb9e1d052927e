// Design notes
//
// Registration uses sdbus-c++'s low-level API (method_callback receiving the
// MethodCall) because the handlers need the message itself for the caller's
// credentials. Every handler and getter runs inside GuardHandler so that only
// sdbus::Error reaches sdbus-c++. The methods call the manager synchronously
// on the loop thread: an Attach that takes a second holds up every other call
// for that second (acceptable in this first slice; the cure is an
// asynchronous reply from a worker thread). Long work (DeleteSnapshot,
// Verify) does not block: the manager starts a job and the method returns
// its object path.
//
// After a successful call the handler asks the event queue to refresh the
// volume (or the new job) from the manager. The refresh is read when the
// loop applies it, after the reply and before the next message, so it is
// never older than an event the manager queued before it; whatever the
// manager reports later is applied after it. The manager may also have
// reported the change itself already: the object then just sees the same
// state twice, which emits nothing.
#include "fused/dbus/volume_object.h"

#include <tuple>
#include <utility>

#include <sdbus-c++/Types.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"

namespace shorthorn::fused::dbus {
namespace {

using ReplicaStruct = sdbus::Struct<std::string, std::string, std::string>;
// (name, parent, created, user_created, size_held, removed)
using SnapshotStruct = sdbus::Struct<std::string, std::string, std::string, bool, uint64_t, bool>;

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

auto ReplicaTie(const ReplicaInfo& r) { return std::tie(r.address, r.name, r.mode); }

auto SnapshotTie(const SnapshotInfo& s) {
  return std::tie(s.name, s.parent, s.created, s.user_created, s.size_held, s.removed);
}

// Element-wise equality of two lists compared through `tie`.
template <typename T, typename Tie>
bool SameList(const std::vector<T>& a, const std::vector<T>& b, Tie tie) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tie(a[i]) != tie(b[i])) return false;
  }
  return true;
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
  std::vector<std::string> changed;
  if (before.size != after.size) changed.push_back("Size");
  if (before.actual_size != after.actual_size) changed.push_back("ActualSize");
  if (before.state != after.state) changed.push_back("State");
  if (!SameList(before.replicas, after.replicas, ReplicaTie)) changed.push_back("Replicas");
  if (before.frontend_path != after.frontend_path) changed.push_back("FrontendPath");
  if (before.loop_device != after.loop_device) changed.push_back("LoopDevice");
  if (!SameList(before.snapshots, after.snapshots, SnapshotTie)) changed.push_back("Snapshots");
  if (before.replica_count != after.replica_count) changed.push_back("ReplicaCount");
  if (before.robustness != after.robustness) changed.push_back("Robustness");
  return changed;
}

VolumeObject::VolumeObject(sdbus::IConnection& connection, VolumeManager& manager,
                           const Authorizer& authorizer, VolumeEventQueue& events, VolumeInfo info)
    : manager_(manager),
      authorizer_(authorizer),
      events_(events),
      info_(std::move(info)),
      object_(sdbus::createObject(connection, VolumeObjectPath(info_.name))) {
  RegisterProperties();
  RegisterMethods();
  object_->finishRegistration();
}

void VolumeObject::RegisterProperties() {
  // Each getter reads info_ when sd-bus asks (Get, GetAll, PropertiesChanged,
  // InterfacesAdded, GetManagedObjects).
  auto add = [this](const char* name, const char* signature, auto value_of, sdbus::Flags flags) {
    object_->registerProperty(
        kVolumeInterface, name, signature,
        [this, name, value_of](sdbus::PropertyGetReply& reply) {
          GuardHandler(std::string("Get ") + name, [&] { reply << value_of(info_); });
        },
        flags);
  };
  sdbus::Flags constant;
  constant.set(sdbus::Flags::CONST_PROPERTY_VALUE);
  sdbus::Flags changing;  // EMITS_CHANGE_SIGNAL by default
  add(
      "Name", "s", [](const VolumeInfo& i) { return i.name; }, constant);
  add(
      "Size", "t", [](const VolumeInfo& i) { return i.size; }, changing);
  add(
      "ActualSize", "t", [](const VolumeInfo& i) { return i.actual_size; }, changing);
  add(
      "State", "s", [](const VolumeInfo& i) { return i.state; }, changing);
  add(
      "Replicas", "a(sss)", [](const VolumeInfo& i) { return ReplicaStructs(i.replicas); },
      changing);
  add(
      "FrontendPath", "s", [](const VolumeInfo& i) { return i.frontend_path; }, changing);
  add(
      "LoopDevice", "s", [](const VolumeInfo& i) { return i.loop_device; }, changing);
  add(
      "Snapshots", "a(sssbtb)", [](const VolumeInfo& i) { return SnapshotStructs(i.snapshots); },
      changing);
  add(
      "ReplicaCount", "u", [](const VolumeInfo& i) { return i.replica_count; }, changing);
  add(
      "Robustness", "s", [](const VolumeInfo& i) { return i.robustness; }, changing);
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
}

void VolumeObject::Authorize(std::string_view method, const sdbus::MethodCall& call) const {
  ThrowIfError(authorizer_.CheckCaller(method, call));
}

void VolumeObject::ReplyWithJob(sdbus::MethodCall& call, uint64_t id) {
  events_.RequestJobRefresh(id);
  events_.RequestVolumeRefresh(info_.name);
  auto reply = call.createReply();
  reply << sdbus::ObjectPath(JobObjectPath(id));
  reply.send();
}

void VolumeObject::HandleAttach(sdbus::MethodCall call) {
  Authorize("Attach", call);
  Options options = ReadOptions("Attach", call);
  Result<std::string> device = manager_.Attach(info_.name, options);
  ThrowIfError(device.status());
  events_.RequestVolumeRefresh(info_.name);
  auto reply = call.createReply();
  reply << *device;
  reply.send();
}

void VolumeObject::HandleDetach(sdbus::MethodCall call) {
  Authorize("Detach", call);
  Options options = ReadOptions("Detach", call);
  ThrowIfError(manager_.Detach(info_.name, options));
  events_.RequestVolumeRefresh(info_.name);
  call.createReply().send();
}

void VolumeObject::HandleSnapshot(sdbus::MethodCall call) {
  Authorize("Snapshot", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Snapshot", call);
  ThrowIfError(manager_.Snapshot(info_.name, snapshot, options));
  events_.RequestVolumeRefresh(info_.name);
  call.createReply().send();
}

void VolumeObject::HandleDeleteSnapshot(sdbus::MethodCall call) {
  Authorize("DeleteSnapshot", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("DeleteSnapshot", call);
  Result<uint64_t> job = manager_.DeleteSnapshot(info_.name, snapshot, options);
  ThrowIfError(job.status());
  ReplyWithJob(call, *job);
}

void VolumeObject::HandleBackup(sdbus::MethodCall call) {
  Authorize("Backup", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Backup", call);
  Result<uint64_t> job = manager_.Backup(info_.name, snapshot, options);
  ThrowIfError(job.status());
  ReplyWithJob(call, *job);
}

void VolumeObject::HandleRevert(sdbus::MethodCall call) {
  Authorize("Revert", call);
  std::string snapshot;
  call >> snapshot;
  Options options = ReadOptions("Revert", call);
  ThrowIfError(manager_.Revert(info_.name, snapshot, options));
  events_.RequestVolumeRefresh(info_.name);
  call.createReply().send();
}

void VolumeObject::HandleExpand(sdbus::MethodCall call) {
  Authorize("Expand", call);
  uint64_t size = 0;
  call >> size;
  Options options = ReadOptions("Expand", call);
  ThrowIfError(manager_.Expand(info_.name, size, options));
  events_.RequestVolumeRefresh(info_.name);
  call.createReply().send();
}

void VolumeObject::HandleVerify(sdbus::MethodCall call) {
  Authorize("Verify", call);
  Options options = ReadOptions("Verify", call);
  Result<uint64_t> job = manager_.Verify(info_.name, options);
  ThrowIfError(job.status());
  ReplyWithJob(call, *job);
}

void VolumeObject::HandleScrub(sdbus::MethodCall call) {
  Authorize("Scrub", call);
  Options options = ReadOptions("Scrub", call);
  Result<uint64_t> job = manager_.Scrub(info_.name, options);
  ThrowIfError(job.status());
  ReplyWithJob(call, *job);
}

void VolumeObject::Announce() { object_->emitInterfacesAddedSignal(); }

void VolumeObject::Withdraw() { object_->emitInterfacesRemovedSignal(); }

void VolumeObject::Update(const VolumeInfo& info) {
  std::vector<std::string> changed = ChangedVolumeProperties(info_, info);
  info_ = info;
  if (!changed.empty()) object_->emitPropertiesChangedSignal(kVolumeInterface, changed);
}

void VolumeObject::HandleSetReplicaCount(sdbus::MethodCall call) {
  Authorize("SetReplicaCount", call);
  uint32_t count = 0;
  call >> count;
  Options options = ReadOptions("SetReplicaCount", call);
  ThrowIfError(manager_.SetReplicaCount(info_.name, count, options));
  events_.RequestVolumeRefresh(info_.name);
  call.createReply().send();
}

}  // namespace shorthorn::fused::dbus
