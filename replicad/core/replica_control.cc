// Design notes: the layer ops of a Replica. Each one follows the same
// pattern under meta_mu_: check, make the files it needs durable, write the
// new replica.json atomically (the commit point), install the new chain in
// memory (one LayerSet::Install: readers see the old chain or the new one),
// then remove files nobody references any more. Step orders and
// what Open does with a crash between steps (doc/replica-format.md):
//
//   snapshot: pause data ops -> fdatasync head -> create new head file,
//             fsync it and the directory -> COMMIT -> install (the index is
//             unchanged: the old head keeps its slot, the new head is empty)
//   revert:   refuse if ops in flight -> create new head file -> COMMIT ->
//             rebuild the index for the new chain -> unlink old head
//   expand:   grow the head file, fsync -> COMMIT -> grow the index
//   delete:   COMMIT "removed": true -> (worker, replica_worker.cc) merge
//   open session:  (owner check, then epoch check) COMMIT epoch + owner
//                  (one replace for both)
//   end session:   (after Close's head fdatasync) fdatasync punched lower
//                  layers -> COMMIT "open": false
//
// A crash before COMMIT leaves the old replica.json: the new file is an
// unreferenced layer file, which Open deletes; a head file longer than
// `size` (crash inside expand) is cut back to `size`. A crash after COMMIT
// leaves at most a stale file to delete. Open also upgrades format 1 and
// rebuilds the block index from what each chain layer owns (SEEK_DATA/
// SEEK_HOLE and its zero map), root first, so newer layers override older
// ones.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"
#include "common/names.h"
#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica.h"
#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {
namespace {

Status Err(ErrorKind kind, int err, const std::string& message) {
  return Status(kind, message, err);
}

}  // namespace

Replica::Pause::Pause(Replica* r) : r_(r) {
  std::lock_guard lock(r_->mu_);
  r_->paused_ = true;
}

Replica::Pause::~Pause() {
  {
    std::lock_guard lock(r_->mu_);
    r_->paused_ = false;
  }
  r_->idle_.notify_all();
}

void Replica::Pause::WaitIdle() {
  std::unique_lock lock(r_->mu_);
  r_->idle_.wait(lock, [this] { return r_->in_flight_ == 0; });
}

Status Replica::Fault(std::string_view point, const std::string& what) const {
  int err = options_.fail_io ? options_.fail_io(point) : 0;
  return err == 0 ? Status::Ok() : ErrnoStatus(err, what);
}

Status Replica::CommitLocked(ReplicaMeta next, std::string_view op) {
  Status s = Fault("commit", "write " + MetaPath(dir_) + ".tmp");
  if (s.ok()) s = WriteFileAtomic(MetaPath(dir_), EncodeReplicaMeta(next));
  if (!s.ok()) return s.WithContext(std::string(op) + " " + Object());
  meta_ = std::move(next);
  return Status::Ok();
}

Status Replica::RemoveLayerFile(const LayerPtr& layer) {
  layers_.Remove(layer);
  {
    // A cached snapshot view may hold the file open; let it go.
    std::lock_guard view_lock(view_mu_);
    view_.reset();
  }
  std::string path = dir_ + "/" + layer->file;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "remove " + path);
  std::string zeros = dir_ + "/" + ZeroMap::FileName(layer->file);
  if (::unlink(zeros.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "remove " + zeros);
  return SyncDirectory(dir_);
}

