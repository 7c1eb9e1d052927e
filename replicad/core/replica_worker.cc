// Design notes: merging snapshot S into its single child C (C may be a
// snapshot or the head, in or out of the active chain):
//
//   removed=true committed (DeleteSnapshot replied)
//        |
//        v
//   [prepare]  C is a snapshot with a checksum -> COMMIT C.checksum = ""
//        |
//        v
//   [copy]     for each piece (<= 1 MiB) of S's data extents:
//        |       range-lock the piece; C's holes in it := S's data;
//        |       index: S -> C in the piece; unlock
//        v
//   [sync]     fdatasync C          (failure fails the replica)
//        |
//        v
//   [commit]   COMMIT: C.parent = S.parent, S gone   (the commit point)
//        |
//        v
//   [unlink]   remove S's file, fsync the directory
//
// Every block copied into C is one C lacked, and C's view of it was S's
// block anyway, so C's content (and every snapshot's, and the live data)
// is the same before, during and after the copy; blocks C overrides are
// never touched, so S's data there is dropped with S's file: deleting the
// newest snapshot frees what only it held. The range lock is the one
// writes and unmaps take, so a copy never overwrites a block the engine
// wrote while the merge ran. A crash before [commit] leaves S in the tree
// still removed: the next Open's worker runs the merge again, which copies
// only what C still lacks. A crash after [commit] leaves S's file, which
// Open deletes as unreferenced. (A 4 KiB block write is assumed not to be
// torn by a crash: always true for kill -9, which loses no page; for power
// loss ext4 and xfs commit a block's allocation after its data.)
#include "replicad/core/replica_worker.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica.h"

namespace shorthorn::replicad {
namespace {

enum JobResult { kNoJob, kDidJob, kJobFailed };

}  // namespace

ReplicaWorker::ReplicaWorker(Replica& replica) : replica_(replica) {}

ReplicaWorker::~ReplicaWorker() { Stop(); }

void ReplicaWorker::Start() {
  std::lock_guard lock(mu_);
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void ReplicaWorker::Stop() {
  std::unique_lock lock(mu_);
  stop_ = true;
  cv_.notify_all();
  // The worker itself cannot join itself: a later Stop (Close, the
  // destructor) does.
  if (thread_.get_id() == std::this_thread::get_id()) return;
  if (!thread_.joinable()) {
    // Never started, or another Stop (Close and SimulatePowerLoss may both
    // stop) took the thread to join it: wait for the end all the same.
    cv_.wait(lock, [this] { return ended_ || !started_; });
    return;
  }
  std::thread thread = std::move(thread_);
  lock.unlock();
  thread.join();
}

void ReplicaWorker::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

void ReplicaWorker::RequestVerify() {
  {
    std::lock_guard lock(mu_);
    verify_requested_ = true;
    verify_ = msg::VerifyState{msg::VerifyPhase::kRunning, {}, 0};
  }
  Kick();
}

ReplicaWorker::Report ReplicaWorker::report() const {
  std::lock_guard lock(mu_);
  return {task_, verify_};
}

bool ReplicaWorker::StopRequested() const {
  std::lock_guard lock(mu_);
  return stop_;
}

bool ReplicaWorker::Hit(std::string_view point) {
  const auto& crash_at = replica_.options_.crash_at;
  if (!crash_at || !crash_at(point)) return false;
  LogInfo(replica_.Object() + ": simulated crash of the worker at " + std::string(point));
  return true;
}

bool ReplicaWorker::WaitIdle() {
  Kick();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return ended_ || (idle_ && !kicked_); });
  return !ended_;
}

void ReplicaWorker::Loop() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      kicked_ = false;
      idle_ = false;
    }
    bool crashed = false;
    int result = RunOneJob(&crashed) ? kDidJob : kNoJob;
    if (crashed) break;
    if (result == kDidJob) continue;
    std::unique_lock lock(mu_);
    idle_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return stop_ || kicked_; });
  }
  std::lock_guard lock(mu_);
  ended_ = true;
  idle_ = false;
  cv_.notify_all();
}

void ReplicaWorker::Backoff(const Status& failure) {
  LogError(failure.message() + "; retrying in 10 s");
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(10), [this] { return stop_; });
}

void ReplicaWorker::SetProgress(uint64_t done_bytes) {
  std::lock_guard lock(mu_);
  if (task_) task_->done_bytes = std::min(done_bytes, task_->total_bytes);
}

