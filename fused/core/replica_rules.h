// The rules that decide which replicas a volume trusts and where a new one
// goes (DESIGN §5). Pure functions over plain values, so that they are
// tested on tables of cases; VolumeService gathers the facts over the
// network and acts on the answer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace shorthorn::fused {

// One replica of a volume as OPEN found it.
struct AttachCandidate {
  std::string name;
  std::string address;
  bool reachable = false;
  std::string error;        // why it is not reachable
  uint64_t generation = 0;  // its durable generation
  bool rebuilding = false;  // half rebuilt: never current
  bool clean = false;       // its previous session ended with a CLOSE from fused
  bool local = false;       // on this host
};

struct AttachPlan {
  uint64_t generation = 0;                                    // what the current ones hold
  std::vector<std::string> current;                           // trusted, in candidate order
  std::vector<std::pair<std::string, std::string>> left_out;  // name, why
  std::string salvaged;  // with salvage: the replica used although not provably current
  // Current replicas whose previous session did not end cleanly may differ
  // from each other where writes were in flight when it ended (a fused
  // crash, a power cut). Then `authority` is the one the others are
  // resynchronized from before they serve reads; empty when nothing needs
  // it (one current replica, or all ended cleanly).
  std::string authority;
};

// The attach rule. Trusted: reachable, not half rebuilt, generation at least
// `expected` (what fused recorded); current: the trusted ones holding the
// highest generation among them. None trusted: an error naming every
// candidate and why, unless `salvage`, which takes the reachable, not half
// rebuilt candidate with the highest generation (the first among equals).
// The authority, when needed: a current replica that ended cleanly, a local
// one among equals, else the first.
Result<AttachPlan> PlanAttach(uint64_t expected, bool salvage,
                              const std::vector<AttachCandidate>& candidates);

// The placement rule for a replacement replica: the replicads to try, in
// order. The addresses of the volume's failed replicas first (where the
// operator put them), then the configured replicads; never one that holds
// a usable replica of the volume, never one twice.
std::vector<std::string> PlaceReplacement(const std::vector<std::string>& failed_addresses,
                                          const std::vector<std::string>& configured,
                                          const std::vector<std::string>& usable_addresses);

}  // namespace shorthorn::fused
