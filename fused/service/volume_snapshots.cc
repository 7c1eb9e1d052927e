// Design notes: VolumeService's snapshot, revert, expand and verify.
//
//   Snapshot:  pause engine (drain + FLUSH) ──► SNAPSHOT on every replica
//              ──► resume ──► LIST_LAYERS into the registry cache
//   Delete:    DELETE_SNAPSHOT on every replica (each records it durably and
//              merges in the background) ──► job polls LIST_LAYERS until no
//              replica lists the snapshot (or only as "removed")
//   Expand:    pause ──► EXPAND on every replica ──► engine size, FUSE inode,
//              loop capacity ──► resume
//
// Control operations use short-lived connections (ReplicaClient's layer
// ops, typed by common/control_messages.h) at the volume's current epoch,
// so they are fenced like data and work the same attached or detached.
#include <algorithm>
#include <ctime>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "common/names.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
Result<size_t> VolumeService::CallAllLocked(const VolumeRecord& record, const ReplicaCall& call,
                                            ErrorKind also_done) {
  auto it = attached_.find(record.name);
  Engine* engine = it == attached_.end() ? nullptr : it->second.engine.get();
  std::vector<ReplicaState> states;
  if (engine != nullptr) states = engine->Replicas();
  auto is_err = [&states](const std::string& name) {
    for (const auto& s : states) {
      if (s.name == name) return s.mode == ReplicaMode::kERR;
    }
    return true;  // not in the engine: not usable
  };
  size_t replies = 0;
  Status first_error;
  for (size_t i = 0; i < record.replicas.size(); ++i) {
    const ReplicaRecord& r = record.replicas[i];
    if (engine != nullptr && is_err(r.name)) continue;
    Status reply = call(Target(record, r), record.epoch, settings_.client);
    if (reply.ok() || reply.kind() == also_done) {
      replies++;
      continue;
    }
    if (first_error.ok()) first_error = reply;
    if (engine != nullptr && reply.kind() != ErrorKind::kAlreadyExists &&
        reply.kind() != ErrorKind::kNotFound && reply.kind() != ErrorKind::kInvalidArgument &&
        reply.kind() != ErrorKind::kLimitExceeded) {
      engine->FailReplica(r.name, reply);
    }
  }
  // Errors about the request itself (name taken, unknown, limit) are the
  // caller's; a replica that broke is tolerated while one answered attached.
  if (!first_error.ok() &&
      (engine == nullptr || replies == 0 || first_error.kind() == ErrorKind::kAlreadyExists ||
       first_error.kind() == ErrorKind::kNotFound ||
       first_error.kind() == ErrorKind::kInvalidArgument ||
       first_error.kind() == ErrorKind::kLimitExceeded)) {
    return first_error;
  }
  return replies;
}

bool operator==(const SnapshotInfo& a, const SnapshotInfo& b) {
  return a.name == b.name && a.parent == b.parent && a.created == b.created &&
         a.user_created == b.user_created && a.size_held == b.size_held && a.removed == b.removed;
}

Status VolumeService::RefreshLayersLocked(VolumeRecord& record, bool* changed,
                                          std::vector<std::string>* merging) {
  Status last(ErrorKind::kUnavailable, "list layers of volume " + record.name + ": no replica");
  // Attached, an ERR replica may have missed snapshot operations: ask the
  // others.
  std::vector<ReplicaRecord> asked;
  if (auto it = attached_.find(record.name); it != attached_.end()) {
    for (const auto& st : it->second.engine->Replicas()) {
      if (st.mode == ReplicaMode::kERR) continue;
      for (const auto& r : record.replicas) {
        if (r.name == st.name) asked.push_back(r);
      }
    }
  } else {
    asked = record.replicas;
  }
  // Snapshots as the first replica that answers lists them; ActualSize the
  // largest any replica reports (doc/dbus-api.md).
  std::optional<msg::LayerList> first;
  uint64_t actual_size = 0;
  for (const auto& r : asked) {
    auto layers = ReplicaClient::ListLayers(Target(record, r), record.epoch, settings_.client);
    if (!layers.ok()) {
      last = layers.status();
      continue;
    }
    actual_size = std::max(actual_size, layers->actual_size);
    if (!first) first = std::move(*layers);
  }
  if (first) {
    if (merging != nullptr) {
      for (const auto& t : first->tasks) {
        if (t.op == "delete_snapshot") merging->push_back(t.name);
      }
    }
    std::vector<SnapshotInfo> snapshots;
    for (const auto& s : first->snapshots) {
      snapshots.push_back(
          {s.name, s.parent.value_or(""), s.created, s.user_created, s.size_held, s.removed});
    }
    bool differs = actual_size != record.actual_size || !(snapshots == record.snapshots);
    if (changed != nullptr) *changed = differs;
    if (!differs) return Status::Ok();
    record.actual_size = actual_size;
    record.snapshots = std::move(snapshots);
    return registry_.Save();
  }
  return last;
}

