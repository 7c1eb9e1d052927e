// DbusService: shorthorn-fused on the system bus as org.shorthorn.Storage1
// (doc/dbus-api.md). It adapts a VolumeManager: /org/shorthorn/Storage1 is
// the ObjectManager, /org/shorthorn/Storage1/Manager creates, deletes and
// lists volumes and lists jobs, and each volume (under .../volumes/) and each
// job (under .../jobs/) is an object that appears (InterfacesAdded), changes
// (PropertiesChanged) and disappears (InterfacesRemoved) as the manager
// reports through its listener; a job also emits Completed once. Every
// non-OK Status becomes org.shorthorn.Storage1.Error.<Kind>; mutating calls
// need root or the admin group, and naming a replicad that
// options.admin.replicads does not list needs root.
//
// Threads: Start and Stop from one controlling thread (main), not from a
// handler or the on_failure callback. Between them, one event loop thread
// owned by the service runs every handler and owns every sdbus-c++ object;
// the manager's listener calls may come from any thread. Handlers hand their
// manager call to up to kCallThreads workers (AsyncCalls; one call at a time
// per volume) and the loop sends the reply, so a slow call (an Attach
// waiting on an unreachable replicad) delays only later calls about the same
// volume, and those the manager itself serializes; property reads,
// introspection and listings are answered meanwhile.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "common/file_util.h"
#include "common/status.h"
#include "fused/core/volume_manager.h"
#include "fused/dbus/async_calls.h"
#include "fused/dbus/backup_object.h"
#include "fused/dbus/dbus_auth.h"
#include "fused/dbus/event_queue.h"
#include "fused/dbus/job_object.h"
#include "fused/dbus/volume_object.h"

namespace shorthorn::fused::dbus {

struct DbusServiceOptions {
  AdminPolicy admin;
  // Called once on the loop thread if the loop ends on an error (the bus
  // connection is lost); the daemon should then exit so it is restarted.
  std::function<void(const Status&)> on_failure;
};

class DbusService {
 public:
  // `manager` must outlive the service.
  explicit DbusService(VolumeManager& manager, DbusServiceOptions options = {});
  DbusService(const DbusService&) = delete;
  DbusService& operator=(const DbusService&) = delete;
  ~DbusService();  // Stop()

  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set), exports
  // the root, the Manager and one object per existing volume and job, sets
  // itself as the manager's listener, requests org.shorthorn.Storage1
  // (AlreadyExists when another process owns it, NotAuthorized when the bus
  // policy refuses) and starts the loop thread. On error nothing is left
  // behind.
  Status Start();
  // Leaves the loop, waits for the manager calls running on workers (their
  // callers get no reply: the connection closes), unregisters every object,
  // releases the name and disconnects. Idempotent.
  void Stop();

  // Workers for the manager calls of methods.
  static constexpr size_t kCallThreads = 8;

 private:
  // The AsyncCalls key of the backup store methods (ListBackups,
  // DeleteBackup); volume methods use the volume's name, which has no '/'.
  static constexpr char kBackupsKey[] = "/backups";
  // The key of ListReplicads, DrainReplicad and UndrainReplicad.
  static constexpr char kReplicadsKey[] = "/replicads";

  void RegisterManager();
  void RunLoop();      // loop thread
  void ApplyEvents();  // loop thread
  void ApplyEvent(const VolumeEvent& event);
  void ApplyVolumeEvent(const VolumeEvent& event);
  void ApplyJobEvent(const VolumeEvent& event);
  void ApplyBackupsEvent(const VolumeEvent& event);
  void AddVolumeObject(VolumeInfo info, bool announce);
  void AddJobObject(JobInfo info, bool announce);
  void HandleCreateVolume(sdbus::MethodCall call);
  void HandleDeleteVolume(sdbus::MethodCall call);
  void HandleImportVolume(sdbus::MethodCall call);
  void HandleListVolumes(sdbus::MethodCall call);
  void HandleListJobs(sdbus::MethodCall call);
  void HandleListBackups(sdbus::MethodCall call);
  void HandleDeleteBackup(sdbus::MethodCall call);
  void HandleRestoreVolume(sdbus::MethodCall call);
  void HandleCreateStandbyVolume(sdbus::MethodCall call);
  void HandleListReplicads(sdbus::MethodCall call);
  void HandleDrainReplicad(sdbus::MethodCall call, bool drain);
  // Worker side of a method that started job `id`: queues a refresh of the
  // job (so its object exists before the reply) and returns the reply with
  // the job's path.
  AsyncCalls::Reply JobReply(uint64_t id);
  void Teardown();

  VolumeManager& manager_;
  const DbusServiceOptions options_;
  const Authorizer authorizer_;
  std::unique_ptr<VolumeEventQueue> events_;
  UniqueFd exit_fd_;  // written by Stop to end the loop
  std::unique_ptr<AsyncCalls> calls_;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IObject> root_;
  std::unique_ptr<sdbus::IObject> manager_object_;
  // Keyed by volume name. Touched only by the loop thread while it runs.
  std::map<std::string, std::unique_ptr<VolumeObject>> volumes_;
  // Keyed by job id; same thread rule. removed_jobs_ holds the ids the
  // manager reported removed (never reused), so that a late refresh or a
  // repeated JobAdded cannot bring a finished job's object back.
  std::map<uint64_t, std::unique_ptr<JobObject>> jobs_;
  std::set<uint64_t> removed_jobs_;
  // Keyed by object path; same thread rule.
  std::map<std::string, std::unique_ptr<BackupObject>> backups_;
  std::thread loop_thread_;
};

}  // namespace shorthorn::fused::dbus

namespace shorthorn::fused {
// The service is what main uses; the helpers stay in fused::dbus.
using dbus::DbusService;
using dbus::DbusServiceOptions;
}  // namespace shorthorn::fused
