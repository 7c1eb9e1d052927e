// Design notes
//
// Slots are shared_ptrs so that membership can change (rebuild adds a WO
// replica, a shrink removes one) while callbacks of requests already sent
// still hold the replica they were sent to.
//
// A write's life:
//
//   gate (TryEnter; deferred while paused) ──► range lock on the 4 KiB-aligned
//   range (queued behind overlapping requests) ──► [widen to whole blocks if a
//   WO replica needs it] ──► fan-out to RW+WO ──► all answered ──► release
//   range ──► acknowledge (held while a failure is unrecorded) ──► leave gate
//
// The gate counts requests in flight. Pause closes it and waits for the
// count to reach zero; requests arriving meanwhile are deferred (a write's
// data is copied, since the FUSE buffer dies with the handler) and re-run by
// Resume in arrival order. The range lock also copies a write's data when it
// cannot grant at once.
#include "fused/engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/wire.h"
#include "fused/engine/engine_slot.h"

namespace shorthorn::fused {
namespace {
constexpr uint64_t kBlock = 4096;
uint64_t AlignDown(uint64_t v) { return v & ~(kBlock - 1); }
uint64_t AlignUp(uint64_t v) { return (v + kBlock - 1) & ~(kBlock - 1); }
}  // namespace

const char* ReplicaModeName(ReplicaMode mode) {
  switch (mode) {
    case ReplicaMode::kRW:
      return "RW";
    case ReplicaMode::kWO:
      return "WO";
    case ReplicaMode::kERR:
      return "ERR";
  }
  return "ERR";
}

struct Engine::FanOut {
  std::atomic<size_t> remaining{0};
  std::atomic<size_t> succeeded{0};
  std::mutex mutex;
  Status first_error;
  DoneCallback done;
};

namespace {

// Deletes what is handed to it on its own thread (started at first use,
// for the life of the process; its state is never destroyed, so exit does
// not wait for it).
void Reap(std::function<void()> deletion) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool started = false;
  };
  static State* const state = new State();
  std::lock_guard lock(state->mu);
  state->queue.push_back(std::move(deletion));
  state->cv.notify_one();
  if (state->started) return;
  state->started = true;
  std::thread([] {
    for (;;) {
      std::function<void()> next;
      {
        std::unique_lock l(state->mu);
        state->cv.wait(l, [] { return !state->queue.empty(); });
        next = std::move(state->queue.front());
        state->queue.pop_front();
      }
      next();
    }
  }).detach();
}

}  // namespace

// The last reference to a slot may be dropped by a completion or failure
// callback running on a thread of the slot's own backend (a replica that
// failed and was removed meanwhile); a ReplicaClient cannot be destroyed on
// one of its threads (it joins them), so such a slot is deleted on the
// reaper's thread instead.
Engine::SlotPtr Engine::NewSlot() {
  return SlotPtr(new Slot(), [](Slot* slot) {
    if (slot->replica.backend && slot->replica.backend->OnOwnThread()) {
      Reap([slot] { delete slot; });
    } else {
      delete slot;
    }
  });
}

Engine::Engine(std::string volume, uint64_t size, std::vector<EngineReplica> replicas,
               EngineCallbacks callbacks)
    : volume_(std::move(volume)), size_(size), callbacks_(std::move(callbacks)) {
  for (auto& r : replicas) {
    auto slot = NewSlot();
    slot->replica = std::move(r);
    slots_.push_back(slot);
  }
  for (const auto& slot : slots_) Watch(slot);
}

void Engine::Watch(const SlotPtr& slot) {
  if (!slot->replica.backend) return;
  std::weak_ptr<Slot> weak = slot;
  slot->replica.backend->SetFailureHandler([this, weak](const Status& why) {
    if (SlotPtr s = weak.lock()) MarkFailed(s, why);
  });
}

Engine::~Engine() { (void)Close(); }

Status Engine::Close() {
  std::vector<SlotPtr> slots;
  {
    std::lock_guard lock(mutex_);
    slots.swap(slots_);
  }
  Status first;
  for (auto& s : slots) {
    if (!s->replica.backend) continue;
    s->replica.backend->SetFailureHandler(nullptr);
    Status closed =
        s->replica.mode == ReplicaMode::kERR ? Status::Ok() : s->replica.backend->Close();
    if (!closed.ok() && first.ok()) first = closed;
  }
  // Backends die with the last request holding them.
  return first;
}

// ---------------------------------------------------------------- gate

