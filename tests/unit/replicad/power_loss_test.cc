// The power-loss test mode (ReplicaOptions::power_loss_test): after
// SimulatePowerLoss the files hold exactly what the last FLUSH made durable,
// holes included, on every write path (engine, caller's thread, O_DIRECT,
// buffered), and nothing reaches them afterwards.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/log.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_meta.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/io/uring_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::Hash;
using testing::RandomBytes;
using testing::TempDir;
using testing::Wait;

constexpr uint64_t kK = 1024;
constexpr uint64_t kSize = 1024 * kK;

// How the writes reach the head.
enum class WritePath { kEngineDirect, kCallerDirect, kEngineBuffered, kInlineBuffered };

std::string PathName(WritePath p) {
  switch (p) {
    case WritePath::kEngineDirect:
      return "EngineDirect";
    case WritePath::kCallerDirect:
      return "CallerDirect";
    case WritePath::kEngineBuffered:
      return "EngineBuffered";
    case WritePath::kInlineBuffered:
      return "InlineBuffered";
  }
  return "Unknown";
}

// Every byte of every file of a replica directory, for "nothing changed".
std::map<std::string, uint64_t> FileHashes(const std::string& dir) {
  std::map<std::string, uint64_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    auto text = ReadFileToString(e.path().string());
    EXPECT_TRUE(text.ok());
    if (text.ok()) out[e.path().filename().string()] = XXH3_64bits(text->data(), text->size());
  }
  return out;
}

