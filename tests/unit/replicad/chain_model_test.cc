// The layer chain and its index against a brute-force model: random
// sequences of writes (aligned and not), unmaps, snapshots, deletes (middle
// and newest), reverts, expands and reopens. After every step the live
// volume must equal the model; after deletes, reverts and reopens every
// surviving snapshot must too. The background merge runs concurrently with
// the next steps (only revert waits for it), so interleavings vary.
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
using testing::RandomBytes;

// Sized to run in a few seconds; raise locally for a deeper soak.
constexpr int kSequences = 200;
constexpr int kStepsPerSequence = 40;
constexpr uint64_t kInitialSize = 256 << 10;
constexpr uint64_t kMaxSize = 512 << 10;

struct Model {
  std::vector<uint8_t> live;
  std::map<std::string, std::vector<uint8_t>> snapshots;  // content when taken
  std::vector<std::string> order;                         // live snapshots, oldest first
  std::string head_parent;                                // "" for none
};

// stall_merges: the worker stops before any merge until the next reopen,
// so deleted snapshots stay in the chain under later writes and unmaps
// (which punch them), as when a merge fails and waits to retry.
void RunSequence(uint64_t seed, IoEngine* engine, bool in_memory, bool stall_merges = false) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  ReplicaOptions options;
  options.index_chunk_bits = 3;  // 8-block chunks: runs cross chunks
  options.merge_piece = 16 << 10;
  ReplicaOptions stalled = options;
  stalled.crash_at = [](std::string_view point) { return point == "merge-start"; };
  ChainFixture f(engine, kInitialSize, stall_merges ? stalled : options, in_memory);
  // Lets the held-up merges run (revert needs them done).
  auto unstall = [&] {
    if (stall_merges) f.Reopen(options);
  };
  auto restall = [&] {
    if (stall_merges) f.Reopen(stalled);
  };
  Model m;
  m.live.assign(kInitialSize, 0);
  int next_name = 0;
  auto pick = [&](uint64_t size, bool aligned, uint64_t max_len) {
    uint64_t off = rng() % size, len = 1 + rng() % max_len;
    if (aligned) {
      off = off / 4096 * 4096;
      len = (len + 4095) / 4096 * 4096;
    }
    len = std::min(len, size - off);
    return std::pair{off, len};
  };
  auto check_snapshots = [&] {
    for (const auto& [name, content] : m.snapshots) {
      auto got = f.ReadSnapshot(name);
      std::vector<uint8_t> want = content;
      want.resize(got.size(), 0);
      ASSERT_TRUE(got == want) << "snapshot " << name;
    }
  };
  for (int step = 0; step < kStepsPerSequence; ++step) {
    uint64_t size = m.live.size();
    int op = static_cast<int>(rng() % 100);
    std::string what;
    if (op < 40) {
      auto [off, len] = pick(size, rng() % 2 == 0, 40000);
      auto data = RandomBytes(rng, len);
      what = "write " + std::to_string(off) + "+" + std::to_string(len);
      ASSERT_TRUE(f.Write(off, data).ok()) << what;
      std::copy(data.begin(), data.end(), m.live.begin() + static_cast<ptrdiff_t>(off));
    } else if (op < 52) {
      auto [off, len] = pick(size, rng() % 2 == 0, 60000);
      what = "unmap " + std::to_string(off) + "+" + std::to_string(len);
      ASSERT_TRUE(f.Unmap(off, len).ok()) << what;
      std::fill_n(m.live.begin() + static_cast<ptrdiff_t>(off), len, 0);
    } else if (op < 67) {
      std::string name = "s" + std::to_string(next_name++);
      what = "snapshot " + name;
      ASSERT_TRUE(f.Snapshot(name).ok()) << what;
      m.snapshots[name] = m.live;
      m.order.push_back(name);
      m.head_parent = name;
    } else if (op < 80) {
      if (m.order.empty()) continue;
      // Half the time the newest snapshot (the head's parent), else any.
      std::string name =
          rng() % 2 == 0 && !m.head_parent.empty() && m.snapshots.count(m.head_parent)
              ? m.head_parent
              : m.order[rng() % m.order.size()];
      what = "delete " + name;
      ASSERT_TRUE(f.r().DeleteSnapshot(name).ok()) << what;
      Status again = f.r().DeleteSnapshot(name);  // {} while merging, ENOENT once merged
      ASSERT_TRUE(again.ok() || again.sys_errno() == ENOENT) << again.ToString();
      m.snapshots.erase(name);
      std::erase(m.order, name);
      if (rng() % 2 == 0 && !stall_merges) {
        ASSERT_TRUE(f.r().WaitIdle());
      }
      check_snapshots();
    } else if (op < 88) {
      if (m.order.empty()) continue;
      std::string name = m.order[rng() % m.order.size()];
      what = "revert " + name;
      unstall();
      ASSERT_TRUE(f.r().WaitIdle());
      Status s = f.r().Revert(name);
      ASSERT_TRUE(s.ok()) << what << ": " << s.ToString();
      restall();
      m.live = m.snapshots[name];
      m.live.resize(size, 0);
      m.head_parent = name;
      check_snapshots();
    } else if (op < 93) {
      if (size >= kMaxSize) continue;
      uint64_t grow = 4096 * (1 + rng() % 16);
      what = "expand " + std::to_string(size + grow);
      ASSERT_TRUE(f.r().Expand(size + grow).ok()) << what;
      m.live.resize(size + grow, 0);
    } else {
      what = "reopen";
      f.Reopen();
      check_snapshots();
    }
    auto got = f.ReadAll();
    ASSERT_EQ(got.size(), m.live.size()) << what;
    if (got != m.live) {
      size_t i = 0;
      while (got[i] == m.live[i]) ++i;
      FAIL() << "after step " << step << " (" << what << "): first difference at byte " << i
             << " (block " << i / 4096 << "): got " << int(got[i]) << " want " << int(m.live[i]);
    }
  }
  unstall();
  ASSERT_TRUE(f.r().WaitIdle());
  check_snapshots();
  // Every layer left is referenced and every merge due has run.
  msg::LayerList list = f.r().ListLayers();
  EXPECT_TRUE(list.tasks.empty());
  size_t listed_live = 0;
  for (const auto& s : list.snapshots) {
    if (!s.removed) {
      ++listed_live;
      EXPECT_EQ(s.checksum_done, true) << s.name;
    }
  }
  EXPECT_EQ(listed_live, m.snapshots.size());
}

