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
// Rebuild, per volume short of RW replicas (RebuildLoop every 2 s):
//
//   ERR replica with a record of what it missed, reachable again
//     ──► reattach WO ──► copy the missed ranges (range-locked) ──► generation
//         +1 on RW and it ──► RW                                  (catch-up)
//   otherwise
//     ──► new replica on a replicad holding none of this volume's ──► pause,
//         system snapshot on RW, add it WO, resume ──► generation +1 on RW
//     ──► REBUILD on it (it pulls the immutable layers from an RW replica,
//         verifying checksums) ──► generation +1 on RW and it ──► RW ──► the
//         replaced replica becomes stale (deleted after the stale timeout)
//         ──► the system snapshot is deleted (merged)              (full)

#include <algorithm>
#include <random>
#include <set>

#include "common/log.h"
#include "common/net.h"
#include "config/daemon_config.h"
#include "fused/core/replica_rules.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {

namespace {

constexpr uint64_t kCopyChunk = 1 << 20;

std::string Hex64() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

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
  return rw == 0 ? "faulted" : rw >= count ? "healthy" : "degraded";
}

// ---------------------------------------------------------------- rebuild

void VolumeService::RebuildLoop() {
  std::unique_lock lock(rebuild_mutex_);
  while (!rebuild_stopping_) {
    rebuild_cv_.wait_for(lock, settings_.rebuild_check);
    if (rebuild_stopping_) break;
    lock.unlock();
    CheckVolumes();
    lock.lock();
  }
}

