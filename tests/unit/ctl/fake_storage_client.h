// FakeStorageClient: an in-memory StorageClient for the shorthornctl tests.
// It keeps volumes in a map, records the calls it gets, and fails the next
// call with `fail_next` when set, so tests check both output and exit codes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dbus/ctl/storage_client.h"

namespace shorthorn::ctl::testing {

class FakeStorageClient : public StorageClient {
 public:
  std::map<std::string, VolumeInfo> volumes;
  std::vector<std::string> calls;  // "CreateVolume vol1 1024 a:1,b:2", ...
  Status fail_next;                // returned (once) by the next call when not OK

  Result<std::vector<VolumeInfo>> ListVolumes() override {
    calls.push_back("ListVolumes");
    if (Status s = TakeFailure(); !s.ok()) return s;
    std::vector<VolumeInfo> list;
    for (const auto& [name, v] : volumes) list.push_back(v);
    return list;
  }
  Result<VolumeInfo> GetVolume(const std::string& operation, const std::string& name) override {
    calls.push_back("GetVolume " + operation + " " + name);
    if (Status s = TakeFailure(); !s.ok()) return s;
    auto it = volumes.find(name);
    if (it == volumes.end()) {
      return Status(ErrorKind::kNotFound, operation + " volume " + name + ": it does not exist");
    }
    return it->second;
  }
  Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                  const std::vector<std::string>& replicas) override {
    std::string joined;
    for (const auto& r : replicas) joined += (joined.empty() ? "" : ",") + r;
    calls.push_back("CreateVolume " + name + " " + std::to_string(size) + " " + joined);
    if (Status s = TakeFailure(); !s.ok()) return s;
    VolumeInfo v;
    v.name = name;
    v.object_path = "/org/shorthorn/Storage1/volumes/" + name;
    v.size = size;
    v.state = "detached";
    for (const auto& r : replicas) v.replicas.push_back({r, "r-" + name, ""});
    volumes[name] = v;
    return v;
  }
  Status DeleteVolume(const std::string& name, bool force) override {
    calls.push_back("DeleteVolume " + name + (force ? " force" : ""));
    if (Status s = TakeFailure(); !s.ok()) return s;
    volumes.erase(name);
    return Status::Ok();
  }
  Result<std::string> Attach(const std::string& name, Frontend frontend) override {
    calls.push_back("Attach " + name + (frontend == Frontend::kFile ? " file" : " block"));
    if (Status s = TakeFailure(); !s.ok()) return s;
    VolumeInfo& v = volumes.at(name);
    v.state = "attached";
    v.frontend_path = "/run/shorthorn/volumes/" + name;
    if (frontend == Frontend::kBlock) v.loop_device = "/dev/loop7";
    return frontend == Frontend::kBlock ? v.loop_device : v.frontend_path;
  }
  Status Detach(const std::string& name) override {
    calls.push_back("Detach " + name);
    if (Status s = TakeFailure(); !s.ok()) return s;
    VolumeInfo& v = volumes.at(name);
    v.state = "detached";
    v.frontend_path.clear();
    v.loop_device.clear();
    return Status::Ok();
  }

 private:
  Status TakeFailure() {
    Status s = fail_next;
    fail_next = Status::Ok();
    return s;
  }
};

}  // namespace shorthorn::ctl::testing
