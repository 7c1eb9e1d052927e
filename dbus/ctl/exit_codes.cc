#include "dbus/ctl/exit_codes.h"

#include <array>
#include <utility>

namespace shorthorn::ctl {
namespace {

constexpr std::string_view kShorthornErrorPrefix = "org.shorthorn.Storage1.Error.";

struct KindCode {
  ErrorKind kind;
  int code;
};

constexpr std::array<KindCode, 14> kExitCodes = {{
    {ErrorKind::kOk, kExitOk},
    {ErrorKind::kFailed, kExitFailed},
    {ErrorKind::kNotFound, 3},
    {ErrorKind::kAlreadyExists, 4},
    {ErrorKind::kInvalidArgument, 5},
    {ErrorKind::kBusy, 6},
    {ErrorKind::kNotAuthorized, 7},
    {ErrorKind::kUnavailable, 8},
    {ErrorKind::kStale, 9},
    {ErrorKind::kNoSpace, 10},
    {ErrorKind::kIoError, 11},
    {ErrorKind::kProtocol, 12},
    {ErrorKind::kLimitExceeded, 13},
    {ErrorKind::kMoved, 14},
}};

constexpr ErrorKind kAllKinds[] = {
    ErrorKind::kNotFound, ErrorKind::kAlreadyExists, ErrorKind::kInvalidArgument,
    ErrorKind::kBusy,     ErrorKind::kNotAuthorized, ErrorKind::kUnavailable,
    ErrorKind::kStale,    ErrorKind::kNoSpace,       ErrorKind::kIoError,
    ErrorKind::kProtocol, ErrorKind::kLimitExceeded, ErrorKind::kMoved,
    ErrorKind::kFailed,
};

// Errors of the bus itself (org.freedesktop.DBus.Error.*, sd-bus's
// System.Error.*), by the kind of trouble they mean for the user.
constexpr std::pair<std::string_view, ErrorKind> kBusErrors[] = {
    {"org.freedesktop.DBus.Error.ServiceUnknown", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.NameHasNoOwner", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.NoReply", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.Timeout", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.TimedOut", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.Disconnected", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.NoServer", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.FileNotFound", ErrorKind::kUnavailable},
    {"System.Error.ENOENT", ErrorKind::kUnavailable},
    {"System.Error.ECONNREFUSED", ErrorKind::kUnavailable},
    {"System.Error.ETIMEDOUT", ErrorKind::kUnavailable},
    {"org.freedesktop.DBus.Error.AccessDenied", ErrorKind::kNotAuthorized},
    {"System.Error.EACCES", ErrorKind::kNotAuthorized},
    {"System.Error.EPERM", ErrorKind::kNotAuthorized},
    {"org.freedesktop.DBus.Error.UnknownObject", ErrorKind::kNotFound},
    {"org.freedesktop.DBus.Error.InvalidArgs", ErrorKind::kInvalidArgument},
};

}  // namespace

int ExitCodeFor(ErrorKind kind) {
  for (const KindCode& entry : kExitCodes) {
    if (entry.kind == kind) return entry.code;
  }
  return kExitFailed;
}

ErrorKind KindForDbusError(std::string_view error_name) {
  if (error_name.starts_with(kShorthornErrorPrefix)) {
    std::string_view kind_name = error_name.substr(kShorthornErrorPrefix.size());
    for (ErrorKind kind : kAllKinds) {
      if (ErrorKindName(kind) == kind_name) return kind;
    }
    return ErrorKind::kFailed;
  }
  for (const auto& [name, kind] : kBusErrors) {
    if (name == error_name) return kind;
  }
  return ErrorKind::kFailed;
}

}  // namespace shorthorn::ctl
