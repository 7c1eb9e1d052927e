// Handlers of the "shorthornctl job ..." commands (rows in commands.cc), and
// FollowJob, what every command that starts a job (snapshot delete, volume
// verify, the backup commands, volume create --from-snapshot, volume
// create-standby) does with the job it got back. Same shape as
// volume_commands.h: parsed Invocation in, StorageClient calls, Output out,
// the client's or the job's Status passed on. Pure: the client is the only way out.
#pragma once

#include <functional>
#include <string>

#include <boost/json/object.hpp>

#include "common/status.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/output.h"
#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl {

// Without --wait: prints the job's object path (JSON: `json` plus "job":
// the path) and succeeds. With --wait: waits for the job (job_wait.h); when
// it completed prints `done_text` (JSON: `json` plus "job": the job's
// properties), otherwise returns its failure.
Status FollowJob(const Invocation& invocation, StorageClient& client, Output& output,
                 const std::string& path, boost::json::object json, const std::string& done_text);

// What to print once a waited-for job has completed, made from the ended
// job (e.g. its Message): returns the text and may add members to `json`,
// which already holds "job".
using JobDone = std::function<std::string(const JobInfo& job, boost::json::object& json)>;
// FollowJob for a result that only the ended job knows.
Status FollowJob(const Invocation& invocation, StorageClient& client, Output& output,
                 const std::string& path, boost::json::object json, const JobDone& done);

Status JobList(const Invocation& invocation, StorageClient& client, Output& output);
Status JobShow(const Invocation& invocation, StorageClient& client, Output& output);
Status JobWait(const Invocation& invocation, StorageClient& client, Output& output);
Status JobCancel(const Invocation& invocation, StorageClient& client, Output& output);

}  // namespace shorthorn::ctl
