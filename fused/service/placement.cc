// Design notes: VolumeService's placement of replicas (doc/dbus-api.md,
// "Placement").
//
// Facts. Placement asks each candidate replicad for its host id, tags and
// space (REPLICAD_INFO), in parallel, outside mutex_, and hands them to the
// pure rule PlaceReplicas (fused/core/replica_rules.h).
//
// Rebuild slots. A rebuild or catch-up onto replicad A takes one of A's
// slots (concurrent-rebuilds-per-replicad) before it copies; the others
// wait in state "queued", which the job and RobustnessReason show.
//
// Drain. DrainReplicad records A as draining (registry): placement never
// chooses it, and the rebuild loop treats a usable replica there as one to
// move: a new replica is placed and rebuilt, then the one on A is deleted
// (DropLeavingReplica). The drain job takes the volumes one at a time,
// attaching a detached one in maintenance mode for the move.

#include <algorithm>
#include <future>
#include <set>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

Status CheckAddress(const std::string& what, const std::string& address) {
  return ParseHostPort(address).status().WithContext(what);
}

}  // namespace

std::vector<PlacementCandidate> VolumeService::GatherCandidates(
    const std::vector<std::string>& addresses, const std::set<std::string>& draining) {
  std::vector<std::string> unique;
  for (const auto& a : addresses) {
    if (std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(a);
  }
  std::vector<std::future<Result<ReplicadFacts>>> asked;
  asked.reserve(unique.size());
  for (const auto& a : unique) {
    asked.push_back(std::async(std::launch::async,
                               [this, a] { return ReplicaClient::Info(a, settings_.client); }));
  }
  std::vector<PlacementCandidate> out;
  for (size_t i = 0; i < unique.size(); ++i) {
    PlacementCandidate c;
    c.address = unique[i];
    auto facts = asked[i].get();
    if (facts.ok()) {
      c.reachable = true;
      c.host_id = facts->host_id;
      c.tags = facts->tags;
      c.total_bytes = facts->total_bytes;
      c.free_bytes = facts->free_bytes;
      c.provisioned_bytes = facts->provisioned_bytes;
      c.replicas = facts->replicas;
    } else {
      c.error = facts.status().message();
    }
    if (draining.count(c.address) != 0) c.excluded = "draining";
    out.push_back(std::move(c));
  }
  return out;
}

VolumeService::PlacementInput VolumeService::PlacementFor(
    const VolumeRecord& record, size_t count, const std::map<std::string, std::string>& holders,
    const std::vector<std::string>& preferred) {
  std::set<std::string> draining;
  {
    std::lock_guard lock(mutex_);
    draining.insert(registry_.draining().begin(), registry_.draining().end());
  }
  std::vector<std::string> addresses;
  for (const auto& r : record.replicas) addresses.push_back(r.address);
  addresses.insert(addresses.end(), settings_.default_replicads.begin(),
                   settings_.default_replicads.end());
  PlacementInput in;
  in.candidates = GatherCandidates(addresses, draining);
  in.request.size = record.size;
  in.request.initial_bytes = record.actual_size;
  in.request.count = count;
  in.request.required_tags = record.replica_tags;
  in.request.preferred = preferred;
  for (auto& c : in.candidates) {
    auto h = holders.find(c.address);
    if (h == holders.end()) continue;
    if (c.excluded.empty()) c.excluded = "holds replica " + h->second + " of this volume";
    // A replica on a draining replicad is leaving: its host does not count.
    if (draining.count(c.address) == 0) {
      in.request.kept.push_back({c.address, c.host_id, ZoneOf(c.tags)});
    }
  }
  return in;
}

bool VolumeService::DrainingLocked(const std::string& address) const {
  const auto& d = registry_.draining();
  return std::find(d.begin(), d.end(), address) != d.end();
}

bool VolumeService::AcquireRebuildSlot(const std::string& address, const std::string& volume,
                                       JobHandle& job) {
  const uint32_t limit = std::max<uint32_t>(1, settings_.rebuilds_per_replicad);
  bool queued = false;
  for (;;) {
    {
      std::lock_guard lock(slots_mutex_);
      uint32_t& running = rebuilds_running_[address];
      if (running < limit) {
        running++;
        break;
      }
    }
    if (!queued) {
      queued = true;
      const std::string why = "queued: replicad " + address + " already runs " +
                              std::to_string(limit) +
                              " rebuild(s) (concurrent-rebuilds-per-replicad)";
      job.SetQueued(why);
      {
        std::lock_guard lock(mutex_);
        rebuild_notes_[volume] = "rebuild " + why;
      }
      QueueChanged(volume);
      LogInfo("volume " + volume + ": rebuild " + why);
    }
    std::unique_lock lock(slots_mutex_);
    slots_cv_.wait_for(lock, std::chrono::milliseconds(500));
    lock.unlock();
    if (job.cancelled()) return false;
  }
  if (queued) {
    job.SetQueued("");
    {
      std::lock_guard lock(mutex_);
      rebuild_notes_.erase(volume);
    }
    QueueChanged(volume);
  }
  return true;
}

void VolumeService::ReleaseRebuildSlot(const std::string& address) {
  {
    std::lock_guard lock(slots_mutex_);
    auto it = rebuilds_running_.find(address);
    if (it != rebuilds_running_.end() && --it->second == 0) rebuilds_running_.erase(it);
  }
  slots_cv_.notify_all();
}

std::string VolumeService::RobustnessReasonLocked(const VolumeRecord& record) {
  auto it = attached_.find(record.name);
  if (it == attached_.end()) return "";
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  auto states = it->second.engine->Replicas();
  size_t rw = 0;
  for (const auto& st : states) rw += st.mode == ReplicaMode::kRW;
  const auto now_steady = std::chrono::steady_clock::now();
  const auto now_wall = std::chrono::system_clock::now();
  auto wall = [&](std::chrono::steady_clock::time_point t) {
    auto at =
        now_wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - now_steady);
    return Rfc3339(std::chrono::system_clock::to_time_t(at));
  };
  const bool forced = rebuild_forced_.count(record.name) != 0;
  auto failed = failed_at_.find(record.name);
  for (const auto& r : record.replicas) {
    const ReplicaState* st = nullptr;
    for (const auto& s : states) {
      if (s.name == r.name) st = &s;
    }
    if (st == nullptr) {
      add("replica " + r.name + " on " + r.address + " was left out at attach");
      continue;
    }
    if (st->mode == ReplicaMode::kWO) {
      add("replica " + r.name + " on " + r.address + " is being rebuilt");
      continue;
    }
    if (st->mode == ReplicaMode::kRW) {
      if (DrainingLocked(r.address) && rw > 0) {
        add("replica " + r.name + " on " + r.address + " is to move off the draining replicad");
      }
      continue;
    }
    std::string part = "replica " + r.name + " on " + r.address + " failed";
    std::chrono::steady_clock::time_point at = now_steady;
    if (failed != failed_at_.end()) {
      if (auto f = failed->second.find(r.name); f != failed->second.end()) at = f->second;
    }
    part += " at " + wall(at);
    std::vector<std::pair<uint64_t, uint64_t>> missed;
    const bool can_catch_up = it->second.engine->DirtyRanges(r.name, &missed);
    if (!can_catch_up) {
      part += "; it cannot catch up (no record of what it missed): rebuilt anew";
    } else if (!ReplacementDue(true, at, now_steady, settings_.replenishment_wait, forced)) {
      part += "; it catches up if it returns before " + wall(at + settings_.replenishment_wait) +
              ", else it is rebuilt elsewhere (Rebuild starts that now)";
    } else {
      part += "; rebuilt elsewhere unless it catches up first";
    }
    add(part);
  }
  if (auto n = rebuild_notes_.find(record.name); n != rebuild_notes_.end()) add(n->second);
  if (rw >= record.replica_count && out.find("draining") == std::string::npos) {
    // Healthy: only a note that still matters is kept.
    return rebuild_notes_.count(record.name) != 0 ? rebuild_notes_.at(record.name) : "";
  }
  return out;
}

