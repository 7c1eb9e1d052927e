#include "dbus/ctl/job_commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/job_reference.h"
#include "dbus/ctl/job_wait.h"
#include "dbus/ctl/progress.h"

namespace shorthorn::ctl {
namespace {

// The JOB argument as an object path; the parser has checked it.
Result<std::string> JobPath(const Invocation& invocation) {
  return ParseJobReference(invocation.arguments.at(0));
}

std::string Describe(const JobInfo& job) { return "Job " + job.id + " (" + JobLabel(job) + ")"; }

}  // namespace

Status FollowJob(const Invocation& invocation, StorageClient& client, Output& output,
                 const std::string& path, boost::json::object json, const std::string& done_text) {
  return FollowJob(invocation, client, output, path, std::move(json),
                   [&done_text](const JobInfo&, boost::json::object&) { return done_text; });
}

Status FollowJob(const Invocation& invocation, StorageClient& client, Output& output,
                 const std::string& path, boost::json::object json, const JobDone& done) {
  if (!invocation.Has("wait")) {
    json["job"] = path;
    output.Json(json);
    output.Text(path + "\n");
    return Status::Ok();
  }
  Result<JobInfo> job = WaitForJob(client, output, path);
  if (!job.ok()) return job.status();
  SH_RETURN_IF_ERROR(JobOutcome(*job));
  json["job"] = JobToJson(*job);
  std::string text = done(*job, json);
  output.Json(json);
  output.Text(text);
  return Status::Ok();
}

Status JobList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::vector<JobInfo>> jobs = client.ListJobs();
  if (!jobs.ok()) return jobs.status();
  boost::json::array array;
  for (const JobInfo& j : *jobs) array.push_back(JobToJson(j));
  output.Json(array);
  if (invocation.Has("quiet")) {
    std::string ids;
    for (const JobInfo& j : *jobs) ids += j.id + "\n";
    output.Text(ids);
  } else {
    output.Text(JobsTable(*jobs));
  }
  return Status::Ok();
}

Status JobShow(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::string> path = JobPath(invocation);
  if (!path.ok()) return path.status();
  Result<JobInfo> job = client.GetJob("show", *path);
  if (!job.ok()) return job.status();
  output.Json(JobToJson(*job));
  output.Text(JobDetails(*job));
  return Status::Ok();
}

Status JobWait(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::string> path = JobPath(invocation);
  if (!path.ok()) return path.status();
  Result<JobInfo> job = WaitForJob(client, output, *path);
  if (!job.ok()) return job.status();
  SH_RETURN_IF_ERROR(JobOutcome(*job));
  output.Json(JobToJson(*job));
  output.Text(Describe(*job) + " completed.\n");
  return Status::Ok();
}

Status JobCancel(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::string> path = JobPath(invocation);
  if (!path.ok()) return path.status();
  SH_RETURN_IF_ERROR(client.CancelJob(*path));
  if (!invocation.Has("wait")) {
    output.Json(boost::json::object{{"job", *path}, {"cancel_requested", true}});
    output.Text("Asked job " + JobIdOf(*path) + " to stop.\n");
    return Status::Ok();
  }
  Result<JobInfo> job = WaitForJob(client, output, *path);
  if (!job.ok()) return job.status();
  // Stopped is what was asked for; a job that completed first is fine too.
  if (job->state == "failed") return JobOutcome(*job);
  output.Json(JobToJson(*job));
  output.Text(Describe(*job) + (job->state == "cancelled"
                                    ? " cancelled.\n"
                                    : " completed before it could be cancelled.\n"));
  return Status::Ok();
}

}  // namespace shorthorn::ctl
