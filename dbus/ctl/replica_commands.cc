#include "dbus/ctl/replica_commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/size.h"

namespace shorthorn::ctl {

Status ReplicaList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume = client.GetVolume("list replicas of", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  output.Json(boost::json::object{{"volume", volume->name},
                                  {"replica_count", volume->replica_count},
                                  {"robustness", volume->robustness},
                                  {"replicas", ReplicasToJson(volume->replicas)}});
  output.Text("Replica count: " + std::to_string(volume->replica_count) +
              "\nRobustness:    " + volume->robustness + "\n" + ReplicasTable(volume->replicas));
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

}  // namespace shorthorn::ctl