Status VolumeService::Rebuild(const std::string& volume, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Rebuild", options, {}));
  const std::string what = "rebuild volume " + volume;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* record = registry_.Find(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    auto it = attached_.find(volume);
    if (it == attached_.end()) {
      return Status(ErrorKind::kBusy,
                    what + ": it is not attached (attach it, in maintenance mode if need be)");
    }
    size_t usable =
        it->second.engine->Count(ReplicaMode::kRW) + it->second.engine->Count(ReplicaMode::kWO);
    if (usable >= record->replica_count) {
      return Status(ErrorKind::kInvalidArgument,
                    what + ": no replica is missing (" + std::to_string(usable) + " of " +
                        std::to_string(record->replica_count) + " usable)");
    }
    rebuild_forced_.insert(volume);
    rebuild_backoff_.erase(volume);
  }
  LogInfo(what + ": asked to rebuild now, without waiting for failed replicas to return");
  rebuild_cv_.notify_all();
  QueueChanged(volume);
  return Status::Ok();
}

Result<std::vector<ReplicadStatus>> VolumeService::ListReplicads(const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("ListReplicads", options, {}));
  std::vector<std::string> addresses = settings_.default_replicads;
  std::set<std::string> draining;
  std::map<std::string, std::set<std::string>> volumes_on;  // address -> volumes
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, record] : registry_.volumes()) {
      for (const auto& r : record.replicas) {
        addresses.push_back(r.address);
        volumes_on[r.address].insert(name);
      }
    }
    for (const auto& a : registry_.draining()) {
      addresses.push_back(a);
      draining.insert(a);
    }
  }
  auto candidates = GatherCandidates(addresses, {});
  std::vector<ReplicadStatus> out;
  for (const auto& c : candidates) {
    ReplicadStatus s;
    s.address = c.address;
    s.host_id = c.host_id;
    s.tags = c.tags;
    s.total_bytes = c.total_bytes;
    s.free_bytes = c.free_bytes;
    s.provisioned_bytes = c.provisioned_bytes;
    {
      std::lock_guard lock(slots_mutex_);
      if (auto it = rebuilds_running_.find(c.address); it != rebuilds_running_.end()) {
        s.rebuilds = it->second;
      }
    }
    const size_t left = volumes_on.count(c.address) ? volumes_on[c.address].size() : 0;
    if (!c.reachable) {
      s.state = ReplicadState::kUnreachable;
      s.message = c.error;
    } else {
      s.state = draining.count(c.address) ? ReplicadState::kDraining : ReplicadState::kUp;
      if (draining.count(c.address)) {
        s.message = std::to_string(left) + " volume(s) of this fused still have a replica here";
      }
    }
    s.replicas = c.replicas;
    out.push_back(std::move(s));
  }
  return out;
}

