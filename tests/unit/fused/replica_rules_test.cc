// The attach, placement and replacement rules (fused/core/replica_rules.h),
// on tables of cases. The robustness and scrub rules are in
// replica_rules_scrub_test.cc, GenerationStore in generation_store_test.cc.
#include "fused/core/replica_rules.h"

#include <gtest/gtest.h>

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

constexpr uint64_t kGiB = 1ull << 30;

// A reachable replicad with 100 GiB of which `free` GiB are free and
// `provisioned` GiB provisioned.
PlacementCandidate Rd(const std::string& address, const std::string& host, uint64_t free = 90,
                      uint64_t provisioned = 0, std::vector<std::string> tags = {}) {
  PlacementCandidate c;
  c.address = address;
  c.reachable = true;
  c.host_id = host;
  c.tags = std::move(tags);
  c.total_bytes = 100 * kGiB;
  c.free_bytes = free * kGiB;
  c.provisioned_bytes = provisioned * kGiB;
  return c;
}

PlacementCandidate Unreachable(const std::string& address) {
  PlacementCandidate c;
  c.address = address;
  c.error = "connection refused";
  return c;
}

PlacementCandidate Excluded(PlacementCandidate c, const std::string& why) {
  c.excluded = why;
  return c;
}

TEST(PlacementRuleTest, Table) {
  struct Case {
    const char* what;
    PlacementRules rules;
    PlacementRequest request;
    std::vector<PlacementCandidate> candidates;
    Names want;               // chosen; empty: the placement fails
    std::string error_has{};  // when it fails
    size_t warnings = 0;
  };
  const PlacementRules hard;
  PlacementRules soft;
  soft.host = AntiAffinity::kSoft;
  PlacementRules zone_hard;
  zone_hard.zone = AntiAffinity::kHard;
  PlacementRules zone_off;
  zone_off.zone = AntiAffinity::kOff;
  PlacementRules thin200;
  thin200.over_provisioning_percent = 200;
  const auto req = [](size_t count, uint64_t size_gib = 1) {
    PlacementRequest r;
    r.count = count;
    r.size = size_gib * kGiB;
    return r;
  };
  auto with = [](PlacementRequest r, auto&& change) {
    change(r);
    return r;
  };
  const std::vector<Case> cases = {
      {"three hosts, three replicas, in the order given",
       hard,
       req(3),
       {Rd("a:1", "h1"), Rd("b:1", "h2"), Rd("c:1", "h3")},
       {"a:1", "b:1", "c:1"}},
      {"same host refused under the hard rule",
       hard,
       req(2),
       {Rd("a:1", "h1"), Rd("b:1", "h1"), Rd("c:1", "h2")},
       {"a:1", "c:1"}},
      {"same host only: the hard rule fails naming the host",
       hard,
       req(2),
       {Rd("a:1", "h1"), Rd("b:1", "h1")},
       {},
       "b:1: on host h1 with the new replica on a:1 (replica-anti-affinity hard)"},
      {"soft rule: a shared host when nothing else fits, with a warning",
       soft,
       req(2),
       {Rd("a:1", "h1"), Rd("b:1", "h1")},
       {"a:1", "b:1"},
       "",
       1},
      {"soft rule: a distinct host is still preferred",
       soft,
       req(2),
       {Rd("a:1", "h1"), Rd("b:1", "h1"), Rd("c:1", "h2")},
       {"a:1", "c:1"}},
      {"kept replicas count: the replacement goes to another host",
       hard,
       with(req(1),
            [](auto& r) {
              r.kept = {{"a:1", "h1", ""}};
            }),
       {Excluded(Rd("a:1", "h1"), "holds replica v-1 of this volume"), Rd("b:1", "h1"),
        Rd("c:1", "h2")},
       {"c:1"}},
      {"unreachable skipped with its error",
       hard,
       req(2),
       {Unreachable("a:1"), Rd("b:1", "h2")},
       {},
       "a:1: unreachable: connection refused"},
      {"full replicad skipped: under the reserve",
       hard,
       req(1),
       {Rd("a:1", "h1", /*free=*/5), Rd("b:1", "h2")},
       {"b:1"}},
      {"full replicad refused with the figures",
       hard,
       req(1),
       {Rd("a:1", "h1", /*free=*/5)},
       {},
       "a:1: 5 GiB free of 100 GiB, under the reserve of 10% (10 GiB)"},
      {"a rebuild refused with the data it needs",
       hard,
       with(req(1), [](auto& r) { r.initial_bytes = 20 * kGiB; }),
       {Rd("a:1", "h1", /*free=*/25)},
       {},
       "a:1: 25 GiB free of 100 GiB, needs 20 GiB for the replica's data plus the reserve "
       "of 10% (10 GiB)"},
      {"a rebuild needs room for the data it copies",
       hard,
       with(req(1), [](auto& r) { r.initial_bytes = 20 * kGiB; }),
       {Rd("a:1", "h1", /*free=*/25), Rd("b:1", "h2", /*free=*/35)},
       {"b:1"}},
      {"over-provisioning: sizes beyond 100% of the space less the reserve",
       hard,
       req(1, 50),
       {Rd("a:1", "h1", 90, /*provisioned=*/50), Rd("b:1", "h2", 90, 10)},
       {"b:1"}},
      {"over-provisioning refused with the figures",
       hard,
       req(1, 50),
       {Rd("a:1", "h1", 90, 50)},
       {},
       "a:1: 50 GiB provisioned + 50 GiB would exceed 90 GiB (over-provisioning 100%"},
      {"over-provisioning 200% allows it", thin200, req(1, 50), {Rd("a:1", "h1", 90, 50)}, {"a:1"}},
      {"the least provisioned share first",
       hard,
       req(2),
       {Rd("a:1", "h1", 90, 40), Rd("b:1", "h2", 90, 10), Rd("c:1", "h3", 90, 20)},
       {"b:1", "c:1"}},
      {"preferred before the least provisioned",
       hard,
       with(req(1), [](auto& r) { r.preferred = {"a:1"}; }),
       {Rd("a:1", "h1", 90, 40), Rd("b:1", "h2")},
       {"a:1"}},
      {"required tags",
       hard,
       with(req(2), [](auto& r) { r.required_tags = {"ssd"}; }),
       {Rd("a:1", "h1", 90, 0, {"hdd"}), Rd("b:1", "h2", 90, 0, {"ssd", "zone=x"}),
        Rd("c:1", "h3", 90, 0, {"ssd"})},
       {"b:1", "c:1"}},
      {"required tag missing everywhere",
       hard,
       with(req(1),
            [](auto& r) {
              r.required_tags = {"ssd", "zone=a"};
            }),
       {Rd("a:1", "h1", 90, 0, {"ssd"})},
       {},
       "a:1: lacks tag(s) zone=a"},
      {"zones: soft prefers another zone",
       hard,
       req(2),
       {Rd("a:1", "h1", 90, 0, {"zone=z1"}), Rd("b:1", "h2", 90, 0, {"zone=z1"}),
        Rd("c:1", "h3", 90, 0, {"zone=z2"})},
       {"a:1", "c:1"}},
      {"zones: soft takes the same zone with a warning when it must",
       hard,
       req(2),
       {Rd("a:1", "h1", 90, 0, {"zone=z1"}), Rd("b:1", "h2", 90, 0, {"zone=z1"})},
       {"a:1", "b:1"},
       "",
       1},
      {"zones: hard refuses the same zone",
       zone_hard,
       req(2),
       {Rd("a:1", "h1", 90, 0, {"zone=z1"}), Rd("b:1", "h2", 90, 0, {"zone=z1"})},
       {},
       "b:1: in zone z1 with the new replica on a:1 (zone-anti-affinity hard)"},
      {"zones: off ignores them",
       zone_off,
       req(2),
       {Rd("a:1", "h1", 90, 0, {"zone=z1"}), Rd("b:1", "h2", 90, 0, {"zone=z1"})},
       {"a:1", "b:1"},
       "",
       0},
      {"fixed addresses are checked too",
       hard,
       with(req(2),
            [](auto& r) {
              r.fixed = {"a:1", "b:1"};
            }),
       {Rd("a:1", "h1"), Rd("b:1", "h1"), Rd("c:1", "h2")},
       {},
       "replicad b:1 cannot take a replica: on host h1"},
      {"fixed first, then filled up",
       hard,
       with(req(2), [](auto& r) { r.fixed = {"c:1"}; }),
       {Rd("a:1", "h1"), Rd("b:1", "h2"), Rd("c:1", "h3")},
       {"c:1", "a:1"}},
      {"draining excluded",
       hard,
       req(1),
       {Excluded(Rd("a:1", "h1"), "draining"), Rd("b:1", "h2")},
       {"b:1"}},
      {"every candidate taken and still short",
       hard,
       req(3),
       {Rd("a:1", "h1"), Rd("b:1", "h2")},
       {},
       "(placed on a:1 b:1): only 2 replicad(s) are known"},
      {"no candidates at all", hard, req(1), {}, {}, "no replicad is configured or named"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto placed = PlaceReplicas(c.rules, c.request, c.candidates);
    if (c.want.empty()) {
      ASSERT_FALSE(placed.ok()) << "placed on " << testing::PrintToString(placed->chosen);
      EXPECT_NE(placed.status().message().find(c.error_has), std::string::npos)
          << placed.status().message();
      continue;
    }
    ASSERT_TRUE(placed.ok()) << placed.status().ToString();
    EXPECT_EQ(placed->chosen, c.want);
    EXPECT_EQ(placed->warnings.size(), c.warnings) << testing::PrintToString(placed->warnings);
  }
}

TEST(PlacementRuleTest, FailureListsEveryCandidate) {
  PlacementRules rules;
  PlacementRequest request;
  request.count = 3;
  request.size = kGiB;
  auto placed = PlaceReplicas(
      rules, request,
      {Rd("a:1", "h1"), Rd("b:1", "h1"), Unreachable("c:1"), Rd("d:1", "h2", /*free=*/1)});
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.status().kind(), ErrorKind::kUnavailable);
  const std::string& m = placed.status().message();
  for (const char* part :
       {"cannot place 3 replica(s), 2 more needed (placed on a:1)", "b:1: on host h1",
        "c:1: unreachable: connection refused", "d:1: 1 GiB free"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part << " in " << m;
  }
}

TEST(PlacementRuleTest, HugeSizesDoNotOverflow) {
  PlacementRules rules;
  rules.over_provisioning_percent = 1000;
  PlacementRequest request;
  request.size = UINT64_MAX;
  PlacementCandidate c = Rd("a:1", "h1");
  c.total_bytes = UINT64_MAX;
  c.free_bytes = UINT64_MAX;
  c.provisioned_bytes = UINT64_MAX - 1;
  auto placed = PlaceReplicas(rules, request, {c});
  EXPECT_TRUE(placed.ok()) << placed.status().ToString();  // 1000% of ~2^64 saturates
  rules.over_provisioning_percent = 100;
  placed = PlaceReplicas(rules, request, {c});
  EXPECT_FALSE(placed.ok());
}

TEST(ReplacementRuleTest, WaitsOnlyForReplicasThatCanCatchUp) {
  using std::chrono::seconds;
  const auto t0 = std::chrono::steady_clock::time_point{} + seconds(1000);
  EXPECT_FALSE(ReplacementDue(true, t0, t0 + seconds(599), seconds(600), false));
  EXPECT_TRUE(ReplacementDue(true, t0, t0 + seconds(600), seconds(600), false));
  EXPECT_TRUE(ReplacementDue(true, t0, t0 + seconds(1), seconds(600), true));
  EXPECT_TRUE(ReplacementDue(false, t0, t0, seconds(600), false));
  EXPECT_TRUE(ReplacementDue(true, t0, t0, seconds(0), false));
}

}  // namespace
}  // namespace shorthorn::fused
