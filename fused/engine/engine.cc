// Design notes: the replica vector never changes size while the engine
// serves I/O (membership changes come with rebuild), so indices are stable
// and only the modes need the lock. A FanOut counts answers; the last one
// completes the caller's callback. Overlapping writes are not yet ordered
// here: with one replica the replicad's own ordering is enough.
//
// The gate counts requests in flight. Pause closes it and waits for the
// count to reach zero; requests arriving meanwhile are deferred (a write's
// data is copied, since the FUSE buffer dies with the handler) and re-run by
// Resume in arrival order.
#include "fused/engine/engine.h"

#include <atomic>
#include <optional>

#include "common/log.h"

namespace shorthorn::fused {

const char* ReplicaModeName(ReplicaMode mode) {
  switch (mode) {
    case ReplicaMode::kRW: return "RW";
    case ReplicaMode::kWO: return "WO";
    case ReplicaMode::kERR: return "ERR";
  }
  return "ERR";
}

struct Engine::FanOut {
  std::atomic<size_t> remaining;
  std::atomic<size_t> succeeded{0};
  std::mutex mutex;
  Status first_error;
  DoneCallback done;
};

Engine::Engine(std::string volume, uint64_t size, std::vector<EngineReplica> replicas,
               std::function<void()> on_change)
    : volume_(std::move(volume)),
      size_(size),
      on_change_(std::move(on_change)),
      replicas_(std::move(replicas)) {}

Engine::~Engine() {
  // Destroy the backends while the rest of the engine is still whole: they
  // complete their pending requests, which calls back into MarkFailed.
  std::vector<EngineReplica> doomed = Release();
  doomed.clear();
}

std::vector<EngineReplica> Engine::Release() {
  std::vector<EngineReplica> out;
  std::lock_guard lock(mutex_);
  for (auto& r : replicas_) {
    out.push_back({r.name, std::move(r.backend), r.mode});
    r.mode = ReplicaMode::kERR;
  }
  return out;
}

Status Engine::Close() {
  Status first;
  for (auto& r : Release()) {
    if (!r.backend) continue;
    Status s = r.backend->Close();
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

std::vector<std::pair<std::string, ReplicaMode>> Engine::Modes() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, ReplicaMode>> out;
  for (const auto& r : replicas_) out.emplace_back(r.name, r.mode);
  return out;
}

Status Engine::NoReplica(const char* what) const {
  return Status(ErrorKind::kIoError,
                std::string(what) + " volume " + volume_ + ": no replica is available", EIO);
}

void Engine::MarkFailed(size_t index, const Status& why) {
  bool changed = false;
  {
    std::lock_guard lock(mutex_);
    if (replicas_[index].mode != ReplicaMode::kERR) {
      replicas_[index].mode = ReplicaMode::kERR;
      changed = true;
    }
  }
  if (changed) {
    LogError("volume " + volume_ + ": replica " + replicas_[index].name +
             " marked ERR: " + why.message());
    if (on_change_) on_change_();
  }
}

void Engine::FanOutOp(const char* what, std::function<void(Backend&, DoneCallback)> op,
                      DoneCallback done) {
  std::vector<std::pair<size_t, Backend*>> targets;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i].mode != ReplicaMode::kERR && replicas_[i].backend) {
        targets.emplace_back(i, replicas_[i].backend.get());
      }
    }
  }
  if (targets.empty()) {
    done(NoReplica(what));
    return;
  }
  auto fan = std::make_shared<FanOut>();
  fan->remaining = targets.size();
  fan->done = std::move(done);
  for (auto [index, backend] : targets) {
    op(*backend, [this, fan, index, what](Status s) {
      if (s.ok()) {
        fan->succeeded++;
      } else {
        MarkFailed(index, s);
        std::lock_guard lock(fan->mutex);
        if (fan->first_error.ok()) fan->first_error = s;
      }
      if (--fan->remaining == 0) {
        if (fan->succeeded > 0) {
          fan->done(Status::Ok());
        } else {
          fan->done(fan->first_error.WithContext(std::string(what) + " volume " + volume_));
        }
      }
    });
  }
}

