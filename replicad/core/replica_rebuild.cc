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

namespace shorthorn::replicad {

Result<Replica::LayerPtr> Replica::SnapshotLayer(const std::string& name, const std::string& op) {
  std::lock_guard meta_lock(meta_mu_);
  const LayerMeta* l = FindSnapshot(meta_, name);
  if (l == nullptr) {
    return Status(ErrorKind::kNotFound, op + ": no such snapshot", ENOENT);
  }
  std::shared_lock lock(index_mu_);
  return layers_.at(l->id);
}

Result<ExtentPage> Replica::LayerExtents(const std::string& name, uint64_t from, size_t max) {
  const std::string op = "layer extents of snapshot " + name + " of " + Object();
  auto layer = SnapshotLayer(name, op);
  if (!layer.ok()) return layer.status();
  int fd = (*layer)->fd.get();
  uint64_t end = FileSize(fd);
  auto extents = AllocatedExtents(fd, from, end, (*layer)->file, std::max<size_t>(max, 1));
  if (!extents.ok()) return extents.status().WithContext(op);
  ExtentPage page;
  page.extents = std::move(*extents);
  if (page.extents.size() >= std::max<size_t>(max, 1)) {
    uint64_t last = page.extents.back().offset + page.extents.back().length;
    if (last < end) page.next = last;
  }
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
  {
    std::lock_guard lock(rebuild_mu_);
    if (rebuild_stopped_) {
      return Status(ErrorKind::kUnavailable, op + ": the replica is closed", ESHUTDOWN);
    }
    if (rebuilder_ != nullptr) {
      return Status(ErrorKind::kBusy,
                    op + ": a rebuild from replica " + rebuild_.source_replica + " is running",
                    EBUSY);
    }
  }
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
    std::map<uint64_t, LayerPtr> head_only;
    {
      std::shared_lock lock(index_mu_);
      head_only[next.head] = layers_.at(next.head);
    }
    auto built = BuildIndex({next.head}, next.size / kSectorSize, head_only);
    if (!built.ok()) return built.status().WithContext(op);
    index = std::move(*built);
  }
  SH_RETURN_IF_ERROR(CommitLocked(std::move(next), "rebuild"));
  rebuilding_ = true;
  std::vector<LayerPtr> dropped;
  if (dropping) {
    std::unique_lock lock(index_mu_);
    for (auto& [id, layer] : layers_) {
      if (id != meta_.head) dropped.push_back(layer);
    }
    for (const auto& layer : dropped) {
      layers_.erase(layer->id);
      if (layer->slot < slots_.size() && slots_[layer->slot] == layer)
        slots_[layer->slot] = nullptr;
    }
    index_ = std::move(index);
    InstallChainLocked();
  }
  for (const auto& layer : dropped) {
    std::string path = dir_ + "/" + layer->file;
    if (::unlink(path.c_str()) != 0) LogWarning(op + ": could not remove " + path);
  }
  if (!dropped.empty()) (void)SyncDirectory(dir_);

  RebuildTarget target;
  target.dir = dir_;
  target.replica = replica_;
  target.size = meta_.size;
  target.first_id = meta_.next_layer_id;
  target.progress = [this](uint64_t done, uint64_t total) {
    std::lock_guard lock(rebuild_mu_);
    rebuild_.bytes = done;
    rebuild_.total_bytes = total;
  };
  target.crash_at = options_.crash_at;
  target.fail_io = options_.fail_io;
  auto rebuilder = std::make_shared<Rebuilder>(request, std::move(target), options_.rebuild);
  {
    std::lock_guard lock(rebuild_mu_);
    if (rebuild_thread_.joinable()) rebuild_thread_.join();  // an ended task
    rebuilder_ = rebuilder;
    rebuild_ = RebuildInfo{"running", "", 0, request.source_replica, 0};
    rebuild_thread_ = std::thread(
        [this, rebuilder, snapshot = request.snapshot] { RunRebuild(rebuilder, snapshot); });
  }
  LogInfo(op + ": from replica " + request.source_replica + " at " + request.source +
          " up to snapshot " + request.snapshot +
          (dropped.empty() ? "" : "; dropped " + std::to_string(dropped.size()) + " snapshots"));
  return Status::Ok();
}

void Replica::RunRebuild(std::shared_ptr<Rebuilder> rebuilder, std::string snapshot) {
  bool crashed = false;
  auto layers = rebuilder->Run(&crashed);
  Status s = layers.status();
  if (s.ok()) {
    s = LinkRebuilt(snapshot, *layers);
    if (!s.ok()) rebuilder->RemoveFiles();
  }
  if (s.ok()) {
    LogInfo("rebuild " + Object() + ": done, " + std::to_string(layers->size()) +
            " layers linked under the head");
  } else {
    LogError(s.message());
  }
  std::lock_guard lock(rebuild_mu_);
  rebuild_.state = s.ok() ? "done" : "failed";
  rebuild_.message = s.ok() ? "" : s.message();
  rebuilder_.reset();
  rebuild_cv_.notify_all();
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
    auto layer = OpenLayer(l, /*head=*/false);
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
  std::map<uint64_t, LayerPtr> layers;
  {
    // Reserve slots so the new index can name the copied layers.
    std::unique_lock lock(index_mu_);
    for (auto& [id, layer] : fresh) {
      layer->slot = FreeSlotLocked();
      if (layer->slot >= slots_.size()) slots_.resize(layer->slot + 1);
      slots_[layer->slot] = layer;
    }
    layers = layers_;
  }
  layers.insert(fresh.begin(), fresh.end());
  Result<BlockIndex> index = BuildIndex(ActiveChain(next), next.size / kSectorSize, layers);
  Status s = index.status();
  if (s.ok()) s = CommitLocked(std::move(next), "rebuild");
  if (!s.ok()) {
    std::unique_lock lock(index_mu_);
    for (auto& [id, layer] : fresh) slots_[layer->slot] = nullptr;
    return s;
  }
  {
    std::unique_lock lock(index_mu_);
    layers_.insert(fresh.begin(), fresh.end());
    index_ = std::move(*index);
    InstallChainLocked();
  }
  rebuilding_ = false;
  Kick();  // a copied removed snapshot may be due for its merge
  return Status::Ok();
}

void Replica::StopRebuild() {
  std::thread thread;
  {
    std::lock_guard lock(rebuild_mu_);
    rebuild_stopped_ = true;
    if (rebuilder_ != nullptr) rebuilder_->Cancel();
    thread = std::move(rebuild_thread_);
  }
  if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
}

void Replica::WaitRebuild() {
  std::unique_lock lock(rebuild_mu_);
  rebuild_cv_.wait(lock, [this] { return rebuilder_ == nullptr; });
}

}  // namespace shorthorn::replicad
