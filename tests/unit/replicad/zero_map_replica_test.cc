// A replica's zero maps as the data path, the layer ops and the copy see
// them: an unmap over a snapshot's data is recorded as zero runs of the
// head (no zeros written), reads zeros before and after a reopen, survives
// a merge, a later snapshot and a revert, and a copy made through
// LAYER_EXTENTS and READ_LAYER has the layer's checksum.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "replicad/core/layer_file.h"
#include "replicad/core/zero_map.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::ChainFixture;
using testing::RandomBytes;

constexpr uint64_t kMiB = 1 << 20;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t Allocated(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// The head's file: the layer replica.json names as "head".
std::string HeadFile(ChainFixture& f) {
  std::string meta = Slurp(f.dir() + "/replica.json");
  auto pos = meta.find("\"head\":");
  EXPECT_NE(pos, std::string::npos);
  uint64_t id = std::stoull(meta.substr(pos + 7));
  return f.dir() + "/" + LayerFileName(id);
}

bool IsZero(const std::vector<uint8_t>& v, size_t from, size_t n) {
  return std::all_of(v.begin() + static_cast<long>(from), v.begin() + static_cast<long>(from + n),
                     [](uint8_t b) { return b == 0; });
}

class ZeroMapReplicaTest : public ::testing::Test {
 protected:
  SyncIoEngine engine_{0};
  ChainFixture f_{&engine_, 8 * kMiB, {}, /*in_memory=*/false};
  std::mt19937_64 rng_{42};
};

// Fails before zero maps: the head held 2 MiB of written zeros.
TEST_F(ZeroMapReplicaTest, UnmapOverASnapshotWritesNoZeros) {
  std::vector<uint8_t> a = RandomBytes(rng_, 4 * kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  const std::string head = HeadFile(f_);
  ASSERT_TRUE(f_.Unmap(kMiB, 2 * kMiB).ok());
  EXPECT_LT(Allocated(head), 64 * 1024u) << "the head holds written zeros";
  std::string meta = Slurp(f_.dir() + "/replica.json");
  EXPECT_NE(meta.find("\"format\":4"), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"zero_map\":true"), std::string::npos) << meta;
  const std::string zeros = head.substr(0, head.size() - 4) + ".zeros";
  EXPECT_TRUE(std::filesystem::exists(zeros));

  std::vector<uint8_t> want = a;
  std::fill(want.begin() + kMiB, want.begin() + 3 * kMiB, 0);
  want.resize(8 * kMiB, 0);
  EXPECT_EQ(f_.ReadAll(), want);
  std::vector<uint8_t> s1 = f_.ReadSnapshot("s1");
  EXPECT_TRUE(std::equal(a.begin(), a.end(), s1.begin()));
  f_.Reopen();  // the index is built again, from the zero map too
  EXPECT_EQ(f_.ReadAll(), want);
  EXPECT_TRUE(std::filesystem::exists(zeros));
}

// A write into a zero run wins over it; an unmap without a snapshot below
// records nothing.
TEST_F(ZeroMapReplicaTest, DataWrittenLaterWinsOverTheZeroRun) {
  std::vector<uint8_t> a = RandomBytes(rng_, 2 * kMiB), b = RandomBytes(rng_, 8192);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  ASSERT_TRUE(f_.Unmap(0, 2 * kMiB).ok());
  ASSERT_TRUE(f_.Write(4096 * 10, b).ok());
  ASSERT_TRUE(f_.Unmap(4 * kMiB, kMiB).ok());  // nothing under it
  f_.Reopen();
  std::vector<uint8_t> got = f_.ReadAll();
  EXPECT_TRUE(IsZero(got, 0, 4096 * 10));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), got.begin() + 4096 * 10));
  EXPECT_TRUE(IsZero(got, 4096 * 12, 8 * kMiB - 4096 * 12));
}

