// Waiting for a job to end, as "--wait" and "job wait" do: read the job,
// redraw its progress line (Output draws it only on a terminal), read it
// again every kJobPollInterval until State is no longer "running", and turn
// the final State into the command's outcome. Pure: the StorageClient does
// the waiting between reads (WatchJob), so tests run without sleeping.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Often enough for a lively progress line, rarely enough to cost the daemon
// nothing; the daemon itself publishes progress at most every 200 ms.
inline constexpr std::chrono::milliseconds kJobPollInterval{200};

// True for "completed", "failed" and "cancelled".
bool JobEnded(const JobInfo& job);

// Waits until the job at `path` has ended and returns its final properties.
// NotFound when the daemon does not know the job; Failed when it forgets the
// job before its end could be read (the daemon restarted).
Result<JobInfo> WaitForJob(StorageClient& client, Output& output, const std::string& path);

// The outcome of an ended job: OK when completed; otherwise Failed with the
// job's message ("<label>: cancelled" when it has none). The Job interface
// carries no error kind, so a failed job is always exit status 1.
Status JobOutcome(const JobInfo& job);

}  // namespace shorthorn::ctl
