// The on-disk names and metadata of a replica (doc/replica-format.md is the
// prose version; change both together). A replica is the directory
// <data-dir>/<replica-name>/ holding replica.json and the sparse head.img.
// Every file name of a replica is made here. Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::replicad {

inline constexpr int kReplicaFormat = 1;
inline constexpr std::string_view kMetaFileName = "replica.json";
inline constexpr std::string_view kHeadFileName = "head.img";
// Volume sizes are whole sectors.
inline constexpr uint64_t kSectorSize = 4096;

// The content of replica.json. A later format adds fields (e.g. the snapshot
// layer chain) and bumps kReplicaFormat; readers reject formats they do not
// know, because ignoring a layer list would serve wrong data.
struct ReplicaMeta {
  std::string volume;
  std::string replica;
  uint64_t size = 0;   // bytes, a multiple of kSectorSize
  uint64_t epoch = 0;  // highest epoch any engine opened the replica with
  std::string head = std::string(kHeadFileName);  // file name inside the directory
};

std::string ReplicaDir(const std::string& data_dir, std::string_view replica);
std::string MetaPath(const std::string& replica_dir);
std::string DataPath(const std::string& replica_dir, const ReplicaMeta& meta);

std::string EncodeReplicaMeta(const ReplicaMeta& meta);
// `path` names the file in error messages. Checks the format, the names,
// the size and that `head` is a plain file name.
Result<ReplicaMeta> DecodeReplicaMeta(std::string_view json, const std::string& path);

}  // namespace shorthorn::replicad