// The resurrection case: deleting the snapshot merges its data into the
// head, which must not fill the head's zero runs with it.
TEST_F(ZeroMapReplicaTest, MergingTheSnapshotKeepsTheDiscard) {
  std::vector<uint8_t> a = RandomBytes(rng_, 4 * kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  ASSERT_TRUE(f_.Unmap(kMiB, kMiB).ok());
  ASSERT_TRUE(f_.r().DeleteSnapshot("s1").ok());
  ASSERT_TRUE(f_.r().WaitIdle());
  ASSERT_TRUE(f_.r().ListLayers().snapshots.empty());
  std::vector<uint8_t> want = a;
  std::fill(want.begin() + kMiB, want.begin() + 2 * kMiB, 0);
  want.resize(8 * kMiB, 0);
  EXPECT_EQ(f_.ReadAll(), want);
  f_.Reopen();
  EXPECT_EQ(f_.ReadAll(), want);
}

// A head with a zero map becomes a snapshot; the snapshot under it is
// merged into it; its checksum and a copy of it through LAYER_EXTENTS and
// READ_LAYER (what a rebuild does) agree, and the copy has real zeros.
TEST_F(ZeroMapReplicaTest, ASnapshotWithAZeroMapIsCopiedWithItsChecksum) {
  std::vector<uint8_t> a = RandomBytes(rng_, 4 * kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  ASSERT_TRUE(f_.Unmap(kMiB, kMiB).ok());
  ASSERT_TRUE(f_.Snapshot("s2").ok());
  ASSERT_TRUE(f_.Write(6 * kMiB, RandomBytes(rng_, 4096)).ok());
  ASSERT_TRUE(f_.r().DeleteSnapshot("s1").ok());  // merged into s2
  ASSERT_TRUE(f_.r().WaitIdle());
  std::vector<uint8_t> want = a;
  std::fill(want.begin() + kMiB, want.begin() + 2 * kMiB, 0);
  want.resize(8 * kMiB, 0);
  EXPECT_EQ(f_.ReadSnapshot("s2"), want);

  msg::LayerList l = f_.r().ListLayers();
  ASSERT_EQ(l.snapshots.size(), 1u);
  ASSERT_TRUE(f_.r().WaitIdle());
  l = f_.r().ListLayers();
  ASSERT_FALSE(l.snapshots[0].checksum.empty());
  // Copy s2 the way the rebuild does, two extents per page.
  const std::string copy = f_.dir() + "/../copy.img";
  ASSERT_TRUE(CreateLayerFile(copy, 8 * kMiB).ok());
  UniqueFd fd(::open(copy.c_str(), O_RDWR));
  ASSERT_TRUE(fd.valid());
  uint64_t from = 0;
  bool covers_zeros = false;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = f_.r().LayerExtents("s2", from, 2);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->extents.size(), 2u);
    for (const auto& e : page->extents) {
      covers_zeros |= e.offset <= kMiB && e.offset + e.length >= 2 * kMiB;
      std::vector<uint8_t> buf(e.length);
      ASSERT_TRUE(f_.r().ReadLayer("s2", e.offset, buf).ok());
      ASSERT_TRUE(PwriteFull(fd.get(), buf.data(), buf.size(), e.offset, "copy").ok());
    }
    if (!page->next) break;
    ASSERT_GT(*page->next, from);
    from = *page->next;
  }
  EXPECT_TRUE(covers_zeros) << "LAYER_EXTENTS left out the zero run";
  auto sum = LayerChecksum(fd.get(), "copy", nullptr);
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, l.snapshots[0].checksum);
  ASSERT_TRUE(f_.r().StartVerify().ok());
  ASSERT_TRUE(f_.r().WaitIdle());
  EXPECT_TRUE(f_.r().ListLayers().verify.bad.empty());
}

// Revert drops the head and its zero map; a leftover map that
// replica.json does not name is removed by Open and never read.
TEST_F(ZeroMapReplicaTest, RevertAndLeftoversRemoveTheMap) {
  std::vector<uint8_t> a = RandomBytes(rng_, 2 * kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  const std::string head = HeadFile(f_);
  const std::string zeros = head.substr(0, head.size() - 4) + ".zeros";
  ASSERT_TRUE(f_.Unmap(0, kMiB).ok());
  ASSERT_TRUE(std::filesystem::exists(zeros));
  ASSERT_TRUE(f_.r().Revert("s1").ok());
  EXPECT_FALSE(std::filesystem::exists(zeros));
  EXPECT_EQ(Slurp(f_.dir() + "/replica.json").find("zero_map"), std::string::npos);
  std::vector<uint8_t> got = f_.ReadAll();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));

  // A map for the new head that replica.json does not name: a crash between
  // the map's write and the commit. It must not hide s1 after a reopen.
  const std::string new_head = HeadFile(f_);
  const std::string stray = new_head.substr(0, new_head.size() - 4) + ".zeros";
  {
    ZeroMap m;
    ASSERT_TRUE(m.Add(f_.dir(), std::filesystem::path(stray).filename(), {{0, 16}}).ok());
  }
  f_.Reopen();
  EXPECT_FALSE(std::filesystem::exists(stray));
  got = f_.ReadAll();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
}

