// The names of Shorthorn's D-Bus API (bus name, object paths, interfaces,
// error names) and the pure conversions around them: a volume name to its
// object path and back, a job id to its object path, a Status to an
// org.shorthorn.Storage1.Error.<Kind>, and the guard every handler runs in so
// that nothing but sdbus::Error escapes.
// doc/dbus-api.md and dbus/*.xml are the contract these constants follow.
// Pure functions; callable from any thread.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include <sdbus-c++/Error.h>

#include "common/bus_names.h"
#include "common/status.h"

namespace shorthorn::fused::dbus {

using bus::kBackupInterface;
using bus::kBackupsPath;
using bus::kBusName;
using bus::kErrorPrefix;
using bus::kJobInterface;
using bus::kJobsPath;
using bus::kManagerInterface;
using bus::kManagerPath;
using bus::kRootPath;
using bus::kVolumeInterface;
using bus::kVolumesPath;

// Escapes `name` into one object path element with libsystemd's
// sd_bus_path_encode (systemd's and udisks' rule): [A-Za-z0-9] stay, except
// a leading digit, and every other byte (including '_') becomes "_xx" in
// lowercase hex, so "db-1.a_b" is "db_2d1_2ea_5fb" and "1db" is "_31db".
// The empty name is "_".
std::string EscapePathElement(std::string_view name);
// The inverse; nullopt when `element` is not something EscapePathElement made.
std::optional<std::string> UnescapePathElement(std::string_view element);

// "/org/shorthorn/Storage1/volumes/<escaped name>".
std::string VolumeObjectPath(std::string_view volume_name);
// The volume name of a path VolumeObjectPath made; nullopt for other paths.
std::optional<std::string> VolumeNameFromPath(std::string_view path);
// "/org/shorthorn/Storage1/jobs/<id>" (decimal).
std::string JobObjectPath(uint64_t id);

// "org.shorthorn.Storage1.Error.<Kind>" for a non-OK kind.
std::string ErrorName(ErrorKind kind);
// The error a D-Bus handler throws for a non-OK `status`.
sdbus::Error ToDbusError(const Status& status);

// Runs `body`, the handler of D-Bus member `member`, so that only an
// sdbus::Error can leave it: sdbus-c++ turns that into an error reply, while
// any other exception would unwind through sd-bus and end the daemon. Other
// exceptions become org.shorthorn.Storage1.Error.Failed.
template <typename Body>
void GuardHandler(std::string_view member, Body&& body) {
  try {
    body();
  } catch (const sdbus::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw sdbus::Error(ErrorName(ErrorKind::kFailed), std::string(member) + ": " + e.what());
  } catch (...) {
    throw sdbus::Error(ErrorName(ErrorKind::kFailed), std::string(member) + ": unknown exception");
  }
}

}  // namespace shorthorn::fused::dbus
