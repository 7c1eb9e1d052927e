// The layer tree of a replica as pure functions over ReplicaMeta: lookups,
// the active chain (head -> parent -> ... -> root), children, validation,
// and the metadata transforms of snapshot, revert and merge. The Replica
// applies them to a copy, writes the copy atomically, then installs it, so
// every transform here is exactly one crash-atomic step on disk.
//
// Layers form a tree: after a revert, the head's parent is an older snapshot
// and the snapshots newer than it stay on their own branch. Pure;
// thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "replicad/core/replica_meta.h"

namespace shorthorn::replicad {

const LayerMeta* FindLayer(const ReplicaMeta& meta, uint64_t id);
LayerMeta* FindLayer(ReplicaMeta& meta, uint64_t id);
// The snapshot called `name` (removed ones included), or null.
const LayerMeta* FindSnapshot(const ReplicaMeta& meta, std::string_view name);

// Layer ids from the head down to the root.
std::vector<uint64_t> ActiveChain(const ReplicaMeta& meta);
// Ids of the layers whose parent is `id` (the head included).
std::vector<uint64_t> Children(const ReplicaMeta& meta, uint64_t id);
// Snapshots that count against kMaxSnapshots: all but those whose merge is
// due (removed with at most one child).
size_t SnapshotCount(const ReplicaMeta& meta);
// Removed snapshots with at most one child, oldest first: the merges due.
std::vector<uint64_t> MergesDue(const ReplicaMeta& meta);

// Unique ids and names, parents that exist, no cycle, exactly one head
// (the layer `head`, without a name, that is nobody's parent), valid names
// and file names.
Status ValidateChain(const ReplicaMeta& meta);

// The head becomes snapshot `name`; a new empty head (id next_layer_id, file
// LayerFileName) gets it as parent. Returns the new head's id.
uint64_t ApplySnapshot(ReplicaMeta& meta, const std::string& name, const std::string& created,
                       bool user_created);
// The head is dropped; a new empty head whose parent is `target` replaces
// it. Returns the new head's id.
uint64_t ApplyRevert(ReplicaMeta& meta, uint64_t target);
// Snapshot `id` leaves the tree: its single child (if any) takes its parent.
// The child's data must already hold the merged blocks. A child snapshot's
// checksum becomes pending (its data changed).
void ApplyMerge(ReplicaMeta& meta, uint64_t id);

}  // namespace shorthorn::replicad
