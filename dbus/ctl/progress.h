// The one-line progress display of a running job, as shorthornctl redraws it
// on a terminal while it waits ("--wait", "job wait"), and the short names
// of a job used in messages. Pure: text in, text out; Output draws it.
#pragma once

#include <string>

#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// "[#######.............]": `width` cells between the brackets, filled in
// proportion to `fraction` (clamped to 0..1, rounded down).
std::string ProgressBar(double fraction, int width);

// What the job works on, for people: "verify of volume vol1",
// "delete-snapshot s1 of volume vol1", "rebuild of volume vol1", or just the
// operation when the job belongs to no volume.
std::string JobLabel(const JobInfo& job);

// One line, no newline, e.g.
// "job 7 verify of volume vol1 [#####...............]  25%  256 MiB / 1 GiB  12.5 MiB/s".
// Without TotalBytes the bar follows Progress and only the bytes done are
// shown; without a rate the rate is left out. A job in State "queued" shows
// why instead of a bar: "job 9 rebuild of volume vol1 queued: <Message>".
std::string ProgressLine(const JobInfo& job);

}  // namespace shorthorn::ctl