Result<uint64_t> VolumeService::DrainReplicad(const std::string& address, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("DrainReplicad", options, {}));
  const std::string what = "drain replicad " + address;
  SH_RETURN_IF_ERROR(CheckAddress(what, address));
  std::lock_guard lock(mutex_);
  if (auto it = drain_jobs_.find(address); it != drain_jobs_.end()) {
    auto job = jobs_.Get(it->second);
    if (job.ok() && JobActive(job->state)) {
      return Status(ErrorKind::kBusy,
                    what + ": job " + std::to_string(it->second) + " is draining it already");
    }
  }
  if (!DrainingLocked(address)) {
    registry_.draining_mutable().push_back(address);
    Status saved = registry_.Save();
    if (!saved.ok()) {
      registry_.draining_mutable().pop_back();
      return saved.WithContext(what);
    }
    LogInfo(what + ": nothing new is placed there; moving its replicas off");
  }
  uint64_t id = jobs_.Start("drain", "", address, true,
                            [this, address](JobHandle& job) { return RunDrain(address, job); });
  drain_jobs_[address] = id;
  rebuild_cv_.notify_all();
  return id;
}

Status VolumeService::UndrainReplicad(const std::string& address, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("UndrainReplicad", options, {}));
  const std::string what = "undrain replicad " + address;
  SH_RETURN_IF_ERROR(CheckAddress(what, address));
  std::optional<uint64_t> job;
  {
    std::lock_guard lock(mutex_);
    auto& d = registry_.draining_mutable();
    auto it = std::find(d.begin(), d.end(), address);
    if (it == d.end()) return Status(ErrorKind::kNotFound, what + ": it is not draining");
    d.erase(it);
    SH_RETURN_IF_ERROR(registry_.Save().WithContext(what));
    if (auto j = drain_jobs_.find(address); j != drain_jobs_.end()) {
      job = j->second;
      drain_jobs_.erase(j);
    }
  }
  if (job) (void)jobs_.Cancel(*job);
  LogInfo(what + ": it takes new replicas again");
  return Status::Ok();
}