void VolumeService::CheckVolumes() {
  // A volume short of replicas: rebuild it (allow_full) or only try to
  // catch up the failed replicas still within replica-replenishment-wait,
  // once their replicads answer (`probe`).
  struct Short {
    std::string volume;
    bool allow_full = false;
    std::vector<std::string> probe;
  };
  std::vector<Short> short_of_replicas;
  struct Expired {
    std::string volume;
    StaleReplica replica;
    uint64_t epoch;  // the volume's: the stale replica was opened at this or older
  };
  std::vector<Expired> expired;
  auto now_wall = static_cast<uint64_t>(std::time(nullptr));
  const auto now_steady = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    std::erase_if(failed_at_, [this](const auto& e) { return attached_.count(e.first) == 0; });
    for (const auto& [name, a] : attached_) {
      const VolumeRecord* record = registry_.Find(name);
      if (record == nullptr) continue;
      auto states = a.engine->Replicas();
      auto& failed = failed_at_[name];
      std::set<std::string> err;
      for (const auto& st : states) {
        if (st.mode == ReplicaMode::kERR) {
          err.insert(st.name);
          failed.try_emplace(st.name, now_steady);
        }
      }
      std::erase_if(failed, [&err](const auto& e) { return err.count(e.first) == 0; });
      // Usable replicas not on a draining replicad, and those on one.
      size_t usable = 0, leaving = 0, rw = 0;
      for (const auto& st : states) {
        if (st.mode == ReplicaMode::kERR) continue;
        rw += st.mode == ReplicaMode::kRW;
        bool on_draining = false;
        for (const auto& r : record->replicas) {
          on_draining = on_draining || (r.name == st.name && DrainingLocked(r.address));
        }
        (on_draining ? leaving : usable)++;
      }
      if (rw == 0) continue;
      const bool forced = rebuild_forced_.count(name) != 0;
      if (usable >= record->replica_count) {
        rebuild_forced_.erase(name);
        if (leaving > 0) short_of_replicas.push_back({name, true, {}});  // drop it
        continue;
      }
      // Failed replicas that can catch up and are still within the wait.
      Short entry{name, false, {}};
      size_t waiting = 0;
      for (const auto& st : states) {
        if (st.mode != ReplicaMode::kERR) continue;
        std::vector<std::pair<uint64_t, uint64_t>> missed;
        const bool can_catch_up = a.engine->DirtyRanges(st.name, &missed);
        if (!can_catch_up) continue;
        for (const auto& r : record->replicas) {
          if (r.name == st.name) entry.probe.push_back(r.address);
        }
        if (!ReplacementDue(true, failed[st.name], now_steady, settings_.replenishment_wait,
                            forced)) {
          waiting++;
        }
      }
      entry.allow_full = record->replica_count - usable > waiting;
      if (entry.allow_full) entry.probe.clear();
      short_of_replicas.push_back(std::move(entry));
    }
    for (const auto& [name, record] : registry_.volumes()) {
      for (const auto& s : record.stale) {
        auto timeout =
            std::chrono::duration_cast<std::chrono::seconds>(settings_.stale_replica_timeout)
                .count();
        if (now_wall - s.since >= static_cast<uint64_t>(timeout)) {
          expired.push_back({name, s, record.epoch});
        }
      }
    }
  }
  for (const auto& [volume, s, epoch] : expired) {
    Status deleted =
        ReplicaClient::DeleteReplica({s.address, volume, s.name}, epoch, settings_.client);
    // Moved: another fused imported the volume; the replica is not ours.
    if (!deleted.ok() && deleted.kind() != ErrorKind::kNotFound &&
        deleted.kind() != ErrorKind::kMoved) {
      continue;  // retry later
    }
    std::lock_guard lock(mutex_);
    if (VolumeRecord* record = registry_.FindMutable(volume)) {
      std::erase_if(record->stale, [&](const StaleReplica& r) { return r.name == s.name; });
      (void)registry_.Save();
      LogInfo("volume " + volume + ": deleted stale replica " + s.name + " on " + s.address);
    }
  }
  // A volume that only waits for its failed replicas starts a catch-up
  // when one of their replicads answers (asked once per pass, briefly).
  std::map<std::string, bool> answers;
  ClientOptions probe = settings_.client;
  probe.connect = std::min<std::chrono::milliseconds>(probe.connect, std::chrono::seconds(1));
  probe.request = std::min<std::chrono::milliseconds>(probe.request, std::chrono::seconds(2));
  std::erase_if(short_of_replicas, [&](const Short& e) {
    if (e.allow_full) return false;
    bool any = false;
    for (const auto& address : e.probe) {
      auto [it, added] = answers.try_emplace(address, false);
      if (added) it->second = ReplicaClient::Info(address, probe).ok();
      any = any || it->second;
    }
    return !any;
  });
  auto now = std::chrono::steady_clock::now();
  // Started under mutex_: Snapshot checks for a running rebuild under it
  // and holds it while the snapshot is taken, so a catch-up never starts
  // in between (issue 15, hole 2).
  std::lock_guard lock(mutex_);
  for (const auto& [volume, allow_full, probed] : short_of_replicas) {
    // A scrub's or resync's replicas catch up when it ends.
    if (jobs_.Running(volume, "rebuild") || jobs_.Running(volume, "scrub") ||
        jobs_.Running(volume, "resync")) {
      continue;
    }
    if (auto it = rebuild_backoff_.find(volume); it != rebuild_backoff_.end() && it->second > now) {
      continue;
    }
    rebuild_backoff_[volume] = now + std::chrono::seconds(10);
    jobs_.Start("rebuild", volume, "", true, [this, volume, full = allow_full](JobHandle& job) {
      return RunRebuild(volume, full, job);
    });
  }
  // Scheduled scrubs (scrub-interval): a healthy volume with two or more RW
  // replicas, interval after its attach or its last scheduled scrub.
  if (settings_.scrub_interval.count() == 0) return;
  std::erase_if(next_scrub_, [this](const auto& e) { return attached_.count(e.first) == 0; });
  for (const auto& [name, a] : attached_) {
    const VolumeRecord* record = registry_.Find(name);
    if (record == nullptr || a.engine->Count(ReplicaMode::kRW) < 2 ||
        a.engine->Count(ReplicaMode::kRW) < record->replica_count) {
      continue;
    }
    auto [it, added] = next_scrub_.try_emplace(name, now + settings_.scrub_interval);
    if (added || it->second > now) continue;
    bool busy = false;
    for (const char* kind : {"scrub", "rebuild", "resync"})
      busy = busy || jobs_.Running(name, kind);
    if (busy) continue;
    it->second = now + settings_.scrub_interval;
    LogInfo("volume " + name + ": scheduled scrub");
    const std::string volume = name;
    jobs_.Start("scrub", volume, "", true,
                [this, volume](JobHandle& job) { return RunScrub(volume, job); });
  }
}

