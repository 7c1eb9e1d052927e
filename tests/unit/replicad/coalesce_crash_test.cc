// Crash safety of snapshot deletion: the worker is stopped, as a crash
// would stop it, at every interrupt point of the merge (after each copied
// piece and at each metadata step), the replica is reopened, and every
// surviving snapshot and the live data must hash as before. The reopened
// replica then finishes the merge and leaves no stray layer file.
#include <dirent.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::ChainFixture;
using testing::Hash;
using testing::RandomBytes;

constexpr uint64_t kSize = 1 << 20;

ReplicaOptions Options(std::function<bool(std::string_view)> crash_at = nullptr) {
  ReplicaOptions o;
  o.merge_piece = 32 << 10;  // many pieces, many interrupt points
  o.crash_at = std::move(crash_at);
  return o;
}

// Four generations of scattered writes with snapshots s1..s3 between them.
void Build(ChainFixture& f) {
  std::mt19937_64 rng(7);
  for (int gen = 0; gen < 4; ++gen) {
    for (int i = 0; i < 40; ++i) {
      uint64_t off = (rng() % (kSize / 4096)) * 4096 + (i % 3 == 0 ? 100 : 0);
      uint64_t len = std::min<uint64_t>(kSize - off, 4096 * (1 + rng() % 6));
      ASSERT_TRUE(f.Write(off, RandomBytes(rng, len)).ok());
    }
    if (gen == 1) {
      ASSERT_TRUE(f.Unmap(64 << 10, 200 << 10).ok());
    }
    if (gen < 3) {
      ASSERT_TRUE(f.Snapshot("s" + std::to_string(gen + 1)).ok());
    }
  }
}

std::map<std::string, uint64_t> Hashes(ChainFixture& f) {
  std::map<std::string, uint64_t> out;
  for (const auto& s : f.r().ListLayers().snapshots) out[s.name] = Hash(f.ReadSnapshot(s.name));
  out["(live)"] = Hash(f.ReadAll());
  return out;
}

size_t LayerFiles(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  while (dirent* e = ::readdir(d)) n += IsLayerFileName(e->d_name) ? 1 : 0;
  ::closedir(d);
  return n;
}

void CrashAt(const std::string& target, const std::string& point) {
  SyncIoEngine engine(0);
  for (int nth = 1;; ++nth) {
    SCOPED_TRACE("delete " + target + ", crash at " + point + " #" + std::to_string(nth));
    ChainFixture f(&engine, kSize, Options());
    Build(f);
    ASSERT_TRUE(f.r().WaitIdle());  // checksums done
    std::map<std::string, uint64_t> before = Hashes(f);
    int hits = 0;
    f.Reopen(Options([&](std::string_view p) { return p == point && ++hits == nth; }));
    ASSERT_TRUE(f.r().DeleteSnapshot(target).ok());
    bool finished = f.r().WaitIdle();
    // Reopen with a worker that stops at once: the state the crash left.
    f.Reopen(Options([](std::string_view p) { return p == "merge-start"; }));
    std::map<std::string, uint64_t> now = Hashes(f);
    for (const auto& [name, hash] : now) EXPECT_EQ(hash, before.at(name)) << name;
    // Resume: the merge completes and only referenced files remain.
    f.Reopen(Options());
    ASSERT_TRUE(f.r().WaitIdle());
    now = Hashes(f);
    EXPECT_EQ(now.count(target), 0u);
    for (const auto& [name, hash] : now) EXPECT_EQ(hash, before.at(name)) << name;
    EXPECT_EQ(LayerFiles(f.dir()), f.r().ListLayers().snapshots.size() + 1);
    ASSERT_TRUE(f.r().StartVerify().ok());
    ASSERT_TRUE(f.r().WaitIdle());
    msg::LayerList list = f.r().ListLayers();
    EXPECT_EQ(list.verify.state, msg::VerifyPhase::kDone);
    EXPECT_TRUE(list.verify.bad.empty());
    if (finished || ::testing::Test::HasFailure()) break;  // the point was not reached nth times
  }
}

class CoalesceCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CoalesceCrashTest, EveryInterruptPoint) {
  for (const char* p : {"merge-start", "merge-prepared", "merge-copy", "merge-synced",
                        "merge-committed", "merge-unlinked"}) {
    CrashAt(GetParam(), p);
  }
}

// s1: the root (child s2); s2: a middle snapshot; s3: the newest (child =
// head, merged while the head is live).
INSTANTIATE_TEST_SUITE_P(Targets, CoalesceCrashTest, ::testing::Values("s1", "s2", "s3"));

TEST(CoalesceCrashTest2, DeletingNewestFreesWhatOnlyItHeld) {
  SyncIoEngine engine(0);
  ChainFixture f(&engine, kSize, Options());
  std::mt19937_64 rng(3);
  auto a = RandomBytes(rng, 512 << 10);
  ASSERT_TRUE(f.Write(0, a).ok());
  ASSERT_TRUE(f.Snapshot("s1").ok());
  auto b = RandomBytes(rng, 512 << 10);
  ASSERT_TRUE(f.Write(0, b).ok());  // the head overrides everything s1 held
  ASSERT_TRUE(f.r().WaitIdle());
  uint64_t before = f.r().ListLayers().actual_size;
  ASSERT_TRUE(f.r().DeleteSnapshot("s1").ok());
  ASSERT_TRUE(f.r().WaitIdle());
  msg::LayerList after = f.r().ListLayers();
  EXPECT_TRUE(after.snapshots.empty());
  EXPECT_LE(after.actual_size + (500 << 10), before);
  EXPECT_EQ(f.Read(0, b.size()), b);
}