class PowerLossTest : public ::testing::TestWithParam<WritePath> {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);  // SimulatePowerLoss fails the replica, which logs
    WritePath p = GetParam();
    if (p == WritePath::kEngineDirect || p == WritePath::kCallerDirect) {
      auto uring = UringIoEngine::Create();
      if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
      engine_ = std::move(*uring);
    } else {
      engine_ = std::make_unique<SyncIoEngine>(p == WritePath::kEngineBuffered ? 2 : 0);
    }
    options_.power_loss_test = true;
    options_.direct_writes = p == WritePath::kEngineDirect || p == WritePath::kCallerDirect;
    options_.inline_writes = p == WritePath::kInlineBuffered;
    dir_ = tmp_.path() + "/r1";
    ASSERT_TRUE(Replica::Create(dir_, NewReplicaMeta("vol", "r1", kSize)).ok());
    Open(options_);
  }
  void TearDown() override {
    if (replica_) (void)replica_->Close();
  }
  void Open(const ReplicaOptions& options) {
    auto r = Replica::Open(dir_, engine_.get(), options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = *r;
  }
  // The replica as a fresh process would open it from the disk.
  void Reopen() {
    (void)replica_->Close();  // EIO after a power loss: it has failed
    replica_.reset();
    Open({});
  }
  Status Write(uint64_t off, const std::vector<uint8_t>& data) {
    bool may_block = GetParam() == WritePath::kCallerDirect;
    return Wait([&](auto done) { replica_->Write(0, off, data, done, may_block); });
  }
  Status Unmap(uint64_t off, uint64_t len) {
    return Wait([&](auto done) { replica_->Unmap(0, off, len, done); });
  }
  Status Flush() {
    return Wait([&](auto done) { replica_->Flush(0, done); });
  }
  std::vector<uint8_t> ReadAll() {
    std::vector<uint8_t> out(kSize);
    Status s = Wait([&](auto done) { replica_->Read(0, 0, out, done); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  // Whether [off, off+len) of `file` holds any data (SEEK_DATA).
  bool Allocated(const std::string& file, uint64_t off, uint64_t len) {
    UniqueFd fd(::open((dir_ + "/" + file).c_str(), O_RDONLY | O_CLOEXEC));
    auto ext = AllocatedExtents(fd.get(), off, off + len, file);
    EXPECT_TRUE(ext.ok());
    return ext.ok() && !ext->empty();
  }

  TempDir tmp_;  // on the disk: O_DIRECT needs a file system that takes it
  std::unique_ptr<IoEngine> engine_;
  ReplicaOptions options_;
  std::string dir_;
  std::shared_ptr<Replica> replica_;
  std::mt19937_64 rng_{15};
};

TEST_P(PowerLossTest, OnlyTheFlushedStateSurvives) {
  // s1 holds S at [768K, 1M); the head (layer-2) gets A at [0, 512K).
  std::vector<uint8_t> s_data = RandomBytes(rng_, 256 * kK);
  ASSERT_TRUE(Write(768 * kK, s_data).ok());
  ASSERT_TRUE(replica_->Snapshot("s1", "2024-01-01T00:00:00Z", true).ok());
  // s1's checksum commit takes meta_mu_; an unmap that meets it there writes
  // real (unflushed) zeros instead of a zero run, and the cut below would
  // then rightly bring s1's data back at [960K, 992K).
  ASSERT_TRUE(replica_->WaitIdle());
  std::vector<uint8_t> a = RandomBytes(rng_, 512 * kK);
  ASSERT_TRUE(Write(0, a).ok());
  ASSERT_TRUE(Flush().ok());
  std::vector<uint8_t> want(kSize, 0);
  std::copy(a.begin(), a.end(), want.begin());
  std::copy(s_data.begin(), s_data.end(), want.begin() + 768 * kK);

  // Not flushed: B over part of A (aligned, and unaligned: edge blocks are
  // read-modify-written), C into the head's hole over s1's data, an unmap of
  // part of A (a punch) and one over s1's data (a zero run in the head's
  // zero map: durable at once, before the punch, as on a real disk; see
  // below).
  ASSERT_TRUE(Write(128 * kK, RandomBytes(rng_, 64 * kK)).ok());
  ASSERT_TRUE(Write(200 * kK + 100, RandomBytes(rng_, 10 * kK)).ok());
  ASSERT_TRUE(Write(800 * kK, RandomBytes(rng_, 64 * kK)).ok());
  ASSERT_TRUE(Unmap(300 * kK, 100 * kK + 7).ok());
  ASSERT_TRUE(Unmap(960 * kK, 32 * kK).ok());
  ASSERT_NE(Hash(ReadAll()), Hash(want));
  ASSERT_TRUE(Allocated("layer-2.img", 800 * kK, 64 * kK));

  auto dropped = replica_->SimulatePowerLoss();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->changes, 5u);
  EXPECT_EQ(dropped->bytes, (64 + 12 + 104 + 64 + 32) * kK);

  // Nothing reaches the files any more.
  auto files = FileHashes(dir_);
  EXPECT_EQ(Write(0, RandomBytes(rng_, 64 * kK)).sys_errno(), EIO);
  EXPECT_EQ(Unmap(0, 64 * kK).sys_errno(), EIO);
  EXPECT_EQ(FileHashes(dir_), files);

  Reopen();
  // The unmap over s1's data is the one change that outlives the power cut:
  // its zero run was made durable before anything was punched (an unflushed
  // discard may take effect, like any unflushed write; what may never show
  // is s1's data under a discard that did). The rest is the flushed state.
  std::fill(want.begin() + 960 * kK, want.begin() + 992 * kK, 0);
  EXPECT_EQ(Hash(ReadAll()), Hash(want));
  // C's range is a hole in the head again: s1 shows through, not zeros.
  EXPECT_FALSE(Allocated("layer-2.img", 768 * kK, 256 * kK));
  std::vector<uint8_t> snap(kSize);
  ASSERT_TRUE(replica_->ReadSnapshot("s1", 0, snap).ok());
  std::vector<uint8_t> want_snap(kSize, 0);
  std::copy(s_data.begin(), s_data.end(), want_snap.begin() + 768 * kK);
  EXPECT_EQ(Hash(snap), Hash(want_snap));
}

TEST_P(PowerLossTest, AFlushKeepsEverythingBeforeIt) {
  std::vector<uint8_t> a = RandomBytes(rng_, 256 * kK);
  ASSERT_TRUE(Write(4 * kK, a).ok());
  ASSERT_TRUE(Unmap(64 * kK, 8 * kK).ok());
  ASSERT_TRUE(Flush().ok());
  std::vector<uint8_t> want = ReadAll();
  auto dropped = replica_->SimulatePowerLoss();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->changes, 0u);
  EXPECT_EQ(dropped->bytes, 0u);
  Reopen();
  // The unmap over s1's data is the one change that outlives the power cut:
  // its zero run was made durable before anything was punched (an unflushed
  // discard may take effect, like any unflushed write; what may never show
  // is s1's data under a discard that did). The rest is the flushed state.
  std::fill(want.begin() + 960 * kK, want.begin() + 992 * kK, 0);
  EXPECT_EQ(Hash(ReadAll()), Hash(want));
}

TEST_P(PowerLossTest, PunchesOfARemovedSnapshotAreUndoneToo) {
  // s1 is deleted but its merge is held back, so an unmap punches it too.
  std::vector<uint8_t> s_data = RandomBytes(rng_, 128 * kK);
  ASSERT_TRUE(Write(256 * kK, s_data).ok());
  ASSERT_TRUE(replica_->Snapshot("s1", "2024-01-01T00:00:00Z", true).ok());
  ASSERT_TRUE(replica_->WaitIdle());  // s1's checksum
  (void)replica_->Close();
  replica_.reset();
  ReplicaOptions held = options_;
  held.crash_at = [](std::string_view point) { return point == "merge-start"; };
  Open(held);
  ASSERT_TRUE(replica_->DeleteSnapshot("s1").ok());
  replica_->WaitIdle();  // the worker stopped at merge-start
  ASSERT_TRUE(Flush().ok());
  ASSERT_TRUE(Allocated("layer-1.img", 256 * kK, 128 * kK));

  ASSERT_TRUE(Unmap(256 * kK, 128 * kK).ok());
  EXPECT_FALSE(Allocated("layer-1.img", 256 * kK, 128 * kK));
  auto dropped = replica_->SimulatePowerLoss();
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(dropped->changes, 1u);
  EXPECT_EQ(dropped->bytes, 2 * 128 * kK);  // the head's range and s1's

  Reopen();  // resumes the merge of s1 into the head
  ASSERT_TRUE(replica_->WaitIdle());
  std::vector<uint8_t> want(kSize, 0);
  std::copy(s_data.begin(), s_data.end(), want.begin() + 256 * kK);
  EXPECT_EQ(Hash(ReadAll()), Hash(want));
}

TEST(PowerLossModeTest, OffByDefault) {
  TempDir tmp(/*in_memory=*/true);
  SyncIoEngine engine(0);
  std::string dir = tmp.path() + "/r1";
  ASSERT_TRUE(Replica::Create(dir, NewReplicaMeta("vol", "r1", kSize)).ok());
  auto r = Replica::Open(dir, &engine, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->SimulatePowerLoss().status().sys_errno(), EINVAL);
  EXPECT_FALSE((*r)->failed());
  EXPECT_TRUE((*r)->Close().ok());
}

INSTANTIATE_TEST_SUITE_P(Paths, PowerLossTest,
                         ::testing::Values(WritePath::kEngineDirect, WritePath::kCallerDirect,
                                           WritePath::kEngineBuffered, WritePath::kInlineBuffered),
                         [](const auto& info) { return PathName(info.param); });

}  // namespace
}  // namespace shorthorn::replicad