bool Engine::TryEnter() {
  std::lock_guard lock(gate_mutex_);
  if (paused_) return false;
  in_flight_++;
  return true;
}

void Engine::Leave() {
  std::lock_guard lock(gate_mutex_);
  if (--in_flight_ == 0 && paused_) gate_cv_.notify_all();
}

void Engine::Defer(std::function<void()> retry) {
  {
    std::lock_guard lock(gate_mutex_);
    if (paused_) {
      deferred_.push_back(std::move(retry));
      return;
    }
  }
  retry();
}

DoneCallback Engine::Tracked(DoneCallback done) {
  return [this, done = std::move(done)](Status s) {
    done(std::move(s));
    Leave();
  };
}

Status Engine::Pause() {
  {
    std::unique_lock lock(gate_mutex_);
    paused_ = true;
    gate_cv_.wait(lock, [this] { return in_flight_ == 0; });
  }
  std::mutex m;
  std::condition_variable cv;
  std::optional<Status> flushed;
  FanOutOp("flush", [](Backend& b, DoneCallback cb) { b.Flush(cb); }, [&](Status s) {
    std::lock_guard lock(m);
    flushed = std::move(s);
    cv.notify_all();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return flushed.has_value(); });
  return *flushed;
}

void Engine::Resume() {
  std::vector<std::function<void()>> retry;
  {
    std::lock_guard lock(gate_mutex_);
    paused_ = false;
    retry.swap(deferred_);
  }
  for (auto& r : retry) r();
}

void Engine::FailReplica(const std::string& name, const Status& why) {
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].name == name) MarkFailed(i, why);
  }
}

void Engine::Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) {
  if (!TryEnter()) {
    Defer([this, offset, copy = std::vector<uint8_t>(data.begin(), data.end()),
           done = std::move(done)]() mutable { Write(offset, copy, std::move(done)); });
    return;
  }
  done = Tracked(std::move(done));
  FanOutOp("write", [offset, data](Backend& b, DoneCallback cb) { b.Write(offset, data, cb); },
           std::move(done));
}

void Engine::Unmap(uint64_t offset, uint64_t length, DoneCallback done) {
  if (!TryEnter()) {
    Defer([this, offset, length, done = std::move(done)]() mutable {
      Unmap(offset, length, std::move(done));
    });
    return;
  }
  done = Tracked(std::move(done));
  FanOutOp("unmap", [offset, length](Backend& b, DoneCallback cb) { b.Unmap(offset, length, cb); },
           std::move(done));
}

void Engine::Flush(DoneCallback done) {
  if (!TryEnter()) {
    Defer([this, done = std::move(done)]() mutable { Flush(std::move(done)); });
    return;
  }
  done = Tracked(std::move(done));
  FanOutOp("flush", [](Backend& b, DoneCallback cb) { b.Flush(cb); }, std::move(done));
}

void Engine::Read(uint64_t offset, uint32_t length, ReadCallback done) {
  if (!TryEnter()) {
    Defer([this, offset, length, done = std::move(done)]() mutable {
      Read(offset, length, std::move(done));
    });
    return;
  }
  ReadFrom(0, offset, length, [this, done = std::move(done)](Status s, std::vector<uint8_t> d) {
    done(std::move(s), std::move(d));
    Leave();
  });
}

void Engine::ReadFrom(size_t first, uint64_t offset, uint32_t length, ReadCallback done) {
  Backend* backend = nullptr;
  size_t index = 0;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = first; i < replicas_.size(); ++i) {
      if (replicas_[i].mode == ReplicaMode::kRW && replicas_[i].backend) {
        backend = replicas_[i].backend.get();
        index = i;
        break;
      }
    }
  }
  if (backend == nullptr) {
    done(NoReplica("read"), {});
    return;
  }
  backend->Read(offset, length,
                [this, index, offset, length, done = std::move(done)](
                    Status s, std::vector<uint8_t> data) mutable {
                  if (s.ok()) {
                    done(std::move(s), std::move(data));
                    return;
                  }
                  MarkFailed(index, s);
                  ReadFrom(index + 1, offset, length, std::move(done));
                });
}

}  // namespace shorthorn::fused
