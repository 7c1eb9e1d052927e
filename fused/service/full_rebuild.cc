// Design notes: the steps of FullRebuild (full_rebuild.h). The rebuild slot
// taken in CreateReplica is held until the object goes (the destructor), so
// it covers the copy and the clean-up of a failed one. Undo is only for
// failures after the new replica was opened: before that, a failed create
// deletes nothing but what it made.

#include "fused/service/full_rebuild.h"

#include <algorithm>
#include <ctime>

#include "common/log.h"
#include "common/net.h"
#include "fused/core/rebuild_rules.h"
#include "fused/core/replica_rules.h"

namespace shorthorn::fused {

FullRebuild::FullRebuild(VolumeService& service, const std::string& volume,
                         std::shared_ptr<VolumeService::AttachContext> ctx,
                         std::shared_ptr<Engine> engine, JobHandle& job)
    : service_(service),
      volume_(volume),
      what_("rebuild volume " + volume),
      ctx_(std::move(ctx)),
      engine_(std::move(engine)),
      job_(job) {}

FullRebuild::~FullRebuild() {
  if (!slot_.empty()) service_.ReleaseRebuildSlot(slot_);
}

Status FullRebuild::Run() {
  SH_RETURN_IF_ERROR(ChooseSource());
  SH_RETURN_IF_ERROR(CreateReplica());
  SH_RETURN_IF_ERROR(AddReplica());
  SH_RETURN_IF_ERROR(Copy());
  SH_RETURN_IF_ERROR(MakeRW());
  RetireReplaced();
  return Status::Ok();
}

Result<ReplicaTarget> FullRebuild::TargetOf(const std::string& replica) {
  std::lock_guard lock(ctx_->mutex);
  auto it = ctx_->targets.find(replica);
  if (it == ctx_->targets.end()) {
    return Status(ErrorKind::kNotFound, "replica " + replica + " is no longer attached");
  }
  return it->second;
}

void FullRebuild::Note(const std::string& text) {
  {
    std::lock_guard lock(service_.mutex_);
    if (text.empty()) {
      service_.rebuild_notes_.erase(volume_);
    } else {
      service_.rebuild_notes_[volume_] = text;
    }
  }
  service_.QueueChanged(volume_);
}

Status FullRebuild::ChooseSource() {
  // Where: placed by the rules (PlaceReplicas) among the configured
  // replicads and those of failed replicas (tried first: that is where the
  // operator put them); never one that holds a usable replica of the
  // volume. Replicas on a draining replicad are leaving: they do not count
  // against the new one's host.
  {
    std::lock_guard lock(service_.mutex_);
    const VolumeRecord* r = service_.registry_.Find(volume_);
    if (r == nullptr) return Status(ErrorKind::kNotFound, what_ + ": the volume is gone");
    record_ = *r;
  }
  auto states = engine_->Replicas();
  for (const auto& rec : record_.replicas) {
    ReplicaMode mode = ReplicaMode::kERR;
    for (const auto& st : states) {
      if (st.name == rec.name) mode = st.mode;
    }
    if (mode == ReplicaMode::kERR) {
      err_addresses_.push_back(rec.address);
    } else {
      holders_[rec.address] = rec.name;
    }
  }
  for (const auto& st : states) {
    if (st.mode == ReplicaMode::kRW) {
      source_name_ = st.name;
      break;
    }
  }
  if (source_name_.empty()) return Status(ErrorKind::kIoError, what_ + ": no RW replica to copy");
  return Status::Ok();
}

Status FullRebuild::CreateReplica() {
  auto [request, candidates] = service_.PlacementFor(record_, 1, holders_, err_addresses_);
  for (;;) {
    auto placed = PlaceReplicas(service_.settings_.placement, request, candidates);
    if (!placed.ok()) {
      Note("no replicad can take a new replica: " + placed.status().message());
      return placed.status().WithContext(what_);
    }
    for (const auto& w : placed->warnings) LogWarning(what_ + ": " + w);
    const std::string address = placed->chosen.front();
    if (!service_.AcquireRebuildSlot(address, volume_, job_)) {
      return Status(ErrorKind::kFailed, what_ + ": cancelled while queued");
    }
    ReplicaRecord r{address, volume_.substr(0, 46) + "-" + RandomHex64()};
    Status created = ReplicaClient::CreateReplica({address, volume_, r.name}, record_.size,
                                                  service_.settings_.client, /*rebuilding=*/true);
    if (created.ok()) {
      fresh_ = r;
      slot_ = address;
      break;
    }
    service_.ReleaseRebuildSlot(address);
    LogWarning(what_ + ": create a replica on " + address + ": " + created.message());
    for (auto& c : candidates) {
      if (c.address == address) c.excluded = "create failed: " + created.message();
    }
    if (created.kind() == ErrorKind::kUnavailable) {
      // The request may still arrive (a cut link that heals): remember the
      // name so the stale-replica sweep deletes it once reachable.
      std::lock_guard lock(service_.mutex_);
      if (VolumeRecord* rec = service_.registry_.FindMutable(volume_)) {
        rec->stale.push_back({address, r.name, 0});
        (void)service_.registry_.Save();
      }
    }
  }
  Note("");
  target_ = ReplicaTarget{fresh_.address, volume_, fresh_.name};
  return Status::Ok();
}

Status FullRebuild::Undo(const Status& why) {
  engine_->RemoveReplica(fresh_.name);
  {
    std::lock_guard lock(ctx_->mutex);
    ctx_->targets.erase(fresh_.name);
  }
  {
    std::lock_guard lock(service_.mutex_);
    if (VolumeRecord* r = service_.registry_.FindMutable(volume_)) {
      std::erase_if(r->replicas, [&](const ReplicaRecord& x) { return x.name == fresh_.name; });
      (void)service_.registry_.Save();
    }
  }
  (void)ReplicaClient::DeleteReplica(target_, ctx_->epoch, service_.settings_.client);
  service_.QueueChanged(volume_);
  return why;
}

Status FullRebuild::AddReplica() {
  const ServiceSettings& settings = service_.settings_;
  auto client =
      ReplicaClient::Open(target_, ctx_->epoch, settings.connections_per_replica, settings.client);
  if (!client.ok()) {
    (void)ReplicaClient::DeleteReplica(target_, ctx_->epoch, settings.client);
    return client.status().WithContext(what_);
  }
  client_ = std::move(*client);
  {
    std::lock_guard lock(service_.mutex_);
    if (VolumeRecord* r = service_.registry_.FindMutable(volume_)) {
      r->replicas.push_back(fresh_);
      (void)service_.registry_.Save();
    }
  }
  {
    std::lock_guard lock(ctx_->mutex);
    ctx_->targets[fresh_.name] = target_;
  }
  // Everything older than the new replica's head becomes immutable.
  snapshot_ = "rebuild-" + RandomHex64().substr(0, 12);
  Status paused = engine_->Pause();
  if (!paused.ok()) {
    engine_->Resume();
    return Undo(paused.WithContext(what_));
  }
  std::vector<std::string> rw;
  Status snap;
  for (const auto& st : engine_->Replicas()) {
    if (st.mode != ReplicaMode::kRW) continue;
    auto t = TargetOf(st.name);
    // A system snapshot: no "created" (the replica's clock), not user-made.
    Status reply = !t.ok() ? t.status()
                           : ReplicaClient::Snapshot(
                                 *t, ctx_->epoch, {snapshot_, std::nullopt, /*user_created=*/false},
                                 settings.client);
    if (reply.ok()) {
      rw.push_back(st.name);
    } else {
      engine_->FailReplica(st.name, reply);
      if (snap.ok()) snap = reply;
    }
  }
  if (!rw.empty()) {
    engine_->AddReplica(
        {fresh_.name, std::move(client_), ReplicaMode::kWO, IsLocalAddress(fresh_.address)});
    engine_->InvalidateDirty();
  }
  engine_->Resume();
  if (rw.empty()) return Undo(snap.WithContext(what_ + ": system snapshot"));
  if (std::find(rw.begin(), rw.end(), source_name_) == rw.end()) source_name_ = rw.front();
  auto source = TargetOf(source_name_);
  if (!source.ok()) return Undo(source.status().WithContext(what_ + ": source"));
  source_ = *source;
  Status s = service_.BumpGeneration(*ctx_).status();
  if (!s.ok()) return Undo(s.WithContext(what_));
  service_.QueueChanged(volume_);
  LogInfo(what_ + ": new replica " + fresh_.name + " on " + fresh_.address + " copies from " +
          source_name_ + " (system snapshot " + snapshot_ + ")");
  return Status::Ok();
}

Status FullRebuild::Copy() {
  const ServiceSettings& settings = service_.settings_;
  msg::RebuildRequest rebuild{source_.address, volume_,   source_.replica,
                              ctx_->epoch,     snapshot_, settings.rebuild_bandwidth};
  Status started = ReplicaClient::Rebuild(target_, ctx_->epoch, rebuild, settings.client);
  if (!started.ok()) return Undo(started.WithContext(what_));
  for (;;) {
    if (job_.WaitCancelled(std::chrono::milliseconds(250))) {
      return Undo(Status(ErrorKind::kFailed, what_ + ": cancelled"));
    }
    auto layers = ReplicaClient::ListLayers(target_, ctx_->epoch, settings.client);
    if (!layers.ok()) return Undo(layers.status().WithContext(what_));
    uint64_t done = 0, total = 0;
    for (const auto& t : layers->tasks) {
      if (t.op == "rebuild") {
        done = t.done_bytes;
        total = t.total_bytes;
      }
    }
    job_.Update(done, total);
    const msg::RebuildState& state = layers->rebuild;
    if (state.state == msg::RebuildPhase::kFailed) {
      return Undo(Status(ErrorKind::kFailed, what_ + ": " + state.message));
    }
    if (state.state == msg::RebuildPhase::kDone) {
      // The copy may end between two polls: take the final count from the
      // replica's rebuild record.
      uint64_t bytes = state.bytes;
      job_.Update(std::max(bytes, done), std::max({bytes, done, total}));
      return Status::Ok();
    }
    bool wo = false;
    for (const auto& r : engine_->Replicas()) {
      wo = wo || (r.name == fresh_.name && r.mode == ReplicaMode::kWO);
    }
    if (!wo) return Undo(Status(ErrorKind::kFailed, what_ + ": the new replica failed"));
  }
}

Status FullRebuild::MakeRW() {
  Status s = service_.BumpGeneration(*ctx_, fresh_.name).status();
  if (!s.ok()) return Undo(s.WithContext(what_));
  return engine_->SetMode(fresh_.name, ReplicaMode::kRW);
}

void FullRebuild::RetireReplaced() {
  // The replaced replica is stale from now on.
  std::string replaced;
  {
    std::lock_guard lock(service_.mutex_);
    VolumeRecord* r = service_.registry_.FindMutable(volume_);
    if (r != nullptr && r->replicas.size() > r->replica_count) {
      auto states_now = engine_->Replicas();
      std::vector<RetireCandidate> members;
      for (const auto& replica : r->replicas) {
        RetireCandidate m;
        m.name = replica.name;
        for (const auto& st : states_now) {
          m.usable = m.usable || (st.name == replica.name && st.mode != ReplicaMode::kERR);
        }
        std::vector<std::pair<uint64_t, uint64_t>> missed;
        m.can_catch_up = !m.usable && engine_->DirtyRanges(replica.name, &missed);
        members.push_back(std::move(m));
      }
      // The replaced one (ReplacedReplica): a failed replica, one that
      // cannot catch up first. Its facts are by name: the first of the name.
      auto victim = r->replicas.end();
      if (auto name = ReplacedReplica(members)) {
        victim = std::find_if(r->replicas.begin(), r->replicas.end(),
                              [&name](const auto& replica) { return replica.name == *name; });
      }
      if (victim != r->replicas.end()) {
        replaced = victim->name;
        r->stale.push_back(
            {victim->address, victim->name, static_cast<uint64_t>(std::time(nullptr))});
        r->replicas.erase(victim);
      }
      (void)service_.registry_.Save();
    }
  }
  if (!replaced.empty()) {
    if (auto backend = engine_->RemoveReplica(replaced)) (void)backend;
    std::lock_guard lock(ctx_->mutex);
    ctx_->targets.erase(replaced);
  }
  service_.QueueChanged(volume_);
  LogInfo(what_ + ": replica " + fresh_.name + " is RW" +
          (replaced.empty() ? "" : "; replica " + replaced + " is stale"));
  // A replica on a draining replicad is not needed any more.
  if (replaced.empty()) {
    Status dropped = service_.DropLeavingReplica(volume_, ctx_, engine_);
    if (!dropped.ok()) LogWarning(what_ + ": " + dropped.message());
  }
  // The system snapshot has done its job: merge it away.
  {
    std::lock_guard lock(service_.mutex_);
    if (VolumeRecord* r = service_.registry_.FindMutable(volume_)) {
      auto done = service_.CallAllLocked(*r, DeleteSnapshotCall(snapshot_));
      if (!done.ok()) LogWarning(what_ + ": delete system snapshot: " + done.status().message());
    }
  }
}

}  // namespace shorthorn::fused