bool ReplicaWorker::RunOneJob(bool* crashed) {
  Replica& r = replica_;
  if (r.failed()) return false;
  uint64_t merge_id = 0, sum_id = 0;
  {
    std::lock_guard meta_lock(r.meta_mu_);
    auto due = MergesDue(r.meta_);
    if (!due.empty()) {
      merge_id = due.front();
      r.merging_ = true;
    } else {
      for (const auto& l : r.meta_.layers) {
        if (l.is_snapshot() && l.checksum.empty()) {
          sum_id = l.id;
          break;
        }
      }
    }
  }
  if (merge_id != 0) {
    Status s = RunMerge(merge_id, crashed);
    {
      std::lock_guard meta_lock(r.meta_mu_);
      r.merging_ = false;
    }
    {
      std::lock_guard lock(mu_);
      task_.reset();
    }
    if (!s.ok() && !*crashed) Backoff(s);
    return true;
  }
  if (sum_id != 0) {
    Status s = RunChecksum(sum_id, crashed);
    if (!s.ok() && !*crashed) Backoff(s);
    return true;
  }
  bool verify = false;
  {
    std::lock_guard lock(mu_);
    std::swap(verify, verify_requested_);
  }
  if (verify) {
    RunVerify(crashed);
    return true;
  }
  return false;
}

Status ReplicaWorker::RunMerge(uint64_t id, bool* crashed) {
  Replica& r = replica_;
  if ((*crashed = Hit("merge-start"))) return Status::Ok();
  LayerPtr s_layer, c_layer;
  std::string name;
  {
    std::lock_guard meta_lock(r.meta_mu_);
    const LayerMeta* s = FindLayer(r.meta_, id);
    if (s == nullptr) return Status::Ok();
    std::vector<uint64_t> children = Children(r.meta_, id);
    if (children.size() > 1) return Status::Ok();
    name = s->name;
    s_layer = r.layers_.Find(id);
    if (!children.empty()) c_layer = r.layers_.Find(children.front());
    const LayerMeta* c = children.empty() ? nullptr : FindLayer(r.meta_, children.front());
    if (c != nullptr && !c->checksum.empty()) {
      ReplicaMeta next = r.meta_;
      FindLayer(next, c->id)->checksum.clear();
      SH_RETURN_IF_ERROR(r.CommitLocked(std::move(next), "merge snapshot " + name + " of"));
    }
  }
  const std::string op = "merge snapshot " + name + " of " + r.Object();
  if ((*crashed = Hit("merge-prepared"))) return Status::Ok();
  if (c_layer != nullptr) {
    int sfd = s_layer->fd.get(), cfd = c_layer->fd.get();
    // What S owns (data and zero runs: a zero run of S is copied as real
    // zeros) goes into C where C owns nothing: C's own data and zero runs
    // hide S there (a zero run of C is a discard made after S was taken).
    auto extents = OwnedExtents(*s_layer, 0, FileSize(sfd));
    if (!extents.ok()) return extents.status().WithContext(op);
    uint64_t total = 0;
    for (const auto& e : *extents) total += e.length;
    {
      std::lock_guard lock(mu_);
      task_ = msg::LayerTask{"delete_snapshot", name, 0, total};
    }
    uint64_t piece =
        std::max<uint64_t>(kSectorSize, r.options_.merge_piece / kSectorSize * kSectorSize);
    std::vector<uint8_t> buf(piece);
    uint64_t done = 0;
    for (const auto& e : *extents) {
      uint64_t first = e.offset / kSectorSize;
      uint64_t last = (e.offset + e.length + kSectorSize - 1) / kSectorSize;
      for (uint64_t pb = first; pb < last; pb += piece / kSectorSize) {
        if (StopRequested()) {
          *crashed = true;  // Close: the next Open resumes the merge
          return Status::Ok();
        }
        uint64_t pe = std::min(last, pb + piece / kSectorSize);
        RangeLock::Guard guard = r.range_lock_.Lock(pb, pe);
        auto held = OwnedExtents(*c_layer, pb * kSectorSize, pe * kSectorSize);
        if (!held.ok()) return held.status().WithContext(op);
        uint64_t pos = pb;  // copy the gaps between C's extents
        auto copy = [&](uint64_t from, uint64_t to) -> Status {
          if (from >= to) return Status::Ok();
          uint64_t n = (to - from) * kSectorSize;
          SH_RETURN_IF_ERROR(PreadFull(sfd, buf.data(), n, from * kSectorSize, s_layer->file));
          return PwriteFull(cfd, buf.data(), n, from * kSectorSize, c_layer->file);
        };
        for (const auto& h : *held) {
          uint64_t hb = h.offset / kSectorSize;
          SH_RETURN_IF_ERROR(copy(pos, hb).WithContext(op));
          pos = std::max(pos, (h.offset + h.length + kSectorSize - 1) / kSectorSize);
        }
        SH_RETURN_IF_ERROR(copy(pos, pe).WithContext(op));
        r.layers_.Relabel(pb, pe - pb, s_layer->slot, c_layer->slot);
        guard.Release();
        done += (pe - pb) * kSectorSize;
        SetProgress(done);
        if ((*crashed = Hit("merge-copy"))) return Status::Ok();
      }
    }
    UndoLog* undo = r.undo_.get();
    const uint64_t mark = undo != nullptr ? undo->Mark() : 0;  // power-loss test mode
    if (::fdatasync(cfd) != 0) {
      Status s = ErrnoStatus(errno, op + ": fdatasync " + c_layer->file);
      r.MarkFailed(s);
      return s;
    }
    if (undo != nullptr) undo->Synced(cfd, mark);
    if ((*crashed = Hit("merge-synced"))) return Status::Ok();
  }
  {
    std::lock_guard meta_lock(r.meta_mu_);
    ReplicaMeta next = r.meta_;
    ApplyMerge(next, id);
    SH_RETURN_IF_ERROR(r.CommitLocked(std::move(next), "merge snapshot " + name + " of"));
    // forget: no runs are left; kept for safety
    r.layers_.Install(r.meta_, {.add = {}, .remove = {}, .index = {}, .forget = s_layer->slot});
  }
  if ((*crashed = Hit("merge-committed"))) return Status::Ok();
  if (Status s = r.RemoveLayerFile(s_layer); !s.ok()) {
    LogWarning(op + ": " + s.message() + "; the next open removes it");
  }
  if ((*crashed = Hit("merge-unlinked"))) return Status::Ok();
  LogInfo(op + ": done");
  return Status::Ok();
}

