// VolumeManager: what fused can do with volumes, as the D-Bus adapter sees
// it. The adapter (fused/dbus) turns each D-Bus method into one call here and
// each Status into an org.shorthorn.Storage1.Error.<Kind>; it holds no volume
// state of its own. The implementation (VolumeService) owns the registry, the
// engines, the FUSE files and the loop devices.
//
// Threads: every method may be called from any thread and serializes itself.
// The listener is called with no manager lock held, possibly from a thread
// other than the caller's (a replica failing, a job finishing).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace shorthorn::fused {

// The `a{sv}` options argument of every D-Bus method, with the variant types
// the adapter accepts (b, x/i/u/t widened, s).
using OptionValue = std::variant<bool, int64_t, uint64_t, std::string>;
using Options = std::map<std::string, OptionValue>;

struct ReplicaInfo {
  std::string address;  // "host:port" of its replicad
  std::string name;     // directory name on that replicad
  std::string mode;     // "RW", "WO", "ERR", or "" while detached
};

struct VolumeInfo {
  std::string name;
  uint64_t size = 0;
  std::string state;  // "detached", "attached", "maintenance", "faulted"
  std::vector<ReplicaInfo> replicas;
  std::string frontend_path;  // FUSE file while attached, else ""
  std::string loop_device;    // "/dev/loopN" while attached as a block device, else ""
};

class VolumeListener {
 public:
  virtual ~VolumeListener() = default;
  virtual void VolumeAdded(const VolumeInfo& info) = 0;
  virtual void VolumeRemoved(const std::string& name) = 0;
  // Any property of the volume changed; `info` is the whole new state.
  virtual void VolumeChanged(const VolumeInfo& info) = 0;
};

class VolumeManager {
 public:
  virtual ~VolumeManager() = default;

  virtual std::vector<VolumeInfo> ListVolumes() = 0;
  virtual Result<VolumeInfo> GetVolume(const std::string& name) = 0;

  // `replicas` are replicad addresses ("host:port"), one replica each; empty
  // means the configured defaults. Errors: InvalidArgument (name, size,
  // address, option), AlreadyExists, Unavailable (a replicad unreachable).
  virtual Status CreateVolume(const std::string& name, uint64_t size,
                              const std::vector<std::string>& replicas, const Options& options) = 0;
  // Refused (Busy) while attached. Deletes the replicas' data.
  virtual Status DeleteVolume(const std::string& name, const Options& options) = 0;
  // Options: "frontend" = "block" (default: loop device) or "file" (the FUSE
  // file alone). Returns the block device (or the file) path.
  virtual Result<std::string> Attach(const std::string& name, const Options& options) = 0;
  // Flushes, releases the loop device and the file, closes the replicas.
  // Busy while the block device is in use (mounted).
  virtual Status Detach(const std::string& name, const Options& options) = 0;

  // Set once before the first call from the bus; nullptr to stop.
  virtual void SetListener(VolumeListener* listener) = 0;
};

}  // namespace shorthorn::fused
