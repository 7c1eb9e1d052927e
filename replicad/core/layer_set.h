// LayerSet: the open layer files of one replica and the block index of its
// active chain (head -> parent -> ... -> root), as Replica's data path,
// worker and rebuild read and change them. It owns the files' descriptors
// (through Layer, shared with the ops that read them), the slot each layer
// has in the block index, which layer is the head, and which lower layers
// no snapshot needs any more (removed snapshots right under the head, each
// with one child: their merge is due; unmap punches them too).
//
// Promises:
//  * Every accessor and change runs under the set's own mutex (a reader /
//    writer lock): a reader sees the set before or after a change, never in
//    between. Install applies a whole change (layers added and removed, a
//    new index, the chain of a new replica.json) at once.
//  * A slot names one layer at a time; a removed layer's slot is reused by
//    a later one only. Layers handed out (LayerPtr) stay open while held.
//  * It never writes replica.json and never unlinks a file: Replica decides
//    what is on the disk; this is its in-memory picture.
//
// Threads: any. Lock order: the set's mutex is a leaf: it is taken after
// Replica's meta_mu_ and after a range lock, and nothing is taken while it
// is held.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"
#include "replicad/core/block_index.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/zero_map.h"

namespace shorthorn::replicad {

// One open layer file. `slot` names it in the block index.
struct Layer {
  uint64_t id = 0;
  uint16_t slot = BlockIndex::kNone;
  std::string file;
  UniqueFd fd;
  UniqueFd direct_fd;  // O_DIRECT, heads only; invalid where the file system refuses it
  // Blocks that read as zeros over a hole of the file; loaded when
  // replica.json says the layer has a zero map (LayerMeta::zero_map).
  ZeroMap zeros;
  // replica.json says the layer has a zero map (set when it was loaded, or
  // once Replica::AddZeroRuns committed that).
  std::atomic<bool> zero_map_recorded{false};
};
using LayerPtr = std::shared_ptr<Layer>;

// The byte extents inside [start, end) that `layer` owns: its file's data
// extents and its zero runs, merged (overlapping and adjacent ones join),
// in order. A lookup, a checksum, a merge or a copy of the layer uses
// these, never the file's data extents alone. `max_count`: at most that
// many data extents are looked up; `*covered` (when given) is set to where
// the answer is complete: `end`, or the end of the last data extent when
// the limit was reached (zero runs are clipped to it).
Result<std::vector<FileExtent>> OwnedExtents(const Layer& layer, uint64_t start, uint64_t end,
                                             size_t max_count = SIZE_MAX,
                                             uint64_t* covered = nullptr);
// The layer checksum (layer_file.h) of `layer`, over its owned extents.
Result<std::string> LayerChecksum(const Layer& layer, const ProgressFn& progress);

class LayerSet {
 public:
  // `dir`: the replica directory the layer files are in. `direct_writes`:
  // heads also get an O_DIRECT descriptor (ReplicaOptions::direct_writes).
  LayerSet(std::string dir, unsigned index_chunk_bits, bool direct_writes);
  LayerSet(const LayerSet&) = delete;
  LayerSet& operator=(const LayerSet&) = delete;

  // Opens layer `l`'s file (not yet in the set). `head`: also the O_DIRECT
  // descriptor writes use; a layer that stops being the head keeps it
  // until the replica closes.
  Result<LayerPtr> OpenLayer(const LayerMeta& l, bool head) const;
  // The index of the chain of layer ids (newest first) over `blocks`
  // blocks, from each layer's allocated extents, root first so that newer
  // layers override older ones. Every layer needs its slot (Reserve).
  Result<BlockIndex> BuildIndex(const std::vector<uint64_t>& chain, uint64_t blocks,
                                const std::map<uint64_t, LayerPtr>& layers) const;

  // A change of the set, applied at once by Install.
  struct Change {
    std::vector<LayerPtr> add;        // new layers (a slot is given to those without one)
    std::vector<LayerPtr> remove;     // dropped layers (their slots are freed)
    std::optional<BlockIndex> index;  // the new index, else the index is kept
    std::optional<uint16_t> forget;   // a slot the kept index must not name any more
  };
  // Applies `change`, then takes head, lower layers and unneeded ones from
  // `meta`'s active chain (every layer of it must be in the set).
  void Install(const ReplicaMeta& meta, Change change = {});
  // Gives `layer` a free slot before it joins the set, so that an index
  // built before Install can name it; Unreserve gives it back.
  void Reserve(const LayerPtr& layer);
  void Unreserve(const LayerPtr& layer);
  // Drops `layer` from the set (its file is Replica's to remove).
  void Remove(const LayerPtr& layer);

  LayerPtr head() const;
  // The layer `id`, or nullptr.
  LayerPtr Find(uint64_t id) const;
  // Every layer by id.
  std::map<uint64_t, LayerPtr> All() const;
  // The active chain below the head, for unmap: `unneeded` from the top
  // (punched with the head), then the `kept` ones.
  struct Lower {
    LayerPtr head;
    std::vector<LayerPtr> unneeded, kept;
  };
  Lower LowerLayers() const;

  // The block index. Lookup gives the runs of [block, block+count) and the
  // layer of each (nullptr for a hole).
  void Lookup(uint64_t block, uint64_t count, std::vector<BlockIndex::Extent>* runs,
              std::vector<LayerPtr>* layers) const;
  void SetRange(uint64_t block, uint64_t count, uint16_t slot);
  // Several SetRange at once, in order.
  void SetRanges(const std::vector<BlockIndex::Extent>& runs);
  void Relabel(uint64_t block, uint64_t count, uint16_t from, uint16_t to);
  void Grow(uint64_t blocks);

 private:
  // Gives `layer` the lowest free slot; FreeSlotLocked frees the slot it
  // holds (when it still holds it).
  void TakeSlotLocked(const LayerPtr& layer);
  void FreeSlotLocked(const LayerPtr& layer);
  void AddLocked(const LayerPtr& layer);
  void RemoveLocked(const LayerPtr& layer);

  const std::string dir_;
  const unsigned index_chunk_bits_;
  const bool direct_writes_;

  mutable std::shared_mutex mu_;
  BlockIndex index_;                     // guarded by mu_
  std::map<uint64_t, LayerPtr> layers_;  // every layer by id; guarded by mu_
  std::vector<LayerPtr> slots_;          // by slot; guarded by mu_
  LayerPtr head_;                        // guarded by mu_
  std::vector<LayerPtr> lower_;          // active chain below the head; guarded by mu_
  // How many of lower_, from the top, no snapshot needs. Guarded by mu_.
  size_t unneeded_ = 0;
};

}  // namespace shorthorn::replicad
