// Design notes: "replica list" joins the volume's Replicas with
// ListReplicads by address for the HOST and FREE columns. ListReplicads
// asks every replicad and needs root or group shorthorn, while reading a
// volume is open to everyone, and a daemon that predates placement has no
// such method; so its failure only blanks those columns: the replicas
// themselves are what the command is for. It is not called for a volume
// without replicas.
#include "dbus/ctl/replica_commands.h"

#include <optional>

#include <boost/json.hpp>

#include "dbus/ctl/job_commands.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {

Status ReplicaList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume = client.GetVolume("list replicas of", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  std::optional<std::vector<ReplicadInfo>> replicads;
  if (!volume->replicas.empty()) {
    if (Result<std::vector<ReplicadInfo>> listed = client.ListReplicads(); listed.ok()) {
      replicads = std::move(*listed);
    }
  }
  const std::vector<ReplicadInfo>* known = replicads ? &*replicads : nullptr;
  output.Json(boost::json::object{{"volume", volume->name},
                                  {"replica_count", volume->replica_count},
                                  {"robustness", volume->robustness},
                                  {"replicas", ReplicasWithHostsToJson(volume->replicas, known)}});
  output.Text("Replica count: " + std::to_string(volume->replica_count) + "\nRobustness:    " +
              volume->robustness + "\n" + ReplicasWithHostsTable(volume->replicas, known));
  return Status::Ok();
}

Status ReplicaSetCount(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& volume = invocation.arguments.at(0);
  Result<uint32_t> count = ParseCount(invocation.arguments.at(1));  // checked by the parser
  if (!count.ok()) return count.status();
  SH_RETURN_IF_ERROR(client.SetReplicaCount(volume, *count));
  output.Json(boost::json::object{{"volume", volume}, {"replica_count", *count}});
  output.Text("Volume " + volume + " keeps " + std::to_string(*count) + " replica" +
              (*count == 1 ? "" : "s") +
              " now; rebuilds run as jobs (shorthornctl job list, shorthornctl replica list " +
              volume + ").\n");
  return Status::Ok();
}

Status ReplicadList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::vector<ReplicadInfo>> replicads = client.ListReplicads();
  if (!replicads.ok()) return replicads.status();
  boost::json::array array;
  for (const ReplicadInfo& r : *replicads) array.push_back(ReplicadToJson(r));
  output.Json(array);
  if (invocation.Has("quiet")) {
    std::string addresses;
    for (const ReplicadInfo& r : *replicads) addresses += r.address + "\n";
    output.Text(addresses);
  } else {
    output.Text(ReplicadsTable(*replicads));
  }
  return Status::Ok();
}

Status ReplicadDrain(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& address = invocation.arguments.at(0);
  Result<std::string> job = client.DrainReplicad(address);
  if (!job.ok()) return job.status();
  return FollowJob(
      invocation, client, output, *job, boost::json::object{{"address", address}},
      [&](const JobInfo& done, boost::json::object&) {
        // The job's Message says what it moved.
        return "Drained replicad " + address + ": " +
               (done.message.empty() ? "no replica of shorthorn-fused's volumes is left on it"
                                     : done.message) +
               ". It stays draining until shorthornctl replicad undrain " + address + ".\n";
      });
}

Status ReplicadUndrain(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& address = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.UndrainReplicad(address));
  output.Json(boost::json::object{{"address", address}, {"draining", false}});
  output.Text("Replicad " + address + " takes new replicas again.\n");
  return Status::Ok();
}

}  // namespace shorthorn::ctl
