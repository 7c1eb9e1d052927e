// Design notes: attaching and detaching volumes (VolumeService::Attach,
// Detach), the moved and attached-at-start marks, and AutoAttachLoop.
//
//   Attach:  registry epoch+1 saved ──► open every replica at that epoch
//            (fences older engines) ──► Engine ──► FUSE file ──► loop device
//            + /dev symlink.  Any failure unwinds what was done, in reverse.
//   Detach:  release loop (Busy if mounted: nothing changes) ──► remove FUSE
//            file ──► FLUSH ──► CLOSE_REPLICA on each ──► engine dropped.
//
// The epoch is saved before any replica sees it, so a crash of fused can
// never hand out the same epoch twice.

#include <algorithm>
#include <future>

#include "common/log.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

constexpr uint32_t kLoopBlockSize = 4096;

Status WaitFlush(Backend& backend) {
  std::promise<Status> done;
  backend.Flush([&done](Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

}  // namespace

Result<std::string> VolumeService::Attach(const std::string& name, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Attach", options, {"frontend", "maintenance", "salvage"}));
  bool block = true;
  bool maintenance = false;
  bool salvage = false;
  SH_RETURN_IF_ERROR(BoolOption("attach volume " + name, options, "salvage", &salvage));
  SH_RETURN_IF_ERROR(BoolOption("attach volume " + name, options, "maintenance", &maintenance));
  if (auto it = options.find("frontend"); it != options.end()) {
    const auto* value = std::get_if<std::string>(&it->second);
    if (value == nullptr || (*value != "block" && *value != "file")) {
      return Status(ErrorKind::kInvalidArgument,
                    "attach volume " + name + ": option 'frontend' must be \"block\" or \"file\"");
    }
    block = *value == "block";
  }
  std::string result;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(name);
    if (record == nullptr) {
      return Status(ErrorKind::kNotFound, "attach volume " + name + ": it does not exist");
    }
    if (attached_.count(name) != 0) {
      return Status(ErrorKind::kBusy, "attach volume " + name + ": it is already attached");
    }
    Status busy;
    if (RestoringLocked(name, "attach volume " + name, &busy) ||
        StandbyLocked(*record, "attach volume " + name, &busy)) {
      return busy;
    }
    record->epoch++;
    SH_RETURN_IF_ERROR(registry_.Save().WithContext("attach volume " + name));
    Attachment a;
    a.ctx = std::make_shared<AttachContext>();
    a.ctx->volume = name;
    a.ctx->epoch = record->epoch;
    std::string authority;
    auto replicas = OpenForAttach(*record, salvage, *a.ctx, &authority);
    if (!replicas.ok()) {
      Status why = replicas.status().WithContext("attach volume " + name);
      if (why.kind() == ErrorKind::kMoved) MarkMovedLocked(*record, why);
      return why;
    }
    moved_.erase(name);
    EngineCallbacks callbacks;
    callbacks.on_change = [this, name] { QueueChanged(name); };
    callbacks.on_failure = [this, ctx = a.ctx](const std::string&, const Status&) {
      membership_.Post([this, ctx] { RecordMembership(ctx); });
    };
    a.engine = std::make_shared<Engine>(name, record->size, std::move(*replicas), callbacks);
    a.ctx->engine = a.engine;
    // A new generation for this attachment: replicas left out are stale,
    // and so are those still to be resynchronized until RunResync is done.
    SH_RETURN_IF_ERROR(BumpGeneration(*a.ctx).status().WithContext("attach volume " + name));
    a.maintenance = maintenance;
    const bool waiting = fuse_.IsWaiting(name);
    // A file taken over from the previous fused may still have its loop
    // device (with a file system on it): keep that one. Found before the
    // file gets the engine (AddVolume), which serves the requests held
    // since the takeover: nothing after that may fail.
    std::optional<LoopDevice> kept;
    if (waiting && block && !maintenance) {
      auto adopted = LoopDevice::Adopt(fuse_.mount_point() + "/" + name);
      if (adopted.ok()) {
        LogInfo("attach volume " + name + ": kept " + adopted->path());
        kept.emplace(std::move(*adopted));
      }
    }
    if (!maintenance) {
      auto file = fuse_.AddVolume(name, a.engine);
      if (!file.ok()) return file.status().WithContext("attach volume " + name);
      a.file = *file;
      result = a.file;
    }
    if (block && !maintenance) {
      auto loop =
          kept ? Result<LoopDevice>(std::move(*kept)) : LoopDevice::Attach(a.file, kLoopBlockSize);
      if (!loop.ok()) {
        fuse_.RemoveVolume(name);
        return loop.status().WithContext("attach volume " + name);
      }
      a.loop.emplace(std::move(*loop));
      Status linked = a.loop->Link(settings_.dev_dir + "/" + name);
      if (!linked.ok()) LogWarning("attach volume " + name + ": " + linked.message());
      result = a.loop->path();
    }
    attached_[name] = std::move(a);
    // Attached on purpose: attach it again when fused starts next.
    if (!maintenance) MarkAttachedLocked(*record, block ? "block" : "file");
    // Attached now: the snapshot list comes from a current replica, never
    // from one left out (a stale replica lists what it held back then).
    std::vector<std::string> merging;
    Status refreshed = RefreshLayersLocked(*record, nullptr, &merging);
    if (!refreshed.ok()) LogWarning("attach volume " + name + ": " + refreshed.message());
    // A snapshot deletion a previous fused started (and did not see end)
    // gets its Job again, so its progress and end are visible.
    if (!merging.empty() && !jobs_.Running(name, "delete-snapshot")) {
      for (const auto& snapshot : merging) {
        LogInfo("attach volume " + name + ": the merge of deleted snapshot " + snapshot +
                " is still running; following it in a new delete-snapshot job");
        StartSnapshotDeleteJob(name, snapshot);
      }
    }
    LogInfo("attached volume " + name + (maintenance ? " in maintenance mode" : " at " + result) +
            " (epoch " + std::to_string(record->epoch) + ")");
    if (!authority.empty()) {
      jobs_.Start("resync", name, "", true, [this, name](JobHandle& job) {
        Status s = RunResync(name, job);
        if (!s.ok()) LogError(s.message());
        return s;
      });
    }
  }
  NotifyChanged(name);
  return result;
}

Result<VolumeService::LiveParts> VolumeService::LiveAttachment(const std::string& volume,
                                                               const std::string& what) {
  std::lock_guard lock(mutex_);
  auto it = attached_.find(volume);
  if (it == attached_.end()) return Status(ErrorKind::kBusy, what + ": it is not attached");
  return LiveParts{it->second.ctx, it->second.engine};
}

Status VolumeService::DetachLocked(const std::string& name) {
  auto it = attached_.find(name);
  if (it == attached_.end()) {
    if (registry_.Find(name) == nullptr) {
      return Status(ErrorKind::kNotFound, "detach volume " + name + ": it does not exist");
    }
    return Status(ErrorKind::kInvalidArgument, "detach volume " + name + ": it is not attached");
  }
  Attachment& a = it->second;
  if (a.loop) SH_RETURN_IF_ERROR(a.loop->Release().WithContext("detach volume " + name));
  if (!a.maintenance) fuse_.RemoveVolume(name);
  Status flushed = WaitFlush(*a.engine);
  if (!flushed.ok()) LogError("detach volume " + name + ": " + flushed.message());
  Status closed = a.engine->Close();
  if (!closed.ok()) LogWarning("detach volume " + name + ": " + closed.message());
  attached_.erase(it);
  LogInfo("detached volume " + name);
  return flushed;
}

Status VolumeService::Detach(const std::string& name, const Options& options) {
  SH_RETURN_IF_ERROR(CheckOptions("Detach", options, {}));
  Status s;
  bool detached = false;
  {
    std::lock_guard lock(mutex_);
    VolumeRecord* record = registry_.FindMutable(name);
    const bool waiting = auto_attach_.erase(name) > 0;
    if (record != nullptr && attached_.count(name) == 0 && waiting) {
      // Not attached yet, auto-attach still trying: detaching means "stop
      // attaching it". A file kept from the previous fused goes too (its
      // held requests fail with EIO).
      fuse_.RemoveVolume(name);
      MarkAttachedLocked(*record, "");
      LogInfo("detach volume " + name + ": it will no longer be attached at start");
      detached = true;
    } else {
      s = DetachLocked(name);
      detached = attached_.count(name) == 0;
      if (detached && record != nullptr) MarkAttachedLocked(*record, "");
    }
  }
  if (detached) NotifyChanged(name);
  return s;
}

void VolumeService::MarkMovedLocked(VolumeRecord& record, const Status& why) {
  const std::string& name = record.name;
  moved_[name] = why.message();
  auto_attach_.erase(name);
  if (fuse_.IsWaiting(name)) {
    auto loop = LoopDevice::Adopt(fuse_.mount_point() + "/" + name);
    fuse_.RemoveVolume(name);  // its held requests fail with EIO
    if (loop.ok()) {
      Status released = loop->Release();
      if (!released.ok()) LogWarning("volume " + name + ": " + released.message());
    }
  }
  MarkAttachedLocked(record, "");
  LogError(why.message() + "; volume " + name +
           " is shown as moved (DeleteVolume forgets it here and leaves its replicas alone)");
}

void VolumeService::MarkAttachedLocked(VolumeRecord& record, const std::string& frontend) {
  if (record.attach_frontend == frontend) return;
  record.attach_frontend = frontend;
  Status saved = registry_.Save();
  if (!saved.ok()) {
    LogWarning("volume " + record.name + ": cannot record for the next start that it is " +
               (frontend.empty() ? "detached" : "attached") + ": " + saved.message());
  }
}

void VolumeService::AutoAttachLoop() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mutex_);
  while (!auto_attach_stopping_) {
    const auto now = Clock::now();
    std::string due;
    auto next = Clock::time_point::max();
    for (auto it = auto_attach_.begin(); it != auto_attach_.end();) {
      const VolumeRecord* record = registry_.Find(it->first);
      if (record == nullptr || record->attach_frontend.empty() || attached_.count(it->first)) {
        it = auto_attach_.erase(it);  // deleted, detached or attached by someone meanwhile
        continue;
      }
      if (it->second.next <= now && due.empty()) due = it->first;
      next = std::min(next, it->second.next);
      ++it;
    }
    if (auto_attach_.empty()) return;
    if (due.empty()) {
      auto_attach_cv_.wait_until(lock, next);
      continue;
    }
    Options options{{"frontend", registry_.Find(due)->attach_frontend}};
    lock.unlock();
    Result<std::string> attached = Attach(due, options);
    lock.lock();
    auto it = auto_attach_.find(due);
    if (attached.ok()) {
      LogInfo("auto-attach: volume " + due + " attached again at " + *attached);
      if (it != auto_attach_.end()) auto_attach_.erase(it);
      continue;
    }
    if (it == auto_attach_.end()) continue;  // detached or deleted meanwhile
    AutoAttach& a = it->second;
    a.error = attached.status().message();
    a.next = Clock::now() + a.delay;
    LogWarning("auto-attach: volume " + due + ": " + a.error + "; next try in " +
               std::to_string(a.delay.count()) + " s");
    a.delay = std::min<std::chrono::seconds>(a.delay * 2, std::chrono::seconds(60));
    lock.unlock();
    NotifyChanged(due);  // its StateReason
    lock.lock();
  }
}

}  // namespace shorthorn::fused
