#include "fused/dbus/backup_object.h"

#include "fused/dbus/dbus_names.h"

namespace shorthorn::fused::dbus {

std::string BackupObjectPath(const std::string& volume, const std::string& name) {
  return std::string(kBackupsPath) + "/" + EscapePathElement(volume) + "/" +
         EscapePathElement(name);
}

BackupObject::BackupObject(sdbus::IConnection& connection, std::string target, BackupInfo info)
    : target_(std::move(target)),
      info_(std::move(info)),
      object_(sdbus::createObject(connection, BackupObjectPath(info_.volume, info_.name))) {
  sdbus::Flags constant;
  constant.set(sdbus::Flags::CONST_PROPERTY_VALUE);
  auto add = [this, &constant](const char* name, const char* signature, auto value_of) {
    object_->registerProperty(
        kBackupInterface, name, signature,
        [this, name, value_of](sdbus::PropertyGetReply& reply) {
          GuardHandler(std::string("Get ") + name, [&] { reply << value_of(); });
        },
        constant);
  };
  add("Name", "s", [this] { return info_.name; });
  add("Volume", "s", [this] { return info_.volume; });
  add("Snapshot", "s", [this] { return info_.snapshot; });
  add("Created", "s", [this] { return info_.created; });
  add("Size", "t", [this] { return info_.size; });
  add("Blocks", "t", [this] { return info_.blocks; });
  add("URL", "s", [this] { return info_.url; });
  add("Target", "s", [this] { return target_; });
  object_->finishRegistration();
}

}  // namespace shorthorn::fused::dbus
