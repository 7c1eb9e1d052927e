#include "fused/dbus/dbus_names.h"

namespace shorthorn::fused::dbus {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool IsPlainPathByte(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is never produced, so it is not accepted either
}

}  // namespace

std::string EscapePathElement(std::string_view name) {
  if (name.empty()) return "_";
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (IsPlainPathByte(c)) {
      out.push_back(c);
    } else {
      auto byte = static_cast<unsigned char>(c);
      out.push_back('_');
      out.push_back(kHexDigits[byte >> 4]);
      out.push_back(kHexDigits[byte & 0xf]);
    }
  }
  return out;
}

std::optional<std::string> UnescapePathElement(std::string_view element) {
  if (element == "_") return std::string();
  if (element.empty()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < element.size(); ++i) {
    char c = element[i];
    if (IsPlainPathByte(c)) {
      out.push_back(c);
      continue;
    }
    if (c != '_' || i + 2 >= element.size()) return std::nullopt;
    int high = HexValue(element[i + 1]);
    int low = HexValue(element[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    char decoded = static_cast<char>((high << 4) | low);
    // A byte that would have been left alone was not escaped by us.
    if (IsPlainPathByte(decoded)) return std::nullopt;
    out.push_back(decoded);
    i += 2;
  }
  return out;
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