Status VolumeService::RunRebuild(const std::string& volume, bool allow_full, JobHandle& job) {
  Status s = RebuildOnce(volume, allow_full, job);
  std::lock_guard lock(mutex_);
  if (s.ok()) {
    rebuild_failures_.erase(volume);
    rebuild_notes_.erase(volume);
  } else if (!job.cancelled()) {
    rebuild_failures_[volume] = {std::chrono::steady_clock::now(), s.message()};
  }
  return s;
}

Status VolumeService::RebuildOnce(const std::string& volume, bool allow_full, JobHandle& job) {
  std::shared_ptr<AttachContext> ctx;
  std::shared_ptr<Engine> engine;
  {
    std::lock_guard lock(mutex_);
    auto it = attached_.find(volume);
    if (it == attached_.end()) {
      return Status(ErrorKind::kBusy, "rebuild volume " + volume + ": it is not attached");
    }
    ctx = it->second.ctx;
    engine = it->second.engine;
  }
  // A replica that was away briefly only needs what it missed.
  Status caught(ErrorKind::kFailed,
                "rebuild volume " + volume + ": no failed replica can catch up");
  for (const auto& r : engine->Replicas()) {
    if (r.mode != ReplicaMode::kERR) continue;
    std::vector<std::pair<uint64_t, uint64_t>> missed;
    if (!engine->DirtyRanges(r.name, &missed)) continue;
    Status s = CatchUp(volume, ctx, engine, r.name, job);
    if (s.ok()) return s;
    LogWarning("rebuild volume " + volume + ": catch-up of replica " + r.name +
               " not possible: " + s.message());
    caught = s;
    if (job.cancelled()) return s;
  }
  if (!allow_full) return caught;
  // Enough usable replicas but one is on a draining replicad: drop it.
  SH_RETURN_IF_ERROR(DropLeavingReplica(volume, ctx, engine));
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, "volume " + volume + " is gone");
    // Usable replicas not on a draining replicad.
    size_t usable = 0;
    for (const auto& r : record->replicas) {
      for (const auto& st : engine->Replicas()) {
        if (st.name == r.name && st.mode != ReplicaMode::kERR && !DrainingLocked(r.address)) {
          usable++;
        }
      }
    }
    if (usable >= record->replica_count) return Status::Ok();
  }
  return FullRebuild(volume, ctx, engine, job);
}

