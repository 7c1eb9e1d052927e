// The on-disk names and metadata of a replica (doc/replica-format.md is the
// prose version; change both together). A replica is the directory
// <data-dir>/<replica-name>/ holding replica.json and one sparse file per
// layer. Every file name of a replica is made here. Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/control_messages.h"
#include "common/status.h"

namespace shorthorn::replicad {

// Format 2 adds the layer tree, format 3 the generation and the rebuilding
// flag. Formats 1 (one head file) and 2 are still read and upgraded by
// Replica::Open (generation 0, not rebuilding). The `open` flag and the
// `owner` are optional fields of format 3 (missing: open, no owner; see
// DecodeReplicaMeta). Format 4 is format 3 with zero maps: a replica.json
// is written as format 4 only while a layer has one (`zero_map`), so that a
// replicad that does not know zero maps refuses the replica instead of
// letting a snapshot's data show through where the volume was discarded.
inline constexpr int kReplicaFormat = 3;
inline constexpr int kReplicaFormatZeroMaps = 4;
inline constexpr std::string_view kMetaFileName = "replica.json";
inline constexpr std::string_view kLegacyHeadFileName = "head.img";
// Volume sizes are whole sectors; the block index works in the same unit.
inline constexpr uint64_t kSectorSize = 4096;
// Snapshots per replica (Longhorn's limit; the index keeps 16-bit slots).
inline constexpr size_t kMaxSnapshots = 250;
// max-volume-size (doc/configuration.md), in GiB: its default (64 TiB) and
// the largest value the key takes (16 PiB). The block index of a replica
// costs 24 bytes per 64 MiB of size, so a size is checked against the limit
// before anything is sized by it: CREATE and EXPAND against the configured
// value (ReplicaOptions), every replica.json against the ceiling.
inline constexpr uint64_t kDefaultMaxVolumeSizeGib = 65536;
inline constexpr uint64_t kMaxVolumeSizeCeilingGib = uint64_t{1} << 24;
// An owner is the id of a fused: 1..kMaxOwnerLength characters of [0-9a-z-]
// (the protocol's rule, common/control_messages.h).
using msg::kMaxOwnerLength;

// One layer file. The head is the layer without a name; every other layer
// is a read-only snapshot.
struct LayerMeta {
  uint64_t id = 0;
  std::string file;                // file name inside the replica directory
  std::optional<uint64_t> parent;  // id of the parent layer; none for a root
  std::string name;                // snapshot name; empty for the head
  std::string created;             // RFC 3339 UTC, as the engine sent it
  bool user_created = false;
  // Deletion was asked for. Merged into its child in the background when it
  // has at most one child; kept (hidden) while it has several.
  bool removed = false;
  std::string checksum;  // 16 hex digits (see layer_file.h); "" while pending
  // The layer has a zero map, ZeroMap::FileName(file) (zero_map.h).
  bool zero_map = false;

  bool is_snapshot() const { return !name.empty(); }
};

struct ReplicaMeta {
  std::string volume;
  std::string replica;
  uint64_t size = 0;   // bytes, a multiple of kSectorSize
  uint64_t epoch = 0;  // highest epoch any engine opened the replica with
  // The engine's generation counter (SET_GENERATION): never goes down.
  uint64_t generation = 0;
  // A REBUILD has started and not finished: the head has no parent yet and
  // the replica must never be used as a source.
  bool rebuilding = false;
  // An engine opened the replica (OPEN_REPLICA) and has not closed it
  // (CLOSE_REPLICA) since: when set at the next OPEN, the previous session
  // ended in a crash or a daemon shutdown and writes may have been in flight.
  bool open = false;
  // The fused that owns the replica (the last OPEN_REPLICA that named one);
  // "" until one does. Another fused is refused (ErrorKind::kMoved) unless
  // it takes the replica over (an import, doc/protocol.md).
  std::string owner;
  uint64_t head = 0;  // id of the head layer
  uint64_t next_layer_id = 1;
  std::vector<LayerMeta> layers;  // in id order
  // True when the file was an older format and must be rewritten.
  bool upgraded = false;
};

std::string ReplicaDir(const std::string& data_dir, std::string_view replica);
std::string MetaPath(const std::string& replica_dir);
// "layer-<id>.img".
std::string LayerFileName(uint64_t id);
// True for names a layer file of this format may have (leftovers found by
// Open are deleted only when they match).
bool IsLayerFileName(std::string_view name);

// A new replica's metadata: one empty head, layer 1.
ReplicaMeta NewReplicaMeta(std::string volume, std::string replica, uint64_t size,
                           std::string owner = "");

// EINVAL with the reason ("owner 'A': only [0-9a-z-] are allowed") unless
// `owner` is 1..kMaxOwnerLength characters of [0-9a-z-]. "" is refused: a
// request that names an owner must name one.
using msg::ValidateOwner;
// kMoved (EXDEV) "<op> replica <replica> of volume <volume>: it belongs to
// fused <owner> now ..." when `claimant` is set and the replica has another
// owner; OK when either is "" or they are equal.
Status CheckOwner(std::string_view op, const std::string& replica, const std::string& volume,
                  const std::string& owner, const std::string& claimant);

// True when `size` bytes is more than `limit_gib` GiB (no overflow).
bool SizeAboveGib(uint64_t size, uint64_t limit_gib);
// EINVAL "<context>: size <size> bytes exceeds max-volume-size <limit> GiB"
// when SizeAboveGib, else OK.
Status CheckMaxVolumeSize(const std::string& context, uint64_t size, uint64_t limit_gib);

std::string EncodeReplicaMeta(const ReplicaMeta& meta);
// `path` names the file in error messages. Checks the format, the names, the
// size (at most kMaxVolumeSizeCeilingGib) and the layer tree (layer_chain.h
// ValidateChain). A file without `open` (written before the flag existed)
// decodes as open: nothing in it says its last session ended with a close.
// A file without `owner` (or with "") has no owner; any other value must
// pass ValidateOwner.
Result<ReplicaMeta> DecodeReplicaMeta(std::string_view json, const std::string& path);

}  // namespace shorthorn::replicad
