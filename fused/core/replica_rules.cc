#include "fused/core/replica_rules.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "common/size_text.h"

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

const char* AntiAffinityName(AntiAffinity a) {
  switch (a) {
    case AntiAffinity::kOff:
      return "off";
    case AntiAffinity::kSoft:
      return "soft";
    case AntiAffinity::kHard:
      return "hard";
  }
  return "?";
}

namespace {

// a * percent / 100 without overflow for any 64-bit a and 32-bit percent.
uint64_t Percent(uint64_t a, uint32_t percent) {
  unsigned __int128 v = static_cast<unsigned __int128>(a) * percent / 100;
  return v > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(v);
}

}  // namespace

std::string ZoneOf(const std::vector<std::string>& tags) {
  for (const auto& t : tags) {
    if (t.rfind("zone=", 0) == 0) return t.substr(5);
  }
  return "";
}

std::string RefusalOf(const PlacementRules& rules, const PlacementRequest& request,
                      const PlacementCandidate& c) {
  if (!c.excluded.empty()) return c.excluded;
  if (!c.reachable) return "unreachable: " + c.error;
  std::string missing;
  for (const auto& t : request.required_tags) {
    if (std::find(c.tags.begin(), c.tags.end(), t) == c.tags.end()) {
      missing += (missing.empty() ? "" : ", ") + t;
    }
  }
  if (!missing.empty()) return "lacks tag(s) " + missing;
  const uint64_t reserve = Percent(c.total_bytes, rules.reserve_percent);
  if (c.free_bytes < reserve || c.free_bytes - reserve < request.initial_bytes) {
    const std::string reserve_text = "the reserve of " + std::to_string(rules.reserve_percent) +
                                     "% (" + FormatSize(reserve) + ")";
    if (request.initial_bytes == 0) {
      return FormatSize(c.free_bytes) + " free of " + FormatSize(c.total_bytes) + ", under " +
             reserve_text;
    }
    return FormatSize(c.free_bytes) + " free of " + FormatSize(c.total_bytes) + ", needs " +
           FormatSize(request.initial_bytes) + " for the replica's data plus " + reserve_text;
  }
  const uint64_t limit =
      Percent(c.total_bytes - std::min(reserve, c.total_bytes), rules.over_provisioning_percent);
  const uint64_t after =
      c.provisioned_bytes + std::min(request.size, UINT64_MAX - c.provisioned_bytes);
  if (after > limit) {
    return FormatSize(c.provisioned_bytes) + " provisioned + " + FormatSize(request.size) +
           " would exceed " + FormatSize(limit) + " (over-provisioning " +
           std::to_string(rules.over_provisioning_percent) + "% of the " +
           FormatSize(c.total_bytes) + " file system less the " +
           std::to_string(rules.reserve_percent) + "% reserve)";
  }
  return "";
}

