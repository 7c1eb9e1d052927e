// Design notes: the rebuild ops of a Replica. Source side: LAYER_EXTENTS
// and READ_SNAPSHOT read one snapshot's own layer file (not its chain), so
// the target can reproduce the file exactly and check it against the
// layer checksum. Target side, the states of a REBUILD:
//
//        REBUILD                         all layers copied and verified
//   idle -------> running ----------------------------------------> done
//   done            |  COMMIT #1 (under a pause of data ops):         ^
//   failed          |    rebuilding = true, snapshots dropped,        |
//     ^             |    head.parent = none; reply {}                 |
//     |             |  rebuild thread: Rebuilder::Run copies the      |
//     |             |    source's whole layer tree (every branch)     |
//     |             |    into unreferenced layer-<id>.img files       |
//     |             |    (ids from next_layer_id)                     |
//     |             v                                                 |
//     +------ error, mismatch, cancel      COMMIT #2 (paused): copied layers
//             (files removed; still         added, head.parent = snapshot,
//              rebuilding = true)           rebuilding = false; new index
//
// While rebuilding = true (on disk and in rebuilding_) the head takes the
// engine's writes with no parent under it; replica.cc refuses what would
// need the missing data (unaligned edges) and writes zeros for unmaps. The
// head goes on the copied `snapshot`; the other copied layers (branches a
// revert left, removed snapshots kept for their several children) are
// linked as they were on the source, so the tree equals the source's. A
// crash anywhere before COMMIT #2 leaves replica.json with the flag set and
// the copied files unreferenced: Open deletes them and the engine sends
// REBUILD again. COMMIT #2 is the single commit point of the link; until it
// the replica is never a valid source (the engine checks the flag).
//
// Replica makes COMMIT #1 (StartRebuild) and COMMIT #2 (LinkRebuilt);
// RebuildTask, below, owns the thread between them, the Rebuilder and the
// state LIST_LAYERS reports.
//
// SNAPSHOT is refused while rebuilding, so nothing else allocates layer
// ids and the ids the Rebuilder takes from next_layer_id stay free.
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"
#include "common/names.h"
#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_rebuild.h"

