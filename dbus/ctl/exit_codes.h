// The exit codes of shorthornctl, one per error kind of the D-Bus API, and
// the mapping from D-Bus error names to those kinds. The table below is
// documented in shorthornctl(1); scripts rely on it, so codes are never
// renumbered, only added. Pure.
//
//   0 success                 5 InvalidArgument        10 NoSpace
//   1 Failed (anything else)  6 Busy                   11 IOError
//   2 usage                   7 NotAuthorized          12 Protocol
//   3 NotFound                8 Unavailable            13 LimitExceeded
//   4 AlreadyExists           9 Stale
#pragma once

#include <string_view>

#include "common/status.h"

namespace shorthorn::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The exit code for a failure of kind `kind` (kExitOk for kOk).
int ExitCodeFor(ErrorKind kind);

// The kind a D-Bus error name stands for: org.shorthorn.Storage1.Error.<Kind>
// maps to that kind; the bus's own errors map to the nearest kind (no owner
// of the name, no reply, no bus: Unavailable; AccessDenied: NotAuthorized;
// an unknown object: NotFound; InvalidArgs: InvalidArgument); anything else
// is Failed.
ErrorKind KindForDbusError(std::string_view error_name);

}  // namespace shorthorn::ctl
