// The robustness, shrink and scrub rules (fused/core/replica_rules.h) on
// tables of cases: what Robustness an attached volume shows, which replicas
// SetReplicaCount drops, and which hash a scrub holds a chunk to.
#include <gtest/gtest.h>

#include "fused/core/replica_rules.h"

namespace shorthorn::fused {
namespace {

TEST(RobustnessRuleTest, Table) {
  struct Case {
    size_t rw;
    uint32_t count;
    std::string want;
  };
  const Case cases[] = {
      {0, 1, "faulted"},  {0, 3, "faulted"}, {1, 1, "healthy"}, {1, 2, "degraded"},
      {2, 3, "degraded"}, {3, 3, "healthy"}, {4, 3, "healthy"},  // more while a rebuild ends
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RobustnessOf(c.rw, c.count), c.want) << c.rw << " RW of " << c.count;
  }
}

TEST(ShrinkRuleTest, Table) {
  using Mode = ShrinkMember::Mode;
  const ShrinkMember err{"e", Mode::kErr, false}, wo{"w", Mode::kWo, false},
      remote{"r", Mode::kRw, false}, remote2{"r2", Mode::kRw, false}, local{"l", Mode::kRw, true},
      unknown{"u", Mode::kUnknown, true};
  struct Case {
    const char* what;
    std::vector<ShrinkMember> members;
    uint32_t count;
    bool attached;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"nothing to drop", {remote, local}, 2, true, {}},
      {"more wanted than there are", {remote}, 3, true, {}},
      {"ERR before WO before remote RW before local RW",
       {local, remote, wo, err},
       1,
       true,
       {"e", "w", "r"}},
      {"unknown counts as ERR; ties keep the order given",
       {remote, unknown, err, remote2},
       2,
       true,
       {"u", "e"}},
      {"never the last RW replica of an attached volume", {local, err}, 0, true, {"e"}},
      {"the last of two RW stays", {remote, local}, 0, true, {"r"}},
      {"detached: the order given, down to the count",
       {{"a", Mode::kUnknown, false}, {"b", Mode::kUnknown, true}, {"c", Mode::kUnknown, false}},
       1,
       false,
       {"a", "b"}},
      {"detached: no RW guard", {remote, local}, 0, false, {"r", "l"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ReplicasToDrop(c.members, c.count, c.attached), c.want) << c.what;
  }
}

TEST(ScrubReferenceRuleTest, Table) {
  struct Case {
    const char* what;
    std::map<std::string, uint64_t> hashes;
    std::string preferred;
    bool agreed;
    bool majority;
    uint64_t hash;
  };
  const Case cases[] = {
      {"all equal", {{"a", 7}, {"b", 7}, {"c", 7}}, "a", true, false, 7},
      {"two against one", {{"a", 1}, {"b", 7}, {"c", 7}}, "a", false, true, 7},
      {"the preferred one is outvoted", {{"a", 7}, {"b", 1}, {"c", 1}}, "a", false, true, 1},
      {"two replicas differ: the preferred one", {{"a", 1}, {"b", 2}}, "b", false, false, 2},
      {"no majority of three: the preferred one",
       {{"a", 1}, {"b", 2}, {"c", 3}},
       "c",
       false,
       false,
       3},
      {"half is no majority", {{"a", 1}, {"b", 1}, {"c", 2}, {"d", 2}}, "c", false, false, 2},
      {"preferred gave none: the first", {{"a", 5}, {"b", 6}}, "gone", false, false, 5},
      {"three of four", {{"a", 4}, {"b", 4}, {"c", 4}, {"d", 9}}, "d", false, true, 4},
  };
  for (const Case& c : cases) {
    ChunkReference ref = ReferenceHash(c.hashes, c.preferred);
    EXPECT_EQ(ref.agreed, c.agreed) << c.what;
    EXPECT_EQ(ref.majority, c.majority) << c.what;
    EXPECT_EQ(ref.hash, c.hash) << c.what;
  }
}

}  // namespace
}  // namespace shorthorn::fused
