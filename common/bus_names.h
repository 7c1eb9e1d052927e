// The names of Shorthorn's D-Bus API that both ends use: the bus name, the
// fixed object paths, the interfaces and the error prefix. shorthorn-fused
// (fused/dbus) serves them and shorthornctl (dbus/ctl) calls them; this is
// the one copy. doc/dbus-api.md and dbus/*.xml are the contract.
#pragma once

namespace shorthorn::bus {

inline constexpr char kBusName[] = "org.shorthorn.Storage1";
inline constexpr char kRootPath[] = "/org/shorthorn/Storage1";
inline constexpr char kManagerPath[] = "/org/shorthorn/Storage1/Manager";
inline constexpr char kVolumesPath[] = "/org/shorthorn/Storage1/volumes";
inline constexpr char kJobsPath[] = "/org/shorthorn/Storage1/jobs";
inline constexpr char kBackupsPath[] = "/org/shorthorn/Storage1/backups";
inline constexpr char kManagerInterface[] = "org.shorthorn.Storage1.Manager";
inline constexpr char kVolumeInterface[] = "org.shorthorn.Storage1.Volume";
inline constexpr char kJobInterface[] = "org.shorthorn.Storage1.Job";
inline constexpr char kBackupInterface[] = "org.shorthorn.Storage1.Backup";
inline constexpr char kErrorPrefix[] = "org.shorthorn.Storage1.Error.";

}  // namespace shorthorn::bus
