// VolumeEventQueue: the VolumeListener the D-Bus service gives the volume
// manager. It only records events (volumes and jobs) and wakes the event loop
// through an eventfd; the loop thread takes them and turns them into object
// registrations and signals. This keeps every sdbus-c++ object on one thread
// and means a listener call never waits for the bus (see dbus_service.cc).
// After a method's manager call, its worker queues the volume as it is then
// (RefreshVolume) and, for a started job, a refresh request ("read this job
// from the manager when you apply this"), so that the call's effect is on the
// bus before the reply. Volume infos carry the manager's revision, so the
// loop can drop one read before what it shows.
// Threads: the listener and Request* methods may be called from any thread,
// concurrently; Take() and fd() from the loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused::dbus {

struct VolumeEvent {
  enum class Kind {
    kAdded,
    kChanged,
    kRemoved,
    kJobAdded,
    kJobChanged,
    kJobRemoved,
    kJobRefresh,  // read the job job.id from the manager
    kBackups,     // the backups of backup_volume in backup_target are now `backups`
  };
  Kind kind = Kind::kChanged;
  VolumeInfo info;            // volume kinds; for kRemoved only info.name is set
  JobInfo job;                // job kinds; for kJobRemoved and kJobRefresh only job.id is set
  std::string backup_target;  // kBackups
  std::string backup_volume;
  std::vector<BackupInfo> backups;
};

class VolumeEventQueue final : public VolumeListener {
 public:
  // Creates the eventfd.
  static Result<std::unique_ptr<VolumeEventQueue>> Create();

  // Readable (POLLIN) while events are waiting.
  int fd() const { return fd_.get(); }
  // The waiting events in the order they came; clears the eventfd.
  std::vector<VolumeEvent> Take();

  void VolumeAdded(const VolumeInfo& info) override;
  void VolumeRemoved(const std::string& name) override;
  void VolumeChanged(const VolumeInfo& info) override;
  void JobAdded(const JobInfo& info) override;
  void JobChanged(const JobInfo& info) override;
  void JobRemoved(uint64_t id) override;
  void BackupsChanged(const std::string& target, const std::string& volume,
                      const std::vector<BackupInfo>& backups) override;

  // Reads volume `name` from `manager` now, on the calling thread (never the
  // loop's: the manager may hold its lock for seconds), and queues it as a
  // change; nothing when it is gone.
  void RefreshVolume(VolumeManager& manager, const std::string& name);
  // Queues "read job `id` from the manager" (GetJob is quick), applied by
  // the loop.
  void RequestJobRefresh(uint64_t id);

 private:
  explicit VolumeEventQueue(UniqueFd fd) : fd_(std::move(fd)) {}
  void Push(VolumeEvent event);

  const UniqueFd fd_;
  std::mutex mu_;
  std::vector<VolumeEvent> events_;  // guarded by mu_
};

}  // namespace shorthorn::fused::dbus
