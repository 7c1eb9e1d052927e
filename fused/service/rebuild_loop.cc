// Design notes: VolumeService's rebuild loop (DESIGN §5): which attached
// volumes are short of RW replicas (CheckVolumes), and the rebuild job that
// catches up failed replicas or starts a FullRebuild (full_rebuild.h).
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
#include <set>

#include "common/log.h"
#include "common/net.h"
#include "fused/core/rebuild_rules.h"
#include "fused/service/full_rebuild.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

constexpr uint64_t kCopyChunk = 1 << 20;

}  // namespace

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
      // Short of replicas, and how it may be rebuilt: RebuildNeedOf.
      std::vector<RebuildMember> members;
      for (const auto& st : states) {
        RebuildMember m;
        m.name = st.name;
        m.mode = st.mode == ReplicaMode::kRW   ? RebuildMember::Mode::kRw
                 : st.mode == ReplicaMode::kWO ? RebuildMember::Mode::kWo
                                               : RebuildMember::Mode::kErr;
        for (const auto& r : record->replicas) {
          if (r.name != st.name) continue;
          m.on_draining = m.on_draining || DrainingLocked(r.address);
          m.addresses.push_back(r.address);
        }
        if (st.mode == ReplicaMode::kERR) {
          std::vector<std::pair<uint64_t, uint64_t>> missed;
          m.can_catch_up = a.engine->DirtyRanges(st.name, &missed);
          m.failed_at = failed[st.name];
        }
        members.push_back(std::move(m));
      }
      RebuildNeed need =
          RebuildNeedOf(members, record->replica_count, rebuild_forced_.count(name) != 0,
                        now_steady, settings_.replenishment_wait);
      if (need.clear_forced) rebuild_forced_.erase(name);
      if (need.short_of_replicas) {
        short_of_replicas.push_back({name, need.allow_full, std::move(need.probe)});
      }
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
  auto live = LiveAttachment(volume, "rebuild volume " + volume);
  if (!live.ok()) return live.status();
  const std::shared_ptr<AttachContext>& ctx = live->ctx;
  const std::shared_ptr<Engine>& engine = live->engine;
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
  return FullRebuild(*this, volume, ctx, engine, job).Run();
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
  JobPacer pacer(job, settings_.rebuild_bandwidth);
  for (auto [s, e] : missed) {
    for (uint64_t off = s; off < e; off += kCopyChunk) {
      uint64_t len = std::min(kCopyChunk, e - off);
      Status copied = engine->Copy(replica, off, len);
      if (!copied.ok()) return copied.WithContext(what);
      done += len;
      job.Update(done, total);
      if (pacer.Throttle(done)) {
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

}  // namespace shorthorn::fused
