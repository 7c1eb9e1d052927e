// Registry: the volumes fused manages, persisted as one JSON document
// (<state-dir>/volumes.json, format in doc/registry-format.md) replaced
// atomically on every change, so a crash leaves the old or the new registry.
// Holds no runtime state (attachments); those live in VolumeService.
// Thread-compatible: VolumeService serializes access.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused {

struct ReplicaRecord {
  std::string address;  // host:port of the replicad
  std::string name;     // replica directory name there
};

// A replica replaced by a rebuild, kept until the stale-replica timeout
// (its data may still help an operator) and then deleted.
struct StaleReplica {
  std::string address;
  std::string name;
  uint64_t since = 0;  // unix seconds when it was replaced
};

struct VolumeRecord {
  std::string name;
  uint64_t size = 0;
  // Highest engine epoch handed out; the next attach uses epoch + 1.
  uint64_t epoch = 0;
  std::vector<ReplicaRecord> replicas;
  // How many replicas the volume should have (rebuild adds up to this).
  uint32_t replica_count = 0;
  std::vector<StaleReplica> stale;
  // What the replicas last reported (LIST_LAYERS): kept so a detached
  // volume's properties need no replicad round trip.
  uint64_t actual_size = 0;
  std::vector<SnapshotInfo> snapshots;
  // "block" or "file" while the volume is attached (not in maintenance)
  // and until someone detaches it: fused attaches it again, with that
  // frontend, when it starts (auto-attach). "" otherwise.
  std::string attach_frontend;
};

class Registry {
 public:
  explicit Registry(std::string path) : path_(std::move(path)) {}

  // Reads the file; a missing file is an empty registry.
  Status Load();
  // Writes the whole registry atomically.
  Status Save() const;

  const std::map<std::string, VolumeRecord>& volumes() const { return volumes_; }
  const VolumeRecord* Find(const std::string& name) const;
  VolumeRecord* FindMutable(const std::string& name);
  void Put(VolumeRecord record) { volumes_[record.name] = std::move(record); }
  void Erase(const std::string& name) { volumes_.erase(name); }

  // Serialization, public for tests.
  std::string Encode() const;
  Status Decode(const std::string& text);

 private:
  std::string path_;
  std::map<std::string, VolumeRecord> volumes_;
};

// Checks a new volume's name and size. Sizes are whole 4096-byte sectors.
Status ValidateNewVolume(const std::string& name, uint64_t size);

}  // namespace shorthorn::fused
