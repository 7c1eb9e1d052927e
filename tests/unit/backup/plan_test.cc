// Backup planning: which blocks a full or incremental backup reads, and
// which it takes from its base, including volumes that grew or shrank.
#include "backup/plan.h"

#include <gtest/gtest.h>

namespace shorthorn::backup {
namespace {

constexpr uint64_t K = kBlockSize;
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

// A hash per block index, so reused entries can be told apart.
std::string H(uint64_t i) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%032llx", static_cast<unsigned long long>(i + 1));
  return buf;
}

// Base entries for the block indexes given.
std::vector<BlockRef> Base(std::initializer_list<uint64_t> indexes) {
  std::vector<BlockRef> out;
  for (uint64_t i : indexes) out.push_back({i * K, H(i)});
  return out;
}

std::vector<uint64_t> Offsets(std::initializer_list<uint64_t> indexes) {
  std::vector<uint64_t> out;
  for (uint64_t i : indexes) out.push_back(i * K);
  return out;
}

// Every block of a volume of `size` is either read or reused, never both;
// the reads are ascending and inside the size.
void ExpectConsistent(const BackupPlan& p, uint64_t size) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < p.read.size(); ++i) {
    EXPECT_EQ(p.read[i] % K, 0u);
    EXPECT_LT(p.read[i], size);
    if (i > 0) {
      EXPECT_LT(p.read[i - 1], p.read[i]);
    }
    bytes += BlockLength(p.read[i], size);
  }
  EXPECT_EQ(p.read_bytes, bytes);
  for (size_t i = 0; i < p.reuse.size(); ++i) {
    EXPECT_LT(p.reuse[i].offset, size);
    if (i > 0) {
      EXPECT_LT(p.reuse[i - 1].offset, p.reuse[i].offset);
    }
    for (uint64_t r : p.read) EXPECT_NE(r, p.reuse[i].offset) << "read and reused";
  }
}

TEST(PlanTest, BlockLength) {
  EXPECT_EQ(BlockLength(0, 5 * MiB), K);
  EXPECT_EQ(BlockLength(2 * K, 5 * MiB), 1 * MiB);
  EXPECT_EQ(BlockLength(K, 2 * K), K);
}

TEST(PlanTest, FullBackupReadsOnlyTouchedBlocks) {
  const uint64_t size = 10 * K;
  auto p = PlanBackup(size, {{0, 4096}, {4 * K + 100, 10}, {9 * K + K - 1, 1}}, nullptr, 0);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({0, 4, 9}));
  EXPECT_TRUE(p.reuse.empty());
  EXPECT_EQ(p.read_bytes, 3 * K);
}

TEST(PlanTest, FullBackupOfEmptyOrUnwrittenVolume) {
  auto p = PlanBackup(8 * K, {}, nullptr, 0);
  EXPECT_TRUE(p.read.empty());
  EXPECT_EQ(p.read_bytes, 0u);
  auto z = PlanBackup(0, {{0, 4096}}, nullptr, 0);
  EXPECT_TRUE(z.read.empty());
  EXPECT_EQ(z.read_bytes, 0u);
}

TEST(PlanTest, ExtentsSpanningBlockBoundaries) {
  const uint64_t size = 8 * K;
  // Two bytes across the first boundary.
  EXPECT_EQ(PlanBackup(size, {{K - 1, 2}}, nullptr, 0).read, Offsets({0, 1}));
  // 1 MiB into block 0 up to 1 MiB into block 2.
  EXPECT_EQ(PlanBackup(size, {{1 * MiB, 2 * K}}, nullptr, 0).read, Offsets({0, 1, 2}));
  // Ending exactly at a boundary does not touch the next block.
  EXPECT_EQ(PlanBackup(size, {{0, K}}, nullptr, 0).read, Offsets({0}));
  EXPECT_EQ(PlanBackup(size, {{K, 2 * K}}, nullptr, 0).read, Offsets({1, 2}));
  // Starting exactly at a boundary does not touch the previous one.
  EXPECT_EQ(PlanBackup(size, {{3 * K, 1}}, nullptr, 0).read, Offsets({3}));
}

TEST(PlanTest, ExtentsInAnyOrderOverlappingOrPastTheEnd) {
  const uint64_t size = 5 * K + 12 * KiB;  // last block partial
  auto p = PlanBackup(size,
                      {{4 * K, 8192},
                       {0, 4096},
                       {0, K + 1},
                       {4 * K + 4096, 4096},
                       {5 * K, UINT64_MAX},  // runs past the end, and would overflow
                       {size, 4096},         // wholly past the end
                       {100 * K, K},
                       {2 * K, 0}},  // empty
                      nullptr, 0);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({0, 1, 4, 5}));
  EXPECT_EQ(p.read_bytes, 3 * K + 12 * KiB);
}