// The map cannot be written (fail_io at "zero-map"): the unmap fails with
// an error naming the map, and the data is as it was.
TEST_F(ZeroMapReplicaTest, AMapThatCannotBeWrittenLosesNothing) {
  std::vector<uint8_t> a = RandomBytes(rng_, 2 * kMiB), b = RandomBytes(rng_, kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  ASSERT_TRUE(f_.Write(0, b).ok());
  ReplicaOptions options;
  options.fail_io = [](std::string_view point) { return point == "zero-map" ? ENOSPC : 0; };
  f_.Reopen(options);
  Status s = f_.Unmap(0, 2 * kMiB);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(".zeros"), std::string::npos) << s.ToString();
  f_.Reopen(ReplicaOptions{});
  std::vector<uint8_t> got = f_.ReadAll();
  EXPECT_TRUE(std::equal(b.begin(), b.end(), got.begin()));
  EXPECT_TRUE(std::equal(a.begin() + kMiB, a.end(), got.begin() + kMiB));
}

// Zero runs cover only the blocks a snapshot below holds: a discard of the
// whole volume over one 4 KiB block of s1 makes the head own that block,
// not the volume (every later copy of the layer would carry the zeros).
TEST_F(ZeroMapReplicaTest, ZeroRunsCoverOnlyTheLowerData) {
  ASSERT_TRUE(f_.Write(3 * kMiB, RandomBytes(rng_, 4096)).ok());
  ASSERT_TRUE(f_.Write(5 * kMiB, RandomBytes(rng_, 8192)).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  ASSERT_TRUE(f_.Unmap(0, 8 * kMiB).ok());
  ASSERT_TRUE(f_.Snapshot("s2").ok());
  auto page = f_.r().LayerExtents("s2", 0, 100);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->extents.size(), 2u);
  EXPECT_EQ(page->extents[0].offset, 3 * kMiB);
  EXPECT_EQ(page->extents[0].length, 4096u);
  EXPECT_EQ(page->extents[1].offset, 5 * kMiB);
  EXPECT_EQ(page->extents[1].length, 8192u);
  EXPECT_EQ(f_.ReadAll(), std::vector<uint8_t>(8 * kMiB, 0));
}

// The commit that records the head's first zero map fails: the unmap fails
// and leaves nothing behind, neither in memory (a merge must not take the
// run as the head's) nor on the disk.
TEST_F(ZeroMapReplicaTest, AFailedFirstCommitLeavesNoRun) {
  std::vector<uint8_t> a = RandomBytes(rng_, 2 * kMiB);
  ASSERT_TRUE(f_.Write(0, a).ok());
  ASSERT_TRUE(f_.Snapshot("s1").ok());
  const std::string head = HeadFile(f_);
  const std::string zeros = head.substr(0, head.size() - 4) + ".zeros";
  auto armed = std::make_shared<bool>(false);
  ReplicaOptions options;
  options.fail_io = [armed](std::string_view point) {
    if (point == "zero-map") *armed = true;  // the next commit is the map's
    if (point == "commit" && *armed) {
      *armed = false;
      return EIO;
    }
    return 0;
  };
  f_.Reopen(options);
  // s1's checksum commit (the reopened worker's) takes meta_mu_: an unmap
  // that met it would write real zeros instead of a zero run, and succeed.
  ASSERT_TRUE(f_.r().WaitIdle());
  Status s = f_.Unmap(0, kMiB);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(std::filesystem::exists(zeros));
  std::vector<uint8_t> got = f_.ReadAll();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  ASSERT_TRUE(f_.r().DeleteSnapshot("s1").ok());  // merged into the head
  ASSERT_TRUE(f_.r().WaitIdle());
  got = f_.ReadAll();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin())) << "the merge took a failed run";
  f_.Reopen(ReplicaOptions{});
  got = f_.ReadAll();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
}

// replica.json: format 4 only with a zero map; a zero map in format 3 is
// corrupt (a replicad that wrote format 3 never had one).
TEST(ZeroMapMetaTest, FormatFourOnlyWithAZeroMap) {
  ReplicaMeta m = NewReplicaMeta("v", "r", 1 << 20);
  std::string plain = EncodeReplicaMeta(m);
  EXPECT_NE(plain.find("\"format\":3"), std::string::npos);
  EXPECT_EQ(plain.find("zero_map"), std::string::npos);
  m.layers[0].zero_map = true;
  std::string with = EncodeReplicaMeta(m);
  EXPECT_NE(with.find("\"format\":4"), std::string::npos);
  auto back = DecodeReplicaMeta(with, "replica.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->layers[0].zero_map);
  std::string old = with;
  old.replace(old.find("\"format\":4"), 10, "\"format\":3");
  auto bad = DecodeReplicaMeta(old, "replica.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("zero_map"), std::string::npos);
  std::string wrong = with;
  wrong.replace(wrong.find("\"zero_map\":true"), 15, "\"zero_map\":7");
  EXPECT_FALSE(DecodeReplicaMeta(wrong, "replica.json").ok());
}

}  // namespace
}  // namespace shorthorn::replicad
