#include "fused/core/replica_rules.h"

#include <algorithm>
#include <set>

namespace shorthorn::fused {

Result<AttachPlan> PlanAttach(uint64_t expected, bool salvage,
                              const std::vector<AttachCandidate>& candidates) {
  auto usable = [](const AttachCandidate& c) { return c.reachable && !c.rebuilding; };
  AttachPlan plan;
  bool any = false;
  for (const auto& c : candidates) {
    if (usable(c) && c.generation >= expected) {
      plan.generation = any ? std::max(plan.generation, c.generation) : c.generation;
      any = true;
    }
  }
  if (!any) {
    std::string list;
    const AttachCandidate* pick = nullptr;
    for (const auto& c : candidates) {
      list += "; replica " + c.name + " on " + c.address + ": ";
      if (!c.reachable) {
        list += c.error;
        continue;
      }
      list +=
          "generation " + std::to_string(c.generation) + (c.rebuilding ? " (half rebuilt)" : "");
      if (!c.rebuilding && (pick == nullptr || c.generation > pick->generation)) pick = &c;
    }
    if (candidates.empty()) list = "; it has no replicas";
    if (!salvage || pick == nullptr) {
      return Status(ErrorKind::kFailed,
                    "no replica is provably up to date (generation " + std::to_string(expected) +
                        " expected)" + list +
                        (pick ? "; attach with salvage=true to use replica " + pick->name : ""));
    }
    plan.generation = pick->generation;
    plan.salvaged = pick->name;
  }
  for (const auto& c : candidates) {
    if (!c.reachable) {
      plan.left_out.emplace_back(c.name, c.error);
    } else if (c.rebuilding) {
      plan.left_out.emplace_back(c.name,
                                 "generation " + std::to_string(c.generation) + " (half rebuilt)");
    } else if (c.generation != plan.generation) {
      plan.left_out.emplace_back(c.name, "generation " + std::to_string(c.generation) +
                                             ", current is " + std::to_string(plan.generation));
    } else {
      plan.current.push_back(c.name);
    }
  }
  if (plan.current.size() < 2) return plan;
  const AttachCandidate* authority = nullptr;
  bool all_clean = true;
  auto rank = [](const AttachCandidate& c) { return (c.clean ? 2 : 0) + (c.local ? 1 : 0); };
  for (const auto& c : candidates) {
    if (std::find(plan.current.begin(), plan.current.end(), c.name) == plan.current.end()) continue;
    all_clean = all_clean && c.clean;
    if (authority == nullptr || rank(c) > rank(*authority)) authority = &c;
  }
  if (!all_clean) plan.authority = authority->name;
  return plan;
}

std::vector<std::string> PlaceReplacement(const std::vector<std::string>& failed_addresses,
                                          const std::vector<std::string>& configured,
                                          const std::vector<std::string>& usable_addresses) {
  std::set<std::string> seen(usable_addresses.begin(), usable_addresses.end());
  std::vector<std::string> out;
  for (const auto* list : {&failed_addresses, &configured}) {
    for (const auto& a : *list) {
      if (seen.insert(a).second) out.push_back(a);
    }
  }
  return out;
}

}  // namespace shorthorn::fused
