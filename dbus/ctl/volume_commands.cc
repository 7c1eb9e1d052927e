#include "dbus/ctl/volume_commands.h"

#include <boost/json.hpp>

#include "dbus/ctl/job_commands.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

Status VolumeCreate(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<uint64_t> size = ParseSize(invocation.Value("size"));  // checked by the parser
  if (!size.ok()) return size.status();
  Result<VolumeInfo> volume = client.CreateVolume(name, *size, invocation.Values("replica"));
  if (!volume.ok()) return volume.status();
  output.Json(VolumeToJson(*volume));
  output.Text("Created volume " + volume->name + ": " + FormatSize(volume->size) + ", " +
              Plural(volume->replicas.size(), "replica") + ", " + volume->state + ".\n");
  return Status::Ok();
}

Status VolumeImport(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<VolumeInfo> volume = client.ImportVolume(name, invocation.Values("replicad"));
  if (!volume.ok()) return volume.status();
  output.Json(VolumeToJson(*volume));
  output.Text("Imported volume " + volume->name + ": " + FormatSize(volume->size) + ", " +
              Plural(volume->replicas.size(), "current replica") + ", " + volume->state +
              ". Its previous fused is fenced.\n");
  return Status::Ok();
}

Status VolumeList(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<std::vector<VolumeInfo>> volumes = client.ListVolumes();
  if (!volumes.ok()) return volumes.status();
  boost::json::array array;
  for (const VolumeInfo& v : *volumes) array.push_back(VolumeToJson(v));
  output.Json(array);
  if (invocation.Has("quiet")) {
    std::string names;
    for (const VolumeInfo& v : *volumes) names += v.name + "\n";
    output.Text(names);
  } else {
    output.Text(VolumesTable(*volumes));
  }
  return Status::Ok();
}

Status VolumeShow(const Invocation& invocation, StorageClient& client, Output& output) {
  Result<VolumeInfo> volume = client.GetVolume("show", invocation.arguments.at(0));
  if (!volume.ok()) return volume.status();
  output.Json(VolumeToJson(*volume));
  output.Text(VolumeDetails(*volume));
  return Status::Ok();
}

Status VolumeAttach(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  bool file = invocation.Has("file");
  // --wait is accepted and means nothing: Attach returns once the device
  // exists. It will wait for the job if Attach ever becomes one.
  Result<std::string> device = client.Attach(name, file ? Frontend::kFile : Frontend::kBlock);
  if (!device.ok()) return device.status();
  output.Json(boost::json::object{
      {"name", name}, {"frontend", file ? "file" : "block"}, {"device", *device}});
  output.Text(*device + "\n");
  return Status::Ok();
}

Status VolumeDetach(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.Detach(name));
  output.Json(boost::json::object{{"name", name}, {"state", "detached"}});
  output.Text("Detached volume " + name + ".\n");
  return Status::Ok();
}

Status VolumeDelete(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  SH_RETURN_IF_ERROR(client.DeleteVolume(name, invocation.Has("force")));
  output.Json(boost::json::object{{"name", name}, {"deleted", true}});
  output.Text("Deleted volume " + name + ".\n");
  return Status::Ok();
}

Status VolumeExpand(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<uint64_t> size = ParseSize(invocation.arguments.at(1));  // checked by the parser
  if (!size.ok()) return size.status();
  SH_RETURN_IF_ERROR(client.Expand(name, *size));
  output.Json(boost::json::object{{"name", name}, {"size", *size}});
  output.Text("Expanded volume " + name + " to " + FormatSize(*size) +
              "; grow its file system to match (e.g. resize2fs).\n");
  return Status::Ok();
}

Status VolumeVerify(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<std::string> job = client.Verify(name);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job, boost::json::object{{"volume", name}},
                   "Verified volume " + name + ": every snapshot layer matches its checksum.\n");
}

Status VolumeScrub(const Invocation& invocation, StorageClient& client, Output& output) {
  const std::string& name = invocation.arguments.at(0);
  Result<std::string> job = client.Scrub(name);
  if (!job.ok()) return job.status();
  return FollowJob(invocation, client, output, *job, boost::json::object{{"volume", name}},
                   "Scrubbed volume " + name + ": its replicas hold the same data.\n");
}

}  // namespace shorthorn::ctl
