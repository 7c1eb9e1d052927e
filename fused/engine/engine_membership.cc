// Engine membership: which replicas a volume has and in which mode, what a
// failed replica missed (for its catch-up), and the hold on acknowledgements
// while a failure is not yet recorded. The I/O paths are in engine.cc.
#include "fused/engine/engine.h"

#include <algorithm>
#include <map>

#include "common/log.h"
#include "fused/engine/engine_slot.h"

namespace shorthorn::fused {

std::vector<ReplicaState> Engine::Replicas() const {
  std::lock_guard lock(mutex_);
  std::vector<ReplicaState> out;
  for (const auto& s : slots_) out.push_back({s->replica.name, s->replica.mode});
  return out;
}

size_t Engine::Count(ReplicaMode mode) const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& s : slots_) n += s->replica.mode == mode;
  return n;
}

Engine::SlotPtr Engine::Find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& s : slots_) {
    if (s->replica.name == name) return s;
  }
  return nullptr;
}

std::vector<Engine::SlotPtr> Engine::Targets(bool include_wo) const {
  std::lock_guard lock(mutex_);
  std::vector<SlotPtr> out;
  for (const auto& s : slots_) {
    if (s->replica.mode == ReplicaMode::kRW ||
        (include_wo && s->replica.mode == ReplicaMode::kWO)) {
      out.push_back(s);
    }
  }
  return out;
}

void Engine::AddReplica(EngineReplica replica) {
  auto slot = NewSlot();
  slot->replica = std::move(replica);
  {
    std::lock_guard lock(mutex_);
    slots_.push_back(slot);
  }
  Watch(slot);
  if (callbacks_.on_change) callbacks_.on_change();
}

Status Engine::SetMode(const std::string& name, ReplicaMode mode) {
  {
    std::lock_guard lock(mutex_);
    SlotPtr slot;
    for (const auto& s : slots_) {
      if (s->replica.name == name) slot = s;
    }
    if (!slot) {
      return Status(ErrorKind::kNotFound, "volume " + volume_ + ": no replica " + name);
    }
    // A replica that failed (it may have missed writes) never turns RW
    // directly: it comes back WO and catches up first.
    if (mode == ReplicaMode::kRW && slot->replica.mode == ReplicaMode::kERR) {
      return Status(ErrorKind::kFailed, "volume " + volume_ + ": replica " + name +
                                            " failed meanwhile; it cannot become RW");
    }
    slot->replica.mode = mode;
    if (mode != ReplicaMode::kERR) {
      slot->missed.Clear();
      slot->missed_valid = false;
    }
  }
  if (callbacks_.on_change) callbacks_.on_change();
  return Status::Ok();
}

Status Engine::Reattach(const std::string& name, std::shared_ptr<Backend> backend) {
  SlotPtr reattached;
  std::shared_ptr<Backend> old;  // destroyed outside the lock (it joins its threads)
  {
    std::lock_guard lock(mutex_);
    SlotPtr slot;
    for (const auto& s : slots_) {
      if (s->replica.name == name) slot = s;
    }
    if (!slot) return Status(ErrorKind::kNotFound, "volume " + volume_ + ": no replica " + name);
    if (slot->replica.mode != ReplicaMode::kERR) {
      return Status(ErrorKind::kBusy, "volume " + volume_ + ": replica " + name + " is not ERR");
    }
    old = std::move(slot->replica.backend);
    slot->replica.backend = std::move(backend);
    slot->replica.mode = ReplicaMode::kWO;
    reattached = slot;
  }
  Watch(reattached);
  if (callbacks_.on_change) callbacks_.on_change();
  return Status::Ok();
}

std::shared_ptr<Backend> Engine::RemoveReplica(const std::string& name) {
  std::shared_ptr<Backend> out;
  {
    std::lock_guard lock(mutex_);
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if ((*it)->replica.name == name) {
        out = (*it)->replica.backend;
        if (out) out->SetFailureHandler(nullptr);
        slots_.erase(it);
        break;
      }
    }
  }
  if (callbacks_.on_change) callbacks_.on_change();
  return out;
}

