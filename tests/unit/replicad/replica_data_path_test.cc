// Replica's data path on every engine: holes, unaligned writes, unmap,
// range checks, concurrency; direct (O_DIRECT) writes and their fallback;
// a failed fdatasync failing the replica for good.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/replica_store.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/io/uring_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::FailingSyncEngine;
using testing::TempDir;
using testing::Wait;

constexpr uint64_t kSize = 1 << 20;

// The data path on each engine. The engines get every read and write
// (inline_reads/inline_writes off), except in kUringWithInlineIo, replicad's
// default: page-cache reads and writes on the caller's thread.
enum class EngineKind { kInline, kThreads, kUring, kUringWithInlineIo };

class DataPathTest : public ::testing::TestWithParam<EngineKind> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case EngineKind::kInline:
        engine_ = std::make_unique<SyncIoEngine>(0);
        break;
      case EngineKind::kThreads:
        engine_ = std::make_unique<SyncIoEngine>(4);
        break;
      case EngineKind::kUring:
      case EngineKind::kUringWithInlineIo: {
        auto uring = UringIoEngine::Create();
        if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
        engine_ = std::move(*uring);
        break;
      }
    }
    ReplicaOptions options;
    options.inline_reads = options.inline_writes = GetParam() == EngineKind::kUringWithInlineIo;
    store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get(), options);
    ASSERT_TRUE(store_->Create("vol", "r1", kSize).ok());
    auto r = store_->Open("vol", "r1", 1);
    ASSERT_TRUE(r.ok());
    replica_ = *r;
  }
  void TearDown() override {
    replica_.reset();
    store_.reset();
  }

  std::vector<uint8_t> Read(uint64_t offset, uint64_t length, Status* status = nullptr) {
    std::vector<uint8_t> buf(length, 0xee);
    Status s = Wait([&](auto done) { replica_->Read(1, offset, buf, done); });
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.ToString();
    return buf;
  }
  Status Write(uint64_t offset, const std::vector<uint8_t>& data) {
    return Wait([&](auto done) { replica_->Write(1, offset, data, done); });
  }

  TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<ReplicaStore> store_;
  std::shared_ptr<Replica> replica_;
};

TEST_P(DataPathTest, HolesReadAsZeros) {
  EXPECT_EQ(Read(12345, 70000), std::vector<uint8_t>(70000, 0));
}

TEST_P(DataPathTest, WriteReadRoundTripUnaligned) {
  std::vector<uint8_t> data(10000);
  std::iota(data.begin(), data.end(), 0);
  ASSERT_TRUE(Write(4093, data).ok());
  EXPECT_EQ(Read(4093, data.size()), data);
  std::vector<uint8_t> big(kSize / 2, 0x5a);
  ASSERT_TRUE(Write(kSize / 2, big).ok());  // ends exactly at the size
  EXPECT_EQ(Read(kSize / 2, big.size()), big);
  EXPECT_TRUE(Wait([&](auto done) { replica_->Flush(1, done); }).ok());
}

TEST_P(DataPathTest, UnmapPunchesHole) {
  std::vector<uint8_t> data(64 << 10, 0x77);
  ASSERT_TRUE(Write(0, data).ok());
  ASSERT_TRUE(Wait([&](auto done) { replica_->Flush(1, done); }).ok());
  struct stat before {};
  ASSERT_EQ(::stat((dir_.path() + "/r1/layer-1.img").c_str(), &before), 0);
  EXPECT_GT(before.st_blocks, 0);
  ASSERT_TRUE(Wait([&](auto done) { replica_->Unmap(1, 0, data.size(), done); }).ok());
  EXPECT_EQ(Read(0, data.size()), std::vector<uint8_t>(data.size(), 0));
  struct stat after {};
  ASSERT_EQ(::stat((dir_.path() + "/r1/layer-1.img").c_str(), &after), 0);
  EXPECT_LT(after.st_blocks, before.st_blocks);
  EXPECT_EQ(static_cast<uint64_t>(after.st_size), kSize);  // KEEP_SIZE
}

TEST_P(DataPathTest, OutOfRangeIsEinval) {
  Status s;
  Read(kSize - 4096, 8192, &s);
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_NE(s.message().find("read replica r1"), std::string::npos) << s.message();
  Read(kSize + 1, 0, &s);
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_EQ(Write(kSize, std::vector<uint8_t>(1)).sys_errno(), EINVAL);
  EXPECT_EQ(Wait([&](auto done) { replica_->Unmap(1, 0, kSize + 4096, done); }).sys_errno(),
            EINVAL);
}

