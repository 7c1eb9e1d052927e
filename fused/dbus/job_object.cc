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

namespace shorthorn::fused::dbus {

std::vector<std::string> ChangedJobProperties(const JobInfo& before, const JobInfo& after) {
  std::vector<std::string> changed;
  if (before.progress != after.progress) changed.push_back("Progress");
  if (before.bytes != after.bytes) changed.push_back("Bytes");
  if (before.total_bytes != after.total_bytes) changed.push_back("TotalBytes");
  if (before.rate != after.rate) changed.push_back("Rate");
  if (before.state != after.state) changed.push_back("State");
  if (before.message != after.message) changed.push_back("Message");
  if (before.cancellable != after.cancellable) changed.push_back("Cancellable");
  return changed;
}

bool JobFinished(const JobInfo& info) {
  return info.state == "completed" || info.state == "failed" || info.state == "cancelled";
}

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
  auto add = [this](const char* name, const char* signature, auto value_of, sdbus::Flags flags) {
    object_->registerProperty(
        kJobInterface, name, signature,
        [this, name, value_of](sdbus::PropertyGetReply& reply) {
          GuardHandler(std::string("Get ") + name, [&] { reply << value_of(info_); });
        },
        flags);
  };
  sdbus::Flags constant;
  constant.set(sdbus::Flags::CONST_PROPERTY_VALUE);
  sdbus::Flags changing;  // EMITS_CHANGE_SIGNAL by default
  add(
      "Operation", "s", [](const JobInfo& i) { return i.operation; }, constant);
  add(
      "Volume", "o",
      [](const JobInfo& i) {
        // "/" is the usual "no object" for a job that belongs to no volume.
        return sdbus::ObjectPath(i.volume.empty() ? "/" : VolumeObjectPath(i.volume));
      },
      constant);
  add(
      "Target", "s", [](const JobInfo& i) { return i.target; }, constant);
  add(
      "Progress", "d", [](const JobInfo& i) { return i.progress; }, changing);
  add(
      "Bytes", "t", [](const JobInfo& i) { return i.bytes; }, changing);
  add(
      "TotalBytes", "t", [](const JobInfo& i) { return i.total_bytes; }, changing);
  add(
      "Rate", "t", [](const JobInfo& i) { return i.rate; }, changing);
  add(
      "State", "s", [](const JobInfo& i) { return i.state; }, changing);
  add(
      "Message", "s", [](const JobInfo& i) { return i.message; }, changing);
  add(
      "Cancellable", "b", [](const JobInfo& i) { return i.cancellable; }, changing);

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
  signal << (info_.state == "completed") << info_.message;
  object_->emitSignal(signal);
}

}  // namespace shorthorn::fused::dbus