Status ReplicaWorker::RunChecksum(uint64_t id, bool* crashed) {
  Replica& r = replica_;
  LayerPtr layer = r.layers_.Find(id);
  if (layer == nullptr) return Status::Ok();
  auto sum = LayerChecksum(*layer, [this](uint64_t) { return !StopRequested(); });
  if (!sum.ok()) {
    if (StopRequested()) {
      *crashed = true;
      return Status::Ok();
    }
    return sum.status().WithContext("checksum " + r.Object());
  }
  if ((*crashed = Hit("checksum"))) return Status::Ok();
  std::lock_guard meta_lock(r.meta_mu_);
  const LayerMeta* l = FindLayer(r.meta_, id);
  if (l == nullptr || !l->is_snapshot() || !l->checksum.empty()) return Status::Ok();
  ReplicaMeta next = r.meta_;
  FindLayer(next, id)->checksum = *sum;
  return r.CommitLocked(std::move(next), "store the checksum of");
}

void ReplicaWorker::RunVerify(bool* crashed) {
  Replica& r = replica_;
  struct Item {
    std::string name, expected;
    LayerPtr layer;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  {
    std::lock_guard meta_lock(r.meta_mu_);
    std::map<uint64_t, LayerPtr> layers = r.layers_.All();
    // A snapshot whose merge is due is on its way out, and unmap may punch
    // it (replica_unmap.cc): its checksum no longer describes it.
    std::vector<uint64_t> due = MergesDue(r.meta_);
    for (const auto& l : r.meta_.layers) {
      if (!l.is_snapshot() || l.checksum.empty()) continue;
      if (std::find(due.begin(), due.end(), l.id) != due.end()) continue;
      LayerPtr layer = layers.at(l.id);
      total += AllocatedBytes(layer->fd.get());
      items.push_back({l.name, l.checksum, layer});
    }
  }
  {
    std::lock_guard lock(mu_);
    verify_ = msg::VerifyState{msg::VerifyPhase::kRunning, {}, 0};
    task_ = msg::LayerTask{"verify", "", 0, total};
  }
  uint64_t base = 0;
  for (const auto& item : items) {
    {
      std::lock_guard lock(mu_);
      task_->name = item.name;
    }
    auto sum = LayerChecksum(*item.layer, [&](uint64_t done) {
      std::lock_guard lock(mu_);
      task_->done_bytes = std::min(total, base + done);
      return !stop_;
    });
    if (StopRequested()) {
      *crashed = true;
      break;
    }
    base += AllocatedBytes(item.layer->fd.get());
    std::lock_guard lock(mu_);
    ++verify_.checked;
    if (!sum.ok() || *sum != item.expected) {
      verify_.bad.push_back(item.name);
      LogError("verify " + r.Object() + ": snapshot " + item.name + " (" + item.layer->file +
               "): " +
               (sum.ok() ? "checksum " + *sum + " does not match the stored " + item.expected
                         : sum.status().message()));
    }
  }
  std::lock_guard lock(mu_);
  verify_.state = msg::VerifyPhase::kDone;
  task_.reset();
  LogInfo("verify " + r.Object() + ": " + std::to_string(verify_.checked) + " layers checked, " +
          std::to_string(verify_.bad.size()) + " bad");
}

}  // namespace shorthorn::replicad