TEST(ChainModelTest, RandomSequencesMatchModel) {
  SyncIoEngine engine(0);
  for (int seq = 0; seq < kSequences; ++seq) {
    RunSequence(1000 + static_cast<uint64_t>(seq), &engine, /*in_memory=*/true);
    if (HasFatalFailure()) return;
  }
}

// Engine threads complete I/O concurrently with the merge; on the disk's
// own filesystem (SEEK_DATA granularity of ext4/xfs rather than tmpfs).
TEST(ChainModelTest, RandomSequencesOnEngineThreadsOnDisk) {
  SyncIoEngine engine(4);
  for (int seq = 0; seq < kSequences / 10; ++seq) {
    RunSequence(5000 + static_cast<uint64_t>(seq), &engine, /*in_memory=*/false);
    if (HasFatalFailure()) return;
  }
}

// Deleted snapshots pile up under the head (no merge runs between reopens),
// so unmaps punch them while later steps read through them.
TEST(ChainModelTest, RandomSequencesWithMergesHeldUp) {
  SyncIoEngine engine(0);
  for (int seq = 0; seq < kSequences / 2; ++seq) {
    RunSequence(9000 + static_cast<uint64_t>(seq), &engine, /*in_memory=*/true,
                /*stall_merges=*/true);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace shorthorn::replicad