void VolumeService::RefreshAttached() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, a] : attached_) names.push_back(name);
  }
  for (const auto& name : names) {
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      VolumeRecord* record = registry_.FindMutable(name);
      if (record == nullptr || attached_.count(name) == 0) continue;
      Status s = RefreshLayersLocked(*record, &changed);
      if (!s.ok()) LogDebug("refresh volume " + name + ": " + s.message());
    }
    if (changed) NotifyChanged(name);
  }
}

std::vector<msg::LayerList> VolumeService::ListLayersUnlocked(const std::string& volume,
                                                              std::vector<std::string>* names) {
  VolumeRecord record;
  std::vector<ReplicaState> states;
  bool attached = false;
  {
    std::lock_guard lock(mutex_);
    const VolumeRecord* r = registry_.Find(volume);
    if (r == nullptr) return {};
    record = *r;
    if (auto it = attached_.find(volume); it != attached_.end()) {
      attached = true;
      states = it->second.engine->Replicas();
    }
  }
  std::vector<msg::LayerList> out;
  for (const auto& r : record.replicas) {
    // Attached, an ERR replica missed the operations the caller waits for
    // (CallAllLocked skips it); it is caught up or replaced later.
    bool usable = !attached;
    for (const auto& st : states)
      usable = usable || (st.name == r.name && st.mode != ReplicaMode::kERR);
    if (!usable) continue;
    auto layers = ReplicaClient::ListLayers(Target(record, r), record.epoch, settings_.client);
    if (!layers.ok()) continue;
    out.push_back(std::move(*layers));
    if (names != nullptr) names->push_back("replica " + r.name + " on " + r.address);
  }
  return out;
}

Status VolumeService::Snapshot(const std::string& volume, const std::string& snapshot,
                               const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Snapshot", options, {}));
  const std::string what = "snapshot volume " + volume;
  SH_RETURN_IF_ERROR(ValidateName("snapshot", snapshot).WithContext(what));
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy) || StandbyLocked(*record, what, &busy)) return busy;
    for (const auto& s : record->snapshots) {
      if (s.name == snapshot) {
        return Status(ErrorKind::kAlreadyExists,
                      what + ": snapshot " + snapshot + " already exists" +
                          (s.removed ? " (removed, waiting to be merged)" : ""));
      }
    }
    if (jobs_.Running(volume, "rebuild") || jobs_.Running(volume, "resync")) {
      return Status(ErrorKind::kBusy,
                    what + ": a replica is being rebuilt; try again when the rebuild job ends");
    }
    if (record->snapshots.size() >= kMaxSnapshots) {
      return Status(ErrorKind::kLimitExceeded, what + ": it already has " +
                                                   std::to_string(kMaxSnapshots) +
                                                   " snapshots, the limit; delete one first");
    }
    auto it = attached_.find(volume);
    std::shared_ptr<Engine> engine = it == attached_.end() ? nullptr : it->second.engine;
    if (engine) {
      Status flushed = engine->Pause();
      if (!flushed.ok()) {
        engine->Resume();
        return flushed.WithContext(what);
      }
    }
    ReplicaCall call = SnapshotCall({snapshot, NowRfc3339(), /*user_created=*/true});
    if (engine) {
      auto done = CallAllLocked(*record, call);
      // An ERR replica missed the snapshot (CallAllLocked skips it): the
      // ranges it missed no longer describe what it lacks, so it may only
      // come back by a full rebuild (issue 15, hole 2).
      engine->InvalidateDirty();
      engine->Resume();
      if (!done.ok()) return done.status().WithContext(what);
    } else {
      SH_RETURN_IF_ERROR(ApplyDetachedLocked(*record, call, what));
    }
    Status refreshed = RefreshLayersLocked(*record);
    if (!refreshed.ok()) LogWarning(what + ": " + refreshed.message());
    LogInfo("volume " + volume + ": snapshot " + snapshot + " created");
  }
  NotifyChanged(volume);
  return Status::Ok();
}