bool Engine::TryEnter() {
  std::lock_guard lock(gate_mutex_);
  if (paused_) return false;
  in_flight_++;
  return true;
}

void Engine::EnterBlocking() {
  std::unique_lock lock(gate_mutex_);
  gate_cv_.wait(lock, [this] { return !paused_; });
  in_flight_++;
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
  std::promise<Status> flushed;
  FanOutOp(
      "flush", 0, 0, Targets(true), [](Backend& b, DoneCallback cb) { b.Flush(cb); },
      [&flushed](Status s) { flushed.set_value(std::move(s)); });
  return flushed.get_future().get();
}

void Engine::Resume() {
  std::vector<std::function<void()>> retry;
  {
    std::lock_guard lock(gate_mutex_);
    paused_ = false;
    retry.swap(deferred_);
  }
  gate_cv_.notify_all();  // background copies waiting in EnterBlocking
  for (auto& r : retry) r();
}

// ---------------------------------------------------------------- fan-out

void Engine::FanOutOp(const char* what, uint64_t start, uint64_t end,
                      const std::vector<SlotPtr>& targets,
                      std::function<void(Backend&, DoneCallback)> op, DoneCallback done) {
  bool any_rw = false;
  for (const auto& t : targets) any_rw = any_rw || t->replica.mode == ReplicaMode::kRW;
  if (!any_rw) {
    done(NoReplica(what));
    return;
  }
  auto fan = std::make_shared<FanOut>();
  fan->remaining = targets.size();
  fan->done = std::move(done);
  for (const auto& slot : targets) {
    op(*slot->replica.backend, [this, fan, slot, what, start, end](Status s) {
      if (s.ok()) {
        fan->succeeded++;
      } else {
        MarkFailed(slot, s, start, end);
        std::lock_guard lock(fan->mutex);
        if (fan->first_error.ok()) fan->first_error = s;
      }
      if (--fan->remaining != 0) return;
      Status result;
      if (fan->succeeded == 0) {
        result = fan->first_error.WithContext(std::string(what) + " volume " + volume_);
      } else if (Count(ReplicaMode::kRW) == 0) {
        result = NoReplica(what);
      }
      fan->done(std::move(result));
    });
  }
}

void Engine::Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) {
  if (!TryEnter()) {
    Defer([this, offset, copy = std::vector<uint8_t>(data.begin(), data.end()),
           done = std::move(done)]() mutable { Write(offset, copy, std::move(done)); });
    return;
  }
  done = Tracked(std::move(done));
  uint64_t start = AlignDown(offset), end = AlignUp(offset + data.size());
  if (uint64_t token = ranges_.TryAcquire(start, end)) {
    LockedWrite(token, offset, data, std::move(done));
    return;
  }
  auto copy = std::make_shared<std::vector<uint8_t>>(data.begin(), data.end());
  ranges_.Acquire(start, end, [this, offset, copy, done = std::move(done)](uint64_t token) mutable {
    LockedWrite(token, offset, *copy, [copy, done = std::move(done)](Status s) { done(s); });
  });
}

void Engine::LockedWrite(uint64_t token, uint64_t offset, std::span<const uint8_t> data,
                         DoneCallback done) {
  uint64_t end = offset + data.size();
  NoteMissed(offset, end);
  auto targets = Targets(true);
  bool has_wo = false;
  for (const auto& t : targets) has_wo = has_wo || t->replica.mode == ReplicaMode::kWO;
  auto finish = [this, token, done = std::move(done)](Status s) {
    ranges_.Release(token);
    Acknowledge(done, std::move(s));
  };
  if (!has_wo || (offset % kBlock == 0 && data.size() % kBlock == 0)) {
    uint64_t sum = wire::PayloadChecksum(data);  // once, not once per replica
    FanOutOp(
        "write", offset, end, targets,
        [offset, data, sum](Backend& b, DoneCallback cb) { b.WriteSummed(offset, data, sum, cb); },
        std::move(finish));
    return;
  }
  WidenedWrite(offset, std::make_shared<std::vector<uint8_t>>(data.begin(), data.end()),
               std::move(finish));
}

