// Design notes: VolumeService::ImportVolume, a volume moving to this fused
// when the host whose fused managed it is gone (DESIGN §5).
//
//   LIST_REPLICAS on every replicad given (each must answer) ──► the
//   replicas of the volume: current = highest generation, as attach picks
//   them (PlanAttach) ──► epoch := highest epoch found + 1 ──► each replica
//   claimed (OPEN with take_over at that epoch, CLOSE): its owner is now
//   this fused ──► generation store := the current generation ──► registry
//   (the others as stale replicas, deleted after stale-replica-timeout)
//
// Fencing. The old fused's next OPEN or DELETE names it as owner and is
// refused (Moved) whatever its epoch: its registry may hold an epoch above
// the claimed one (attaches that failed still counted). An engine of it
// still running is fenced by the epoch, as after any attach elsewhere.
//
// What import cannot know: a replica that fell behind before the old host
// died, while the replica on that host went on, holds a lower generation
// than the lost one; with the lost one gone it is the highest found. Give
// every replicad that may hold a replica of the volume.
#include <algorithm>
#include <ctime>
#include <set>

#include "common/log.h"
#include "common/net.h"
#include "fused/core/replica_rules.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {

Status VolumeService::ImportVolume(const std::string& name,
                                   const std::vector<std::string>& replicads,
                                   const Options& options) {
  const std::string what = "import volume " + name;
  SH_RETURN_IF_ERROR(CheckOptions("ImportVolume", options, {"replica-count"}));
  SH_RETURN_IF_ERROR(ValidateNewVolume(name, 4096).WithContext(what));
  if (replicads.empty()) {
    return Status(ErrorKind::kInvalidArgument, what + ": give the replicads that hold its replicas",
                  EINVAL);
  }
  if (replicads.size() > 5) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": at most 5 replicads, " + std::to_string(replicads.size()) + " given",
                  EINVAL);
  }
  std::set<std::string> seen;
  for (const auto& a : replicads) {
    SH_RETURN_IF_ERROR(ParseHostPort(a).status().WithContext(what));
    if (!seen.insert(a).second) {
      return Status(ErrorKind::kInvalidArgument, what + ": replicad " + a + " is named twice",
                    EINVAL);
    }
  }
  std::optional<uint64_t> wanted;
  if (auto it = options.find("replica-count"); it != options.end()) {
    const auto* i = std::get_if<int64_t>(&it->second);
    const auto* u = std::get_if<uint64_t>(&it->second);
    if (i == nullptr && u == nullptr) {
      return Status(ErrorKind::kInvalidArgument, what + ": option 'replica-count' must be a number",
                    EINVAL);
    }
    uint64_t n = i != nullptr ? static_cast<uint64_t>(std::max<int64_t>(*i, 0)) : *u;
    if (n < 1 || n > 5) {
      return Status(ErrorKind::kInvalidArgument, what + ": option 'replica-count' is outside 1..5",
                    EINVAL);
    }
    wanted = n;
  }
  auto exists = [&] {
    return registry_.Find(name) != nullptr || restoring_.count(name) != 0
               ? Status(ErrorKind::kAlreadyExists, what + ": a volume of that name exists here")
               : Status::Ok();
  };
  {
    std::lock_guard lock(mutex_);
    SH_RETURN_IF_ERROR(exists());
  }

  // What the replicads hold of it. Every one must answer: one left out
  // might hold the newest replica.
  std::vector<ListedReplica> found;
  for (const auto& a : replicads) {
    auto listed = ReplicaClient::ListReplicas(a, name, settings_.client);
    if (!listed.ok()) {
      return listed.status().WithContext(what + " (leave out a replicad whose host is gone)");
    }
    found.insert(found.end(), listed->begin(), listed->end());
  }
  if (found.empty()) {
    std::string list;
    for (const auto& a : replicads) list += (list.empty() ? "" : ", ") + a;
    return Status(ErrorKind::kNotFound, what + ": no replica of it on " + list, ENOENT);
  }
  std::vector<AttachCandidate> candidates;
  uint64_t epoch = 0;
  for (const auto& r : found) {
    AttachCandidate c;
    c.name = r.name;
    c.address = r.address;
    c.reachable = true;
    c.generation = r.generation;
    c.rebuilding = r.rebuilding;
    c.clean = !r.open;
    candidates.push_back(std::move(c));
    epoch = std::max(epoch, r.epoch);
  }
  auto plan = PlanAttach(0, false, candidates);
  if (!plan.ok()) return plan.status().WithContext(what);
  std::vector<const ListedReplica*> current;
  std::vector<const ListedReplica*> others;
  for (const auto& r : found) {
    const bool is_current =
        std::find(plan->current.begin(), plan->current.end(), r.name) != plan->current.end();
    (is_current ? current : others).push_back(&r);
  }
  const uint64_t size = current.front()->size;
  for (const auto* r : current) {
    if (r->size != size) {
      return Status(ErrorKind::kFailed, what + ": its current replicas disagree on the size (" +
                                            r->name + " has " + std::to_string(r->size) +
                                            " bytes, " + current.front()->name + " " +
                                            std::to_string(size) + ")");
    }
  }
  SH_RETURN_IF_ERROR(
      CheckVolumeSize(what, size, settings_.max_volume_size_gib).WithContext("replicas"));

  VolumeInfo info;
  {
    std::lock_guard lock(mutex_);
    SH_RETURN_IF_ERROR(exists());
    VolumeRecord record;
    record.name = name;
    record.size = size;
    record.epoch = epoch + 1;
    // Fence the old owner first: once a replica is claimed, its old fused
    // can no longer open it, whatever happens to this import.
    for (const auto* r : current) {
      ReplicaRecord rr{r->address, r->name};
      Status claimed =
          ReplicaClient::ClaimReplica(Target(record, rr), record.epoch, settings_.client);
      if (!claimed.ok()) return claimed.WithContext(what);
      record.replicas.push_back(rr);
    }
    const auto now = static_cast<uint64_t>(std::time(nullptr));
    for (const auto* r : others) {
      ReplicaRecord rr{r->address, r->name};
      Status claimed =
          ReplicaClient::ClaimReplica(Target(record, rr), record.epoch, settings_.client);
      if (!claimed.ok()) {
        LogWarning(what + ": left out replica " + r->name + " (not current): " + claimed.message());
        continue;
      }
      record.stale.push_back({r->address, r->name, now});
    }
    record.replica_count = static_cast<uint32_t>(wanted.value_or(record.replicas.size()));
    SH_RETURN_IF_ERROR(generations_.Raise(name, plan->generation).WithContext(what));
    registry_.Put(record);
    Status saved = registry_.Save();
    if (!saved.ok()) {
      registry_.Erase(name);
      generations_.Forget(name);
      return saved.WithContext(what);
    }
    VolumeRecord* stored = registry_.FindMutable(name);
    Status listed = RefreshLayersLocked(*stored, nullptr, nullptr);
    if (!listed.ok()) LogWarning(what + ": " + listed.message());
    std::string names;
    for (const auto& r : record.replicas)
      names += (names.empty() ? "" : ", ") + r.name + "@" + r.address;
    LogInfo("imported volume " + name + " (" + std::to_string(size) + " bytes, generation " +
            std::to_string(plan->generation) + ", epoch " + std::to_string(record.epoch) +
            ") from " + names + "; " + std::to_string(record.stale.size()) +
            " replica(s) behind it kept as stale; the fused that owned it is fenced");
    info = InfoLocked(*stored);
  }
  std::lock_guard listener_lock(listener_mutex_);
  if (listener_ != nullptr) listener_->VolumeAdded(info);
  return Status::Ok();
}

}  // namespace shorthorn::fused