Result<uint64_t> VolumeService::DeleteSnapshot(const std::string& volume,
                                               const std::string& snapshot,
                                               const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("DeleteSnapshot", options, {}));
  const std::string what = "delete snapshot " + snapshot + " of volume " + volume;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr)
      return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    bool known = false;
    for (const auto& s : record->snapshots) known = known || s.name == snapshot;
    if (!known) return Status(ErrorKind::kNotFound, what + ": no such snapshot");
    if (jobs_.Running(volume, "backup")) {
      return Status(ErrorKind::kBusy,
                    what + ": a backup of the volume is running; delete it when the job ends");
    }
    if (cloning_from_.count(volume) != 0) {
      return Status(ErrorKind::kBusy, what +
                                          ": a clone of one of the volume's snapshots is being "
                                          "made; delete it when the clone job ends");
    }
    // A rebuild copies the snapshots the source has when it starts: one
    // deleted meanwhile is missing there, or left behind on the new replica.
    if (jobs_.Running(volume, "rebuild") || jobs_.Running(volume, "resync")) {
      return Status(ErrorKind::kBusy,
                    what + ": a replica is being rebuilt; try again when the rebuild job ends");
    }
    // A replica where the snapshot is gone already (NotFound) has what the
    // delete asks for; the call fails only when none took it.
    if (attached_.count(volume) != 0) {
      auto done = CallAllLocked(*record, DeleteSnapshotCall(snapshot), ErrorKind::kNotFound);
      if (!done.ok()) return done.status().WithContext(what);
    } else {
      SH_RETURN_IF_ERROR(
          ApplyDetachedLocked(*record, DeleteSnapshotCall(snapshot), what, ErrorKind::kNotFound));
    }
  }
  uint64_t id = StartSnapshotDeleteJob(volume, snapshot);
  NotifyChanged(volume);
  return id;
}

uint64_t VolumeService::StartSnapshotDeleteJob(const std::string& volume,
                                               const std::string& snapshot) {
  const std::string what = "delete snapshot " + snapshot + " of volume " + volume;
  return jobs_.Start(
      "delete-snapshot", volume, snapshot, false, [this, volume, snapshot, what](JobHandle& job) {
        for (;;) {
          auto lists = ListLayersUnlocked(volume);
          if (lists.empty()) {
            return Status(ErrorKind::kUnavailable, what + ": no replica answers");
          }
          // A replica the delete did not reach (detached) was left at an
          // older generation: the next attach rebuilds it; not waited for.
          uint64_t current = 0;
          if (auto g = generations_.Get(volume); g.ok()) current = *g;
          uint64_t done = 0, total = 0;
          bool pending = false, kept = false;
          for (const auto& layers : lists) {
            if (layers.generation < current) continue;
            for (const auto& t : layers.tasks) {
              if (t.name != snapshot) continue;
              done += t.done_bytes;
              total += t.total_bytes;
              pending = true;
            }
            if (const msg::SnapshotLayer* s = layers.Find(snapshot)) {
              if (s->removed) {
                kept = true;
              } else {
                pending = true;
              }
            }
          }
          job.Update(done, total);
          if (!pending) {
            {
              std::lock_guard lock(mutex_);
              if (VolumeRecord* record = registry_.FindMutable(volume)) {
                Status s = RefreshLayersLocked(*record);
                if (!s.ok()) LogWarning(what + ": " + s.message());
              }
            }
            NotifyChanged(volume);
            if (kept) {
              LogInfo(what + ": marked removed; its data stays until it has a single child");
            } else {
              LogInfo(what + ": merged");
            }
            return Status::Ok();
          }
          if (job.WaitCancelled(std::chrono::milliseconds(250))) {
            return Status(ErrorKind::kFailed, what + ": fused is stopping; the merge goes on");
          }
        }
      });
}