Result<std::shared_ptr<Replica>> Replica::Open(const std::string& dir, IoEngine* engine,
                                               ReplicaOptions options) {
  std::string meta_path = MetaPath(dir);
  auto text = ReadFileToString(meta_path);
  if (!text.ok()) return text.status();
  auto meta = DecodeReplicaMeta(*text, meta_path);
  if (!meta.ok()) return meta.status();
  // Made under a larger max-volume-size: refused before anything (the block
  // index, leftover removal) is done for it; the files stay as they are.
  if (Status s = CheckMaxVolumeSize("read " + meta_path, meta->size, options.max_volume_size_gib);
      !s.ok()) {
    return Status(s.kind(), s.message() + " (raise max-volume-size to open the replica)", EINVAL);
  }
  if (meta->upgraded) {
    meta->upgraded = false;
    SH_RETURN_IF_ERROR(WriteFileAtomic(meta_path, EncodeReplicaMeta(*meta)));
    LogInfo("replica " + meta->replica + ": upgraded replica.json to format 2");
  }
  // Leftovers of a crash: layer files no layer names, a half-written temp.
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      bool referenced = std::any_of(meta->layers.begin(), meta->layers.end(),
                                    [&](const LayerMeta& l) { return l.file == n; });
      // A zero map counts only for a layer that replica.json says has one
      // (one written before that commit never hid anything: see Unmap).
      bool zero_map = std::any_of(meta->layers.begin(), meta->layers.end(), [&](const auto& l) {
        return l.zero_map && ZeroMap::FileName(l.file) == n;
      });
      if ((IsLayerFileName(n) && !referenced) || (ZeroMap::IsFileName(n) && !zero_map) ||
          n == std::string(kMetaFileName) + ".tmp") {
        stale.push_back(n);
      }
    }
    ::closedir(d);
    for (const auto& n : stale) {
      LogInfo("replica " + meta->replica + ": removing leftover file " + n);
      if (::unlink((dir + "/" + n).c_str()) != 0)
        return ErrnoStatus(errno, "remove " + dir + "/" + n);
    }
    if (!stale.empty()) SH_RETURN_IF_ERROR(SyncDirectory(dir));
  }
  uint64_t size = meta->size;
  std::shared_ptr<Replica> r(new Replica(dir, std::move(*meta), engine, std::move(options)));
  {
    std::lock_guard meta_lock(r->meta_mu_);
    LayerSet::Change change;
    for (const auto& l : r->meta_.layers) {
      auto layer = r->layers_.OpenLayer(l, l.id == r->meta_.head);
      if (!layer.ok()) return layer.status();
      change.add.push_back(std::move(*layer));
    }
    r->layers_.Install(r->meta_, std::move(change));
    LayerPtr head = r->layers_.head();
    int head_fd = head->fd.get();
    if (FileSize(head_fd) != size) {
      LogWarning("replica " + r->meta_.replica + ": head " + head->file + " is " +
                 std::to_string(FileSize(head_fd)) + " bytes, setting it to " +
                 std::to_string(size));
      if (::ftruncate(head_fd, static_cast<off_t>(size)) != 0 || ::fsync(head_fd) != 0) {
        return ErrnoStatus(errno, "truncate " + dir + "/" + head->file);
      }
    }
    auto index = r->layers_.BuildIndex(ActiveChain(r->meta_), size / kSectorSize, r->layers_.All());
    if (!index.ok()) return index.status();
    r->layers_.Install(r->meta_,
                       {.add = {}, .remove = {}, .index = std::move(*index), .forget = {}});
  }
  r->worker_.Start();
  return r;
}

Result<bool> Replica::OpenSession(uint64_t epoch, const OwnerClaim& claim) {
  const std::string op = "open " + Object();
  std::lock_guard meta_lock(meta_mu_);
  // Before the epoch: a fused the volume moved away from is told so, even
  // when its epoch is also old.
  if (!claim.take_over) {
    SH_RETURN_IF_ERROR(CheckOwner("open", replica_, volume_, meta_.owner, claim.owner));
  }
  if (epoch < meta_.epoch) {
    return Err(ErrorKind::kStale, ESTALE,
               op + ": epoch " + std::to_string(epoch) +
                   " is older than the replica's epoch (a newer engine opened it)");
  }
  const bool clean = !meta_.open;
  const bool new_owner = !claim.owner.empty() && claim.owner != meta_.owner;
  // Taking a replica from another owner must also fence that owner's
  // engine, which may still run at the replica's epoch.
  if (new_owner && !meta_.owner.empty() && epoch <= meta_.epoch) {
    return Err(ErrorKind::kStale, ESTALE,
               op + ": taking it over from fused " + meta_.owner + " needs an epoch above " +
                   std::to_string(meta_.epoch) + ", not " + std::to_string(epoch));
  }
  if (epoch != meta_.epoch || new_owner) {
    ReplicaMeta next = meta_;
    next.epoch = epoch;
    if (new_owner) next.owner = claim.owner;
    SH_RETURN_IF_ERROR(CommitLocked(std::move(next), "open"));
  }
  if (epoch != epoch_.load()) {
    std::unique_lock lock(mu_);
    epoch_.store(epoch);
    // Ops admitted under the old epoch finish before the new owner hears back.
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }
  return clean;
}

