// Design notes: VolumeService's replication (DESIGN §5).
//
// Generations. Every replica keeps a durable generation; fused keeps, per
// volume, the generation its replicas must have to be trusted
// (GenerationStore). Attach raises both: replicas left out (unreachable,
// stale) fall behind. A replica failing while attached is a membership
// change: the engine holds acknowledgements until RecordMembership has
// raised the generation on the remaining RW replicas and in the store.
//
//   attach: OPEN all ──► current = reachable, not rebuilding, generation ==
//           max >= store ──► none? error listing candidates (salvage: best)
//           ──► SET_GENERATION store+1 on current ──► store := store+1
//
// The rebuild loop, catch-ups and their diagram are in rebuild_loop.cc; a
// full rebuild's steps in full_rebuild.cc. Here: attach's choice of
// replicas, generations, and SetReplicaCount.

#include <algorithm>
#include <set>

#include "common/log.h"
#include "common/net.h"
#include "fused/core/replica_rules.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {

Result<std::vector<EngineReplica>> VolumeService::OpenForAttach(const VolumeRecord& record,
                                                                bool salvage, AttachContext& ctx,
                                                                std::string* authority) {
  std::vector<AttachCandidate> candidates;
  std::map<std::string, std::unique_ptr<ReplicaClient>> clients;
  Status moved;
  for (const auto& r : record.replicas) {
    AttachCandidate c;
    c.name = r.name;
    c.address = r.address;
    c.local = IsLocalAddress(r.address);
    auto client = ReplicaClient::Open(Target(record, r), record.epoch,
                                      settings_.connections_per_replica, settings_.client);
    if (client.ok()) {
      c.reachable = true;
      c.generation = (*client)->generation();
      c.rebuilding = (*client)->rebuilding();
      c.clean = (*client)->clean();
      clients[r.name] = std::move(*client);
    } else {
      c.error = client.status().message();
      if (client.status().kind() == ErrorKind::kMoved && moved.ok()) moved = client.status();
    }
    candidates.push_back(std::move(c));
  }
  // A replica that another fused claimed says so only because that fused
  // imported the volume: this one must not write to any of them.
  if (!moved.ok()) {
    for (auto& [name, client] : clients) (void)client->Close();
    return moved;
  }
  auto expected = generations_.Get(record.name);
  if (!expected.ok()) return expected.status();
  auto plan = PlanAttach(*expected, salvage, candidates);
  if (!plan.ok()) return plan.status();
  if (!plan->salvaged.empty()) {
    LogWarning("volume " + record.name + ": salvage: using replica " + plan->salvaged +
               " (generation " + std::to_string(plan->generation) + ")");
  }
  for (const auto& [name, why] : plan->left_out) {
    LogWarning("attach volume " + record.name + ": replica " + name + " left out: " + why);
    if (auto it = clients.find(name); it != clients.end()) (void)it->second->Close();
  }
  *authority = plan->authority;
  if (!plan->authority.empty()) {
    LogWarning("attach volume " + record.name +
               ": its replicas did not all end their last session cleanly (fused or a host "
               "stopped without a detach); replica " +
               plan->authority +
               " serves reads while the others are compared with it and resynchronized");
  }
  std::vector<EngineReplica> out;
  for (const auto& r : record.replicas) {
    if (std::find(plan->current.begin(), plan->current.end(), r.name) == plan->current.end()) {
      continue;
    }
    ctx.targets[r.name] = Target(record, r);
    ReplicaMode mode =
        plan->authority.empty() || plan->authority == r.name ? ReplicaMode::kRW : ReplicaMode::kWO;
    out.push_back({r.name, std::move(clients[r.name]), mode, IsLocalAddress(r.address)});
  }
  return out;
}

Status VolumeService::ApplyGeneration(AttachContext& ctx, const std::vector<std::string>& replicas,
                                      uint64_t generation) {
  Status first;
  size_t done = 0;
  for (const auto& name : replicas) {
    ReplicaTarget target;
    {
      std::lock_guard lock(ctx.mutex);
      auto it = ctx.targets.find(name);
      if (it == ctx.targets.end()) continue;
      target = it->second;
    }
    Status reply = ReplicaClient::SetGeneration(target, ctx.epoch, generation, settings_.client);
    if (reply.ok()) {
      done++;
      continue;
    }
    if (first.ok()) first = reply;
    if (auto engine = ctx.engine.lock()) engine->FailReplica(name, reply);
  }
  if (done == 0) {
    return first.ok() ? Status(ErrorKind::kUnavailable, "no replica to record generation on")
                      : first;
  }
  return Status::Ok();
}

