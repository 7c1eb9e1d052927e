// The generation owner (fused/core/generation_store.h): values on disk and
// GenerationStore::Bump serializing membership changes per volume.
#include "fused/core/generation_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <thread>

namespace shorthorn::fused {
namespace {

class GenerationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/shorthorn-generations-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    store_ = std::make_unique<GenerationStore>(dir_);
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
  std::unique_ptr<GenerationStore> store_;
};

TEST_F(GenerationStoreTest, MissingIsZeroGarbageIsAnError) {
  auto g = store_->Get("v");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 0u);
  ASSERT_TRUE(store_->Raise("v", 7).ok());
  EXPECT_EQ(*store_->Get("v"), 7u);
  ASSERT_TRUE(store_->Raise("v", 3).ok());  // never lowers
  EXPECT_EQ(*store_->Get("v"), 7u);
  std::ofstream(dir_ + "/v") << "7x\n";
  auto bad = store_->Get("v");
  ASSERT_FALSE(bad.ok());  // not 0: that would trust every replica
  EXPECT_NE(bad.status().message().find("does not hold a number"), std::string::npos);
}

// Issue 15, hole 4: two membership changes at once (a replica failing while
// a catch-up ends) must not both compute recorded+1 from their own member
// lists. The second asks for its members only after the first recorded its
// generation, and gets the next one.
TEST_F(GenerationStoreTest, BumpsAreSerializedPerVolume) {
  ASSERT_TRUE(store_->Raise("v", 4).ok());
  std::promise<void> first_applying, release_first;
  auto release = release_first.get_future().share();
  std::atomic<bool> first_done{false}, second_saw_first_done{false};
  std::vector<std::pair<std::vector<std::string>, uint64_t>> applied;
  std::mutex applied_mu;
  std::thread first([&] {
    auto g = store_->Bump(
        "v",
        [] {
          return std::vector<std::string>{"a", "b", "x"};
        },
        [&](const std::vector<std::string>& m, uint64_t gen) {
          first_applying.set_value();
          release.wait();
          std::lock_guard lock(applied_mu);
          applied.emplace_back(m, gen);
          first_done = true;
          return Status::Ok();
        });
    EXPECT_EQ(*g, 5u);
  });
  first_applying.get_future().wait();
  std::thread second([&] {
    auto g = store_->Bump(
        "v",
        [&] {
          second_saw_first_done = first_done.load();
          return std::vector<std::string>{"a", "b"};  // x failed meanwhile
        },
        [&](const std::vector<std::string>& m, uint64_t gen) {
          std::lock_guard lock(applied_mu);
          applied.emplace_back(m, gen);
          return Status::Ok();
        });
    EXPECT_EQ(*g, 6u);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  release_first.set_value();
  first.join();
  second.join();
  EXPECT_TRUE(second_saw_first_done);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].second, 5u);
  EXPECT_EQ(applied[1].second, 6u);  // x holds 5, the store 6: x is stale
  EXPECT_EQ(*store_->Get("v"), 6u);
  // Other volumes do not wait for v.
  auto other = store_->Bump(
      "w", [] { return std::vector<std::string>{"a"}; },
      [](const std::vector<std::string>&, uint64_t) { return Status::Ok(); });
  EXPECT_EQ(*other, 1u);
}

TEST_F(GenerationStoreTest, AFailedApplyRecordsNothing) {
  auto g = store_->Bump(
      "v", [] { return std::vector<std::string>{"a"}; },
      [](const std::vector<std::string>&, uint64_t) {
        return Status(ErrorKind::kUnavailable, "no replica answered");
      });
  EXPECT_FALSE(g.ok());
  EXPECT_EQ(*store_->Get("v"), 0u);
}

}  // namespace
}  // namespace shorthorn::fused