TEST(PlanTest, IncrementalReusesUntouchedBaseEntries) {
  const uint64_t size = 6 * K;
  auto base = Base({0, 1, 3, 5});  // 2 and 4 were zeros
  auto p = PlanBackup(size, {{K + 4096, 4096}, {4 * K, 4096}}, &base, size);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({1, 4}));
  EXPECT_EQ(p.reuse, Base({0, 3, 5}));
  EXPECT_EQ(p.read_bytes, 2 * K);

  // Nothing changed: everything reused, nothing read.
  auto same = PlanBackup(size, {}, &base, size);
  EXPECT_TRUE(same.read.empty());
  EXPECT_EQ(same.reuse, base);
  EXPECT_EQ(same.read_bytes, 0u);

  // Everything changed: nothing reused.
  auto all = PlanBackup(size, {{0, size}}, &base, size);
  EXPECT_EQ(all.read, Offsets({0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(all.reuse.empty());
}

TEST(PlanTest, SameSizeWithPartialLastBlockReusesIt) {
  const uint64_t size = 2 * K + 1 * MiB;
  auto base = Base({0, 1, 2});
  auto p = PlanBackup(size, {{0, 4096}}, &base, size);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({0}));
  EXPECT_EQ(p.reuse, Base({1, 2}));
}

TEST(PlanTest, GrownVolumeRereadsThePartialLastBaseBlock) {
  const uint64_t base_size = 2 * K + 1 * MiB;  // block 2 was 1 MiB
  auto base = Base({0, 1, 2});
  const uint64_t size = 4 * K;
  auto p = PlanBackup(size, {}, &base, base_size);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({2}));  // now 2 MiB long
  EXPECT_EQ(p.reuse, Base({0, 1}));
  EXPECT_EQ(p.read_bytes, K);

  // Grown within the same block.
  auto q = PlanBackup(2 * K + 1536 * KiB, {}, &base, base_size);
  EXPECT_EQ(q.read, Offsets({2}));
  EXPECT_EQ(q.read_bytes, 1536 * KiB);
  EXPECT_EQ(q.reuse, Base({0, 1}));
}

TEST(PlanTest, GrownFromWholeBlocksReusesEverything) {
  auto base = Base({0, 1});
  auto p = PlanBackup(5 * K + 4096, {}, &base, 2 * K);
  ExpectConsistent(p, 5 * K + 4096);
  EXPECT_TRUE(p.read.empty());  // the new space is zeros until written
  EXPECT_EQ(p.reuse, base);
}

TEST(PlanTest, ShrunkVolumeDropsBaseBlocksPastTheEnd) {
  auto base = Base({0, 1, 2, 3, 4});
  auto p = PlanBackup(2 * K, {}, &base, 5 * K);
  ExpectConsistent(p, 2 * K);
  EXPECT_TRUE(p.read.empty());
  EXPECT_EQ(p.reuse, Base({0, 1}));
  // Extents of the layers past the new end do not matter.
  auto q = PlanBackup(2 * K, {{3 * K, K}}, &base, 5 * K);
  EXPECT_TRUE(q.read.empty());
  EXPECT_EQ(q.reuse, Base({0, 1}));
}

// The base's block 2 was 2 MiB; in a volume of 2 blocks and 1 MiB it is a
// 1 MiB block, whose hash is not the base's: it must be read again.
TEST(PlanTest, ShrunkToAPartialBlockRereadsTheNewLastBlock) {
  auto base = Base({0, 1, 2, 3});
  const uint64_t size = 2 * K + 1 * MiB;
  auto p = PlanBackup(size, {}, &base, 4 * K);
  ExpectConsistent(p, size);
  EXPECT_EQ(p.read, Offsets({2}));
  EXPECT_EQ(p.read_bytes, 1 * MiB);
  EXPECT_EQ(p.reuse, Base({0, 1}));

  // Shrunk within the base's partial last block.
  auto base3 = Base({0, 1, 2});
  auto q = PlanBackup(2 * K + 512 * KiB, {}, &base3, 2 * K + 1 * MiB);
  EXPECT_EQ(q.read, Offsets({2}));
  EXPECT_EQ(q.reuse, Base({0, 1}));
}

}  // namespace
}  // namespace shorthorn::backup
