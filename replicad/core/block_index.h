// BlockIndex: for every 4 KiB block of a volume, which layer of the active
// chain holds its newest data (or none: the block reads as zeros). Layers
// are named by small slot numbers (0..kNone-1) that the Replica hands out.
//
// Shape: the address space is cut into fixed chunks of 2^chunk_bits blocks
// (default 2^14 = 64 MiB); each chunk holds a sorted vector of runs
// {start, last, slot} of 6 bytes, adjacent runs of the same slot merged and
// holes not stored. A fully written 1 TiB volume costs one run per chunk
// (16384 runs, well under 1 MiB); 1M scattered 4 KiB writes cost about
// 1M runs (~6-9 MiB), against Longhorn's flat byte per block (256 MiB per
// TiB). A lookup is one array index plus a binary search in one chunk;
// an update rewrites a few runs of one chunk in place (no per-run nodes).
//
// Pure; thread-compatible: the Replica guards it with a shared_mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shorthorn::replicad {

class BlockIndex {
 public:
  static constexpr uint16_t kNone = 0xFFFF;
  static constexpr unsigned kDefaultChunkBits = 14;

  struct Extent {
    uint64_t block = 0;
    uint64_t count = 0;
    uint16_t slot = kNone;  // kNone: a hole
  };

  explicit BlockIndex(uint64_t blocks = 0, unsigned chunk_bits = kDefaultChunkBits);

  uint64_t blocks() const { return blocks_; }
  // Grows the address space; new blocks are holes. Never shrinks.
  void Grow(uint64_t blocks);

  // Blocks [block, block+count) now live in `slot` (kNone clears them).
  void Set(uint64_t block, uint64_t count, uint16_t slot);
  // Within [block, block+count), blocks in slot `from` move to slot `to`.
  void Relabel(uint64_t block, uint64_t count, uint16_t from, uint16_t to);
  // Drops every run of `slot` (a layer that left the chain).
  void Forget(uint16_t slot);

  // The range as maximal pieces in order, holes included; appends to `out`.
  void Lookup(uint64_t block, uint64_t count, std::vector<Extent>* out) const;
  uint16_t LookupBlock(uint64_t block) const;

  size_t RunCount() const;
  // Heap bytes held, counting vector capacity (what the process pays).
  size_t MemoryBytes() const;

 private:
  struct Run {
    uint16_t start;  // block offset inside the chunk
    uint16_t last;   // inclusive
    uint16_t slot;
  };
  static_assert(sizeof(Run) == 6);
  using Chunk = std::vector<Run>;

  // Index of the first run whose last block is >= off (size() if none).
  static size_t FirstEndingAtOrAfter(const Chunk& c, uint32_t off);
  // Sets [s, e] (inclusive, chunk-relative) of one chunk.
  static void SetInChunk(Chunk& c, uint32_t s, uint32_t e, uint16_t slot);
  uint64_t ChunkBlocks(size_t chunk) const;

  unsigned chunk_bits_;
  uint64_t blocks_ = 0;
  std::vector<Chunk> chunks_;
};

}  // namespace shorthorn::replicad