// Detached, a layer op that reaches only some replicas must not leave the
// others looking current: they keep the old layers (a revert's old data, a
// snapshot too many or too few). The ones it reached get a generation above
// every one in play (and fused records it), so the next attach trusts only
// them and rebuilds the rest (issue 15, hole 3).
Status VolumeService::ApplyDetachedLocked(VolumeRecord& record, const ReplicaCall& call,
                                          const std::string& what, ErrorKind also_done) {
  std::vector<std::string> reached;
  std::string missed;
  Status first;
  for (const auto& r : record.replicas) {
    Status reply = call(Target(record, r), record.epoch, settings_.client);
    if (reply.ok() || reply.kind() == also_done) {
      reached.push_back(r.name);
      continue;
    }
    if (first.ok()) first = reply;
    missed += (missed.empty() ? "" : "; ") + std::string("replica ") + r.name + " (" + r.address +
              "): " + reply.message();
  }
  if (reached.empty()) return first.WithContext(what);
  if (reached.size() == record.replicas.size()) return Status::Ok();
  auto recorded_generation = generations_.Get(record.name);
  if (!recorded_generation.ok()) return recorded_generation.status().WithContext(what);
  uint64_t generation = *recorded_generation;
  AttachContext ctx;
  ctx.volume = record.name;
  ctx.epoch = record.epoch;
  for (const auto& r : record.replicas) {
    if (std::find(reached.begin(), reached.end(), r.name) == reached.end()) continue;
    ctx.targets[r.name] = Target(record, r);
    auto layers = ReplicaClient::ListLayers(Target(record, r), record.epoch, settings_.client);
    if (!layers.ok()) continue;
    generation = std::max(generation, layers->generation);
  }
  generation++;
  Status recorded = ApplyGeneration(ctx, reached, generation);
  if (recorded.ok()) recorded = generations_.Raise(record.name, generation);
  if (!recorded.ok()) {
    LogError(what + ": reached only some replicas and could not mark the others stale: " +
             recorded.message() + "; not reached: " + missed);
    return recorded.WithContext(what + ": reached only some replicas (not: " + missed +
                                ") and could not mark the others stale");
  }
  LogWarning(what + ": not reached, now stale (generation " + std::to_string(generation) +
             " is on the others; the next attach rebuilds them): " + missed);
  return Status::Ok();
}

Status VolumeService::Revert(const std::string& volume, const std::string& snapshot,
                             const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Revert", options, {}));
  const std::string what = "revert volume " + volume + " to snapshot " + snapshot;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr)
      return Status(ErrorKind::kNotFound, what + ": the volume does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy) || StandbyLocked(*record, what, &busy)) return busy;
    auto it = attached_.find(volume);
    if (it != attached_.end() && !it->second.maintenance) {
      return Status(ErrorKind::kBusy,
                    what +
                        ": it is attached with a frontend that may be in use; detach it, or "
                        "attach it with maintenance=true");
    }
    bool known = false;
    for (const auto& s : record->snapshots) known = known || (s.name == snapshot && !s.removed);
    if (!known) return Status(ErrorKind::kNotFound, what + ": no such snapshot");
    // A replica being rebuilt or resynchronized does not hold every snapshot
    // yet (or holds data still to be compared): revert when it is done.
    if (jobs_.Running(volume, "rebuild") || jobs_.Running(volume, "resync")) {
      return Status(ErrorKind::kBusy,
                    what + ": a replica is being rebuilt; try again when the rebuild job ends");
    }
    if (it == attached_.end()) {
      SH_RETURN_IF_ERROR(ApplyDetachedLocked(*record, RevertCall(snapshot), what));
    } else {
      // In maintenance mode a replica that fails is marked ERR, which
      // records a new generation on the others (RecordMembership).
      auto done = CallAllLocked(*record, RevertCall(snapshot));
      // As for Snapshot: an ERR replica was not reverted.
      it->second.engine->InvalidateDirty();
      if (!done.ok()) return done.status().WithContext(what);
    }
    Status refreshed = RefreshLayersLocked(*record);
    if (!refreshed.ok()) LogWarning(what + ": " + refreshed.message());
    LogInfo(what + ": done");
  }
  NotifyChanged(volume);
  return Status::Ok();
}

Status VolumeService::Expand(const std::string& volume, uint64_t size, const Options& options) {
  return ExpandImpl(volume, size, options, false);
}

