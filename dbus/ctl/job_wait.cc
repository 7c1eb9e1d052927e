// Design notes: polling rather than the Completed signal. A poll every
// 200 ms sees the final State at most 200 ms late, needs no match rule set
// up before the job starts (a job can end between the reply that names it
// and any subscription), and finished jobs stay readable for a minute, far
// longer than one interval. The only loss is when the daemon forgets the job
// between two reads, which happens only when it restarts; that is reported
// as an unknown outcome rather than guessed.
#include "dbus/ctl/job_wait.h"

#include "dbus/ctl/progress.h"

namespace shorthorn::ctl {

bool JobEnded(const JobInfo& job) {
  return job.state == "completed" || job.state == "failed" || job.state == "cancelled";
}

Result<JobInfo> WaitForJob(StorageClient& client, Output& output, const std::string& path) {
  Result<JobInfo> job = client.GetJob("wait for", path);
  if (!job.ok()) return job.status();
  output.Progress(ProgressLine(*job));
  while (!JobEnded(*job)) {
    Result<JobInfo> next = client.WatchJob(path, kJobPollInterval);
    if (!next.ok()) {
      output.EndProgress();
      if (next.status().kind() != ErrorKind::kNotFound) return next.status();
      return Status(ErrorKind::kFailed, "wait for job " + job->id + " (" + JobLabel(*job) +
                                            "): shorthorn-fused no longer knows the job, so its "
                                            "outcome is unknown (" +
                                            next.status().message() + ")");
    }
    job = std::move(next);
    output.Progress(ProgressLine(*job));
  }
  output.EndProgress();
  return job;
}

Status JobOutcome(const JobInfo& job) {
  if (job.state == "completed") return Status::Ok();
  std::string message = job.message;
  if (message.empty()) message = "job " + job.id + " " + JobLabel(job) + ": " + job.state;
  if (job.state == "cancelled" && message.find("cancel") == std::string::npos) {
    message += " (cancelled)";
  }
  return Status(ErrorKind::kFailed, message);
}

}  // namespace shorthorn::ctl