Status VolumeService::RunDrain(const std::string& address, JobHandle& job) {
  const std::string what = "drain replicad " + address;
  const auto started = std::chrono::steady_clock::now();
  size_t moved = 0;
  std::set<std::string> tried;
  for (;;) {
    if (job.cancelled()) return Status(ErrorKind::kFailed, what + ": cancelled");
    std::string volume;
    size_t left = 0;
    {
      std::lock_guard lock(mutex_);
      if (!DrainingLocked(address)) return Status(ErrorKind::kFailed, what + ": undrained");
      for (const auto& [name, record] : registry_.volumes()) {
        bool here = false;
        for (const auto& r : record.replicas) here = here || r.address == address;
        if (!here) continue;
        left++;
        if (volume.empty() && tried.count(name) == 0) volume = name;
      }
    }
    job.Update(moved, moved + left);
    if (left == 0) {
      job.SetResult("replicad " + address + " holds no replica of this fused's volumes (" +
                    std::to_string(moved) + " moved)");
      LogInfo(what + ": done, " + std::to_string(moved) + " replica(s) moved");
      return Status::Ok();
    }
    if (volume.empty()) {
      return Status(ErrorKind::kFailed,
                    what + ": " + std::to_string(left) + " volume(s) still have a replica there");
    }
    tried.insert(volume);
    bool attach_for_move = false;
    {
      std::lock_guard lock(mutex_);
      attach_for_move = attached_.count(volume) == 0;
    }
    if (attach_for_move) {
      auto attached = Attach(volume, {{"maintenance", true}});
      if (!attached.ok()) {
        return attached.status().WithContext(what + ": attach volume " + volume +
                                             " in maintenance mode to move its replica");
      }
      LogInfo(what + ": attached volume " + volume + " in maintenance mode to move its replica");
    }
    auto detach = [&] {
      if (!attach_for_move) return;
      Status s = Detach(volume, {});
      if (!s.ok()) LogWarning(what + ": detach volume " + volume + ": " + s.message());
    };
    rebuild_cv_.notify_all();
    Status result;
    for (;;) {
      if (job.WaitCancelled(std::chrono::milliseconds(500))) {
        result = Status(ErrorKind::kFailed, what + ": cancelled");
        break;
      }
      std::lock_guard lock(mutex_);
      const VolumeRecord* record = registry_.Find(volume);
      if (record == nullptr) break;  // deleted meanwhile: nothing to move
      bool here = false;
      for (const auto& r : record->replicas) here = here || r.address == address;
      if (!here) {
        moved++;
        break;
      }
      if (attached_.count(volume) == 0) {
        result = Status(ErrorKind::kFailed,
                        what + ": volume " + volume + " was detached before its replica moved");
        break;
      }
      if (auto f = rebuild_failures_.find(volume);
          f != rebuild_failures_.end() && f->second.at > started) {
        result = Status(ErrorKind::kFailed, what + ": volume " + volume + ": " + f->second.message);
        break;
      }
    }
    detach();
    if (!result.ok()) return result;
  }
}

Status VolumeService::DropLeavingReplica(const std::string& volume,
                                         const std::shared_ptr<AttachContext>& ctx,
                                         const std::shared_ptr<Engine>& engine) {
  ReplicaTarget target;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr) return Status::Ok();
    auto states = engine->Replicas();
    size_t others = 0;
    const ReplicaRecord* leaving = nullptr;
    for (const auto& r : record->replicas) {
      bool rw = false;
      for (const auto& st : states) rw = rw || (st.name == r.name && st.mode == ReplicaMode::kRW);
      if (!rw) continue;
      if (DrainingLocked(r.address)) {
        if (leaving == nullptr) leaving = &r;
      } else {
        others++;
      }
    }
    if (leaving == nullptr || others < record->replica_count || others == 0) return Status::Ok();
    target = Target(*record, *leaving);
    epoch = record->epoch;
    if (auto backend = engine->RemoveReplica(leaving->name)) (void)backend->Close();
    {
      std::lock_guard clock(ctx->mutex);
      ctx->targets.erase(leaving->name);
    }
    const std::string name = leaving->name;
    std::erase_if(record->replicas, [&](const ReplicaRecord& r) { return r.name == name; });
    SH_RETURN_IF_ERROR(registry_.Save().WithContext("volume " + volume));
  }
  Status s = ReplicaClient::DeleteReplica(target, epoch, settings_.client);
  if (!s.ok()) {
    LogWarning("volume " + volume + ": delete replica " + target.replica +
               " on draining replicad " + target.address + ": " + s.message() + " (left there)");
  } else {
    LogInfo("volume " + volume + ": moved off draining replicad " + target.address +
            ": deleted replica " + target.replica);
  }
  QueueChanged(volume);
  return Status::Ok();
}

}  // namespace shorthorn::fused