void Engine::FailReplica(const std::string& name, const Status& why,
                         const std::vector<std::pair<uint64_t, uint64_t>>& also_missed) {
  SlotPtr slot = Find(name);
  if (!slot) return;
  MarkFailed(slot, why);
  std::lock_guard lock(mutex_);
  if (slot->missed_valid) {
    for (const auto& [a, b] : also_missed) slot->missed.Add(a, b);
  }
}

void Engine::MarkFailed(const SlotPtr& slot, const Status& why, uint64_t start, uint64_t end) {
  bool changed = false;
  {
    std::lock_guard lock(mutex_);
    if (slot->replica.mode != ReplicaMode::kERR) {
      // Only an RW replica knows exactly what it holds; a WO one (catching
      // up or rebuilding) that fails again needs a full rebuild.
      bool was_rw = slot->replica.mode == ReplicaMode::kRW;
      slot->replica.mode = ReplicaMode::kERR;
      slot->missed.Clear();
      slot->missed_valid = was_rw;
      // What it acknowledged since its last flush may be gone with it.
      bool overflow = slot->unflushed.overflow;
      for (const auto& [a, b] : slot->unflushed.ranges.Ranges()) slot->missed.Add(a, b);
      for (const auto& set : slot->flushing) {
        overflow = overflow || set->overflow;
        for (const auto& [a, b] : set->ranges.Ranges()) slot->missed.Add(a, b);
      }
      if (overflow) slot->missed_valid = false;
      slot->unflushed = Slot::Unflushed();
      slot->flushing.clear();
      changed = true;
      if (callbacks_.on_failure) failures_unrecorded_++;
    }
    if (slot->missed_valid && end > start) slot->missed.Add(start, end);
  }
  if (!changed) return;
  LogError("volume " + volume_ + ": replica " + slot->replica.name +
           " marked ERR: " + why.message());
  if (callbacks_.on_change) callbacks_.on_change();
  if (callbacks_.on_failure) callbacks_.on_failure(slot->replica.name, why);
}

void Engine::MembershipRecorded(const Status& recorded) {
  std::vector<std::pair<DoneCallback, Status>> release;
  {
    std::lock_guard lock(mutex_);
    if (failures_unrecorded_ > 0) failures_unrecorded_--;
    if (failures_unrecorded_ == 0) release.swap(held_);
  }
  for (auto& [done, status] : release) {
    if (!recorded.ok() && status.ok()) {
      status = recorded.WithContext("volume " + volume_ + ": membership change not recorded");
    }
    done(std::move(status));
  }
}

void Engine::Acknowledge(DoneCallback done, Status status) {
  {
    std::lock_guard lock(mutex_);
    if (failures_unrecorded_ > 0) {
      held_.emplace_back(std::move(done), std::move(status));
      return;
    }
  }
  done(std::move(status));
}

void Engine::NoteMissed(uint64_t start, uint64_t end) {
  std::lock_guard lock(mutex_);
  for (auto& s : slots_) {
    if (s->replica.mode == ReplicaMode::kERR) {
      if (s->missed_valid) s->missed.Add(start, end);
    } else {
      s->unflushed.Add(start, end);
    }
  }
}

bool Engine::DirtyRanges(const std::string& name, std::vector<std::pair<uint64_t, uint64_t>>* out) {
  std::lock_guard lock(mutex_);
  for (const auto& s : slots_) {
    if (s->replica.name != name) continue;
    if (!s->missed_valid) return false;
    *out = s->missed.Ranges();
    return true;
  }
  return false;
}

void Engine::InvalidateDirty() {
  std::lock_guard lock(mutex_);
  for (auto& s : slots_) s->missed_valid = false;
}

Status Engine::NoReplica(const char* what) const {
  return Status(ErrorKind::kIoError,
                std::string(what) + " volume " + volume_ + ": no replica is available", EIO);
}

}  // namespace shorthorn::fused
