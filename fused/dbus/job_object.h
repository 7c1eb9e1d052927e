// JobObject: one job (snapshot deletion, verify, ...) on the bus,
// /org/shorthorn/Storage1/jobs/<id> with interface org.shorthorn.Storage1.Job
// (dbus/org.shorthorn.Storage1.Job.xml). Like VolumeObject it serves its
// properties from a cached JobInfo that only Update() changes, and forwards
// Cancel to the VolumeManager after the caller is authorized. It emits the
// Completed signal exactly once, the first time it is announced or updated
// with a finished state (completed, failed or cancelled).
// Threads: create, Update, Announce, Withdraw and destroy on the event loop
// thread (or before the loop starts / after it ends); the handlers run there.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "fused/core/volume_manager.h"
#include "fused/dbus/dbus_auth.h"
#include "fused/dbus/event_queue.h"

namespace shorthorn::fused::dbus {

// The names of the Job properties whose values differ between `before` and
// `after`, in the order of the XML. Operation, Volume and Target are
// constant and never listed. Pure.
std::vector<std::string> ChangedJobProperties(const JobInfo& before, const JobInfo& after);

// True for the states a job ends in: completed, failed, cancelled.
bool JobFinished(const JobInfo& info);

class JobObject {
 public:
  // Registers the object on `connection` (no signal yet: see Announce).
  // `events` receives a refresh request after Cancel. Throws sdbus::Error
  // when sd-bus refuses the registration.
  JobObject(sdbus::IConnection& connection, VolumeManager& manager, const Authorizer& authorizer,
            VolumeEventQueue& events, JobInfo info);
  JobObject(const JobObject&) = delete;
  JobObject& operator=(const JobObject&) = delete;
  // Unregisters the object.
  ~JobObject() = default;

  const std::string& path() const { return object_->getObjectPath(); }
  const JobInfo& info() const { return info_; }

  // Emits InterfacesAdded on the object manager, then Completed if the job
  // has already finished.
  void Announce();
  // Emits InterfacesRemoved.
  void Withdraw();
  // Replaces the cached state, emits PropertiesChanged for what changed,
  // then Completed if the job has now finished and it was not yet emitted.
  void Update(const JobInfo& info);

 private:
  void RegisterMembers();
  void HandleCancel(sdbus::MethodCall call);
  void EmitCompletedOnce();

  VolumeManager& manager_;
  const Authorizer& authorizer_;
  VolumeEventQueue& events_;
  JobInfo info_;
  bool completed_emitted_ = false;
  std::unique_ptr<sdbus::IObject> object_;
};

}  // namespace shorthorn::fused::dbus