void Engine::WidenedWrite(uint64_t offset, std::shared_ptr<std::vector<uint8_t>> patch,
                          DoneCallback done) {
  // A rebuilding replica cannot read-modify-write its edge blocks: widen the
  // write to whole blocks read from an RW replica (the caller's range lock
  // keeps them stable meanwhile).
  uint64_t end = offset + patch->size();
  uint64_t a0 = AlignDown(offset), a1 = AlignUp(end);
  ReadFrom({}, a0, static_cast<uint32_t>(a1 - a0),
           [this, offset, end, a0, patch, done = std::move(done)](
               Status s, std::vector<uint8_t> blocks) mutable {
             if (!s.ok()) {
               done(s);
               return;
             }
             std::memcpy(blocks.data() + (offset - a0), patch->data(), patch->size());
             auto whole = std::make_shared<std::vector<uint8_t>>(std::move(blocks));
             FanOutOp(
                 "write", offset, end, Targets(true),
                 [a0, whole](Backend& b, DoneCallback cb) { b.Write(a0, *whole, cb); },
                 [whole, done = std::move(done)](Status st) { done(st); });
           });
}

void Engine::Unmap(uint64_t offset, uint64_t length, DoneCallback done) {
  // Large: the piece up to the next kUnmapPiece boundary, then the rest.
  if (length > kUnmapPiece) {
    uint64_t piece = kUnmapPiece - offset % kUnmapPiece;
    Unmap(offset, piece, [this, offset, length, piece, done = std::move(done)](Status s) mutable {
      if (!s.ok()) return done(std::move(s));
      Unmap(offset + piece, length - piece, std::move(done));
    });
    return;
  }
  if (!TryEnter()) {
    Defer([this, offset, length, done = std::move(done)]() mutable {
      Unmap(offset, length, std::move(done));
    });
    return;
  }
  done = Tracked(std::move(done));
  ranges_.Acquire(AlignDown(offset), AlignUp(offset + length),
                  [this, offset, length, done = std::move(done)](uint64_t token) mutable {
                    LockedUnmap(token, offset, length, std::move(done));
                  });
}

void Engine::LockedUnmap(uint64_t token, uint64_t offset, uint64_t length, DoneCallback done) {
  uint64_t end = offset + length;
  NoteMissed(offset, end);
  auto finish = [this, token, done = std::move(done)](Status s) {
    ranges_.Release(token);
    Acknowledge(done, std::move(s));
  };
  auto targets = Targets(true);
  bool has_wo = false;
  for (const auto& t : targets) has_wo = has_wo || t->replica.mode == ReplicaMode::kWO;
  if (!has_wo || (offset % kBlock == 0 && length % kBlock == 0)) {
    FanOutOp(
        "unmap", offset, end, targets,
        [offset, length](Backend& b, DoneCallback cb) { b.Unmap(offset, length, cb); },
        std::move(finish));
    return;
  }
  // A rebuilding replica only takes whole blocks: zero the partial edge
  // blocks with widened writes and unmap the aligned middle, one after the
  // other (all under this request's range lock).
  std::vector<std::function<void(DoneCallback)>> steps;
  uint64_t m0 = AlignUp(offset), m1 = AlignDown(end);
  if (m0 >= m1) {
    steps.push_back([this, offset, end](DoneCallback cb) {
      WidenedWrite(offset, std::make_shared<std::vector<uint8_t>>(end - offset, 0), cb);
    });
  } else {
    if (offset < m0) {
      steps.push_back([this, offset, m0](DoneCallback cb) {
        WidenedWrite(offset, std::make_shared<std::vector<uint8_t>>(m0 - offset, 0), cb);
      });
    }
    steps.push_back([this, m0, m1](DoneCallback cb) {
      FanOutOp(
          "unmap", m0, m1, Targets(true),
          [m0, m1](Backend& b, DoneCallback c) { b.Unmap(m0, m1 - m0, c); }, cb);
    });
    if (m1 < end) {
      steps.push_back([this, m1, end](DoneCallback cb) {
        WidenedWrite(m1, std::make_shared<std::vector<uint8_t>>(end - m1, 0), cb);
      });
    }
  }
  RunSteps(std::make_shared<std::vector<std::function<void(DoneCallback)>>>(std::move(steps)), 0,
           std::move(finish));
}

void Engine::RunSteps(std::shared_ptr<std::vector<std::function<void(DoneCallback)>>> steps,
                      size_t next, DoneCallback done) {
  if (next == steps->size()) {
    done(Status::Ok());
    return;
  }
  (*steps)[next]([this, steps, next, done = std::move(done)](Status s) mutable {
    if (!s.ok()) {
      done(s);
      return;
    }
    RunSteps(steps, next + 1, std::move(done));
  });
}

