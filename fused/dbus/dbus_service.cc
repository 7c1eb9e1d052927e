// Design notes
//
// Threads. sdbus-c++ 1.2.0 wraps every sd-bus call it makes (sd_bus_process,
// sd_bus_send, the sd_bus_emit_* calls, vtable registration) in one
// recursive mutex per connection, and documents creating and emitting
// signals as thread-safe. Emitting from a listener thread would therefore not
// corrupt sd-bus, but it is still wrong here: handlers run inside
// sd_bus_process with that mutex held, so a listener thread emitting while a
// handler waits for that same thread (Attach waiting on a worker that reports
// VolumeChanged) deadlocks; and adding or destroying an IObject while the
// loop may be dispatching a call to it is a use-after-free. So every sdbus-c++
// object belongs to the loop thread. Listener calls only queue an event and
// write an eventfd (VolumeEventQueue); the loop thread applies the events.
//
// The loop. enterEventLoopAsync() cannot wait on a file descriptor of ours,
// so the service runs the loop sdbus-c++ documents for external event loops:
// processPendingRequest() until it has nothing to do, then poll() on the bus
// fd (getEventLoopPollData), the event queue's eventfd and an exit eventfd.
// It also polls AsyncCalls' eventfd: a method's manager call runs on a worker
// (AsyncCalls, one at a time per volume), because the manager may wait
// seconds on an unreachable replicad with its lock held, and the loop must
// keep answering property reads, listings and introspection meanwhile (a
// call about another volume runs on another worker, but still waits for the
// manager's lock). The worker queues the events of the call (the volume as it now
// is, a job refresh) before it hands back the reply, and the loop applies the
// queued events before it sends replies, so the effects of a call (say the
// object of a new volume) exist before the caller hears back. Events are
// also applied after every processed message. The loop itself never calls
// the manager except GetJob (a short lock of its own). CreateVolume and
// DeleteVolume queue the event themselves, so the object appears or
// disappears even if the manager reports it late; a VolumeChanged for an
// unknown volume is ignored, never resurrecting one.
//
// Jobs. A method that starts a job (DeleteSnapshot, Verify) returns the job's
// path, so its object must exist before the caller's next message: the
// handler queues a refresh of the job, which the loop reads from the manager
// (GetJob) when it applies it and which creates the object if the manager's
// own JobAdded has not. The manager may report JobAdded before the method
// returns, after it, or both; a JobAdded for a job already exported is
// ignored (what it carries is never newer than what the refresh read), a
// refresh updates it, and either for a job the manager has removed is
// dropped (removed_jobs_: ids are never reused), so neither a duplicate nor a
// late refresh can leave the object of a forgotten job behind. Reading the
// job at apply time rather than in the handler means the refresh is never
// older than an event queued before it.
//
// Start order follows systemd: objects are exported before the name is
// requested, so nothing can call before they exist.
#include "fused/dbus/dbus_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <system_error>
#include <utility>
#include <vector>

#include <sdbus-c++/Types.h>

#include "common/log.h"
#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"

#ifndef SHORTHORN_VERSION
#define SHORTHORN_VERSION "unknown"
#endif