// While a deleted snapshot's merge is held up (here: the worker stopped
// before it starts), an unmap punches the range in that snapshot too, since
// only the head reads through it; a kept snapshot below keeps its data, the
// head reads zeros, and the merge resumed after a reopen changes nothing.
TEST(CoalesceCrashTest2, UnmapPunchesDeletedSnapshotsNobodyNeeds) {
  SyncIoEngine engine(0);
  ChainFixture f(&engine, kSize, Options());
  std::mt19937_64 rng(5);
  auto a = RandomBytes(rng, 256 << 10);
  ASSERT_TRUE(f.Write(0, a).ok());  // s0 holds [0, 256K)
  ASSERT_TRUE(f.Snapshot("s0").ok());
  auto b = RandomBytes(rng, 768 << 10);
  ASSERT_TRUE(f.Write(256 << 10, b).ok());  // s1 holds [256K, 1M)
  ASSERT_TRUE(f.Snapshot("s1").ok());
  ASSERT_TRUE(f.r().WaitIdle());
  auto s0 = Hash(f.ReadSnapshot("s0"));
  f.Reopen(Options([](std::string_view p) { return p == "merge-start"; }));
  ASSERT_TRUE(f.r().DeleteSnapshot("s1").ok());
  EXPECT_FALSE(f.r().WaitIdle());  // the merge is held up
  uint64_t before = f.r().ListLayers().actual_size;
  ASSERT_TRUE(f.Unmap(0, kSize).ok());
  uint64_t after = f.r().ListLayers().actual_size;
  // s1's 768 KiB are gone, the head holds zeros over s0's 256 KiB (without
  // the punch: 2 MiB, the head holding zeros over both).
  EXPECT_GE(before, 1u << 20);
  EXPECT_LE(after, 600u << 10) << before << " -> " << after;
  EXPECT_EQ(f.ReadAll(), std::vector<uint8_t>(kSize, 0));
  EXPECT_EQ(Hash(f.ReadSnapshot("s0")), s0);
  f.Reopen(Options());
  ASSERT_TRUE(f.r().WaitIdle());
  msg::LayerList list = f.r().ListLayers();
  ASSERT_EQ(list.snapshots.size(), 1u);
  EXPECT_EQ(list.snapshots[0].name, "s0");
  EXPECT_EQ(f.ReadAll(), std::vector<uint8_t>(kSize, 0));
  EXPECT_EQ(Hash(f.ReadSnapshot("s0")), s0);
  EXPECT_EQ(LayerFiles(f.dir()), 2u);
}

// Issue 15, hole 6: the punch of an unmap in a deleted snapshot under the
// head must be durable once a FLUSH after it succeeded, or a power cut
// brings that snapshot's data back under a head that reads through it. So
// FLUSH fdatasyncs that layer too: a failure there fails the flush (and
// the replica, as any failed fdatasync does), and once synced it is not
// synced again by the next flush.
TEST(CoalesceCrashTest2, FlushSyncsTheDeletedSnapshotsAnUnmapPunched) {
  SyncIoEngine engine(0);
  ChainFixture f(&engine, kSize, Options());
  std::mt19937_64 rng(6);
  ASSERT_TRUE(f.Write(0, RandomBytes(rng, 512 << 10)).ok());
  ASSERT_TRUE(f.Snapshot("s1").ok());
  ASSERT_TRUE(f.r().WaitIdle());
  std::atomic<int> lower_syncs{0};
  std::atomic<bool> fail{false};
  ReplicaOptions options = Options([](std::string_view p) { return p == "merge-start"; });
  options.fail_io = [&](std::string_view p) {
    if (p != "flush-layer") return 0;
    ++lower_syncs;
    return fail.load() ? EIO : 0;
  };
  f.Reopen(options);
  ASSERT_TRUE(f.r().DeleteSnapshot("s1").ok());
  EXPECT_FALSE(f.r().WaitIdle());  // the merge is held up: s1 is under the head, unneeded
  auto flush = [&] {
    std::promise<Status> p;
    f.r().Flush(0, [&p](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  };
  ASSERT_TRUE(flush().ok());
  EXPECT_EQ(lower_syncs.load(), 0) << "nothing was punched yet";
  ASSERT_TRUE(f.Unmap(0, 256 << 10).ok());  // punches s1 too
  ASSERT_TRUE(flush().ok());
  EXPECT_EQ(lower_syncs.load(), 1) << "the flush did not sync the punched snapshot layer";
  ASSERT_TRUE(flush().ok());
  EXPECT_EQ(lower_syncs.load(), 1) << "synced again with nothing new";
  ASSERT_TRUE(f.Unmap(256 << 10, 128 << 10).ok());
  fail = true;
  Status s = flush();
  EXPECT_EQ(s.sys_errno(), EIO) << s.ToString();
  EXPECT_TRUE(f.r().failed());
}

}  // namespace
}  // namespace shorthorn::replicad
