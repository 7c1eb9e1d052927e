// ZeroMap: runs coalesced in memory and clipped on the way out, the sidecar
// read back the same, a torn last Add cut off to the byte, damage before it
// reported (naming the file and the record), a leftover file replaced by the
// first Add, and the rewrite that keeps the file small.
#include "replicad/core/zero_map.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;
using ZRun = ZeroMap::Run;

constexpr uint64_t kBlocks = 1000;
constexpr char kFile[] = "layer-3.zeros";

std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// One 24-byte record as the format describes it, built here independently.
std::string Record(uint64_t index, uint64_t first, uint64_t count, bool end) {
  std::string r = Le64(first) + Le64(count | (end ? uint64_t{1} << 63 : 0));
  return r + Le64(XXH3_64bits_withSeed(r.data(), 16, index));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void Append(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

class ZeroMapFileTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.path() + "/" + kFile; }
  // Two Adds: {10,5} + {100,1} (records 0, 1), then {50,10} (record 2).
  void WriteTwoAdds() {
    ZeroMap map;
    ASSERT_TRUE(map.Add(dir_.path(), kFile, {{10, 5}, {100, 1}}).ok());
    ASSERT_TRUE(map.Add(dir_.path(), kFile, {{50, 10}}).ok());
    ASSERT_EQ(map.records(), 3u);
  }
  const std::vector<ZRun> kTwoAddsRuns = {{10, 5}, {50, 10}, {100, 1}};
  uint64_t Size() const { return std::filesystem::file_size(Path()); }

  TempDir dir_{/*in_memory=*/true};
};

TEST(ZeroMapTest, AddCoalescesAndRunsClips) {
  TempDir dir(true);
  ZeroMap map;
  EXPECT_TRUE(map.empty());
  ASSERT_TRUE(map.Add(dir.path(), kFile, {{10, 10}, {20, 5}}).ok());  // adjacent
  EXPECT_EQ(map.Runs(0, kBlocks), (std::vector<ZRun>{{10, 15}}));
  ASSERT_TRUE(map.Add(dir.path(), kFile, {{40, 10}, {45, 10}}).ok());  // overlapping
  EXPECT_EQ(map.Runs(0, kBlocks), (std::vector<ZRun>{{10, 15}, {40, 15}}));
  ASSERT_TRUE(map.Add(dir.path(), kFile, {{12, 3}}).ok());  // contained
  EXPECT_EQ(map.Runs(0, kBlocks), (std::vector<ZRun>{{10, 15}, {40, 15}}));
  ASSERT_TRUE(map.Add(dir.path(), kFile, {{70, 1}, {5, 60}}).ok());  // bridges two
  EXPECT_EQ(map.Runs(0, kBlocks), (std::vector<ZRun>{{5, 60}, {70, 1}}));
  EXPECT_FALSE(map.empty());
  EXPECT_EQ(map.records(), 7u);

  EXPECT_EQ(map.Runs(7, 70), (std::vector<ZRun>{{7, 58}}));
  EXPECT_EQ(map.Runs(64, 71), (std::vector<ZRun>{{64, 1}, {70, 1}}));
  EXPECT_EQ(map.Runs(65, 70), std::vector<ZRun>{});
  EXPECT_EQ(map.Runs(0, 5), std::vector<ZRun>{});
  EXPECT_EQ(map.Runs(30, 30), std::vector<ZRun>{});
  EXPECT_EQ(map.Runs(70, 71), (std::vector<ZRun>{{70, 1}}));
}

TEST(ZeroMapTest, BadRunIsRejectedAndChangesNothing) {
  TempDir dir(true);
  ZeroMap map;
  ASSERT_TRUE(map.Add(dir.path(), kFile, {{1, 2}}).ok());
  const std::string before = ReadAll(dir.path() + "/" + kFile);
  Status s = map.Add(dir.path(), kFile, {{10, 5}, {20, 0}});
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(s.message().find(kFile), std::string::npos) << s.message();
  s = map.Add(dir.path(), kFile, {{UINT64_MAX - 1, 5}});
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(map.Runs(0, UINT64_MAX), (std::vector<ZRun>{{1, 2}}));
  EXPECT_EQ(map.records(), 1u);
  EXPECT_EQ(ReadAll(dir.path() + "/" + kFile), before);
  EXPECT_TRUE(map.Add(dir.path(), kFile, {}).ok());
  EXPECT_EQ(map.records(), 1u);
}