Status Replica::EndSession() {
  const std::string op = "close " + Object();
  std::lock_guard meta_lock(meta_mu_);
  {
    std::lock_guard lock(mu_);
    if (failed_) return Err(ErrorKind::kIoError, EIO, op + ": the replica has failed");
    if (!closed_) return Err(ErrorKind::kInvalidArgument, EINVAL, op + ": the replica is open");
  }
  // Close synced the head; a clean close also promises the punches an
  // unmap made in lower layers since the last FLUSH.
  std::vector<LayerPtr> lower;
  {
    std::lock_guard dirty(dirty_mu_);
    lower.swap(dirty_lower_);
  }
  for (const auto& l : lower) {
    std::string what = op + ": fdatasync " + l->file;
    Status s = Fault("flush-layer", what);
    if (s.ok() && ::fdatasync(l->fd.get()) != 0) s = ErrnoStatus(errno, what);
    if (!s.ok()) {
      MarkFailed(s);
      return s;
    }
    if (undo_ != nullptr) undo_->Synced(l->fd.get(), undo_->Mark());  // power-loss test mode
  }
  if (!meta_.open) return Status::Ok();
  ReplicaMeta next = meta_;
  next.open = false;
  Status recorded = CommitLocked(std::move(next), "close");
  if (!recorded.ok()) {
    // Everything is durable; only the record of it is missing (a full
    // disk): the next OPEN reports the replica unclean, which is safe.
    LogWarning(op + ": the clean close is not recorded (" + recorded.message() +
               "); its next open reports it as not closed");
    return Status::Ok();
  }
  session_dirty_.store(false);
  return Status::Ok();
}

