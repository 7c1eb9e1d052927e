// The rules that decide which replicas a volume trusts and where a new one
// goes (DESIGN §5). Pure functions over plain values, so that they are
// tested on tables of cases; VolumeService gathers the facts over the
// network and acts on the answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
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

// ---------------------------------------------------------------- placement
//
// Where new replicas of a volume go (CreateVolume, SetReplicaCount, a
// rebuild, a drain). doc/dbus-api.md, "Placement", is the prose version.

enum class AntiAffinity { kOff, kSoft, kHard };
// "off", "soft", "hard".
const char* AntiAffinityName(AntiAffinity a);

struct PlacementRules {
  // Replicas of one volume on replicads reporting the same host id:
  // refused (hard) or only when nothing else fits, with a warning (soft).
  AntiAffinity host = AntiAffinity::kHard;
  // The same for replicads tagged with the same zone ("zone=<z>").
  AntiAffinity zone = AntiAffinity::kSoft;
  // A replicad takes a new replica only while the sum of its replicas'
  // sizes, the new one's included, stays within this percentage of its
  // file system's size less the reserve (thin provisioning: 200 lets the
  // sizes add up to twice the space).
  uint32_t over_provisioning_percent = 100;
  // Percentage of a replicad's file system that must stay free after the
  // new replica's first data (the rebuild's copy) is written.
  uint32_t reserve_percent = 10;
};

// One replicad that may take a replica, as fused found it.
struct PlacementCandidate {
  std::string address;
  bool reachable = false;
  std::string error;  // why it is not reachable
  std::string host_id;
  std::vector<std::string> tags;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t provisioned_bytes = 0;
  uint32_t replicas = 0;  // replicas it holds (shown, not used by the rule)
  // Non-empty: never chosen, and this is why ("draining", "holds replica X
  // of this volume", "create failed: ...").
  std::string excluded;
};

// Where a replica the volume keeps is: its host and zone count against
// the new ones.
struct KeptReplica {
  std::string address;
  std::string host_id;  // "" when unknown (its replicad did not answer)
  std::string zone;     // "" when it has none
};

struct PlacementRequest {
  uint64_t size = 0;  // the volume's size
  // Bytes the new replica holds as soon as it is made (a rebuild copies
  // the volume's data at once); 0 for an empty new volume.
  uint64_t initial_bytes = 0;
  size_t count = 1;                        // replicas to place
  std::vector<std::string> required_tags;  // every one needed on the replicad
  std::vector<std::string> fixed;          // must be used, in this order (named by the caller)
  std::vector<std::string> preferred;      // tried before the others (failed replicas' places)
  std::vector<KeptReplica> kept;           // the volume's other replicas
};

struct Placement {
  std::vector<std::string> chosen;    // addresses, `count` of them
  std::vector<std::string> warnings;  // soft rules bent, one line each
};

// The zone of a replicad: the value of its "zone=" tag, or "".
std::string ZoneOf(const std::vector<std::string>& tags);

// Why `c` cannot take a new replica of `request` whatever else is chosen
// (exclusion, reachability, tags, space), or "".
std::string RefusalOf(const PlacementRules& rules, const PlacementRequest& request,
                      const PlacementCandidate& c);

// The placement rule. Chooses `request.count` candidates: first the fixed
// ones (each must pass every rule, or the whole placement fails naming
// it), then the preferred ones, then the rest in order of the smallest
// share of their space already provisioned (ties: the order given). A
// candidate is refused when RefusalOf says so, or when a hard rule puts it
// on a host (zone) that a kept or chosen replica is on; under a soft rule
// such a candidate is taken only when no other fits, with a warning.
// Fails (kUnavailable) when fewer than `count` fit: the message lists
// every candidate not chosen and why.
Result<Placement> PlaceReplicas(const PlacementRules& rules, const PlacementRequest& request,
                                const std::vector<PlacementCandidate>& candidates);

// ---------------------------------------------------------------- replacement

// Whether a failed replica is replaced elsewhere now. A replica that can
// catch up (its missed writes are recorded) gets `wait` from when it
// failed to come back, unless the operator asked for the rebuild (`forced`);
// one that cannot catch up is replaced at once.
bool ReplacementDue(bool can_catch_up, std::chrono::steady_clock::time_point failed_at,
                    std::chrono::steady_clock::time_point now, std::chrono::seconds wait,
                    bool forced);

// The Robustness of an attached volume with `rw` RW replicas of the
// `count` it should have: "faulted" (none), "healthy" (at least `count`),
// else "degraded".
const char* RobustnessOf(size_t rw, uint32_t count);

// A replica of a volume as SetReplicaCount's shrink sees it: its mode in
// the attached volume's engine (kUnknown: detached, or not in the engine)
// and whether its replicad is on this host.
struct ShrinkMember {
  enum class Mode { kUnknown, kErr, kWo, kRw };
  std::string name;
  Mode mode = Mode::kUnknown;
  bool local = false;
};
// Which replicas to drop so that `count` remain, in the order they go:
// least useful first (unknown or ERR, then WO, then remote RW, then local
// RW; ties in the order given). Of an attached volume, never the last RW
// replica: the list then stops short of `count`.
std::vector<std::string> ReplicasToDrop(const std::vector<ShrinkMember>& members, uint32_t count,
                                        bool attached);

// Scrub: what one chunk should hash to, given each compared replica's hash
// of it (by replica name). `agreed`: all the same, nothing to do. Else the
// hash more than half of them hold (`majority`), or with no majority the
// hash of `preferred` (the replica reads prefer: what the filesystem has
// been reading), or of the first replica when `preferred` gave none.
struct ChunkReference {
  bool agreed = false;
  bool majority = false;
  uint64_t hash = 0;
};
ChunkReference ReferenceHash(const std::map<std::string, uint64_t>& hashes,
                             const std::string& preferred);

}  // namespace shorthorn::fused
