// Design notes
//
// Registration uses sdbus-c++'s low-level API (method_callback receiving the
// MethodCall) because the handlers need the message itself for the caller's
// credentials. Every handler and getter runs inside GuardHandler so that only
// sdbus::Error reaches sdbus-c++. Attach and Detach call the manager
// synchronously on the loop thread: an Attach that takes a second holds up
// every other call for that second (acceptable in this first slice; the cure
// is an asynchronous reply from a worker thread).
#include "fused/dbus/volume_object.h"

#include <tuple>
#include <utility>

#include <sdbus-c++/Types.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"

namespace shorthorn::fused::dbus {
namespace {

using ReplicaStruct = sdbus::Struct<std::string, std::string, std::string>;

std::vector<ReplicaStruct> ReplicaStructs(const std::vector<ReplicaInfo>& replicas) {
  std::vector<ReplicaStruct> out;
  out.reserve(replicas.size());
  for (const auto& r : replicas) out.emplace_back(r.address, r.name, r.mode);
  return out;
}

bool SameReplicas(const std::vector<ReplicaInfo>& a, const std::vector<ReplicaInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tie(a[i].address, a[i].name, a[i].mode) !=
        std::tie(b[i].address, b[i].name, b[i].mode)) {
      return false;
    }
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

}  // namespace

std::vector<std::string> ChangedVolumeProperties(const VolumeInfo& before,
                                                 const VolumeInfo& after) {
  std::vector<std::string> changed;
  if (before.size != after.size) changed.push_back("Size");
  if (before.state != after.state) changed.push_back("State");
  if (!SameReplicas(before.replicas, after.replicas)) changed.push_back("Replicas");
  if (before.frontend_path != after.frontend_path) changed.push_back("FrontendPath");
  if (before.loop_device != after.loop_device) changed.push_back("LoopDevice");
  return changed;
}

VolumeObject::VolumeObject(sdbus::IConnection& connection, VolumeManager& manager,
                           const Authorizer& authorizer, VolumeInfo info)
    : manager_(manager),
      authorizer_(authorizer),
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
      "State", "s", [](const VolumeInfo& i) { return i.state; }, changing);
  add(
      "Replicas", "a(sss)", [](const VolumeInfo& i) { return ReplicaStructs(i.replicas); },
      changing);
  add(
      "FrontendPath", "s", [](const VolumeInfo& i) { return i.frontend_path; }, changing);
  add(
      "LoopDevice", "s", [](const VolumeInfo& i) { return i.loop_device; }, changing);
}

void VolumeObject::RegisterMethods() {
  object_->registerMethod(kVolumeInterface, "Attach", "a{sv}", {"options"}, "s", {"device"},
                          [this](sdbus::MethodCall call) {
                            GuardHandler("Attach", [&] { HandleAttach(std::move(call)); });
                          });
  object_->registerMethod(kVolumeInterface, "Detach", "a{sv}", {"options"}, "", {},
                          [this](sdbus::MethodCall call) {
                            GuardHandler("Detach", [&] { HandleDetach(std::move(call)); });
                          });
}

void VolumeObject::HandleAttach(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("Attach", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  Options options = ReadOptions("Attach", call);
  Result<std::string> device = manager_.Attach(info_.name, options);
  if (!device.ok()) throw ToDbusError(device.status());
  auto reply = call.createReply();
  reply << *device;
  reply.send();
}

void VolumeObject::HandleDetach(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("Detach", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  Options options = ReadOptions("Detach", call);
  Status detached = manager_.Detach(info_.name, options);
  if (!detached.ok()) throw ToDbusError(detached);
  call.createReply().send();
}

void VolumeObject::Announce() { object_->emitInterfacesAddedSignal(); }

void VolumeObject::Withdraw() { object_->emitInterfacesRemovedSignal(); }

void VolumeObject::Update(const VolumeInfo& info) {
  std::vector<std::string> changed = ChangedVolumeProperties(info_, info);
  info_ = info;
  if (!changed.empty()) object_->emitPropertiesChangedSignal(kVolumeInterface, changed);
}

}  // namespace shorthorn::fused::dbus
