// StorageClient: what shorthornctl needs from org.shorthorn.Storage1, as an
// interface with plain values, so that the commands (commands.h) are pure and
// unit-tested against a fake. The real one is DbusStorageClient
// (dbus_client.h), which calls the D-Bus API of doc/dbus-api.md.
//
// Every method returns a Status whose kind is the error kind the daemon
// named (org.shorthorn.Storage1.Error.<Kind>, see KindForDbusError) and whose
// message is the daemon's message as is. Names are volume names, never
// object paths: the client finds the object. Not thread-safe; shorthornctl
// uses one client from its main thread. Later API (snapshots, replicas,
// backups, jobs) adds methods here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::ctl {

struct ReplicaInfo {
  std::string address;  // replicad host:port
  std::string name;     // the replica's directory on that replicad
  std::string mode;     // "RW", "WO", "ERR", or "" while detached
};

struct VolumeInfo {
  std::string name;
  std::string object_path;
  uint64_t size = 0;
  std::string state;  // detached, attached, maintenance, faulted
  std::vector<ReplicaInfo> replicas;
  std::string frontend_path;  // the FUSE file while attached
  std::string loop_device;    // /dev/loopN while attached as a block device
};

enum class Frontend { kBlock, kFile };

class StorageClient {
 public:
  virtual ~StorageClient() = default;

  // Every volume with its properties, in the daemon's order.
  virtual Result<std::vector<VolumeInfo>> ListVolumes() = 0;
  // One volume; NotFound when there is none of that name. `operation` is the
  // verb for the message ("show", "attach").
  virtual Result<VolumeInfo> GetVolume(const std::string& operation, const std::string& name) = 0;
  // CreateVolume; an empty `replicas` means the daemon's defaults.
  virtual Result<VolumeInfo> CreateVolume(const std::string& name, uint64_t size,
                                          const std::vector<std::string>& replicas) = 0;
  virtual Status DeleteVolume(const std::string& name, bool force) = 0;
  // Returns the block device or the FUSE file.
  virtual Result<std::string> Attach(const std::string& name, Frontend frontend) = 0;
  virtual Status Detach(const std::string& name) = 0;
};

}  // namespace shorthorn::ctl
