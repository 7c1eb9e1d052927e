#include "dbus/ctl/recurring_commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/size.h"

namespace shorthorn::ctl {

Status RecurringAdd(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  Result<uint32_t> retain = ParseCount(invocation.Value("retain"));  // checked by the parser
  if (!retain.ok()) return retain.status();
  RecurringJobInfo job;
  job.name = invocation.arguments.at(1);
  job.kind = invocation.Value("kind");
  job.schedule = invocation.Value("schedule");
  job.retain = *retain;
  job.target = invocation.Value("target");
  SH_RETURN_IF_ERROR(client.AddRecurringJob(volume, job));
  output.Json(boost::json::object{{"volume", volume},
                                  {"name", job.name},
                                  {"kind", job.kind},
                                  {"schedule", job.schedule},
                                  {"retain", job.retain},
                                  {"target", job.target},
                                  {"added", true}});
  output.Text("Added recurring job " + job.name + " (" + job.kind + ", " + job.schedule +
              ", retain " + std::to_string(job.retain) + ") to volume " + volume + ".\n");
  return Status::Ok();
}

Status RecurringList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume =
      client.GetVolume("list recurring jobs of", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  output.Json(RecurringJobsToJson(volume->recurring_jobs));
  if (invocation.Has("quiet")) {
    std::string names;
    for (const RecurringJobInfo& j : volume->recurring_jobs) names += j.name + "\n";
    output.Text(names);
  } else {
    output.Text(RecurringJobsTable(volume->recurring_jobs));
  }
  return Status::Ok();
}

Status RecurringRemove(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  const std::string& job = invocation.arguments.at(1);
  SH_RETURN_IF_ERROR(client.RemoveRecurringJob(volume, job));
  output.Json(boost::json::object{{"volume", volume}, {"name", job}, {"removed", true}});
  output.Text("Removed recurring job " + job + " from volume " + volume + ".\n");
  return Status::Ok();
}

}  // namespace shorthorn::ctl
