// VolumeObject: one volume on the bus, /org/shorthorn/Storage1/volumes/<name>
// with interface org.shorthorn.Storage1.Volume (dbus/org.shorthorn.Storage1.
// Volume.xml). Properties are served from a cached VolumeInfo that only
// Update() changes, so a PropertiesChanged signal always agrees with what a
// later Get returns; the methods (Attach, Detach, Snapshot, DeleteSnapshot,
// Revert, Expand, Verify, ...) are authorized and their arguments read on the
// event loop; the manager call runs on a worker (AsyncCalls, keyed by the
// volume, so one volume's calls keep their order) and then queues the
// volume as it is now (and a started job's refresh), which the loop applies
// before it sends the reply: the change is on the bus when the caller hears
// back.
// Threads: create, Update, Announce, Withdraw and destroy on the event loop
// thread (or before the loop starts / after it ends); the handlers run there,
// the manager calls on AsyncCalls' workers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "fused/core/volume_manager.h"
#include "fused/dbus/async_calls.h"
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
  // `events` receives the refreshed volume and jobs after each call, which
  // runs on `calls`. Throws sdbus::Error when sd-bus refuses the
  // registration.
  VolumeObject(sdbus::IConnection& connection, VolumeManager& manager, const Authorizer& authorizer,
               VolumeEventQueue& events, AsyncCalls& calls, VolumeInfo info);
  VolumeObject(const VolumeObject&) = delete;
  VolumeObject& operator=(const VolumeObject&) = delete;
  // Unregisters the object.
  ~VolumeObject() = default;

  const std::string& path() const { return object_->getObjectPath(); }
  const VolumeInfo& info() const { return info_; }

  // Emits InterfacesAdded / InterfacesRemoved on the object manager.
  void Announce();
  void Withdraw();
  // Replaces the cached state and emits PropertiesChanged for what changed;
  // ignores `info` if it was read before the cached one (revision).
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
  void HandleRebuild(sdbus::MethodCall call);
  void HandleAddRecurringJob(sdbus::MethodCall call);
  void HandleRemoveRecurringJob(sdbus::MethodCall call);
  void HandleActivate(sdbus::MethodCall call);
  // Throws NotAuthorized unless the caller of `call` may change things.
  void Authorize(std::string_view method, const sdbus::MethodCall& call) const;
  // The manager call of a method, given the manager and the volume's name;
  // runs on a worker, throws sdbus::Error to fail the call.
  using Work = std::function<AsyncCalls::Reply(VolumeManager&, const std::string&)>;
  // Runs `work` on a worker; afterwards, whether it failed or not, queues
  // the volume as the manager then reports it.
  void RunCall(const std::string& method, sdbus::MethodCall call, Work work);
  // RunCall for a method that returns nothing.
  void RunChange(const std::string& method, sdbus::MethodCall call,
                 std::function<Status(VolumeManager&, const std::string&)> change);
  // RunCall for a method that starts a job and returns its path (the job's
  // object is refreshed before the reply).
  void RunJob(const std::string& method, sdbus::MethodCall call,
              std::function<Result<uint64_t>(VolumeManager&, const std::string&)> start);

  VolumeManager& manager_;
  const Authorizer& authorizer_;
  VolumeEventQueue& events_;
  AsyncCalls& calls_;
  VolumeInfo info_;
  std::unique_ptr<sdbus::IObject> object_;
};

}  // namespace shorthorn::fused::dbus