namespace shorthorn::replicad {

Result<LayerPtr> Replica::SnapshotLayer(const std::string& name, const std::string& op) {
  std::lock_guard meta_lock(meta_mu_);
  const LayerMeta* l = FindSnapshot(meta_, name);
  if (l == nullptr) {
    return Status(ErrorKind::kNotFound, op + ": no such snapshot", ENOENT);
  }
  return layers_.Find(l->id);
}

Result<ExtentPage> Replica::LayerExtents(const std::string& name, uint64_t from, size_t max) {
  const std::string op = "layer extents of snapshot " + name + " of " + Object();
  auto layer = SnapshotLayer(name, op);
  if (!layer.ok()) return layer.status();
  uint64_t end = FileSize((*layer)->fd.get());
  // Owned extents: a zero run reads as zeros, and the copy (or a backup)
  // holds those zeros as data.
  uint64_t covered = end;
  auto extents = OwnedExtents(**layer, from, end, std::max<size_t>(max, 1), &covered);
  if (!extents.ok()) return extents.status().WithContext(op);
  ExtentPage page;
  page.extents = std::move(*extents);
  if (page.extents.size() > std::max<size_t>(max, 1)) {  // zero runs between data extents
    page.extents.resize(std::max<size_t>(max, 1));
    covered = page.extents.back().offset + page.extents.back().length;
  }
  if (covered < end) page.next = covered;
  return page;
}

Status Replica::ReadLayer(const std::string& name, uint64_t offset, std::span<uint8_t> buf) {
  const std::string op = "read snapshot " + name + " of " + Object();
  uint64_t size = this->size();
  if (offset > size || buf.size() > size - offset) {
    return Status(ErrorKind::kInvalidArgument,
                  op + ": range " + std::to_string(offset) + "+" + std::to_string(buf.size()) +
                      " is beyond the size " + std::to_string(size),
                  EINVAL);
  }
  auto layer = SnapshotLayer(name, op);
  if (!layer.ok()) return layer.status();
  return PreadFull((*layer)->fd.get(), buf.data(), buf.size(), offset, (*layer)->file)
      .WithContext(op);
}

Status Replica::StartRebuild(const RebuildRequest& request) {
  const std::string op = "rebuild " + Object();
  auto invalid = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, op + ": " + reason, EINVAL);
  };
  if (Status s = ValidateName("snapshot", request.snapshot); !s.ok()) return invalid(s.message());
  if (Status s = ValidateName("volume", request.source_volume); !s.ok()) {
    return invalid(s.message());
  }
  if (Status s = ValidateName("replica", request.source_replica); !s.ok()) {
    return invalid(s.message());
  }
  std::string host, port;
  if (Status s = SplitHostPort(request.source, &host, &port); !s.ok()) return invalid(s.message());

  std::lock_guard meta_lock(meta_mu_);
  SH_RETURN_IF_ERROR(rebuild_.CheckIdle(op));
  if (merging_) {
    return Status(ErrorKind::kBusy,
                  op + ": a snapshot is being merged; retry when LIST_LAYERS shows no task", EBUSY);
  }
  // Data ops admitted before the flag (an unaligned write completing its
  // edges from the old chain) end before it is set.
  Pause pause(this);
  pause.WaitIdle();
  ReplicaMeta next = meta_;
  next.rebuilding = true;
  std::erase_if(next.layers, [&](const LayerMeta& l) { return l.id != next.head; });
  next.layers.front().parent.reset();
  bool dropping = next.layers.size() != meta_.layers.size();
  BlockIndex index;
  if (dropping) {
    std::map<uint64_t, LayerPtr> head_only{{next.head, layers_.Find(next.head)}};
    auto built = layers_.BuildIndex({next.head}, next.size / kSectorSize, head_only);
    if (!built.ok()) return built.status().WithContext(op);
    index = std::move(*built);
  }
  SH_RETURN_IF_ERROR(CommitLocked(std::move(next), "rebuild"));
  rebuilding_ = true;
  std::vector<LayerPtr> dropped;
  if (dropping) {
    for (auto& [id, layer] : layers_.All()) {
      if (id != meta_.head) dropped.push_back(layer);
    }
    layers_.Install(meta_, {.add = {}, .remove = dropped, .index = std::move(index), .forget = {}});
  }
  for (const auto& layer : dropped) {
    std::string path = dir_ + "/" + layer->file;
    if (::unlink(path.c_str()) != 0) LogWarning(op + ": could not remove " + path);
    std::string zeros = dir_ + "/" + ZeroMap::FileName(layer->file);
    if (::unlink(zeros.c_str()) != 0 && errno != ENOENT) {
      LogWarning(op + ": could not remove " + zeros);
    }
  }
  if (!dropped.empty()) (void)SyncDirectory(dir_);

  RebuildTarget target;
  target.dir = dir_;
  target.replica = replica_;
  target.size = meta_.size;
  target.first_id = meta_.next_layer_id;
  target.crash_at = options_.crash_at;
  target.fail_io = options_.fail_io;
  SH_RETURN_IF_ERROR(rebuild_.Start(request, std::move(target), options_.rebuild, op));
  LogInfo(op + ": from replica " + request.source_replica + " at " + request.source +
          " up to snapshot " + request.snapshot +
          (dropped.empty() ? "" : "; dropped " + std::to_string(dropped.size()) + " snapshots"));
  return Status::Ok();
}

Status Replica::LinkRebuilt(const std::string& snapshot, const std::vector<LayerMeta>& copied) {
  const std::string op = "rebuild " + Object() + ": link";
  std::lock_guard meta_lock(meta_mu_);
  auto under = std::find_if(copied.begin(), copied.end(),
                            [&](const LayerMeta& l) { return l.name == snapshot; });
  if (!meta_.rebuilding || under == copied.end()) {
    return Status(ErrorKind::kFailed, op + ": nothing to link", EIO);
  }
  const uint64_t under_id = under->id;
  std::map<uint64_t, LayerPtr> fresh;
  for (const auto& l : copied) {
    auto layer = layers_.OpenLayer(l, /*head=*/false);
    if (!layer.ok()) return layer.status().WithContext(op);
    fresh[l.id] = std::move(*layer);
  }
  ReplicaMeta next = meta_;
  for (const auto& l : copied) {
    next.layers.push_back(l);
    next.next_layer_id = std::max(next.next_layer_id, l.id + 1);
  }
  FindLayer(next, next.head)->parent = under_id;
  next.rebuilding = false;
  if (Status s = ValidateChain(next); !s.ok()) return s.WithContext(op);

  Pause pause(this);
  pause.WaitIdle();
  // Reserve slots so the new index can name the copied layers.
  for (auto& [id, layer] : fresh) layers_.Reserve(layer);
  std::map<uint64_t, LayerPtr> layers = layers_.All();
  layers.insert(fresh.begin(), fresh.end());
  Result<BlockIndex> index = layers_.BuildIndex(ActiveChain(next), next.size / kSectorSize, layers);
  Status s = index.status();
  if (s.ok()) s = CommitLocked(std::move(next), "rebuild");
  if (!s.ok()) {
    for (auto& [id, layer] : fresh) layers_.Unreserve(layer);
    return s;
  }
  LayerSet::Change change{.add = {}, .remove = {}, .index = std::move(*index), .forget = {}};
  for (auto& [id, layer] : fresh) change.add.push_back(layer);
  layers_.Install(meta_, std::move(change));
  rebuilding_ = false;
  worker_.Kick();  // a copied removed snapshot may be due for its merge
  return Status::Ok();
}

