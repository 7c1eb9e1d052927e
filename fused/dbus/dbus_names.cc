#include "fused/dbus/dbus_names.h"

#include <systemd/sd-bus.h>

#include <cstdlib>
#include <new>

namespace shorthorn::fused::dbus {
namespace {

// The characters sd_bus_path_encode leaves in an element, plus its '_'.
bool IsPathElementByte(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::string EscapePathElement(std::string_view name) {
  // sd_bus_path_encode escapes the id into one element under the prefix.
  char* path = nullptr;
  if (sd_bus_path_encode(kRootPath, std::string(name).c_str(), &path) < 0 || path == nullptr) {
    throw std::bad_alloc();  // its only failure with a valid prefix
  }
  std::string encoded(path);
  free(path);
  return encoded.substr(sizeof(kRootPath));  // past "<root>/"
}

std::optional<std::string> UnescapePathElement(std::string_view element) {
  if (element.empty()) return std::nullopt;
  for (char c : element) {
    if (!IsPathElementByte(c)) return std::nullopt;
  }
  std::string path = std::string(kRootPath) + "/" + std::string(element);
  char* id = nullptr;
  if (sd_bus_path_decode(path.c_str(), kRootPath, &id) <= 0 || id == nullptr) return std::nullopt;
  std::string decoded(id);
  free(id);
  // sd_bus_path_decode is lenient ("_zz" stays as it is, "_61" becomes
  // "a"); only what EscapePathElement makes is a name's element.
  if (EscapePathElement(decoded) != element) return std::nullopt;
  return decoded;
}

std::string VolumeObjectPath(std::string_view volume_name) {
  return std::string(kVolumesPath) + "/" + EscapePathElement(volume_name);
}

std::optional<std::string> VolumeNameFromPath(std::string_view path) {
  std::string_view prefix = kVolumesPath;
  if (path.size() <= prefix.size() + 1 || path.substr(0, prefix.size()) != prefix ||
      path[prefix.size()] != '/') {
    return std::nullopt;
  }
  std::string_view element = path.substr(prefix.size() + 1);
  if (element.find('/') != std::string_view::npos) return std::nullopt;
  return UnescapePathElement(element);
}

std::string JobObjectPath(uint64_t id) { return std::string(kJobsPath) + "/" + std::to_string(id); }

std::string ErrorName(ErrorKind kind) {
  if (kind == ErrorKind::kOk) kind = ErrorKind::kFailed;  // never an error named "Ok"
  return std::string(kErrorPrefix) + std::string(ErrorKindName(kind));
}

sdbus::Error ToDbusError(const Status& status) {
  return sdbus::Error(ErrorName(status.kind()), status.message());
}

}  // namespace shorthorn::fused::dbus
