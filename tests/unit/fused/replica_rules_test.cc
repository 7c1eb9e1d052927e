// The attach and placement rules (fused/core/replica_rules.h) and the
// generation owner (GenerationStore::Bump), on tables of cases.
#include "fused/core/replica_rules.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "fused/core/generation_store.h"

namespace shorthorn::fused {
namespace {

using Names = std::vector<std::string>;

AttachCandidate Up(std::string name, uint64_t generation, bool clean = true, bool local = false) {
  AttachCandidate c;
  c.name = name;
  c.address = "10.0.0." + std::to_string(name.back() - '0') + ":9500";
  c.reachable = true;
  c.generation = generation;
  c.clean = clean;
  c.local = local;
  return c;
}
AttachCandidate Down(std::string name) {
  AttachCandidate c;
  c.name = name;
  c.address = "10.0.0." + std::to_string(name.back() - '0') + ":9500";
  c.error = "connection refused";
  return c;
}
AttachCandidate Rebuilding(std::string name, uint64_t generation) {
  AttachCandidate c = Up(name, generation);
  c.rebuilding = true;
  return c;
}

struct AttachCase {
  const char* what;
  uint64_t expected;
  bool salvage;
  std::vector<AttachCandidate> candidates;
  bool ok;
  Names current;
  uint64_t generation;
  std::string authority;
  std::string salvaged;
  std::string error_has;  // a piece of the error message
};

TEST(AttachRuleTest, Table) {
  const std::vector<AttachCase> cases = {
      {"all current and clean",
       5,
       false,
       {Up("r1", 5), Up("r2", 5), Up("r3", 5)},
       true,
       {"r1", "r2", "r3"},
       5,
       "",
       "",
       ""},
      {"a newer generation than recorded wins",
       5,
       false,
       {Up("r1", 6), Up("r2", 5)},
       true,
       {"r1"},
       6,
       "",
       "",
       ""},
      {"a stale replica is left out",
       5,
       false,
       {Up("r1", 4), Up("r2", 5)},
       true,
       {"r2"},
       5,
       "",
       "",
       ""},
      {"unreachable ones are left out",
       5,
       false,
       {Down("r1"), Up("r2", 5)},
       true,
       {"r2"},
       5,
       "",
       "",
       ""},
      {"half rebuilt is never current, even with the highest generation",
       5,
       false,
       {Rebuilding("r1", 9), Up("r2", 5)},
       true,
       {"r2"},
       5,
       "",
       "",
       ""},
      {"nothing provably current: error naming each",
       5,
       false,
       {Up("r1", 4), Down("r2")},
       false,
       {},
       0,
       "",
       "",
       "replica r2 on 10.0.0.2:9500: connection refused"},
      {"the error suggests salvage with the best one",
       5,
       false,
       {Up("r1", 3), Up("r2", 4)},
       false,
       {},
       0,
       "",
       "",
       "salvage=true to use replica r2"},
      {"salvage takes the best reachable one",
       5,
       true,
       {Up("r1", 3), Up("r2", 4), Down("r3")},
       true,
       {"r2"},
       4,
       "",
       "r2",
       ""},
      {"salvage never takes a half rebuilt one",
       5,
       true,
       {Rebuilding("r1", 4)},
       false,
       {},
       0,
       "",
       "",
       "half rebuilt"},
      {"no replicas at all", 0, true, {}, false, {}, 0, "", "", "no replicas"},
      {"one unclean current replica needs no resync",
       5,
       false,
       {Up("r1", 5, false), Up("r2", 4)},
       true,
       {"r1"},
       5,
       "",
       "",
       ""},
      {"unclean ones: resync from a clean one",
       5,
       false,
       {Up("r1", 5, false, true), Up("r2", 5, true), Up("r3", 5, false)},
       true,
       {"r1", "r2", "r3"},
       5,
       "r2",
       "",
       ""},
      {"all unclean: resync from a local one",
       5,
       false,
       {Up("r1", 5, false), Up("r2", 5, false, true)},
       true,
       {"r1", "r2"},
       5,
       "r2",
       "",
       ""},
      {"all unclean, none local: the first",
       5,
       false,
       {Up("r1", 5, false), Up("r2", 5, false)},
       true,
       {"r1", "r2"},
       5,
       "r1",
       "",
       ""},
      {"an unclean stale one does not force a resync",
       5,
       false,
       {Up("r1", 5), Up("r2", 5), Up("r3", 4, false)},
       true,
       {"r1", "r2"},
       5,
       "",
       "",
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto plan = PlanAttach(c.expected, c.salvage, c.candidates);
    ASSERT_EQ(plan.ok(), c.ok) << (plan.ok() ? "ok" : plan.status().ToString());
    if (!c.ok) {
      EXPECT_NE(plan.status().message().find(c.error_has), std::string::npos)
          << plan.status().message();
      continue;
    }
    EXPECT_EQ(plan->current, c.current);
    EXPECT_EQ(plan->generation, c.generation);
    EXPECT_EQ(plan->authority, c.authority);
    EXPECT_EQ(plan->salvaged, c.salvaged);
    EXPECT_EQ(plan->current.size() + plan->left_out.size(), c.candidates.size());
  }
}

TEST(PlacementRuleTest, Table) {
  struct Case {
    const char* what;
    Names failed, configured, usable, want;
  };
  const std::vector<Case> cases = {
      {"failed places first, then configured", {"b:1"}, {"a:1", "c:1"}, {"a:1"}, {"b:1", "c:1"}},
      {"never where a usable replica is", {"a:1"}, {"a:1", "b:1"}, {"a:1"}, {"b:1"}},
      {"never twice", {"b:1", "b:1"}, {"b:1", "c:1", "c:1"}, {}, {"b:1", "c:1"}},
      {"nothing left", {}, {"a:1"}, {"a:1"}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(PlaceReplacement(c.failed, c.configured, c.usable), c.want);
  }
}

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