RebuildTask::RebuildTask(std::string object, bool rebuilding, Link link)
    : object_(std::move(object)), link_(std::move(link)) {
  if (rebuilding) state_.message = "no rebuild has run since the replica was opened; send REBUILD";
}

RebuildTask::~RebuildTask() { Stop(); }

Status RebuildTask::CheckIdle(const std::string& op) const {
  std::lock_guard lock(mu_);
  return CheckIdleLocked(op);
}

Status RebuildTask::CheckIdleLocked(const std::string& op) const {
  if (stopped_) return Status(ErrorKind::kUnavailable, op + ": the replica is closed", ESHUTDOWN);
  if (rebuilder_ != nullptr) {
    return Status(ErrorKind::kBusy, op + ": a rebuild from replica " + source_ + " is running",
                  EBUSY);
  }
  return Status::Ok();
}

Status RebuildTask::Start(const RebuildRequest& request, RebuildTarget target,
                          const RebuildOptions& options, const std::string& op) {
  SH_RETURN_IF_ERROR(CheckIdle(op));
  target.progress = [this](uint64_t done, uint64_t total) {
    std::lock_guard lock(mu_);
    state_.bytes = done;
    total_bytes_ = total;
  };
  auto rebuilder = std::make_shared<Rebuilder>(request, std::move(target), options);
  std::lock_guard lock(mu_);
  // Again: a Stop (Close) or another Start may have come in meanwhile.
  SH_RETURN_IF_ERROR(CheckIdleLocked(op));
  if (thread_.joinable()) thread_.join();  // an ended task
  rebuilder_ = rebuilder;
  state_ = msg::RebuildState{msg::RebuildPhase::kRunning, "", 0};
  source_ = request.source_replica;
  total_bytes_ = 0;
  thread_ =
      std::thread([this, rebuilder, snapshot = request.snapshot] { Run(rebuilder, snapshot); });
  return Status::Ok();
}

void RebuildTask::Run(std::shared_ptr<Rebuilder> rebuilder, std::string snapshot) {
  bool crashed = false;
  auto layers = rebuilder->Run(&crashed);
  Status s = layers.status();
  if (s.ok()) {
    s = link_(snapshot, *layers);
    if (!s.ok()) rebuilder->RemoveFiles();
  }
  if (s.ok()) {
    LogInfo("rebuild " + object_ + ": done, " + std::to_string(layers->size()) +
            " layers linked under the head");
  } else {
    LogError(s.message());
  }
  std::lock_guard lock(mu_);
  state_.state = s.ok() ? msg::RebuildPhase::kDone : msg::RebuildPhase::kFailed;
  state_.message = s.ok() ? "" : s.message();
  rebuilder_.reset();
  ended_.notify_all();
}

void RebuildTask::Stop() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    if (rebuilder_ != nullptr) rebuilder_->Cancel();
    thread = std::move(thread_);
  }
  if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
}

void RebuildTask::Wait() {
  std::unique_lock lock(mu_);
  ended_.wait(lock, [this] { return rebuilder_ == nullptr; });
}

RebuildTask::Report RebuildTask::report() const {
  std::lock_guard lock(mu_);
  Report r{state_, std::nullopt};
  if (state_.state == msg::RebuildPhase::kRunning) {
    r.task = msg::LayerTask{"rebuild", source_, state_.bytes, std::max(total_bytes_, state_.bytes)};
  }
  return r;
}

}  // namespace shorthorn::replicad