Status VolumeService::CatchUp(const std::string& volume, const std::shared_ptr<AttachContext>& ctx,
                              const std::shared_ptr<Engine>& engine, const std::string& replica,
                              JobHandle& job) {
  const std::string what = "catch up replica " + replica + " of volume " + volume;
  ReplicaTarget target;
  {
    std::lock_guard lock(ctx->mutex);
    target = ctx->targets.at(replica);
  }
  auto client =
      ReplicaClient::Open(target, ctx->epoch, settings_.connections_per_replica, settings_.client);
  if (!client.ok()) return client.status().WithContext(what);
  if ((*client)->rebuilding()) {
    return Status(ErrorKind::kFailed, what + ": it is half rebuilt");
  }
  if (!AcquireRebuildSlot(target.address, volume, job)) {
    (void)(*client)->Close();
    return Status(ErrorKind::kFailed, what + ": cancelled while queued");
  }
  struct SlotRelease {
    VolumeService* service;
    std::string address;
    ~SlotRelease() { service->ReleaseRebuildSlot(address); }
  } slot{this, target.address};
  SH_RETURN_IF_ERROR(engine->Reattach(replica, std::move(*client)).WithContext(what));
  std::vector<std::pair<uint64_t, uint64_t>> missed;
  if (!engine->DirtyRanges(replica, &missed)) {
    engine->FailReplica(replica, Status(ErrorKind::kFailed, "its record of missed writes is gone"));
    return Status(ErrorKind::kFailed, what + ": the record of what it missed was lost");
  }
  uint64_t total = 0, done = 0;
  for (auto [s, e] : missed) total += e - s;
  LogInfo(what + ": " + std::to_string(total) + " bytes in " + std::to_string(missed.size()) +
          " ranges");
  auto start = std::chrono::steady_clock::now();
  for (auto [s, e] : missed) {
    for (uint64_t off = s; off < e; off += kCopyChunk) {
      uint64_t len = std::min(kCopyChunk, e - off);
      Status copied = engine->Copy(replica, off, len);
      if (!copied.ok()) return copied.WithContext(what);
      done += len;
      job.Update(done, total);
      if (ThrottleJob(job, settings_.rebuild_bandwidth, done, start)) {
        engine->FailReplica(replica, Status(ErrorKind::kFailed, "catch-up cancelled"));
        return Status(ErrorKind::kFailed, what + ": cancelled");
      }
    }
  }
  // Snapshots deleted while it was away (DeleteSnapshot skips ERR
  // replicas): delete them on it too, so that its tree is the others'.
  SH_RETURN_IF_ERROR(DeleteMissedSnapshots(*ctx, engine, replica).WithContext(what));
  // The generation goes to the RW replicas and this one as they are now
  // (one bump at a time per volume: one that fails meanwhile is left out).
  SH_RETURN_IF_ERROR(BumpGeneration(*ctx, replica).status().WithContext(what));
  SH_RETURN_IF_ERROR(engine->SetMode(replica, ReplicaMode::kRW));
  {
    // Back: a later failure starts a new wait (the loop may not have seen
    // it RW in between).
    std::lock_guard lock(mutex_);
    if (auto f = failed_at_.find(volume); f != failed_at_.end()) f->second.erase(replica);
  }
  job.Update(total, total);
  LogInfo(what + ": done, " + std::to_string(total) + " bytes copied");
  return Status::Ok();
}

Status VolumeService::DeleteMissedSnapshots(AttachContext& ctx,
                                            const std::shared_ptr<Engine>& engine,
                                            const std::string& replica) {
  // Names of the snapshots a LIST_LAYERS reply lists as not removed.
  auto live_snapshots = [](const msg::LayerList& layers) {
    std::set<std::string> out;
    for (const auto& s : layers.snapshots) {
      if (!s.removed) out.insert(s.name);
    }
    return out;
  };
  std::string source;
  for (const auto& r : engine->Replicas()) {
    if (r.mode == ReplicaMode::kRW) {
      source = r.name;
      break;
    }
  }
  if (source.empty()) return Status(ErrorKind::kIoError, "no RW replica to compare with", EIO);
  ReplicaTarget source_target, target;
  {
    std::lock_guard lock(ctx.mutex);
    source_target = ctx.targets.at(source);
    target = ctx.targets.at(replica);
  }
  auto theirs = ReplicaClient::ListLayers(source_target, ctx.epoch, settings_.client);
  if (!theirs.ok()) return theirs.status();
  auto mine = ReplicaClient::ListLayers(target, ctx.epoch, settings_.client);
  if (!mine.ok()) return mine.status();
  std::set<std::string> keep = live_snapshots(*theirs);
  for (const auto& name : live_snapshots(*mine)) {
    if (keep.count(name) != 0) continue;
    Status deleted = ReplicaClient::DeleteSnapshot(target, ctx.epoch, name, settings_.client);
    if (!deleted.ok() && deleted.kind() != ErrorKind::kNotFound) {
      return deleted.WithContext("delete snapshot " + name + ", deleted while it was away");
    }
    LogInfo("volume " + ctx.volume + ": replica " + replica + ": deleted snapshot " + name +
            ", deleted while it was away");
  }
  return Status::Ok();
}

