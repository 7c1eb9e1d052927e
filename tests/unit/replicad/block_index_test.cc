// BlockIndex against a flat array of slots (Longhorn's representation) on
// random updates, with tiny chunks so that runs cross chunk boundaries.
#include "replicad/core/block_index.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace shorthorn::replicad {
namespace {

using Flat = std::vector<uint16_t>;

void ExpectSame(const BlockIndex& index, const Flat& flat) {
  for (uint64_t b = 0; b < flat.size(); ++b) ASSERT_EQ(index.LookupBlock(b), flat[b]) << b;
  std::vector<BlockIndex::Extent> ext;
  index.Lookup(0, flat.size() + 3, &ext);  // past the end reads as a hole
  uint64_t pos = 0;
  for (size_t i = 0; i < ext.size(); ++i) {
    ASSERT_EQ(ext[i].block, pos);
    ASSERT_GT(ext[i].count, 0u);
    if (i > 0) {
      ASSERT_NE(ext[i].slot, ext[i - 1].slot) << "pieces are maximal";
    }
    for (uint64_t b = pos; b < pos + ext[i].count && b < flat.size(); ++b) {
      ASSERT_EQ(ext[i].slot, flat[b]);
    }
    pos += ext[i].count;
  }
  EXPECT_EQ(pos, flat.size() + 3);
}

TEST(BlockIndexTest, RandomUpdatesMatchFlatArray) {
  std::mt19937_64 rng(42);
  for (unsigned chunk_bits : {2u, 3u, 5u, 14u}) {
    Flat flat(300, BlockIndex::kNone);
    BlockIndex index(flat.size(), chunk_bits);
    for (int step = 0; step < 3000; ++step) {
      uint64_t b = rng() % flat.size();
      uint64_t n = 1 + rng() % (step % 10 == 0 ? 100 : 6);
      n = std::min<uint64_t>(n, flat.size() - b);
      uint16_t slot = rng() % 4 == 0 ? BlockIndex::kNone : static_cast<uint16_t>(rng() % 3);
      if (rng() % 5 == 0) {
        uint16_t to = static_cast<uint16_t>(rng() % 3);
        index.Relabel(b, n, slot, to);
        for (uint64_t i = b; i < b + n; ++i) {
          if (flat[i] == slot) flat[i] = to;
        }
      } else {
        index.Set(b, n, slot);
        for (uint64_t i = b; i < b + n; ++i) flat[i] = slot;
      }
      if (step % 100 == 0) ExpectSame(index, flat);
    }
    ExpectSame(index, flat);
    index.Forget(1);
    for (auto& s : flat) {
      if (s == 1) s = BlockIndex::kNone;
    }
    ExpectSame(index, flat);
  }
}

TEST(BlockIndexTest, SequentialFillIsOneRunPerChunk) {
  BlockIndex index(uint64_t{1} << 20, 14);
  for (uint64_t b = 0; b < (uint64_t{1} << 20); b += 256) index.Set(b, 256, 0);
  EXPECT_EQ(index.RunCount(), 64u);
  index.Grow(uint64_t{1} << 21);
  EXPECT_EQ(index.LookupBlock((uint64_t{1} << 21) - 1), BlockIndex::kNone);
}

}  // namespace
}  // namespace shorthorn::replicad
