// VolumeObject: one volume on the bus, /org/shorthorn/Storage1/volumes/<name>
// with interface org.shorthorn.Storage1.Volume (dbus/org.shorthorn.Storage1.
// Volume.xml). Properties are served from a cached VolumeInfo that only
// Update() changes, so a PropertiesChanged signal always agrees with what a
// later Get returns; the methods (Attach, Detach, Snapshot, DeleteSnapshot,
// Revert, Expand, Verify) are forwarded to the VolumeManager after the caller
// is authorized. A method that changes the volume or starts a job also asks
// the event queue to refresh the volume or job from the manager, so the
// change is on the bus before the service handles the caller's next message.
// Threads: create, Update, Announce, Withdraw and destroy on the event loop
// thread (or before the loop starts / after it ends); the handlers run there.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "fused/core/volume_manager.h"
#include "fused/dbus/dbus_auth.h"
#include "fused/dbus/event_queue.h"

namespace shorthorn::fused::dbus {

// The names of the Volume properties whose values differ between `before`
// and `after`, in the order of the XML. Name is constant (it is what the
// object stands for) and never listed. Pure.
std::vector<std::string> ChangedVolumeProperties(const VolumeInfo& before, const VolumeInfo& after);

class VolumeObject {
 public:
  // Registers the object on `connection` (no signal yet: see Announce).
  // `events` receives the refresh requests of the handlers. Throws
  // sdbus::Error when sd-bus refuses the registration.
  VolumeObject(sdbus::IConnection& connection, VolumeManager& manager, const Authorizer& authorizer,
               VolumeEventQueue& events, VolumeInfo info);
  VolumeObject(const VolumeObject&) = delete;
  VolumeObject& operator=(const VolumeObject&) = delete;
  // Unregisters the object.
  ~VolumeObject() = default;

  const std::string& path() const { return object_->getObjectPath(); }
  const VolumeInfo& info() const { return info_; }

  // Emits InterfacesAdded / InterfacesRemoved on the object manager.
  void Announce();
  void Withdraw();
  // Replaces the cached state and emits PropertiesChanged for what changed.
  void Update(const VolumeInfo& info);

 private:
  void RegisterProperties();
  void RegisterMethods();
  void HandleAttach(sdbus::MethodCall call);
  void HandleDetach(sdbus::MethodCall call);
  void HandleSnapshot(sdbus::MethodCall call);
  void HandleDeleteSnapshot(sdbus::MethodCall call);
  void HandleRevert(sdbus::MethodCall call);
  void HandleExpand(sdbus::MethodCall call);
  void HandleVerify(sdbus::MethodCall call);
  void HandleScrub(sdbus::MethodCall call);
  void HandleBackup(sdbus::MethodCall call);
  void HandleSetReplicaCount(sdbus::MethodCall call);
  // Throws NotAuthorized unless the caller of `call` may change things.
  void Authorize(std::string_view method, const sdbus::MethodCall& call) const;
  // Replies with the object path of job `id` after asking for its object.
  void ReplyWithJob(sdbus::MethodCall& call, uint64_t id);

  VolumeManager& manager_;
  const Authorizer& authorizer_;
  VolumeEventQueue& events_;
  VolumeInfo info_;
  std::unique_ptr<sdbus::IObject> object_;
};

}  // namespace shorthorn::fused::dbus
