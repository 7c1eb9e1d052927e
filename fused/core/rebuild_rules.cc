#include "fused/core/rebuild_rules.h"

#include "fused/core/replica_rules.h"

namespace shorthorn::fused {

RebuildNeed RebuildNeedOf(const std::vector<RebuildMember>& members, uint32_t replica_count,
                          bool forced, std::chrono::steady_clock::time_point now,
                          std::chrono::seconds wait) {
  using Mode = RebuildMember::Mode;
  RebuildNeed need;
  size_t usable = 0, leaving = 0, rw = 0;
  for (const auto& m : members) {
    if (m.mode == Mode::kErr) continue;
    rw += m.mode == Mode::kRw;
    (m.on_draining ? leaving : usable)++;
  }
  if (rw == 0) return need;
  if (usable >= replica_count) {
    need.clear_forced = true;
    // Enough, but some on a draining replicad: the job drops them.
    need.short_of_replicas = leaving > 0;
    need.allow_full = leaving > 0;
    return need;
  }
  need.short_of_replicas = true;
  // Failed replicas that can catch up and are still within the wait.
  size_t waiting = 0;
  for (const auto& m : members) {
    if (m.mode != Mode::kErr || !m.can_catch_up) continue;
    need.probe.insert(need.probe.end(), m.addresses.begin(), m.addresses.end());
    if (!ReplacementDue(true, m.failed_at, now, wait, forced)) waiting++;
  }
  need.allow_full = replica_count - usable > waiting;
  if (need.allow_full) need.probe.clear();
  return need;
}

std::optional<std::string> ReplacedReplica(const std::vector<RetireCandidate>& members) {
  std::optional<std::string> victim;
  for (const auto& m : members) {
    if (m.usable) continue;
    if (!m.can_catch_up) return m.name;
    if (!victim) victim = m.name;
  }
  return victim;
}

}  // namespace shorthorn::fused
