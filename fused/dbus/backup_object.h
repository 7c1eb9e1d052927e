// BackupObject: one backup fused knows of, on the bus as
// /org/shorthorn/Storage1/backups/<escaped volume>/<escaped backup name> with
// interface org.shorthorn.Storage1.Backup (dbus/org.shorthorn.Storage1.Backup.xml):
// constant properties from the BackupInfo it was made with (a backup never
// changes; a deleted one is withdrawn). Which backups are exported is the
// manager's to say (VolumeListener::BackupsChanged): those of its volumes in
// the default target, and those it listed, made or deleted since.
// Threads: create, Announce, Withdraw and destroy on the event loop thread.
#pragma once

#include <memory>
#include <string>

#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "fused/core/volume_manager.h"

namespace shorthorn::fused::dbus {

// "/org/shorthorn/Storage1/backups/<escaped volume>/<escaped name>".
std::string BackupObjectPath(const std::string& volume, const std::string& name);

class BackupObject {
 public:
  // `target` is the URL of the target the backup is in.
  BackupObject(sdbus::IConnection& connection, std::string target, BackupInfo info);
  BackupObject(const BackupObject&) = delete;
  BackupObject& operator=(const BackupObject&) = delete;

  const std::string& target() const { return target_; }
  const BackupInfo& info() const { return info_; }
  void Announce() { object_->emitInterfacesAddedSignal(); }
  void Withdraw() { object_->emitInterfacesRemovedSignal(); }

 private:
  const std::string target_;
  const BackupInfo info_;
  std::unique_ptr<sdbus::IObject> object_;
};

}  // namespace shorthorn::fused::dbus