Status VolumeService::ExpandImpl(const std::string& volume, uint64_t size, const Options& options,
                                 bool standby_apply) {
  SH_RETURN_IF_ERROR(CheckOptions("Expand", options, {}));
  const std::string what = "expand volume " + volume;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    Status busy;
    if (RestoringLocked(volume, what, &busy)) return busy;
    if (!standby_apply && StandbyLocked(*record, what, &busy)) return busy;
    if (size <= record->size) {
      return Status(ErrorKind::kInvalidArgument, what + ": the new size " + std::to_string(size) +
                                                     " is not larger than the current " +
                                                     std::to_string(record->size) +
                                                     " (volumes cannot shrink)");
    }
    if (size % 4096 != 0) {
      return Status(ErrorKind::kInvalidArgument,
                    what + ": the new size " + std::to_string(size) + " is not a multiple of 4096");
    }
    SH_RETURN_IF_ERROR(CheckVolumeSize(what, size, settings_.max_volume_size_gib));
    auto it = attached_.find(volume);
    Attachment* a = it == attached_.end() ? nullptr : &it->second;
    if (a != nullptr) {
      Status flushed = a->engine->Pause();
      if (!flushed.ok()) {
        a->engine->Resume();
        return flushed.WithContext(what);
      }
    }
    auto done = CallAllLocked(*record, ExpandCall(size));
    // As for Snapshot: an ERR replica was not expanded.
    if (a != nullptr) a->engine->InvalidateDirty();
    if (done.ok()) {
      record->size = size;
      Status saved = registry_.Save();
      if (!saved.ok()) LogError(what + ": " + saved.message());
      if (a != nullptr) {
        a->engine->SetSize(size);
        if (!a->maintenance) fuse_.SizeChanged(volume);
        if (a->loop) {
          Status grown = a->loop->RefreshCapacity();
          if (!grown.ok()) LogError(what + ": " + grown.message());
        }
      }
    }
    if (a != nullptr) a->engine->Resume();
    if (!done.ok()) return done.status().WithContext(what);
    Status refreshed = RefreshLayersLocked(*record);
    if (!refreshed.ok()) LogWarning(what + ": " + refreshed.message());
    LogInfo(what + ": now " + std::to_string(size) + " bytes");
  }
  NotifyChanged(volume);
  return Status::Ok();
}

Result<uint64_t> VolumeService::Verify(const std::string& volume, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Verify", options, {}));
  const std::string what = "verify volume " + volume;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(volume);
    if (record == nullptr) return Status(ErrorKind::kNotFound, what + ": it does not exist");
    if (jobs_.Running(volume, "verify")) {
      return Status(ErrorKind::kBusy, what + ": a verify job is already running");
    }
    auto done = CallAllLocked(*record, VerifyCall());
    if (!done.ok()) return done.status().WithContext(what);
  }
  return jobs_.Start("verify", volume, "", false, [this, volume, what](JobHandle& job) {
    // Give every replica time to switch its verify state to "running".
    for (;;) {
      std::vector<std::string> replicas;
      auto lists = ListLayersUnlocked(volume, &replicas);
      if (lists.empty()) return Status(ErrorKind::kUnavailable, what + ": no replica answers");
      uint64_t done = 0, total = 0;
      bool running = false;
      std::vector<std::string> bad;
      for (size_t i = 0; i < lists.size(); ++i) {
        const msg::LayerList& layers = lists[i];
        for (const auto& t : layers.tasks) {
          if (t.op != "verify") continue;
          done += t.done_bytes;
          total += t.total_bytes;
          running = true;
        }
        if (layers.verify.state == msg::VerifyPhase::kRunning) running = true;
        for (const auto& b : layers.verify.bad) bad.push_back("layer " + b + " on " + replicas[i]);
      }
      job.Update(done, total);
      if (!running) {
        if (bad.empty()) {
          LogInfo(what + ": every snapshot layer matches its checksum");
          return Status::Ok();
        }
        std::string names;
        for (const auto& b : bad) names += (names.empty() ? "" : ", ") + b;
        LogError(what + ": layers no longer match their checksum: " + names);
        return Status(ErrorKind::kIoError,
                      what + ": layers no longer match their checksum: " + names);
      }
      if (job.WaitCancelled(std::chrono::milliseconds(250))) {
        return Status(ErrorKind::kFailed, what + ": fused is stopping");
      }
    }
  });
}

}  // namespace shorthorn::fused