TEST(ZeroMapTest, EmptyAddOnANewMapWritesNothing) {
  TempDir dir(true);
  ZeroMap map;
  ASSERT_TRUE(map.Add(dir.path(), kFile, {}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/" + kFile));
}

TEST(ZeroMapTest, FileNames) {
  EXPECT_EQ(ZeroMap::FileName("layer-7.img"), "layer-7.zeros");
  EXPECT_EQ(ZeroMap::FileName("head.img"), "head.zeros");
  EXPECT_EQ(ZeroMap::FileName("odd"), "odd.zeros");
  struct Case {
    const char* name;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{"layer-7.zeros", true},
                                         {"layer-1234567890.zeros", true},
                                         {"layer-7.zeros.tmp", true},
                                         {"head.zeros", true},
                                         {"head.zeros.tmp", true},
                                         {"layer-.zeros", false},
                                         {"layer-1x.zeros", false},
                                         {"layer-7.img", false},
                                         {"layer-7.zeros.tmp.tmp", false},
                                         {"layer-7.zeros.old", false},
                                         {"replica.json", false},
                                         {"head.zeros2", false},
                                         {".zeros", false},
                                         {"", false}}) {
    EXPECT_EQ(ZeroMap::IsFileName(c.name), c.ok) << c.name;
  }
  EXPECT_TRUE(ZeroMap::IsFileName(ZeroMap::FileName("layer-42.img")));
}

TEST_F(ZeroMapFileTest, FileHasTheDocumentedLayout) {
  WriteTwoAdds();
  EXPECT_EQ(ReadAll(Path()), std::string("SHZMAP01") + Record(0, 10, 5, false) +
                                 Record(1, 100, 1, true) + Record(2, 50, 10, true));
}

TEST_F(ZeroMapFileTest, LoadReadsBackTheRuns) {
  WriteTwoAdds();
  ZeroMap map;
  ASSERT_TRUE(map.Load(dir_.path(), kFile, kBlocks).ok());
  EXPECT_EQ(map.Runs(0, kBlocks), kTwoAddsRuns);
  EXPECT_EQ(map.records(), 3u);
  EXPECT_EQ(Size(), 8u + 24 * 3);

  // Appends after a Load continue the record indexes.
  ASSERT_TRUE(map.Add(dir_.path(), kFile, {{15, 5}}).ok());
  EXPECT_EQ(map.records(), 4u);
  ZeroMap again;
  Status s = again.Load(dir_.path(), kFile, kBlocks);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(again.Runs(0, kBlocks), (std::vector<ZRun>{{10, 10}, {50, 10}, {100, 1}}));
  EXPECT_EQ(again.records(), 4u);
}

TEST_F(ZeroMapFileTest, HeaderOnlyIsAnEmptyMap) {
  WriteAll(Path(), "SHZMAP01");
  ZeroMap map;
  ASSERT_TRUE(map.Load(dir_.path(), kFile, kBlocks).ok());
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.records(), 0u);
}

TEST_F(ZeroMapFileTest, MissingFileIsAnError) {
  ZeroMap map;
  Status s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.sys_errno(), ENOENT);
  EXPECT_NE(s.message().find(Path()), std::string::npos) << s.message();
}

// What a torn third Add may leave after two complete ones: Load keeps the
// two and cuts the file back to them; the next Add takes the torn one's place.
TEST_F(ZeroMapFileTest, TornTailsAreCut) {
  std::string bad_hash = Record(3, 200, 4, true);
  bad_hash[20] ^= 0x01;
  const struct {
    const char* what;
    std::string tail;
  } cases[] = {
      {"a partial record", Record(3, 200, 4, true).substr(0, 13)},
      {"records without the end-of-Add mark", Record(3, 200, 4, false) + Record(4, 300, 4, false)},
      {"an end record with a bad hash", bad_hash},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::filesystem::remove(Path());
    WriteTwoAdds();
    Append(Path(), c.tail);
    ZeroMap map;
    Status s = map.Load(dir_.path(), kFile, kBlocks);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(map.Runs(0, kBlocks), kTwoAddsRuns);
    EXPECT_EQ(map.records(), 3u);
    EXPECT_EQ(Size(), 8u + 24 * 3);
    ASSERT_TRUE(map.Add(dir_.path(), kFile, {{400, 1}}).ok());
    ZeroMap again;
    ASSERT_TRUE(again.Load(dir_.path(), kFile, kBlocks).ok());
    EXPECT_EQ(again.Runs(150, kBlocks), (std::vector<ZRun>{{400, 1}}));
    EXPECT_EQ(again.records(), 4u);
  }
}

TEST_F(ZeroMapFileTest, TornSecondAddLeavesTheFirst) {
  WriteTwoAdds();
  // Record 2 (the whole second Add) loses its last byte.
  std::filesystem::resize_file(Path(), 8 + 24 * 3 - 1);
  ZeroMap map;
  ASSERT_TRUE(map.Load(dir_.path(), kFile, kBlocks).ok());
  EXPECT_EQ(map.Runs(0, kBlocks), (std::vector<ZRun>{{10, 5}, {100, 1}}));
  EXPECT_EQ(map.records(), 2u);
  EXPECT_EQ(Size(), 8u + 24 * 2);
}