Result<Placement> PlaceReplicas(const PlacementRules& rules, const PlacementRequest& request,
                                const std::vector<PlacementCandidate>& candidates) {
  // The order of consideration: fixed, preferred, then the least
  // provisioned share (in whole percent, so that small changes do not
  // reorder equals), then the order given.
  auto find = [&](const std::string& address) -> const PlacementCandidate* {
    for (const auto& c : candidates) {
      if (c.address == address) return &c;
    }
    return nullptr;
  };
  std::vector<const PlacementCandidate*> order;
  std::set<std::string> listed;
  for (const auto* list : {&request.fixed, &request.preferred}) {
    for (const auto& a : *list) {
      if (const PlacementCandidate* c = find(a); c != nullptr && listed.insert(a).second) {
        order.push_back(c);
      }
    }
  }
  std::vector<const PlacementCandidate*> rest;
  for (const auto& c : candidates) {
    if (listed.insert(c.address).second) rest.push_back(&c);
  }
  auto share = [](const PlacementCandidate* c) {
    return c->total_bytes == 0
               ? uint64_t{100}
               : static_cast<uint64_t>(static_cast<unsigned __int128>(c->provisioned_bytes) * 100 /
                                       c->total_bytes);
  };
  std::stable_sort(rest.begin(), rest.end(),
                   [&](const auto* a, const auto* b) { return share(a) < share(b); });
  order.insert(order.end(), rest.begin(), rest.end());

  std::map<std::string, std::string> refused;  // address -> why
  for (const auto* c : order) {
    std::string why = RefusalOf(rules, request, *c);
    if (!why.empty()) refused[c->address] = why;
  }
  // Who is where: the kept replicas and those chosen so far.
  std::vector<std::pair<std::string, KeptReplica>> placed;  // (label, where)
  for (const auto& k : request.kept) placed.emplace_back("the replica on " + k.address, k);
  // The placed replica sharing c's host (zone), or nullptr.
  auto same_host = [&](const PlacementCandidate& c) -> const std::pair<std::string, KeptReplica>* {
    for (const auto& p : placed) {
      if (!p.second.host_id.empty() && p.second.host_id == c.host_id) return &p;
    }
    return nullptr;
  };
  auto same_zone = [&](const PlacementCandidate& c) -> const std::pair<std::string, KeptReplica>* {
    const std::string zone = ZoneOf(c.tags);
    if (zone.empty()) return nullptr;
    for (const auto& p : placed) {
      if (p.second.zone == zone) return &p;
    }
    return nullptr;
  };
  // 0 fits; 1 bends the zone rule; 2 the host rule; 3 both; -1 refused
  // (a hard rule, with `why`).
  auto penalty = [&](const PlacementCandidate& c, std::string* why) {
    int p = 0;
    if (const auto* h = same_host(c)) {
      if (rules.host == AntiAffinity::kHard) {
        *why = "on host " + c.host_id + " with " + h->first + " (replica-anti-affinity hard)";
        return -1;
      }
      if (rules.host == AntiAffinity::kSoft) p += 2;
    }
    if (const auto* z = same_zone(c)) {
      if (rules.zone == AntiAffinity::kHard) {
        *why = "in zone " + ZoneOf(c.tags) + " with " + z->first + " (zone-anti-affinity hard)";
        return -1;
      }
      if (rules.zone == AntiAffinity::kSoft) p += 1;
    }
    return p;
  };
  Placement out;
  auto take = [&](const PlacementCandidate& c, int p) {
    if (p & 2) {
      out.warnings.push_back("replica on " + c.address + " shares host " + c.host_id + " with " +
                             same_host(c)->first + " (replica-anti-affinity soft)");
    }
    if (p & 1) {
      out.warnings.push_back("replica on " + c.address + " shares zone " + ZoneOf(c.tags) +
                             " with " + same_zone(c)->first + " (zone-anti-affinity soft)");
    }
    out.chosen.push_back(c.address);
    placed.emplace_back("the new replica on " + c.address,
                        KeptReplica{c.address, c.host_id, ZoneOf(c.tags)});
  };
  auto failure = [&](const std::string& head) {
    std::string msg = head;
    if (!out.chosen.empty()) {
      msg += " (placed on";
      for (const auto& a : out.chosen) msg += " " + a;
      msg += ")";
    }
    bool any = false;
    for (const auto* c : order) {
      if (std::find(out.chosen.begin(), out.chosen.end(), c->address) != out.chosen.end()) continue;
      std::string why;
      if (auto it = refused.find(c->address); it != refused.end()) {
        why = it->second;
      } else if (penalty(*c, &why) >= 0) {
        why = "not needed";
      }
      msg += std::string(any ? "; " : ": ") + c->address + ": " + why;
      any = true;
    }
    if (!any && candidates.empty()) msg += ": no replicad is configured or named";
    if (!any && !candidates.empty()) {
      msg += ": only " + std::to_string(candidates.size()) +
             " replicad(s) are known (configure more in replicads, or name more addresses)";
    }
    return Status(ErrorKind::kUnavailable, msg);
  };
  for (const auto& a : request.fixed) {
    const PlacementCandidate* c = find(a);
    if (c == nullptr) return Status(ErrorKind::kInvalidArgument, "replicad " + a + " is unknown");
    if (auto it = refused.find(a); it != refused.end()) {
      return Status(ErrorKind::kUnavailable,
                    "replicad " + a + " cannot take a replica: " + it->second);
    }
    std::string why;
    int p = penalty(*c, &why);
    if (p < 0)
      return Status(ErrorKind::kUnavailable, "replicad " + a + " cannot take a replica: " + why);
    take(*c, p);
  }
  while (out.chosen.size() < request.count) {
    const PlacementCandidate* best = nullptr;
    int best_p = 0;
    for (const auto* c : order) {
      if (refused.count(c->address) != 0) continue;
      if (std::find(out.chosen.begin(), out.chosen.end(), c->address) != out.chosen.end()) continue;
      std::string why;
      int p = penalty(*c, &why);
      if (p < 0) continue;
      if (best == nullptr || p < best_p) {
        best = c;
        best_p = p;
      }
      if (p == 0) break;
    }
    if (best == nullptr) {
      return failure("cannot place " + std::to_string(request.count) + " replica(s), " +
                     std::to_string(request.count - out.chosen.size()) + " more needed");
    }
    take(*best, best_p);
  }
  return out;
}