Status Replica::MarkSessionDirty() {
  if (session_dirty_.load(std::memory_order_acquire)) return Status::Ok();
  // Before any op is admitted (no in-flight count held): OpenSession holds
  // meta_mu_ while it waits for the ops in flight to end, which may include
  // some this thread's SubmitBatch holds back.
  SubmitBatch::Kick();
  std::lock_guard meta_lock(meta_mu_);
  if (!meta_.open) {
    ReplicaMeta next = meta_;
    next.open = true;
    Status s = CommitLocked(std::move(next), "first write");
    if (!s.ok()) return s.WithContext("write " + Object() + ": record that its data changes");
  }
  session_dirty_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status Replica::Snapshot(const std::string& name, const std::string& created, bool user_created) {
  const std::string op = "snapshot " + Object();
  if (Status s = ValidateName("snapshot", name); !s.ok()) {
    return Err(ErrorKind::kInvalidArgument, EINVAL, op + ": " + s.message());
  }
  std::lock_guard meta_lock(meta_mu_);
  if (const LayerMeta* l = FindSnapshot(meta_, name)) {
    return Err(ErrorKind::kAlreadyExists, EEXIST,
               op + ": snapshot " + name + " exists" + (l->removed ? " (being deleted)" : ""));
  }
  if (meta_.rebuilding) {
    return Err(ErrorKind::kBusy, EBUSY,
               op + ": " + Object() + " is rebuilding; snapshot it after the rebuild");
  }
  if (SnapshotCount(meta_) >= kMaxSnapshots) {
    return Err(ErrorKind::kNoSpace, EMLINK,
               op + ": " + Object() + " already has " + std::to_string(kMaxSnapshots) +
                   " snapshots, the limit");
  }
  Pause pause(this);
  pause.WaitIdle();
  LayerPtr old_head = layers_.head();
  if (::fdatasync(old_head->fd.get()) != 0) {
    Status s = ErrnoStatus(errno, op + ": fdatasync " + old_head->file);
    MarkFailed(s);
    return s;
  }
  // Power-loss test mode (data ops are paused: no change is in flight).
  if (undo_ != nullptr) undo_->Synced(old_head->fd.get(), undo_->Mark());
  ReplicaMeta next = meta_;
  uint64_t id = ApplySnapshot(next, name, created, user_created);
  const LayerMeta& fresh = *FindLayer(next, id);
  std::string path = dir_ + "/" + fresh.file;
  Status s = Fault("create-layer", "create " + path);
  if (s.ok()) s = CreateLayerFile(path, next.size);
  if (!s.ok()) return s.WithContext(op);
  auto layer = layers_.OpenLayer(fresh, /*head=*/true);
  s = (layer.ok() ? SyncDirectory(dir_) : layer.status()).WithContext(op);
  if (s.ok()) s = CommitLocked(std::move(next), "snapshot");  // names the replica itself
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  layers_.Install(meta_, {.add = {std::move(*layer)}, .remove = {}, .index = {}, .forget = {}});
  LogInfo(op + ": snapshot " + name + " taken (layer " + std::to_string(old_head->id) + ")");
  worker_.Kick();  // checksum it
  return Status::Ok();
}

Status Replica::DeleteSnapshot(const std::string& name) {
  const std::string op = "delete snapshot " + name + " of " + Object();
  std::lock_guard meta_lock(meta_mu_);
  const LayerMeta* l = FindSnapshot(meta_, name);
  if (l == nullptr) return Err(ErrorKind::kNotFound, ENOENT, op + ": no such snapshot");
  if (l->removed) return Status::Ok();
  ReplicaMeta next = meta_;
  FindLayer(next, l->id)->removed = true;
  SH_RETURN_IF_ERROR(CommitLocked(std::move(next), "delete snapshot " + name + " of"));
  layers_.Install(meta_);  // it may now be one of the layers unmap punches
  size_t children = Children(meta_, FindSnapshot(meta_, name)->id).size();
  LogInfo(op + (children <= 1 ? ": merging it in the background"
                              : ": it has " + std::to_string(children) +
                                    " children, kept hidden until it has one"));
  worker_.Kick();
  return Status::Ok();
}

Status Replica::Revert(const std::string& name) {
  const std::string op = "revert " + Object() + " to snapshot " + name;
  std::lock_guard meta_lock(meta_mu_);
  const LayerMeta* target = FindSnapshot(meta_, name);
  if (target == nullptr || target->removed) {
    return Err(ErrorKind::kNotFound, ENOENT,
               op + (target ? ": the snapshot is deleted" : ": no such snapshot"));
  }
  if (merging_) {
    return Err(ErrorKind::kBusy, EBUSY,
               op + ": a snapshot is being merged; retry when LIST_LAYERS shows no task");
  }
  Pause pause(this);
  {
    std::lock_guard lock(mu_);
    if (in_flight_ > 0) {
      return Err(ErrorKind::kBusy, EBUSY,
                 op + ": " + std::to_string(in_flight_) + " data ops are in flight");
    }
  }
  ReplicaMeta next = meta_;
  uint64_t id = ApplyRevert(next, target->id);
  const LayerMeta& fresh = *FindLayer(next, id);
  std::string path = dir_ + "/" + fresh.file;
  SH_RETURN_IF_ERROR(Fault("create-layer", "create " + path).WithContext(op));
  SH_RETURN_IF_ERROR(CreateLayerFile(path, next.size).WithContext(op));
  auto layer = layers_.OpenLayer(fresh, /*head=*/true);
  Status s = layer.ok() ? SyncDirectory(dir_) : layer.status();
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s.WithContext(op);
  }
  LayerPtr fresh_layer = std::move(*layer);
  // Reserve a slot for the new head so the new index can name it.
  layers_.Reserve(fresh_layer);
  std::map<uint64_t, LayerPtr> layers = layers_.All();
  LayerPtr old_head = layers_.head();
  layers[id] = fresh_layer;
  Result<BlockIndex> index = layers_.BuildIndex(ActiveChain(next), next.size / kSectorSize, layers);
  s = index.status().WithContext(op);
  if (s.ok()) s = CommitLocked(std::move(next), "revert");  // names the replica itself
  if (!s.ok()) {
    layers_.Unreserve(fresh_layer);
    ::unlink(path.c_str());
    return s;
  }
  layers_.Install(
      meta_,
      {.add = {fresh_layer}, .remove = {old_head}, .index = std::move(*index), .forget = {}});
  std::string old_path = dir_ + "/" + old_head->file;
  std::string old_zeros = dir_ + "/" + ZeroMap::FileName(old_head->file);
  if (::unlink(old_zeros.c_str()) != 0 && errno != ENOENT) {
    LogWarning(op + ": could not remove " + old_zeros + "; the next open removes it");
  }
  if (::unlink(old_path.c_str()) != 0 || !SyncDirectory(dir_).ok()) {
    LogWarning(op + ": could not remove " + old_path + "; the next open removes it");
  }
  LogInfo(op + ": done");
  worker_.Kick();  // a removed snapshot may be down to one child now
  return Status::Ok();
}