void Engine::Flush(DoneCallback done) {
  if (!TryEnter()) {
    Defer([this, done = std::move(done)]() mutable { Flush(std::move(done)); });
    return;
  }
  done = Tracked(std::move(done));
  // Each replica's writes so far become durable with its flush's success;
  // until then they stay in its record of what it may lose.
  auto targets = Targets(true);
  using Entry = std::pair<SlotPtr, std::shared_ptr<Slot::Unflushed>>;
  auto sets = std::make_shared<std::map<const Backend*, Entry>>();
  {
    std::lock_guard lock(mutex_);
    for (const auto& t : targets) {
      auto set = std::make_shared<Slot::Unflushed>();
      std::swap(*set, t->unflushed);
      t->flushing.push_back(set);
      (*sets)[t->replica.backend.get()] = {t, set};
    }
  }
  FanOutOp(
      "flush", 0, 0, targets,
      [this, sets](Backend& b, DoneCallback cb) {
        auto entry = sets->at(&b);
        b.Flush([this, entry, cb = std::move(cb)](Status s) {
          if (s.ok()) {
            std::lock_guard lock(mutex_);
            auto& f = entry.first->flushing;
            f.erase(std::remove(f.begin(), f.end(), entry.second), f.end());
          }
          cb(std::move(s));
        });
      },
      [this, done = std::move(done)](Status s) { Acknowledge(done, std::move(s)); });
}

// ---------------------------------------------------------------- reads

void Engine::Read(uint64_t offset, uint32_t length, ReadCallback done) {
  if (!TryEnter()) {
    Defer([this, offset, length, done = std::move(done)]() mutable {
      Read(offset, length, std::move(done));
    });
    return;
  }
  ReadFrom({}, offset, length, [this, done = std::move(done)](Status s, std::vector<uint8_t> d) {
    done(std::move(s), std::move(d));
    Leave();
  });
}

void Engine::ReadFrom(std::vector<SlotPtr> tried, uint64_t offset, uint32_t length,
                      ReadCallback done) {
  SlotPtr best;
  for (const auto& s : Targets(false)) {
    if (std::find(tried.begin(), tried.end(), s) != tried.end()) continue;
    if (!best) {
      best = s;
      continue;
    }
    if (s->replica.local != best->replica.local) {
      if (s->replica.local) best = s;
      continue;
    }
    if (s->replica.backend->Outstanding() < best->replica.backend->Outstanding()) best = s;
  }
  if (!best) {
    done(NoReplica("read"), {});
    return;
  }
  tried.push_back(best);
  best->replica.backend->Read(
      offset, length,
      [this, best, tried = std::move(tried), offset, length, done = std::move(done)](
          Status s, std::vector<uint8_t> data) mutable {
        if (s.ok()) {
          done(std::move(s), std::move(data));
          return;
        }
        MarkFailed(best, s);
        ReadFrom(std::move(tried), offset, length, std::move(done));
      });
}

// ---------------------------------------------------------------- catch-up

Status Engine::Copy(const std::string& to, uint64_t offset, uint64_t length) {
  return WithRangeHeld(offset, length, [&] { return CopyHeld(to, offset, length); });
}

Status Engine::WithRangeHeld(uint64_t offset, uint64_t length, const std::function<Status()>& fn) {
  EnterBlocking();
  std::promise<uint64_t> granted;
  ranges_.Acquire(AlignDown(offset), AlignUp(offset + length),
                  [&granted](uint64_t token) { granted.set_value(token); });
  uint64_t token = granted.get_future().get();
  Status s = fn();
  ranges_.Release(token);
  Leave();
  return s;
}

Status Engine::CopyHeld(const std::string& to, uint64_t offset, uint64_t length) {
  SlotPtr target = Find(to);
  if (!target) return Status(ErrorKind::kNotFound, "volume " + volume_ + ": no replica " + to);
  // first: the status; second: true when the target's write failed.
  std::promise<std::pair<Status, bool>> copied;
  ReadFrom({}, offset, static_cast<uint32_t>(length),
           [this, &copied, target, offset](Status s, std::vector<uint8_t> data) {
             if (!s.ok()) {
               copied.set_value({std::move(s), false});
               return;
             }
             auto buf = std::make_shared<std::vector<uint8_t>>(std::move(data));
             {
               std::lock_guard lock(mutex_);
               target->unflushed.Add(offset, offset + buf->size());
             }
             target->replica.backend->Write(offset, *buf, [&copied, buf](Status w) {
               copied.set_value({w, !w.ok()});
             });
           });
  auto [s, target_failed] = copied.get_future().get();
  if (target_failed) MarkFailed(target, s);
  return s.ok() ? s : s.WithContext("copy to replica " + to);
}

}  // namespace shorthorn::fused