Result<uint64_t> VolumeService::BumpGeneration(AttachContext& ctx, const std::string& joining) {
  return generations_.Bump(
      ctx.volume,
      [&ctx, &joining] {
        std::vector<std::string> members;
        if (auto engine = ctx.engine.lock()) {
          for (const auto& r : engine->Replicas()) {
            if (r.mode == ReplicaMode::kRW || (r.name == joining && r.mode != ReplicaMode::kERR)) {
              members.push_back(r.name);
            }
          }
        }
        return members;
      },
      [this, &ctx](const std::vector<std::string>& members, uint64_t generation) {
        if (members.empty()) {
          return Status(ErrorKind::kIoError, "no RW replica left", EIO);
        }
        return ApplyGeneration(ctx, members, generation);
      });
}

void VolumeService::RecordMembership(const std::shared_ptr<AttachContext>& ctx) {
  auto engine = ctx->engine.lock();
  if (!engine) return;
  Status s = BumpGeneration(*ctx).status();
  if (!s.ok()) LogError("volume " + ctx->volume + ": record membership change: " + s.message());
  engine->MembershipRecorded(s);
  QueueChanged(ctx->volume);
}

std::string VolumeService::Robustness(const std::string& volume, uint32_t count) {
  auto it = attached_.find(volume);
  if (it == attached_.end()) return "unknown";
  size_t rw = it->second.engine->Count(ReplicaMode::kRW);
  return RobustnessOf(rw, count);
}

Status VolumeService::SetReplicaCount(const std::string& volume, uint32_t count,
                                      const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("SetReplicaCount", options, {}));
  const std::string what = "set replica count of volume " + volume;
  if (count < 1 || count > 5) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": " + std::to_string(count) + " is outside 1..5");
  }
  // Growing: the new replicas must have a place now (the rebuilds that
  // make them follow while attached, or at the next attach).
  VolumeRecord before;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    before = *record;
  }
  if (count > before.replicas.size()) {
    std::map<std::string, std::string> holders;
    for (const auto& r : before.replicas) holders[r.address] = r.name;
    auto [request, candidates] = PlacementFor(before, count - before.replicas.size(), holders, {});
    auto placed = PlaceReplicas(settings_.placement, request, candidates);
    if (!placed.ok()) return placed.status().WithContext(what);
  }
  std::vector<ReplicaTarget> drop;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    record->replica_count = count;
    epoch = record->epoch;
    auto it = attached_.find(volume);
    std::vector<ShrinkMember> members;
    for (const auto& r : record->replicas) {
      ShrinkMember m{r.name, ShrinkMember::Mode::kUnknown, IsLocalAddress(r.address)};
      if (it != attached_.end()) {
        for (const auto& st : it->second.engine->Replicas()) {
          if (st.name != r.name) continue;
          m.mode = st.mode == ReplicaMode::kERR  ? ShrinkMember::Mode::kErr
                   : st.mode == ReplicaMode::kWO ? ShrinkMember::Mode::kWo
                                                 : ShrinkMember::Mode::kRw;
        }
      }
      members.push_back(std::move(m));
    }
    for (const auto& name : ReplicasToDrop(members, count, it != attached_.end())) {
      auto victim = std::find_if(record->replicas.begin(), record->replicas.end(),
                                 [&](const ReplicaRecord& r) { return r.name == name; });
      if (it != attached_.end()) {
        if (auto backend = it->second.engine->RemoveReplica(name)) (void)backend->Close();
        std::lock_guard clock(it->second.ctx->mutex);
        it->second.ctx->targets.erase(name);
      }
      drop.push_back(Target(*record, *victim));
      record->replicas.erase(victim);
    }
    SH_RETURN_IF_ERROR(registry_.Save().WithContext(what));
  }
  for (const auto& t : drop) {
    Status s = ReplicaClient::DeleteReplica(t, epoch, settings_.client);
    if (!s.ok())
      LogWarning(what + ": " + s.message());
    else
      LogInfo(what + ": dropped replica " + t.replica + " on " + t.address);
  }
  rebuild_cv_.notify_all();
  NotifyChanged(volume);
  return Status::Ok();
}

}  // namespace shorthorn::fused