Status Replica::Expand(uint64_t size) {
  const std::string op = "expand " + Object();
  std::lock_guard meta_lock(meta_mu_);
  if (size % kSectorSize != 0) {
    return Err(ErrorKind::kInvalidArgument, EINVAL,
               op + ": new size " + std::to_string(size) + " is not a multiple of " +
                   std::to_string(kSectorSize));
  }
  if (size < meta_.size) {
    return Err(ErrorKind::kInvalidArgument, EINVAL,
               op + ": new size " + std::to_string(size) + " is smaller than the current size " +
                   std::to_string(meta_.size));
  }
  // Before the head file or the index grows (the index costs 24 bytes per
  // 64 MiB of size).
  SH_RETURN_IF_ERROR(CheckMaxVolumeSize(op, size, options_.max_volume_size_gib));
  if (size == meta_.size) return Status::Ok();
  LayerPtr head = layers_.head();
  if (::ftruncate(head->fd.get(), static_cast<off_t>(size)) != 0 || ::fsync(head->fd.get()) != 0) {
    return ErrnoStatus(errno, op + ": grow " + head->file);
  }
  ReplicaMeta next = meta_;
  next.size = size;
  SH_RETURN_IF_ERROR(CommitLocked(std::move(next), "expand"));
  layers_.Grow(size / kSectorSize);
  {
    std::lock_guard lock(mu_);
    size_ = size;
  }
  LogInfo(op + ": now " + std::to_string(size) + " bytes");
  return Status::Ok();
}

msg::LayerList Replica::ListLayers() {
  msg::LayerList out;
  std::lock_guard meta_lock(meta_mu_);
  const std::map<uint64_t, LayerPtr> layers = layers_.All();
  out.size = meta_.size;
  out.generation = meta_.generation;
  out.rebuilding = meta_.rebuilding;
  auto held = [&](uint64_t id) -> uint64_t {
    auto it = layers.find(id);
    return it == layers.end() ? 0 : AllocatedBytes(it->second->fd.get());
  };
  auto parent_name = [&](const LayerMeta& l) -> std::optional<std::string> {
    if (!l.parent) return std::nullopt;
    return FindLayer(meta_, *l.parent)->name;
  };
  for (const auto& l : meta_.layers) {
    uint64_t bytes = held(l.id);
    out.actual_size += bytes;
    if (!l.is_snapshot()) {
      out.head_parent = parent_name(l);
      out.head_size_held = bytes;
      continue;
    }
    out.snapshots.push_back({l.name, parent_name(l), l.created, l.user_created, bytes, l.removed,
                             l.checksum, !l.checksum.empty()});
  }
  const ReplicaWorker::Report work = worker_.report();
  const std::optional<msg::LayerTask>& task = work.task;
  if (task) out.tasks.push_back(*task);
  for (uint64_t id : MergesDue(meta_)) {
    const LayerMeta* l = FindLayer(meta_, id);
    if (task && task->op == "delete_snapshot" && task->name == l->name) continue;
    out.tasks.push_back({"delete_snapshot", l->name, 0, held(id)});
  }
  out.verify = work.verify;
  const RebuildTask::Report rebuild = rebuild_.report();
  out.rebuild = rebuild.state;
  if (rebuild.task) out.tasks.push_back(*rebuild.task);
  return out;
}

