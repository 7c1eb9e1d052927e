#include "dbus/ctl/snapshot_commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/job_commands.h"

namespace shorthorn::ctl {

Status SnapshotCreate(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  const std::string& snapshot = invocation.arguments.at(1);
  SH_RETURN_IF_ERROR(client.CreateSnapshot(volume, snapshot));
  output.Json(boost::json::object{{"volume", volume}, {"snapshot", snapshot}, {"created", true}});
  output.Text("Created snapshot " + snapshot + " of volume " + volume + ".\n");
  return Status::Ok();
}

Status SnapshotList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume = client.GetVolume("list snapshots of", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  boost::json::array array;
  for (const SnapshotInfo& s : volume->snapshots) array.push_back(SnapshotToJson(s));
  output.Json(array);
  if (invocation.Has("quiet")) {
    // The names one can still delete or revert to.
    std::string names;
    for (const SnapshotInfo& s : volume->snapshots) {
      if (!s.removed) names += s.name + "\n";
    }
    output.Text(names);
  } else {
    output.Text(SnapshotsTable(volume->snapshots));
  }
  return Status::Ok();
}

Status SnapshotDelete(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  const std::string& snapshot = invocation.arguments.at(1);
  Result<std::string> job = client.DeleteSnapshot(volume, snapshot);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job,
                   boost::json::object{{"volume", volume}, {"snapshot", snapshot}},
                   "Deleted snapshot " + snapshot + " of volume " + volume + ".\n");
}

Status SnapshotRevert(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  const std::string& snapshot = invocation.arguments.at(1);
  SH_RETURN_IF_ERROR(client.RevertSnapshot(volume, snapshot));
  output.Json(boost::json::object{{"volume", volume}, {"snapshot", snapshot}, {"reverted", true}});
  output.Text("Reverted volume " + volume + " to snapshot " + snapshot + ".\n");
  return Status::Ok();
}

}  // namespace shorthorn::ctl
