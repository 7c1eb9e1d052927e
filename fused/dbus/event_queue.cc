#include "fused/dbus/event_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>

namespace shorthorn::fused::dbus {

namespace {

VolumeEvent Event(VolumeEvent::Kind kind) {
  VolumeEvent event;
  event.kind = kind;
  return event;
}

}  // namespace

Result<std::unique_ptr<VolumeEventQueue>> VolumeEventQueue::Create() {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, "create volume event queue eventfd");
  return std::unique_ptr<VolumeEventQueue>(new VolumeEventQueue(UniqueFd(fd)));
}

std::vector<VolumeEvent> VolumeEventQueue::Take() {
  uint64_t count = 0;
  // EAGAIN (nothing written since the last Take) is fine: the fd is a hint.
  (void)!read(fd_.get(), &count, sizeof(count));
  std::lock_guard lock(mu_);
  std::vector<VolumeEvent> events;
  events.swap(events_);
  return events;
}

void VolumeEventQueue::Push(VolumeEvent event) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  uint64_t one = 1;
  // Only fails with EAGAIN when the counter is near 2^64: already readable.
  (void)!write(fd_.get(), &one, sizeof(one));
}

void VolumeEventQueue::VolumeAdded(const VolumeInfo& info) {
  VolumeEvent event = Event(VolumeEvent::Kind::kAdded);
  event.info = info;
  Push(std::move(event));
}

void VolumeEventQueue::VolumeRemoved(const std::string& name) {
  VolumeEvent event = Event(VolumeEvent::Kind::kRemoved);
  event.info.name = name;
  Push(std::move(event));
}

void VolumeEventQueue::VolumeChanged(const VolumeInfo& info) {
  VolumeEvent event = Event(VolumeEvent::Kind::kChanged);
  event.info = info;
  Push(std::move(event));
}

void VolumeEventQueue::JobAdded(const JobInfo& info) {
  VolumeEvent event = Event(VolumeEvent::Kind::kJobAdded);
  event.job = info;
  Push(std::move(event));
}

void VolumeEventQueue::JobChanged(const JobInfo& info) {
  VolumeEvent event = Event(VolumeEvent::Kind::kJobChanged);
  event.job = info;
  Push(std::move(event));
}

void VolumeEventQueue::JobRemoved(uint64_t id) {
  VolumeEvent event = Event(VolumeEvent::Kind::kJobRemoved);
  event.job.id = id;
  Push(std::move(event));
}

void VolumeEventQueue::BackupsChanged(const std::string& target, const std::string& volume,
                                      const std::vector<BackupInfo>& backups) {
  VolumeEvent event = Event(VolumeEvent::Kind::kBackups);
  event.backup_target = target;
  event.backup_volume = volume;
  event.backups = backups;
  Push(std::move(event));
}

void VolumeEventQueue::RefreshVolume(VolumeManager& manager, const std::string& name) {
  Result<VolumeInfo> info = manager.GetVolume(name);
  // A volume that is gone is reported by the manager's VolumeRemoved.
  if (info.ok()) VolumeChanged(*info);
}

void VolumeEventQueue::RequestJobRefresh(uint64_t id) {
  VolumeEvent event = Event(VolumeEvent::Kind::kJobRefresh);
  event.job.id = id;
  Push(std::move(event));
}

}  // namespace shorthorn::fused::dbus