Status Replica::StartVerify() {
  worker_.RequestVerify();
  return Status::Ok();
}

bool Replica::WaitIdle() { return worker_.WaitIdle(); }

void Replica::WaitRebuild() { rebuild_.Wait(); }

Result<std::shared_ptr<const Replica::SnapshotView>> Replica::ViewOf(const std::string& name,
                                                                     const std::string& op) {
  std::vector<uint64_t> chain;
  std::map<uint64_t, LayerPtr> layers;
  uint64_t size = 0;
  {
    std::lock_guard meta_lock(meta_mu_);
    const LayerMeta* l = FindSnapshot(meta_, name);
    if (l == nullptr) return Err(ErrorKind::kNotFound, ENOENT, op + ": no such snapshot");
    {
      std::lock_guard view_lock(view_mu_);
      if (view_ != nullptr && view_->id == l->id && view_->size == meta_.size) return view_;
    }
    while (l != nullptr) {
      chain.push_back(l->id);
      l = l->parent ? FindLayer(meta_, *l->parent) : nullptr;
    }
    size = meta_.size;
    layers = layers_.All();
  }
  // Built outside the locks: a snapshot's content never changes (a merge
  // into it copies what its parent held), and the view keeps the layers it
  // reads open, so a view built before a commit stays right after it.
  auto index = layers_.BuildIndex(chain, size / kSectorSize, layers);
  if (!index.ok()) return index.status().WithContext(op);
  auto view = std::make_shared<SnapshotView>();
  view->id = chain.front();
  view->size = size;
  view->index = std::move(*index);
  for (uint64_t id : chain) view->by_slot[layers.at(id)->slot] = layers.at(id);
  std::lock_guard view_lock(view_mu_);
  view_ = view;
  return std::shared_ptr<const SnapshotView>(std::move(view));
}

Status Replica::ReadSnapshot(const std::string& name, uint64_t offset, std::span<uint8_t> buf) {
  const std::string op = "read snapshot " + name + " of " + Object();
  auto view = ViewOf(name, op);
  if (!view.ok()) return view.status();
  const SnapshotView& v = **view;
  if (offset > v.size || buf.size() > v.size - offset) {
    return Err(ErrorKind::kInvalidArgument, EINVAL, op + ": range is beyond the size");
  }
  uint64_t end = offset + buf.size();
  std::vector<BlockIndex::Extent> runs;
  v.index.Lookup(offset / kSectorSize, (end + kSectorSize - 1) / kSectorSize - offset / kSectorSize,
                 &runs);
  for (const auto& r : runs) {
    uint64_t bo = std::max(offset, r.block * kSectorSize);
    uint64_t be = std::min(end, (r.block + r.count) * kSectorSize);
    uint8_t* dst = buf.data() + (bo - offset);
    if (r.slot == BlockIndex::kNone) {
      std::fill(dst, dst + (be - bo), 0);
    } else {
      const LayerPtr& l = v.by_slot.at(r.slot);
      SH_RETURN_IF_ERROR(PreadFull(l->fd.get(), dst, be - bo, bo, l->file));
    }
  }
  return Status::Ok();
}

}  // namespace shorthorn::replicad
