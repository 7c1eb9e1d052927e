// SubmitBatch with the io_uring engine: held submissions reach the kernel
// when the outermost batch closes, and a full engine hands them over before
// it waits for a slot.
#include "replicad/io/submit_batch.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "replicad/io/uring_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;

class SubmitBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/file";
    fd_ = UniqueFd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd_.valid());
    ASSERT_EQ(::ftruncate(fd_.get(), 1 << 20), 0);
  }
  std::unique_ptr<UringIoEngine> MakeEngine(unsigned entries = 256) {
    auto uring = UringIoEngine::Create(entries);
    if (!uring.ok()) return nullptr;
    return std::move(*uring);
  }
  // The byte at `offset` as another reader of the file sees it.
  char ByteAt(uint64_t offset) {
    char c = 0;
    EXPECT_EQ(::pread(fd_.get(), &c, 1, static_cast<off_t>(offset)), 1);
    return c;
  }
  void WaitFor(const std::atomic<int>& done, int want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (done.load() < want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(done.load(), want);
  }

  // 64 block writes in one batch, block i filled with first + i % 26: all
  // land, none fails.
  void WriteManyInOneBatch(UringIoEngine& engine, char first) {
    constexpr int kWrites = 64;
    std::vector<std::vector<uint8_t>> data;
    for (int i = 0; i < kWrites; ++i) data.emplace_back(4096, static_cast<uint8_t>(first + i % 26));
    std::atomic<int> done{0}, failed{0};
    {
      SubmitBatch batch;
      for (int i = 0; i < kWrites; ++i) {
        engine.Submit({IoOp::kWrite, fd_.get(), data[i].data(), uint64_t(i) * 4096, 4096},
                      [&](int64_t r) {
                        if (r != 4096) ++failed;
                        ++done;
                      });
      }
    }
    WaitFor(done, kWrites);
    EXPECT_EQ(failed.load(), 0);
    for (int i = 0; i < kWrites; ++i) EXPECT_EQ(ByteAt(uint64_t(i) * 4096), first + i % 26) << i;
  }

  TempDir dir_;
  std::string path_;
  UniqueFd fd_;
};

TEST_F(SubmitBatchTest, MoreHeldWritesThanTheSubmissionQueueHoldsAllLand) {
  auto engine = MakeEngine(4);  // 4 SQ entries, 7 slots
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  WriteManyInOneBatch(*engine, 'a');
}

TEST_F(SubmitBatchTest, HeldWritesReachTheFileWhenTheOutermostBatchCloses) {
  auto engine = MakeEngine();
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  std::vector<uint8_t> data(4096, 'x');
  std::atomic<int> done{0};
  std::atomic<int64_t> result{1};
  {
    SubmitBatch outer;
    {
      SubmitBatch inner;
      EXPECT_TRUE(SubmitBatch::Active());
      engine->Submit({IoOp::kWrite, fd_.get(), data.data(), 8192, data.size()}, [&](int64_t r) {
        result = r;
        ++done;
      });
      EXPECT_TRUE(SubmitBatch::Holding());
    }
    // The inner close does not kick; the kernel has not seen the write.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(done.load(), 0);
    EXPECT_EQ(ByteAt(8192), 0);
    EXPECT_TRUE(SubmitBatch::Holding());
  }
  EXPECT_FALSE(SubmitBatch::Active());
  EXPECT_FALSE(SubmitBatch::Holding());
  WaitFor(done, 1);
  EXPECT_EQ(result.load(), 4096);
  EXPECT_EQ(ByteAt(8192), 'x');
}

TEST_F(SubmitBatchTest, KickHandsHeldWritesOverInsideTheBatch) {
  auto engine = MakeEngine();
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  std::vector<uint8_t> data(4096, 'k');
  std::atomic<int> done{0};
  SubmitBatch batch;
  engine->Submit({IoOp::kWrite, fd_.get(), data.data(), 0, data.size()}, [&](int64_t) { ++done; });
  SubmitBatch::Kick();
  EXPECT_FALSE(SubmitBatch::Holding());
  WaitFor(done, 1);
  EXPECT_EQ(ByteAt(0), 'k');
}

// Outside a batch nothing is held: the write completes on its own.
TEST_F(SubmitBatchTest, WithoutABatchWritesGoAtOnce) {
  auto engine = MakeEngine();
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  std::vector<uint8_t> data(4096, 'n');
  std::atomic<int> done{0};
  engine->Submit({IoOp::kWrite, fd_.get(), data.data(), 4096, data.size()},
                 [&](int64_t) { ++done; });
  EXPECT_FALSE(SubmitBatch::Holding());
  WaitFor(done, 1);
  EXPECT_EQ(ByteAt(4096), 'n');
}

// The smallest engine (one SQ entry, one slot) and many held writes: a
// Submit that finds no free slot must hand the held one to the kernel
// before it waits, or it would wait forever for a slot only the kernel can
// free. (With a larger ring the full SQ is submitted first: also tested.)
TEST_F(SubmitBatchTest, AFullEngineHandsHeldWritesOverBeforeItWaits) {
  auto engine = MakeEngine(1);
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  WriteManyInOneBatch(*engine, 'A');
}

// When the kernel refuses io_uring_enter, the held requests fail with its
// error instead of waiting forever in the ring, nothing reaches the file,
// and the engine goes on serving.
TEST_F(SubmitBatchTest, ARefusedEnterFailsTheHeldRequests) {
  auto engine = MakeEngine();
  if (engine == nullptr) GTEST_SKIP() << "io_uring unavailable";
  std::vector<uint8_t> data(4096, 'f');
  std::atomic<int> done{0}, eio{0};
  {
    SubmitBatch batch;
    for (uint64_t i = 0; i < 3; ++i) {
      engine->Submit({IoOp::kWrite, fd_.get(), data.data(), 16384 + i * 4096, 4096},
                     [&](int64_t r) {
                       if (r == -EIO) ++eio;
                       ++done;
                     });
    }
    EXPECT_EQ(engine->held_total(), 3u);
    engine->FailNextEnterForTest(EIO);
  }
  EXPECT_EQ(done.load(), 3);  // on this thread, when the batch closed
  EXPECT_EQ(eio.load(), 3);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(ByteAt(16384 + i * 4096), 0) << i;
  // The voided SQEs go with the next enter, unseen; new requests work.
  std::atomic<int> later{0};
  std::atomic<int64_t> result{0};
  engine->Submit({IoOp::kWrite, fd_.get(), data.data(), 16384, 4096}, [&](int64_t r) {
    result = r;
    ++later;
  });
  WaitFor(later, 1);
  EXPECT_EQ(result.load(), 4096);
  EXPECT_EQ(ByteAt(16384), 'f');
  EXPECT_EQ(ByteAt(20480), 0);
}

}  // namespace
}  // namespace shorthorn::replicad
