// Backup planning: which 2 MiB blocks a backup must read, and which it takes
// unchanged from the backup it is incremental to. Pure; unit-tested.
//
// A replica knows, per layer, which byte ranges the layer holds (its
// allocated extents). A snapshot's content is its chain of layers. So the
// blocks that may differ between a backed-up snapshot B and a newer
// snapshot S in the same chain are those touched by the extents of the
// layers above B up to S; every other block is as B's backup has it. A
// first backup reads the blocks touched by any layer of the chain (thin
// volumes back up fast). Extents over-approximate (a block rewritten with
// the same data is read again), never under-approximate.
#pragma once

#include <cstdint>
#include <vector>

#include "backup/format.h"

namespace shorthorn::backup {

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct BackupPlan {
  std::vector<uint64_t> read;   // block offsets to read, ascending
  std::vector<BlockRef> reuse;  // entries taken from the base, ascending
  uint64_t read_bytes = 0;      // bytes of volume data the reads cover
};

// `extents`: the changed (or, with no base, allocated) ranges, any order,
// may overlap. `base`: the base backup's blocks (nullptr for a full
// backup); `base_size` its volume size. `size`: the volume size now. A
// block of the base that lies past `size` is dropped; a block whose length
// the size change altered (the base's partial last block, or the block a
// shrink cut short) is read again.
BackupPlan PlanBackup(uint64_t size, const std::vector<Extent>& extents,
                      const std::vector<BlockRef>* base, uint64_t base_size);

// Bytes of block `offset` in a volume of `size` bytes.
inline uint64_t BlockLength(uint64_t offset, uint64_t size) {
  return size - offset < kBlockSize ? size - offset : kBlockSize;
}

}  // namespace shorthorn::backup
