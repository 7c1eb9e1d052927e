// How a user names a job on the command line: its number ("7") or its object
// path ("/org/shorthorn/Storage1/jobs/7", as "snapshot delete" prints it),
// and the way back from a path to the number. Pure.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::ctl {

inline constexpr std::string_view kJobPathPrefix = "/org/shorthorn/Storage1/jobs/";

// The object path of the job `text` names; InvalidArgument saying what is
// accepted for anything but a decimal id or a job path.
Result<std::string> ParseJobReference(std::string_view text);

// "7" for "/org/shorthorn/Storage1/jobs/7"; the path itself when it is not
// a job path.
std::string JobIdOf(std::string_view path);

}  // namespace shorthorn::ctl