bool ReplacementDue(bool can_catch_up, std::chrono::steady_clock::time_point failed_at,
                    std::chrono::steady_clock::time_point now, std::chrono::seconds wait,
                    bool forced) {
  return forced || !can_catch_up || now - failed_at >= wait;
}

const char* RobustnessOf(size_t rw, uint32_t count) {
  return rw == 0 ? "faulted" : rw >= count ? "healthy" : "degraded";
}

std::vector<std::string> ReplicasToDrop(const std::vector<ShrinkMember>& members, uint32_t count,
                                        bool attached) {
  using Mode = ShrinkMember::Mode;
  auto rank = [](const ShrinkMember& m) {
    switch (m.mode) {
      case Mode::kUnknown:
      case Mode::kErr:
        return 0;
      case Mode::kWo:
        return 1;
      case Mode::kRw:
        return m.local ? 3 : 2;
    }
    return 0;
  };
  std::vector<const ShrinkMember*> sorted;
  size_t rw = 0;
  for (const auto& m : members) {
    sorted.push_back(&m);
    rw += m.mode == Mode::kRw;
  }
  std::stable_sort(sorted.begin(), sorted.end(), [&](const ShrinkMember* a, const ShrinkMember* b) {
    return rank(*a) < rank(*b);
  });
  std::vector<std::string> drop;
  for (const ShrinkMember* m : sorted) {
    if (members.size() - drop.size() <= count) break;
    if (attached && m->mode == Mode::kRw) {
      if (rw <= 1) break;  // never the last RW replica
      rw--;
    }
    drop.push_back(m->name);
  }
  return drop;
}

ChunkReference ReferenceHash(const std::map<std::string, uint64_t>& hashes,
                             const std::string& preferred) {
  ChunkReference out;
  std::map<uint64_t, size_t> votes;
  for (const auto& [name, h] : hashes) votes[h]++;
  if (votes.size() <= 1) {
    out.agreed = true;
    if (!votes.empty()) out.hash = votes.begin()->first;
    return out;
  }
  for (const auto& [h, n] : votes) {
    if (2 * n > hashes.size()) {
      out.hash = h;
      out.majority = true;
    }
  }
  if (!out.majority) {
    auto p = hashes.find(preferred);
    out.hash = p != hashes.end() ? p->second : hashes.begin()->second;
  }
  return out;
}

}  // namespace shorthorn::fused
