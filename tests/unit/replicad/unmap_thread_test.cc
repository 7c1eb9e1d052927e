// UNMAP runs on the replica's unmap thread: the connection's reader goes on
// with the requests behind it, the range lock still orders a connection's
// unmaps and writes of one range, and Close waits for queued unmaps.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/log.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using Clock = std::chrono::steady_clock;
using testing::TempDir;
using testing::Wait;

constexpr uint64_t kK = 1024;

// Every UNMAP sleeps `unmap_delay` on the unmap thread before its syscalls.
class UnmapThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ReplicaOptions options;
    options.fail_io = [this](std::string_view point) {
      if (point == "unmap") std::this_thread::sleep_for(unmap_delay_);
      return 0;
    };
    store_ = std::make_unique<ReplicaStore>(dir_.path(), &engine_, options);
    ASSERT_TRUE(store_->Create("v", "r", 1024 * kK).ok());
    auto r = store_->Open("v", "r", 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = *r;
  }
  void TearDown() override {
    replica_.reset();
    store_.reset();
  }

  std::chrono::milliseconds unmap_delay_{1000};
  TempDir dir_{/*in_memory=*/true};
  SyncIoEngine engine_{0};
  std::unique_ptr<ReplicaStore> store_;
  std::shared_ptr<Replica> replica_;
};

TEST_F(UnmapThreadTest, AReadBehindAnUnmapDoesNotWaitForIt) {
  RequestHandler handler(store_.get());
  ConnectionState conn;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<wire::Op, Clock::time_point>> replies;  // guarded by mu
  std::vector<int32_t> statuses;                                // guarded by mu
  auto send = [&](wire::Op op, uint64_t offset, uint64_t length, std::string payload) {
    Frame f;
    f.payload.assign(payload.begin(), payload.end());
    static uint64_t id = 0;
    f.header = wire::MakeRequest(op, ++id, 1, offset, length, f.payload);
    Status s = handler.Handle(&conn, std::move(f),
                              [&](const wire::Header& h, int32_t st, std::vector<uint8_t>) {
                                std::lock_guard lock(mu);
                                replies.emplace_back(h.op, Clock::now());
                                statuses.push_back(st);
                                cv.notify_all();
                              });
    ASSERT_TRUE(s.ok()) << s.ToString();
  };
  send(wire::Op::kHello, 0, 0, R"({"volume":"v","replica":"r","epoch":1})");
  send(wire::Op::kWrite, 512 * kK, 64 * kK, std::string(64 * kK, 'x'));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(replies.size(), 2u);
    replies.clear();
    statuses.clear();
  }

  Clock::time_point start = Clock::now();
  send(wire::Op::kUnmap, 0, 64 * kK, "");
  auto handled_unmap = Clock::now() - start;
  send(wire::Op::kRead, 512 * kK, 64 * kK, "");
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return replies.size() == 2; }));
  EXPECT_EQ(statuses, (std::vector<int32_t>{0, 0}));
  ASSERT_EQ(replies[0].first, wire::Op::kRead) << "the READ waited for the UNMAP before it";
  EXPECT_EQ(replies[1].first, wire::Op::kUnmap);
  EXPECT_LT(handled_unmap, std::chrono::milliseconds(500));
  EXPECT_LT(replies[0].second - start, std::chrono::milliseconds(500));
  EXPECT_GE(replies[1].second - start, std::chrono::milliseconds(900));
}

TEST_F(UnmapThreadTest, AWriteAfterAnUnmapOfItsRangeAppliesAfterIt) {
  unmap_delay_ = std::chrono::milliseconds(300);
  std::vector<uint8_t> old_data(64 * kK, 1), new_data(64 * kK, 2);
  ASSERT_TRUE(Wait([&](auto done) { replica_->Write(1, 0, old_data, done); }).ok());
  std::atomic<bool> unmapped{false};
  replica_->Unmap(1, 0, 64 * kK, [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    unmapped = true;
  });
  EXPECT_FALSE(unmapped.load());
  // Same blocks: waits for the unmap's range lock, then lands on top.
  ASSERT_TRUE(Wait([&](auto done) { replica_->Write(1, 0, new_data, done); }).ok());
  // The unmap answers after it released the range lock, so on a loaded
  // machine the write may answer first; the data below shows the order.
  for (int i = 0; i < 1000 && !unmapped.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(unmapped.load());
  std::vector<uint8_t> back(64 * kK);
  ASSERT_TRUE(Wait([&](auto done) { replica_->Read(1, 0, back, done); }).ok());
  EXPECT_EQ(back, new_data);
}

TEST_F(UnmapThreadTest, CloseWaitsForQueuedUnmaps) {
  unmap_delay_ = std::chrono::milliseconds(100);
  std::vector<uint8_t> data(256 * kK, 7);
  ASSERT_TRUE(Wait([&](auto done) { replica_->Write(1, 0, data, done); }).ok());
  std::atomic<int> answered{0};
  for (int i = 0; i < 4; ++i) {
    replica_->Unmap(1, i * 64 * kK, 64 * kK, [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++answered;
    });
  }
  EXPECT_LT(answered.load(), 4);
  ASSERT_TRUE(store_->Close("v", "r", 1).ok());
  // Each unmap ended before Close returned; its callback runs just after
  // its end, so it may still be on its way.
  for (int i = 0; i < 100 && answered.load() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(answered.load(), 4);
  replica_.reset();
  auto r = store_->Open("v", "r", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<uint8_t> back(256 * kK, 0xee);
  ASSERT_TRUE(Wait([&](auto done) { (*r)->Read(2, 0, back, done); }).ok());
  EXPECT_EQ(back, std::vector<uint8_t>(256 * kK, 0));
}

}  // namespace
}  // namespace shorthorn::replicad