TEST_P(DataPathTest, ManyConcurrentOps) {
  constexpr int kOps = 300;
  std::vector<std::vector<uint8_t>> bufs(kOps);
  std::vector<std::promise<Status>> done(kOps);
  for (int i = 0; i < kOps; ++i) {
    bufs[i].assign(3000, static_cast<uint8_t>(i));
    replica_->Write(1, static_cast<uint64_t>(i) * 3000, bufs[i],
                    [&done, i](Status s) { done[i].set_value(std::move(s)); });
  }
  for (auto& d : done) ASSERT_TRUE(d.get_future().get().ok());
  for (int i = 0; i < kOps; i += 37)
    EXPECT_EQ(Read(static_cast<uint64_t>(i) * 3000, 3000), bufs[i]);
}

INSTANTIATE_TEST_SUITE_P(Engines, DataPathTest,
                         ::testing::Values(EngineKind::kInline, EngineKind::kThreads,
                                           EngineKind::kUring, EngineKind::kUringWithInlineIo),
                         [](const auto& info) {
                           switch (info.param) {
                             case EngineKind::kInline:
                               return "SyncInline";
                             case EngineKind::kThreads:
                               return "SyncThreads";
                             case EngineKind::kUring:
                               return "IoUring";
                             case EngineKind::kUringWithInlineIo:
                               return "IoUringWithInlineIo";
                           }
                           return "Unknown";
                         });