namespace shorthorn::fused::dbus {
namespace {

// The Status for a failed RequestName, by the error sd-bus reported.
Status RequestNameStatus(const sdbus::Error& e) {
  std::string what = std::string("request bus name ") + kBusName;
  if (e.getName() == "org.freedesktop.DBus.Error.FileExists") {
    return Status(ErrorKind::kAlreadyExists,
                  what + ": already owned by another process (is shorthorn-fused running?)");
  }
  if (e.getName() == "org.freedesktop.DBus.Error.AccessDenied") {
    return Status(ErrorKind::kNotAuthorized,
                  what +
                      ": refused by the bus policy (run as root and install "
                      "org.shorthorn.Storage1.conf in /usr/share/dbus-1/system.d): " +
                      e.getMessage());
  }
  return Status(ErrorKind::kUnavailable, what + ": " + e.getName() + ": " + e.getMessage());
}

}  // namespace

DbusService::DbusService(VolumeManager& manager, DbusServiceOptions options)
    : manager_(manager), options_(std::move(options)), authorizer_(options_.admin) {}

DbusService::~DbusService() { Stop(); }

Status DbusService::Start() {
  if (connection_) return Status(ErrorKind::kFailed, "start D-Bus service: already started");
  auto events = VolumeEventQueue::Create();
  if (!events.ok()) return events.status();
  events_ = std::move(*events);
  int exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (exit_fd < 0) {
    Status failed = ErrnoStatus(errno, "create D-Bus loop exit eventfd");
    events_.reset();
    return failed;
  }
  exit_fd_.Reset(exit_fd);
  auto calls = AsyncCalls::Create(kCallThreads);
  if (!calls.ok()) {
    Teardown();
    return calls.status();
  }
  calls_ = std::move(*calls);

  try {
    connection_ = sdbus::createSystemBusConnection();
  } catch (const sdbus::Error& e) {
    Teardown();
    return Status(ErrorKind::kUnavailable, "connect to the system bus: " + e.getMessage());
  }
  try {
    root_ = sdbus::createObject(*connection_, kRootPath);
    root_->addObjectManager();
    RegisterManager();
    // Listen before listing so that no change falls between the two; a
    // change seen twice is harmless (events carry the whole state).
    manager_.SetListener(events_.get());
    for (VolumeInfo& info : manager_.ListVolumes()) AddVolumeObject(std::move(info), false);
    for (JobInfo& info : manager_.ListJobs()) AddJobObject(std::move(info), false);
  } catch (const std::exception& e) {
    Teardown();
    return Status(ErrorKind::kFailed, std::string("export D-Bus objects: ") + e.what());
  }
  try {
    connection_->requestName(kBusName);
  } catch (const sdbus::Error& e) {
    Teardown();
    return RequestNameStatus(e);
  }
  LogInfo(std::string("D-Bus: serving ") + kBusName + " with " + std::to_string(volumes_.size()) +
          " volume(s) and " + std::to_string(jobs_.size()) + " job(s)");
  loop_thread_ = std::thread([this] { RunLoop(); });  // owns volumes_ from here on
  return Status::Ok();
}

void DbusService::Stop() {
  if (!connection_) return;
  if (loop_thread_.joinable()) {
    uint64_t one = 1;
    if (write(exit_fd_.get(), &one, sizeof(one)) < 0) {
      LogError("D-Bus: cannot wake the event loop to stop it");
    }
    loop_thread_.join();
  }
  if (calls_ && calls_->waiting() > 0) {
    LogInfo("D-Bus: stopping with " + std::to_string(calls_->waiting()) +
            " call(s) unanswered; waiting for those running");
  }
  Teardown();
}

void DbusService::Teardown() {
  manager_.SetListener(nullptr);
  backups_.clear();
  jobs_.clear();
  removed_jobs_.clear();
  volumes_.clear();
  manager_object_.reset();
  root_.reset();
  // Waits for the running manager calls (they queue events) and frees the
  // waiting messages while the connection they belong to still exists.
  calls_.reset();
  if (connection_) {
    try {
      connection_->releaseName(kBusName);
    } catch (const sdbus::Error&) {
      // Not owned (Start failed before requesting it); closing releases it anyway.
    }
  }
  connection_.reset();
  events_.reset();
  exit_fd_.Reset();
}

void DbusService::RegisterManager() {
  manager_object_ = sdbus::createObject(*connection_, kManagerPath);
  manager_object_->registerMethod(
      kManagerInterface, "CreateVolume", "stasa{sv}", {"name", "size", "replicas", "options"}, "o",
      {"volume"}, [this](sdbus::MethodCall call) {
        GuardHandler("CreateVolume", [&] { HandleCreateVolume(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "ImportVolume", "sasa{sv}", {"name", "replicads", "options"}, "o",
      {"volume"}, [this](sdbus::MethodCall call) {
        GuardHandler("ImportVolume", [&] { HandleImportVolume(std::move(call)); });
      });
  manager_object_->registerMethod(kManagerInterface, "DeleteVolume", "sa{sv}", {"name", "options"},
                                  "", {}, [this](sdbus::MethodCall call) {
                                    GuardHandler("DeleteVolume",
                                                 [&] { HandleDeleteVolume(std::move(call)); });
                                  });
  manager_object_->registerMethod(
      kManagerInterface, "ListVolumes", "", {}, "ao", {"volumes"}, [this](sdbus::MethodCall call) {
        GuardHandler("ListVolumes", [&] { HandleListVolumes(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "ListJobs", "", {}, "ao", {"jobs"}, [this](sdbus::MethodCall call) {
        GuardHandler("ListJobs", [&] { HandleListJobs(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "ListBackups", "ssa{sv}", {"target", "volume", "options"}, "a(ssssstt)",
      {"backups"}, [this](sdbus::MethodCall call) {
        GuardHandler("ListBackups", [&] { HandleListBackups(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "DeleteBackup", "sa{sv}", {"backup", "options"}, "o", {"job"},
      [this](sdbus::MethodCall call) {
        GuardHandler("DeleteBackup", [&] { HandleDeleteBackup(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "RestoreVolume", "ssasa{sv}", {"name", "backup", "replicas", "options"},
      "o", {"job"}, [this](sdbus::MethodCall call) {
        GuardHandler("RestoreVolume", [&] { HandleRestoreVolume(std::move(call)); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "CreateStandbyVolume", "ssasa{sv}",
      {"name", "source", "replicas", "options"}, "o", {"job"}, [this](sdbus::MethodCall call) {
        GuardHandler("CreateStandbyVolume", [&] { HandleCreateStandbyVolume(std::move(call)); });
      });
  manager_object_->registerMethod(kManagerInterface, "ListReplicads", "a{sv}", {"options"},
                                  "a(sssastttuus)", {"replicads"}, [this](sdbus::MethodCall call) {
                                    GuardHandler("ListReplicads",
                                                 [&] { HandleListReplicads(std::move(call)); });
                                  });
  manager_object_->registerMethod(
      kManagerInterface, "DrainReplicad", "sa{sv}", {"address", "options"}, "o", {"job"},
      [this](sdbus::MethodCall call) {
        GuardHandler("DrainReplicad", [&] { HandleDrainReplicad(std::move(call), true); });
      });
  manager_object_->registerMethod(
      kManagerInterface, "UndrainReplicad", "sa{sv}", {"address", "options"}, "", {},
      [this](sdbus::MethodCall call) {
        GuardHandler("UndrainReplicad", [&] { HandleDrainReplicad(std::move(call), false); });
      });
  sdbus::Flags constant;
  constant.set(sdbus::Flags::CONST_PROPERTY_VALUE);
  manager_object_->registerProperty(
      kManagerInterface, "Version", "s",
      [](sdbus::PropertyGetReply& reply) {
        GuardHandler("Get Version", [&] { reply << std::string(SHORTHORN_VERSION); });
      },
      constant);
  manager_object_->finishRegistration();
}

void DbusService::AddVolumeObject(VolumeInfo info, bool announce) {
  std::string name = info.name;
  auto object = std::make_unique<VolumeObject>(*connection_, manager_, authorizer_, *events_,
                                               *calls_, std::move(info));
  VolumeObject& added = *object;
  volumes_[name] = std::move(object);
  if (announce) added.Announce();
}

void DbusService::AddJobObject(JobInfo info, bool announce) {
  uint64_t id = info.id;
  auto object =
      std::make_unique<JobObject>(*connection_, manager_, authorizer_, *events_, std::move(info));
  JobObject& added = *object;
  jobs_[id] = std::move(object);
  if (announce) added.Announce();
}

void DbusService::RunLoop() {
  try {
    while (true) {
      ApplyEvents();
      // The events a finished call queued come before its reply.
      calls_->SendReplies([this] { ApplyEvents(); });
      while (connection_->processPendingRequest()) ApplyEvents();
      sdbus::IConnection::PollData poll_data = connection_->getEventLoopPollData();
      pollfd fds[] = {{poll_data.fd, poll_data.events, 0},
                      {events_->fd(), POLLIN, 0},
                      {calls_->fd(), POLLIN, 0},
                      {exit_fd_.get(), POLLIN, 0}};
      int r = poll(fds, 4, poll_data.getPollTimeout());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        throw std::system_error(errno, std::generic_category(), "poll the bus connection");
      }
      if (fds[3].revents & POLLIN) return;
    }
  } catch (const std::exception& e) {
    Status failed(ErrorKind::kUnavailable, std::string("D-Bus event loop: ") + e.what());
    LogError(failed.message());
    if (options_.on_failure) options_.on_failure(failed);
  }
}

void DbusService::ApplyEvents() {
  for (const VolumeEvent& event : events_->Take()) {
    try {
      ApplyEvent(event);
    } catch (const std::exception& e) {
      std::string object = event.kind == VolumeEvent::Kind::kBackups
                               ? "backups of volume " + event.backup_volume
                           : event.info.name.empty() ? "job " + std::to_string(event.job.id)
                                                     : "volume " + event.info.name;
      LogWarning("D-Bus: update the object of " + object + ": " + e.what());
    }
  }
}

void DbusService::ApplyEvent(const VolumeEvent& event) {
  switch (event.kind) {
    case VolumeEvent::Kind::kAdded:
    case VolumeEvent::Kind::kChanged:
    case VolumeEvent::Kind::kRemoved:
      ApplyVolumeEvent(event);
      break;
    case VolumeEvent::Kind::kJobAdded:
    case VolumeEvent::Kind::kJobChanged:
    case VolumeEvent::Kind::kJobRemoved:
    case VolumeEvent::Kind::kJobRefresh:
      ApplyJobEvent(event);
      break;
    case VolumeEvent::Kind::kBackups:
      ApplyBackupsEvent(event);
      break;
  }
}

// The objects of one (target, volume) become exactly `event.backups`. A
// backup already exported from another target keeps that object.
void DbusService::ApplyBackupsEvent(const VolumeEvent& event) {
  std::set<std::string> wanted;
  for (const auto& b : event.backups) wanted.insert(BackupObjectPath(b.volume, b.name));
  for (auto it = backups_.begin(); it != backups_.end();) {
    const BackupObject& o = *it->second;
    if (o.target() == event.backup_target && o.info().volume == event.backup_volume &&
        wanted.count(it->first) == 0) {
      it->second->Withdraw();
      it = backups_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& b : event.backups) {
    std::string path = BackupObjectPath(b.volume, b.name);
    if (backups_.count(path) != 0) continue;
    auto object = std::make_unique<BackupObject>(*connection_, event.backup_target, b);
    object->Announce();
    backups_[path] = std::move(object);
  }
}

void DbusService::ApplyVolumeEvent(const VolumeEvent& event) {
  const std::string& name = event.info.name;
  auto it = volumes_.find(name);
  switch (event.kind) {
    case VolumeEvent::Kind::kAdded:
      if (it != volumes_.end()) {
        it->second->Update(event.info);
      } else {
        AddVolumeObject(event.info, true);
      }
      break;
    case VolumeEvent::Kind::kChanged:
      if (it != volumes_.end()) it->second->Update(event.info);
      break;
    case VolumeEvent::Kind::kRemoved:
      if (it != volumes_.end()) {
        std::unique_ptr<VolumeObject> object = std::move(it->second);
        volumes_.erase(it);
        object->Withdraw();  // before the object (and its interfaces) is gone
      }
      break;
    default:
      break;
  }
}

void DbusService::ApplyJobEvent(const VolumeEvent& event) {
  const uint64_t id = event.job.id;
  if (removed_jobs_.count(id)) return;  // nothing brings a removed job back
  auto it = jobs_.find(id);
  switch (event.kind) {
    case VolumeEvent::Kind::kJobAdded:
      // The state a JobAdded carries is never newer than what is exported
      // (the refresh that may have created the object read it later).
      if (it == jobs_.end()) AddJobObject(event.job, true);
      break;
    case VolumeEvent::Kind::kJobChanged:
      if (it != jobs_.end()) it->second->Update(event.job);
      break;
    case VolumeEvent::Kind::kJobRefresh: {
      Result<JobInfo> info = manager_.GetJob(id);
      if (!info.ok()) break;  // already forgotten; JobRemoved is queued
      if (it != jobs_.end()) {
        it->second->Update(*info);
      } else {
        AddJobObject(std::move(*info), true);
      }
      break;
    }
    case VolumeEvent::Kind::kJobRemoved:
      removed_jobs_.insert(id);
      if (it != jobs_.end()) {
        std::unique_ptr<JobObject> object = std::move(it->second);
        jobs_.erase(it);
        object->Withdraw();
      }
      break;
    default:
      break;
  }
}

}  // namespace shorthorn::fused::dbus