Status VolumeService::FullRebuild(const std::string& volume,
                                  const std::shared_ptr<AttachContext>& ctx,
                                  const std::shared_ptr<Engine>& engine, JobHandle& job) {
  const std::string what = "rebuild volume " + volume;
  // Where: placed by the rules (PlaceReplicas) among the configured
  // replicads and those of failed replicas (tried first: that is where the
  // operator put them); never one that holds a usable replica of the
  // volume. Replicas on a draining replicad are leaving: they do not count
  // against the new one's host.
  std::vector<std::string> err_addresses;
  std::map<std::string, std::string> holders;  // address -> usable replica there
  VolumeRecord record;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* r = registry_.Find(volume);
    if (r == nullptr) return Status(ErrorKind::kNotFound, what + ": the volume is gone");
    record = *r;
  }
  auto states = engine->Replicas();
  for (const auto& rec : record.replicas) {
    ReplicaMode mode = ReplicaMode::kERR;
    for (const auto& st : states) {
      if (st.name == rec.name) mode = st.mode;
    }
    if (mode == ReplicaMode::kERR) {
      err_addresses.push_back(rec.address);
    } else {
      holders[rec.address] = rec.name;
    }
  }
  std::string source_name;
  for (const auto& st : states) {
    if (st.mode == ReplicaMode::kRW) {
      source_name = st.name;
      break;
    }
  }
  if (source_name.empty()) return Status(ErrorKind::kIoError, what + ": no RW replica to copy");
  ReplicaTarget source;
  {
    std::lock_guard lock(ctx->mutex);
    source = ctx->targets.at(source_name);
  }
  auto [request, candidates] = PlacementFor(record, 1, holders, err_addresses);
  auto note = [this, &volume](const std::string& text) {
    {
      std::lock_guard lock(mutex_);
      if (text.empty()) {
        rebuild_notes_.erase(volume);
      } else {
        rebuild_notes_[volume] = text;
      }
    }
    QueueChanged(volume);
  };

  ReplicaRecord fresh;
  for (;;) {
    auto placed = PlaceReplicas(settings_.placement, request, candidates);
    if (!placed.ok()) {
      note("no replicad can take a new replica: " + placed.status().message());
      return placed.status().WithContext(what);
    }
    for (const auto& w : placed->warnings) LogWarning(what + ": " + w);
    const std::string address = placed->chosen.front();
    if (!AcquireRebuildSlot(address, volume, job)) {
      return Status(ErrorKind::kFailed, what + ": cancelled while queued");
    }
    ReplicaRecord r{address, volume.substr(0, 46) + "-" + Hex64()};
    Status created = ReplicaClient::CreateReplica({address, volume, r.name}, record.size,
                                                  settings_.client, /*rebuilding=*/true);
    if (created.ok()) {
      fresh = r;
      break;
    }
    ReleaseRebuildSlot(address);
    LogWarning(what + ": create a replica on " + address + ": " + created.message());
    for (auto& c : candidates) {
      if (c.address == address) c.excluded = "create failed: " + created.message();
    }
    if (created.kind() == ErrorKind::kUnavailable) {
      // The request may still arrive (a cut link that heals): remember the
      // name so the stale-replica sweep deletes it once reachable.
      std::lock_guard lock(mutex_);
      if (VolumeRecord* rec = registry_.FindMutable(volume)) {
        rec->stale.push_back({address, r.name, 0});
        (void)registry_.Save();
      }
    }
  }
  note("");
  struct SlotRelease {
    VolumeService* service;
    std::string address;
    ~SlotRelease() { service->ReleaseRebuildSlot(address); }
  } slot{this, fresh.address};
  ReplicaTarget target{fresh.address, volume, fresh.name};
  auto cleanup = [&](const Status& why) {
    engine->RemoveReplica(fresh.name);
    {
      std::lock_guard lock(ctx->mutex);
      ctx->targets.erase(fresh.name);
    }
    {
      std::lock_guard lock(mutex_);
      if (VolumeRecord* r = registry_.FindMutable(volume)) {
        std::erase_if(r->replicas, [&](const ReplicaRecord& x) { return x.name == fresh.name; });
        (void)registry_.Save();
      }
    }
    (void)ReplicaClient::DeleteReplica(target, ctx->epoch, settings_.client);
    QueueChanged(volume);
    return why;
  };
  auto client =
      ReplicaClient::Open(target, ctx->epoch, settings_.connections_per_replica, settings_.client);
  if (!client.ok()) {
    (void)ReplicaClient::DeleteReplica(target, ctx->epoch, settings_.client);
    return client.status().WithContext(what);
  }
  {
    std::lock_guard lock(mutex_);
    if (VolumeRecord* r = registry_.FindMutable(volume)) {
      r->replicas.push_back(fresh);
      (void)registry_.Save();
    }
  }
  {
    std::lock_guard lock(ctx->mutex);
    ctx->targets[fresh.name] = target;
  }
  // Everything older than the new replica's head becomes immutable.
  const std::string snapshot = "rebuild-" + Hex64().substr(0, 12);
  Status paused = engine->Pause();
  if (!paused.ok()) {
    engine->Resume();
    return cleanup(paused.WithContext(what));
  }
  std::vector<std::string> rw;
  Status snap;
  for (const auto& st : engine->Replicas()) {
    if (st.mode != ReplicaMode::kRW) continue;
    ReplicaTarget t;
    {
      std::lock_guard lock(ctx->mutex);
      t = ctx->targets.at(st.name);
    }
    // A system snapshot: no "created" (the replica's clock), not user-made.
    Status reply = ReplicaClient::Snapshot(
        t, ctx->epoch, {snapshot, std::nullopt, /*user_created=*/false}, settings_.client);
    if (reply.ok()) {
      rw.push_back(st.name);
    } else {
      engine->FailReplica(st.name, reply);
      if (snap.ok()) snap = reply;
    }
  }
  if (!rw.empty()) {
    engine->AddReplica(
        {fresh.name, std::move(*client), ReplicaMode::kWO, IsLocalAddress(fresh.address)});
    engine->InvalidateDirty();
  }
  engine->Resume();
  if (rw.empty()) return cleanup(snap.WithContext(what + ": system snapshot"));
  if (std::find(rw.begin(), rw.end(), source_name) == rw.end()) source_name = rw.front();
  {
    std::lock_guard lock(ctx->mutex);
    source = ctx->targets.at(source_name);
  }
  Status s = BumpGeneration(*ctx).status();
  if (!s.ok()) return cleanup(s.WithContext(what));
  QueueChanged(volume);
  LogInfo(what + ": new replica " + fresh.name + " on " + fresh.address + " copies from " +
          source_name + " (system snapshot " + snapshot + ")");

  msg::RebuildRequest rebuild{source.address, volume,   source.replica,
                              ctx->epoch,     snapshot, settings_.rebuild_bandwidth};
  Status started = ReplicaClient::Rebuild(target, ctx->epoch, rebuild, settings_.client);
  if (!started.ok()) return cleanup(started.WithContext(what));
  for (;;) {
    if (job.WaitCancelled(std::chrono::milliseconds(250))) {
      return cleanup(Status(ErrorKind::kFailed, what + ": cancelled"));
    }
    auto layers = ReplicaClient::ListLayers(target, ctx->epoch, settings_.client);
    if (!layers.ok()) return cleanup(layers.status().WithContext(what));
    uint64_t done = 0, total = 0;
    for (const auto& t : layers->tasks) {
      if (t.op == "rebuild") {
        done = t.done_bytes;
        total = t.total_bytes;
      }
    }
    job.Update(done, total);
    const msg::RebuildState& state = layers->rebuild;
    if (state.state == "failed") {
      return cleanup(Status(ErrorKind::kFailed, what + ": " + state.message));
    }
    if (state.state == "done") {
      // The copy may end between two polls: take the final count from the
      // replica's rebuild record.
      uint64_t bytes = state.bytes;
      job.Update(std::max(bytes, done), std::max({bytes, done, total}));
      break;
    }
    bool wo = false;
    for (const auto& r : engine->Replicas()) {
      wo = wo || (r.name == fresh.name && r.mode == ReplicaMode::kWO);
    }
    if (!wo) return cleanup(Status(ErrorKind::kFailed, what + ": the new replica failed"));
  }
  s = BumpGeneration(*ctx, fresh.name).status();
  if (!s.ok()) return cleanup(s.WithContext(what));
  SH_RETURN_IF_ERROR(engine->SetMode(fresh.name, ReplicaMode::kRW));
  // The replaced replica is stale from now on.
  std::string replaced;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* r = registry_.FindMutable(volume);
    if (r != nullptr && r->replicas.size() > r->replica_count) {
      auto states_now = engine->Replicas();
      // The replaced one: a failed replica, one that cannot catch up first
      // (one that can may still be waiting to).
      auto victim = r->replicas.end();
      for (auto it = r->replicas.begin(); it != r->replicas.end(); ++it) {
        bool usable = false;
        for (const auto& st : states_now) {
          usable = usable || (st.name == it->name && st.mode != ReplicaMode::kERR);
        }
        if (usable) continue;
        std::vector<std::pair<uint64_t, uint64_t>> missed;
        if (victim == r->replicas.end() || !engine->DirtyRanges(it->name, &missed)) victim = it;
        if (!engine->DirtyRanges(it->name, &missed)) break;
      }
      if (victim != r->replicas.end()) {
        replaced = victim->name;
        r->stale.push_back(
            {victim->address, victim->name, static_cast<uint64_t>(std::time(nullptr))});
        r->replicas.erase(victim);
      }
      (void)registry_.Save();
    }
  }
  if (!replaced.empty()) {
    if (auto backend = engine->RemoveReplica(replaced)) (void)backend;
    std::lock_guard lock(ctx->mutex);
    ctx->targets.erase(replaced);
  }
  QueueChanged(volume);
  LogInfo(what + ": replica " + fresh.name + " is RW" +
          (replaced.empty() ? "" : "; replica " + replaced + " is stale"));
  // A replica on a draining replicad is not needed any more.
  if (replaced.empty()) {
    Status dropped = DropLeavingReplica(volume, ctx, engine);
    if (!dropped.ok()) LogWarning(what + ": " + dropped.message());
  }
  // The system snapshot has done its job: merge it away.
  {
    std::lock_guard lock(mutex_);
    if (VolumeRecord* r = registry_.FindMutable(volume)) {
      auto done = CallAllLocked(*r, DeleteSnapshotCall(snapshot));
      if (!done.ok()) LogWarning(what + ": delete system snapshot: " + done.status().message());
    }
  }
  return Status::Ok();
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
    // Least useful first: ERR (or unknown), then WO, then remote RW, then local RW.
    auto rank = [&](const ReplicaRecord& r) {
      if (it == attached_.end()) return 0;
      for (const auto& st : it->second.engine->Replicas()) {
        if (st.name != r.name) continue;
        if (st.mode == ReplicaMode::kERR) return 0;
        if (st.mode == ReplicaMode::kWO) return 1;
        return IsLocalAddress(r.address) ? 3 : 2;
      }
      return 0;
    };
    std::vector<ReplicaRecord> sorted = record->replicas;
    std::stable_sort(
        sorted.begin(), sorted.end(),
        [&](const ReplicaRecord& a, const ReplicaRecord& b) { return rank(a) < rank(b); });
    while (record->replicas.size() > count && !sorted.empty()) {
      ReplicaRecord victim = sorted.front();
      sorted.erase(sorted.begin());
      if (it != attached_.end()) {
        size_t rw = it->second.engine->Count(ReplicaMode::kRW);
        if (rank(victim) >= 2 && rw <= 1) break;  // never drop the last RW replica
        if (auto backend = it->second.engine->RemoveReplica(victim.name)) (void)backend->Close();
        std::lock_guard clock(it->second.ctx->mutex);
        it->second.ctx->targets.erase(victim.name);
      }
      std::erase_if(record->replicas,
                    [&](const ReplicaRecord& r) { return r.name == victim.name; });
      drop.push_back(Target(*record, victim));
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
