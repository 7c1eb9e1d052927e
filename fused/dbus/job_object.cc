// Design notes
//
// The manager reports a job's end with a JobChanged carrying the final state
// and then, separately, JobRemoved. Completed is tied to the first: it is
// emitted right after the PropertiesChanged that shows the final State, so a
// client that reacts to Completed by reading the properties sees the final
// Message, and it is emitted once per object even if the final state is
// reported twice (the service's own refresh after DeleteSnapshot or Cancel
// can repeat what the manager said). A job object that is created already
// finished (the job ended before the service could export it) announces
// itself and then emits Completed, so every job a client is told about ends
// with exactly one Completed before its InterfacesRemoved.
#include "fused/dbus/job_object.h"

#include <utility>

#include <sdbus-c++/Types.h>

#include "fused/dbus/dbus_names.h"
#include "fused/dbus/property_table.h"

namespace shorthorn::fused::dbus {

namespace {

// The Job interface's properties, in the XML's order.
const PropertyTable<JobInfo>& JobProperties() {
  static const PropertyTable<JobInfo> table = [] {
    PropertyTable<JobInfo> t;
    t.Add("Operation", "s", true, [](const JobInfo& i) { return i.operation; })
        .Add("Volume", "o", true,
             [](const JobInfo& i) {
               // "/" is the usual "no object" for a job that belongs to no volume.
               return sdbus::ObjectPath(i.volume.empty() ? "/" : VolumeObjectPath(i.volume));
             })
        .Add("Target", "s", true, [](const JobInfo& i) { return i.target; })
        .Add("Progress", "d", false, [](const JobInfo& i) { return i.progress; })
        .Add("Bytes", "t", false, [](const JobInfo& i) { return i.bytes; })
        .Add("TotalBytes", "t", false, [](const JobInfo& i) { return i.total_bytes; })
        .Add("Rate", "t", false, [](const JobInfo& i) { return i.rate; })
        .Add("State", "s", false,
             [](const JobInfo& i) { return std::string(JobStateName(i.state)); })
        .Add("Message", "s", false, [](const JobInfo& i) { return i.message; })
        .Add("Cancellable", "b", false, [](const JobInfo& i) { return i.cancellable; });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string> ChangedJobProperties(const JobInfo& before, const JobInfo& after) {
  return JobProperties().Changed(before, after);
}

bool JobFinished(const JobInfo& info) { return !JobActive(info.state); }

JobObject::JobObject(sdbus::IConnection& connection, VolumeManager& manager,
                     const Authorizer& authorizer, VolumeEventQueue& events, JobInfo info)
    : manager_(manager),
      authorizer_(authorizer),
      events_(events),
      info_(std::move(info)),
      object_(sdbus::createObject(connection, JobObjectPath(info_.id))) {
  RegisterMembers();
  object_->finishRegistration();
}

void JobObject::RegisterMembers() {
  JobProperties().Register(*object_, kJobInterface, info_);
  object_->registerMethod(kJobInterface, "Cancel", "", {}, "", {}, [this](sdbus::MethodCall call) {
    GuardHandler("Cancel", [&] { HandleCancel(std::move(call)); });
  });
  object_->registerSignal(kJobInterface, "Completed", "bs", {"success", "message"});
}

void JobObject::HandleCancel(sdbus::MethodCall call) {
  Status allowed = authorizer_.CheckCaller("Cancel", call);
  if (!allowed.ok()) throw ToDbusError(allowed);
  Status cancelled = manager_.CancelJob(info_.id);
  if (!cancelled.ok()) throw ToDbusError(cancelled);
  events_.RequestJobRefresh(info_.id);
  call.createReply().send();
}

void JobObject::Announce() {
  object_->emitInterfacesAddedSignal();
  EmitCompletedOnce();
}

void JobObject::Withdraw() { object_->emitInterfacesRemovedSignal(); }

void JobObject::Update(const JobInfo& info) {
  std::vector<std::string> changed = ChangedJobProperties(info_, info);
  info_ = info;
  if (!changed.empty()) object_->emitPropertiesChangedSignal(kJobInterface, changed);
  EmitCompletedOnce();
}

void JobObject::EmitCompletedOnce() {
  if (completed_emitted_ || !JobFinished(info_)) return;
  completed_emitted_ = true;
  sdbus::Signal signal = object_->createSignal(kJobInterface, "Completed");
  signal << (info_.state == JobState::kCompleted) << info_.message;
  object_->emitSignal(signal);
}

}  // namespace shorthorn::fused::dbus
