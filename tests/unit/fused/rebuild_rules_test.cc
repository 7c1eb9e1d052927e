// The rebuild loop's rules (fused/core/rebuild_rules.h) on tables of cases:
// whether an attached volume is short of replicas and may get a new one,
// and which replica a finished full rebuild replaces.
#include "fused/core/rebuild_rules.h"

#include <gtest/gtest.h>

namespace shorthorn::fused {
namespace {

using Names = std::vector<std::string>;
using Mode = RebuildMember::Mode;
using std::chrono::seconds;

const auto kNow = std::chrono::steady_clock::time_point(seconds(100000));
constexpr seconds kWait(600);

std::string AddressOf(const std::string& name) { return "10.0.0." + name + ":9500"; }

RebuildMember Up(const std::string& name, Mode mode = Mode::kRw, bool draining = false) {
  RebuildMember m;
  m.name = name;
  m.mode = mode;
  m.on_draining = draining;
  m.addresses = {AddressOf(name)};
  return m;
}

// An ERR replica that failed `ago` before kNow.
RebuildMember Failed(const std::string& name, bool can_catch_up, seconds ago = seconds(10)) {
  RebuildMember m = Up(name, Mode::kErr);
  m.can_catch_up = can_catch_up;
  m.failed_at = kNow - ago;
  return m;
}

TEST(RebuildNeedRuleTest, Table) {
  RebuildMember two_places = Failed("b", true);
  two_places.addresses = {AddressOf("b"), AddressOf("x")};
  RebuildMember nowhere = Failed("b", true);
  nowhere.addresses.clear();
  struct Case {
    const char* what;
    std::vector<RebuildMember> members;
    uint32_t count;
    bool forced;
    bool short_of_replicas;
    bool allow_full;
    Names probe;
    bool clear_forced;
  };
  const Case cases[] = {
      {"no replica at all: nothing", {}, 2, false, false, false, {}, false},
      {"no RW replica: nothing, not even clearing forced",
       {Up("a", Mode::kWo), Up("b", Mode::kWo), Failed("c", false)},
       2,
       true,
       false,
       false,
       {},
       false},
      {"healthy", {Up("a"), Up("b")}, 2, false, false, false, {}, true},
      {"more than the count (a rebuild ending)",
       {Up("a"), Up("b"), Up("c")},
       2,
       true,
       false,
       false,
       {},
       true},
      {"WO counts as usable", {Up("a"), Up("b", Mode::kWo)}, 2, false, false, false, {}, true},
      {"enough, one failed that could catch up: left alone",
       {Up("a"), Up("b"), Failed("c", true)},
       2,
       false,
       false,
       false,
       {},
       true},
      {"enough, but one leaving a draining replicad: drop it",
       {Up("a"), Up("b"), Up("c", Mode::kRw, true)},
       2,
       false,
       true,
       true,
       {},
       true},
      {"WO on a draining replicad is leaving too",
       {Up("a"), Up("b"), Up("c", Mode::kWo, true)},
       2,
       false,
       true,
       true,
       {},
       true},
      {"short, the failed one cannot catch up: full at once",
       {Up("a"), Failed("b", false)},
       2,
       false,
       true,
       true,
       {},
       false},
      {"short, the failed one can catch up and is within the wait: probe it",
       {Up("a"), Failed("b", true)},
       2,
       false,
       true,
       false,
       {AddressOf("b")},
       false},
      {"the wait is over: full, no probe",
       {Up("a"), Failed("b", true, kWait)},
       2,
       false,
       true,
       true,
       {},
       false},
      {"one second short of the wait: still waiting",
       {Up("a"), Failed("b", true, kWait - seconds(1))},
       2,
       false,
       true,
       false,
       {AddressOf("b")},
       false},
      {"forced: full without waiting",
       {Up("a"), Failed("b", true)},
       2,
       true,
       true,
       true,
       {},
       false},
      {"two missing, one waiting: full",
       {Up("a"), Failed("b", true), Failed("c", false)},
       3,
       false,
       true,
       true,
       {},
       false},
      {"two missing, both waiting: probe both in engine order",
       {Up("a"), Failed("c", true), Failed("b", true)},
       3,
       false,
       true,
       false,
       {AddressOf("c"), AddressOf("b")},
       false},
      {"two missing, one failed that can catch up and no other: full",
       {Up("a"), Failed("b", true)},
       3,
       false,
       true,
       true,
       {},
       false},
      {"a draining RW does not count as usable",
       {Up("a"), Up("b", Mode::kRw, true), Failed("c", true)},
       2,
       false,
       true,
       false,
       {AddressOf("c")},
       false},
      {"a failed replica on a draining replicad still waits",
       {Up("a"),
        [] {
          RebuildMember m = Failed("b", true);
          m.on_draining = true;
          return m;
        }()},
       2,
       false,
       true,
       false,
       {AddressOf("b")},
       false},
      {"every registry address of the failed one is probed",
       {Up("a"), two_places},
       2,
       false,
       true,
       false,
       {AddressOf("b"), AddressOf("x")},
       false},
      {"a failed one with no registry address still waits, with nothing to probe",
       {Up("a"), nowhere},
       2,
       false,
       true,
       false,
       {},
       false},
      {"a count of zero is always enough", {Up("a")}, 0, false, false, false, {}, true},
  };
  for (const Case& c : cases) {
    RebuildNeed need = RebuildNeedOf(c.members, c.count, c.forced, kNow, kWait);
    EXPECT_EQ(need.short_of_replicas, c.short_of_replicas) << c.what;
    EXPECT_EQ(need.allow_full, c.allow_full) << c.what;
    EXPECT_EQ(need.probe, c.probe) << c.what;
    EXPECT_EQ(need.clear_forced, c.clear_forced) << c.what;
  }
}

RetireCandidate Usable(const std::string& name) { return {name, true, false}; }
RetireCandidate CatchesUp(const std::string& name) { return {name, false, true}; }
RetireCandidate Lost(const std::string& name) { return {name, false, false}; }

TEST(ReplacedReplicaRuleTest, Table) {
  struct Case {
    const char* what;
    std::vector<RetireCandidate> members;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"none", {}, std::nullopt},
      {"all usable", {Usable("a"), Usable("b")}, std::nullopt},
      {"the one not usable", {Usable("a"), Lost("b"), Usable("c")}, "b"},
      {"one that can catch up, when it is the only one", {Usable("a"), CatchesUp("b")}, "b"},
      {"one that cannot catch up before one that can",
       {CatchesUp("a"), Usable("b"), Lost("c")},
       "c"},
      {"the first of those that cannot catch up", {Lost("a"), Lost("b")}, "a"},
      {"the first of those that can", {CatchesUp("a"), CatchesUp("b"), Usable("c")}, "a"},
      {"cannot catch up, later ones do not matter", {Usable("a"), Lost("b"), CatchesUp("c")}, "b"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ReplacedReplica(c.members), c.want) << c.what;
  }
}

// The loop FullRebuild::RetireReplaced used before the rule was a function,
// kept to show the rule picks the same on every mix of up to four replicas.
std::optional<std::string> ReplacedByTheOldLoop(const std::vector<RetireCandidate>& members) {
  auto victim = members.end();
  for (auto it = members.begin(); it != members.end(); ++it) {
    if (it->usable) continue;
    if (victim == members.end() || !it->can_catch_up) victim = it;
    if (!it->can_catch_up) break;
  }
  if (victim == members.end()) return std::nullopt;
  return victim->name;
}

TEST(ReplacedReplicaRuleTest, SameAsTheOldLoop) {
  const RetireCandidate kinds[] = {Usable(""), CatchesUp(""), Lost("")};
  for (size_t n = 0; n <= 4; n++) {
    size_t mixes = 1;
    for (size_t i = 0; i < n; i++) mixes *= 3;
    for (size_t mix = 0; mix < mixes; mix++) {
      std::vector<RetireCandidate> members;
      for (size_t i = 0, rest = mix; i < n; i++, rest /= 3) {
        RetireCandidate m = kinds[rest % 3];
        m.name = std::string(1, static_cast<char>('a' + i));
        members.push_back(m);
      }
      EXPECT_EQ(ReplacedReplica(members), ReplacedByTheOldLoop(members))
          << n << " replicas, mix " << mix;
    }
  }
}

}  // namespace
}  // namespace shorthorn::fused
