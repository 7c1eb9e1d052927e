// Design notes: the D-Bus API has no call that reads one backup, so "backup
// show" lists the backups of the URL's volume in the URL's target and picks
// the one of that name. Names are compared rather than whole URLs because
// the daemon writes the target as its store spells it, which need not be
// the user's spelling (a trailing '/', say). "backup create --wait" prints
// only the URL, the job's Message, so that url=$(shorthornctl backup create
// ... --wait) is all a script needs.
#include "dbus/ctl/backup_commands.h"

#include <optional>

#include <boost/json.hpp>

#include "dbus/ctl/backup_url.h"
#include "dbus/ctl/job_commands.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {

Status BackupCreate(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  const std::string& snapshot = invocation.arguments.at(1);
  std::string target = invocation.Value("target");
  Result<std::string> job = client.CreateBackup(volume, snapshot, target);
  if (!job.ok()) return job.status();
  boost::json::object json{{"volume", volume}, {"snapshot", snapshot}, {"target", target}};
  return FollowJob(invocation, client, output, *job, std::move(json),
                   [&](const JobInfo& done, boost::json::object& result) -> std::string {
                     result["url"] = done.message;
                     if (!done.message.empty()) return done.message + "\n";
                     return "Backed up snapshot " + snapshot + " of volume " + volume +
                            "; shorthorn-fused did not say its URL (shorthornctl backup list " +
                            volume + " shows it).\n";
                   });
}

Status BackupList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::vector<BackupInfo>> backups =
      client.ListBackups(invocation.Value("target"), invocation.arguments.at(0));
  if (!backups.ok()) return backups.status();
  boost::json::array array;
  for (const BackupInfo& b : *backups) array.push_back(BackupToJson(b));
  output.Json(array);
  output.Text(BackupsTable(*backups));
  return Status::Ok();
}

Status BackupShow(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& text = invocation.arguments.at(0);
  Result<BackupUrl> url = ParseBackupUrl(text);  // checked by the parser
  if (!url.ok()) return url.status();
  Result<std::vector<BackupInfo>> backups = client.ListBackups(url->target, url->volume);
  if (!backups.ok()) return backups.status();
  for (const BackupInfo& b : *backups) {
    if (b.name != url->backup) continue;
    output.Json(BackupToJson(b));
    output.Text(BackupDetails(b));
    return Status::Ok();
  }
  return Status(ErrorKind::kNotFound, "show backup " + text + ": volume " + url->volume +
                                          " has no backup " + url->backup + " in " + url->target +
                                          " (shorthornctl backup list " + url->volume +
                                          " --target " + url->target + " shows those it has)");
}

Status BackupDelete(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& text = invocation.arguments.at(0);
  Result<BackupUrl> url = ParseBackupUrl(text);  // checked by the parser
  if (!url.ok()) return url.status();
  Result<std::string> job = client.DeleteBackup(text);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job, boost::json::object{{"backup", text}},
                   "Deleted backup " + url->backup + " of volume " + url->volume + ".\n");
}

Status VolumeRestore(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  const std::string& text = invocation.arguments.at(1);
  Result<BackupUrl> url = ParseBackupUrl(text);  // checked by the parser
  if (!url.ok()) return url.status();
  std::optional<uint32_t> replica_count;
  if (invocation.Has("replica-count")) {
    Result<uint32_t> count = ParseCount(invocation.Value("replica-count"));  // checked too
    if (!count.ok()) return count.status();
    replica_count = *count;
  }
  Result<std::string> job = client.RestoreVolume(name, text, invocation.Values("replica"),
                                                 replica_count, invocation.Value("replica-tags"));
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job,
                   boost::json::object{{"name", name}, {"backup", text}},
                   "Restored volume " + name + " from backup " + url->backup + " of volume " +
                       url->volume + ".\n");
}

}  // namespace shorthorn::ctl
