#include "dbus/ctl/job_reference.h"

#include <algorithm>
#include <cctype>

namespace shorthorn::ctl {
namespace {

// A job id as the daemon makes them: decimal, no sign, no leading zero, at
// most 20 digits (a uint64_t).
bool IsJobId(std::string_view text) {
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace

Result<std::string> ParseJobReference(std::string_view text) {
  std::string_view id = text;
  if (text.starts_with(kJobPathPrefix)) id = text.substr(kJobPathPrefix.size());
  if (!IsJobId(id)) {
    return Status(ErrorKind::kInvalidArgument,
                  "job '" + std::string(text) + "': not a job number or object path (write 7 or " +
                      std::string(kJobPathPrefix) + "7; shorthornctl job list shows them)");
  }
  return std::string(kJobPathPrefix) + std::string(id);
}

std::string JobIdOf(std::string_view path) {
  if (path.starts_with(kJobPathPrefix)) path.remove_prefix(kJobPathPrefix.size());
  return std::string(path);
}

}  // namespace shorthorn::ctl