// Whole-block writes go to the disk past the page cache (O_DIRECT), on the
// engine or, when the caller may block, on the caller's thread; where the
// file system turns O_DIRECT down (EINVAL) they go buffered. Page-cache
// residency of the head after the write tells the two apart.
class DirectWriteTest : public ::testing::TestWithParam<bool> {  // may_block
 protected:
  void Open(ReplicaOptions options) {
    auto uring = UringIoEngine::Create();
    if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
    engine_ = std::move(*uring);
    store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get(), std::move(options));
    ASSERT_TRUE(store_->Create("vol", "r1", kSize).ok());
    auto r = store_->Open("vol", "r1", 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = *r;
  }
  void TearDown() override {
    replica_.reset();
    store_.reset();
  }
  // Pages of [offset, offset+length) of the head in the page cache.
  size_t CachedPages(uint64_t offset, uint64_t length, const std::string& file = "layer-1.img") {
    UniqueFd fd(::open((dir_.path() + "/r1/" + file).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    void* map =
        ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd.get(), static_cast<off_t>(offset));
    EXPECT_NE(map, MAP_FAILED);
    if (map == MAP_FAILED) return SIZE_MAX;
    std::vector<unsigned char> resident(length / 4096);
    EXPECT_EQ(::mincore(map, length, resident.data()), 0);
    ::munmap(map, length);
    return static_cast<size_t>(std::count_if(resident.begin(), resident.end(),
                                             [](unsigned char c) { return (c & 1) != 0; }));
  }
  Status Write(uint64_t offset, std::span<const uint8_t> data) {
    return Wait([&](auto done) { replica_->Write(1, offset, data, done, GetParam()); });
  }
  std::vector<uint8_t> Read(uint64_t offset, uint64_t length) {
    std::vector<uint8_t> buf(length, 0xee);
    Status s = Wait([&](auto done) { replica_->Read(1, offset, buf, done, GetParam()); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return buf;
  }

  TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<ReplicaStore> store_;
  std::shared_ptr<Replica> replica_;
};

TEST_P(DirectWriteTest, WholeBlocksSkipThePageCacheAndReadBack) {
  Open({});
  // A payload that is not page-aligned (as a frame's is), whole blocks.
  std::vector<uint8_t> storage(256 * 1024 + 1);
  std::span<uint8_t> data(storage.data() + 1, 256 * 1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_TRUE(Write(64 * 1024, data).ok());
  EXPECT_EQ(CachedPages(64 * 1024, data.size()), 0u);
  EXPECT_TRUE(std::ranges::equal(Read(64 * 1024, data.size()), data));
  // An unaligned write around it: edges from the chain, then direct too.
  std::vector<uint8_t> small(100, 0x42);
  ASSERT_TRUE(Write(64 * 1024 + 4000, small).ok());
  std::vector<uint8_t> want(data.begin(), data.end());
  std::copy(small.begin(), small.end(), want.begin() + 4000);
  EXPECT_TRUE(std::ranges::equal(Read(64 * 1024, want.size()), want));
  // And it is all still there after a reopen.
  replica_.reset();
  store_.reset();
  store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get());
  auto r = store_->Open("vol", "r1", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  replica_ = *r;
  std::vector<uint8_t> back(want.size());
  ASSERT_TRUE(Wait([&](auto done) { replica_->Read(2, 64 * 1024, back, done); }).ok());
  EXPECT_EQ(back, want);
}

TEST_P(DirectWriteTest, TheHeadAfterASnapshotTakesDirectWritesToo) {
  Open({});
  std::vector<uint8_t> before(64 * 1024, 0x11), after(64 * 1024, 0x22);
  ASSERT_TRUE(Write(0, before).ok());
  ASSERT_TRUE(replica_->Snapshot("s1", "2026-11-22T00:00:00Z", true).ok());
  ASSERT_TRUE(Write(0, after).ok());
  EXPECT_EQ(CachedPages(0, after.size(), "layer-2.img"), 0u);
  EXPECT_EQ(Read(0, after.size()), after);
  std::vector<uint8_t> snap(before.size());
  ASSERT_TRUE(replica_->ReadLayer("s1", 0, snap).ok());
  EXPECT_EQ(snap, before);
}

TEST_P(DirectWriteTest, BufferedWhenDirectIsOff) {
  ReplicaOptions off;
  off.direct_writes = false;
  Open(off);
  std::vector<uint8_t> data(64 * 1024, 0x5c);
  ASSERT_TRUE(Write(0, data).ok());
  EXPECT_EQ(CachedPages(0, data.size()), data.size() / 4096);
  EXPECT_EQ(Read(0, data.size()), data);
}

TEST_P(DirectWriteTest, BufferedWhereDirectIsRefused) {
  std::vector<uint8_t> data(64 * 1024, 0x5c);
  ReplicaOptions refused;
  refused.fail_io = [](std::string_view point) { return point == "direct-write" ? EINVAL : 0; };
  Open(refused);
  ASSERT_TRUE(Write(128 * 1024, data).ok());
  EXPECT_EQ(CachedPages(128 * 1024, data.size()), data.size() / 4096);
  EXPECT_EQ(Read(128 * 1024, data.size()), data);
}

TEST_P(DirectWriteTest, OtherDirectErrorsFailTheWrite) {
  ReplicaOptions io_error;
  io_error.fail_io = [](std::string_view point) { return point == "direct-write" ? EIO : 0; };
  Open(io_error);
  std::vector<uint8_t> data(8192, 1);
  Status s = Write(0, data);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError) << s.ToString();
  EXPECT_EQ(s.sys_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("layer-1.img"), std::string::npos) << s.message();
  EXPECT_EQ(Read(0, data.size()), std::vector<uint8_t>(data.size(), 0));
}

INSTANTIATE_TEST_SUITE_P(Callers, DirectWriteTest, ::testing::Bool(), [](const auto& info) {
  return info.param ? "MayBlock" : "ThroughEngine";
});

TEST(FlushFailureTest, FailedFdatasyncFailsReplicaForGood) {
  TempDir dir;
  FailingSyncEngine engine;
  ReplicaStore store(dir.path(), &engine);
  ASSERT_TRUE(store.Create("vol", "r1", kSize).ok());
  auto r = store.Open("vol", "r1", 1);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(4096, 3);
  ASSERT_TRUE(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).ok());
  engine.fail_sync = true;
  Status flush = Wait([&](auto done) { (*r)->Flush(1, done); });
  EXPECT_EQ(flush.sys_errno(), EIO);
  EXPECT_TRUE((*r)->failed());
  engine.fail_sync = false;  // the disk "recovers": still no success
  EXPECT_EQ(Wait([&](auto done) { (*r)->Flush(1, done); }).sys_errno(), EIO);
  EXPECT_EQ(Wait([&](auto done) { (*r)->Read(1, 0, buf, done); }).sys_errno(), EIO);
  EXPECT_EQ(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).sys_errno(), EIO);
  EXPECT_EQ(engine.sync_calls, 1);  // never retried
  EXPECT_EQ(store.Close("vol", "r1", 1).sys_errno(), EIO);
  EXPECT_EQ(store.Open("vol", "r1", 1).status().sys_errno(), EIO);  // sticky
  ASSERT_TRUE(store.Delete("vol", "r1", 1).ok());
}

}  // namespace
}  // namespace shorthorn::replicad