TEST_F(ZeroMapFileTest, DamageBeforeTheLastAddIsAnError) {
  WriteTwoAdds();
  std::string bytes = ReadAll(Path());
  bytes[8 + 3] ^= 0x40;  // record 0's first block
  WriteAll(Path(), bytes);
  ZeroMap map;
  Status s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_NE(s.message().find(Path()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("record 0 is damaged"), std::string::npos) << s.message();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(ReadAll(Path()), bytes);  // nothing cut
}

TEST_F(ZeroMapFileTest, BadMagicIsAnError) {
  WriteTwoAdds();
  std::string bytes = ReadAll(Path());
  bytes[7] = '2';
  WriteAll(Path(), bytes);
  ZeroMap map;
  Status s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_NE(s.message().find("bad header"), std::string::npos) << s.message();
  WriteAll(Path(), "SHZ");
  s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_NE(s.message().find("bad header"), std::string::npos) << s.message();
}

TEST_F(ZeroMapFileTest, RecordPastTheLayerIsAnError) {
  WriteAll(Path(), std::string("SHZMAP01") + Record(0, 10, 5, true) + Record(1, 995, 6, true) +
                       Record(2, 1, 1, true));
  ZeroMap map;
  Status s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_NE(s.message().find("record 1 ends past block 1000"), std::string::npos) << s.message();
  // Overflowing first + count is caught too.
  WriteAll(Path(),
           std::string("SHZMAP01") + Record(0, UINT64_MAX - 1, 4, true) + Record(1, 1, 1, true));
  s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_NE(s.message().find("record 0 ends past block 1000"), std::string::npos) << s.message();
  // Also as the last record: its hash holds, so it is no torn append.
  WriteAll(Path(), std::string("SHZMAP01") + Record(0, 10, 5, true) + Record(1, 995, 6, true));
  s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_NE(s.message().find("record 1 ends past block 1000"), std::string::npos) << s.message();
  EXPECT_EQ(ReadAll(Path()).size(), 8u + 2 * 24) << "the file was cut";
  // It fits a larger layer.
  ASSERT_TRUE(map.Load(dir_.path(), kFile, 1001).ok());
  EXPECT_EQ(map.Runs(0, 2000), (std::vector<ZRun>{{10, 5}, {995, 6}}));
}

TEST_F(ZeroMapFileTest, RecordOfNoBlocksIsAnError) {
  WriteAll(Path(), std::string("SHZMAP01") + Record(0, 10, 0, false) + Record(1, 20, 1, true));
  ZeroMap map;
  Status s = map.Load(dir_.path(), kFile, kBlocks);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_NE(s.message().find("record 0 has no blocks"), std::string::npos) << s.message();
}

TEST_F(ZeroMapFileTest, FirstAddReplacesALeftover) {
  WriteAll(Path(), std::string(1000, 'x'));
  ZeroMap map;
  ASSERT_TRUE(map.Add(dir_.path(), kFile, {{3, 4}}).ok());
  EXPECT_EQ(ReadAll(Path()), std::string("SHZMAP01") + Record(0, 3, 4, true));
  ZeroMap again;
  ASSERT_TRUE(again.Load(dir_.path(), kFile, kBlocks).ok());
  EXPECT_EQ(again.Runs(0, kBlocks), (std::vector<ZRun>{{3, 4}}));
}

TEST_F(ZeroMapFileTest, ManyAddsAreRewrittenSmall) {
  ZeroMap map;
  for (int i = 0; i < 1100; ++i) {
    Status s = map.Add(dir_.path(), kFile, {{100, 10}});
    ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
    ASSERT_LE(map.records(), 1025u);
  }
  ASSERT_TRUE(map.Add(dir_.path(), kFile, {{500, 1}, {600, 2}}).ok());
  const std::vector<ZRun> want = {{100, 10}, {500, 1}, {600, 2}};
  EXPECT_EQ(map.Runs(0, kBlocks), want);
  // Rewritten once at 1025 records, then 75 + 2 more appended.
  EXPECT_EQ(map.records(), 1u + 75 + 2);
  EXPECT_EQ(Size(), 8u + 24 * map.records());
  ZeroMap again;
  Status s = again.Load(dir_.path(), kFile, kBlocks);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(again.Runs(0, kBlocks), want);
  EXPECT_EQ(again.records(), map.records());
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string(), kFile);
  }
}

TEST_F(ZeroMapFileTest, RewriteWritesOneRecordPerRun) {
  ZeroMap map;
  // 1025 Adds over 5 distinct runs: over 1024 records and over 4 per run.
  for (int i = 0; i < 1025; ++i) {
    const uint64_t first = static_cast<uint64_t>(i % 5) * 10;
    ASSERT_TRUE(map.Add(dir_.path(), kFile, {{first, 2}}).ok());
  }
  EXPECT_EQ(map.records(), 5u);
  EXPECT_EQ(ReadAll(Path()), std::string("SHZMAP01") + Record(0, 0, 2, false) +
                                 Record(1, 10, 2, false) + Record(2, 20, 2, false) +
                                 Record(3, 30, 2, false) + Record(4, 40, 2, true));
  ASSERT_TRUE(map.Add(dir_.path(), kFile, {{900, 1}}).ok());
  ZeroMap again;
  ASSERT_TRUE(again.Load(dir_.path(), kFile, kBlocks).ok());
  EXPECT_EQ(again.Runs(0, kBlocks),
            (std::vector<ZRun>{{0, 2}, {10, 2}, {20, 2}, {30, 2}, {40, 2}, {900, 1}}));
  EXPECT_FALSE(std::filesystem::exists(Path() + ".tmp"));
}

}  // namespace
}  // namespace shorthorn::replicad
