// The free helpers of the service (declared at the end of
// volume_service.h): option checks shared by the D-Bus methods, the volume
// size limit, and random replica-name suffixes.
#include <algorithm>
#include <random>

#include "common/names.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {

Status CheckOptions(const char* method, const Options& options,
                    std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : options) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      return Status(ErrorKind::kInvalidArgument,
                    std::string(method) + ": unknown option '" + key + "'");
    }
  }
  return Status::Ok();
}

Status BoolOption(const std::string& what, const Options& options, const char* key, bool* value) {
  auto it = options.find(key);
  if (it == options.end()) return Status::Ok();
  const auto* b = std::get_if<bool>(&it->second);
  if (b == nullptr) {
    return Status(ErrorKind::kInvalidArgument, what + ": option '" + key + "' must be a boolean");
  }
  *value = *b;
  return Status::Ok();
}

Result<std::vector<std::string>> ReplicaTagsOption(const std::string& what,
                                                   const Options& options) {
  std::vector<std::string> tags;
  auto it = options.find("replica-tags");
  if (it == options.end()) return tags;
  const auto* text = std::get_if<std::string>(&it->second);
  if (text == nullptr) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": option 'replica-tags' must be a string (comma-separated tags)");
  }
  std::string rest = *text;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string tag = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    if (tag.empty() && comma == std::string::npos && tags.empty()) break;
    Status valid = ValidateTag(tag);
    if (!valid.ok()) return valid.WithContext(what + ": option 'replica-tags'");
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(tag);
  }
  if (tags.size() > kMaxTags) {
    return Status(ErrorKind::kInvalidArgument, what + ": option 'replica-tags' has more than " +
                                                   std::to_string(kMaxTags) + " tags");
  }
  std::sort(tags.begin(), tags.end());
  return tags;
}

Status CheckVolumeSize(const std::string& what, uint64_t size, uint64_t limit_gib) {
  // A limit of 2^34 GiB or more is 2^64 bytes or more: nothing is above it.
  if (limit_gib >= (uint64_t{1} << 34) || size <= (limit_gib << 30)) return Status::Ok();
  return Status(ErrorKind::kInvalidArgument, what + ": size " + std::to_string(size) +
                                                 " bytes exceeds max-volume-size " +
                                                 std::to_string(limit_gib) + " GiB");
}
std::string RandomHex64() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace shorthorn::fused
