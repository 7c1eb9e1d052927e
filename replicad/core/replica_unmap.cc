// Design notes: UNMAP must make the range read as zeros. The head is
// punched, and so are the deleted snapshots right under it whose merge is
// due: no snapshot reads through them, only the head does, so their blocks
// there are dead. Where a layer further down still holds data in the range
// (found with SEEK_DATA on each of them), a hole in the head would let the
// lower data show through: those blocks become zero runs of the head's
// zero map (zero_map.h), which hide them without writing a byte. With no
// snapshots this is one fallocate.
//
// Order against a power cut: the zero runs are durable before anything is
// punched, so a crash in between leaves each block with its old content or
// zeros, never a snapshot's data. The first zero run of a head also records
// in replica.json that the head has a map (format 4, so that an older
// replicad refuses the replica rather than ignore the map); that commit
// needs meta_mu_, which a snapshot holds while it waits for this very unmap
// to end. So it is only tried (try_lock): when a layer op holds the lock,
// real zeros are written into the head instead, as before zero maps.
// A rebuilding replica's head has no parent yet (the copied chain goes
// under it later), so there the whole range becomes a zero run.
//
// Writing zeros takes time (up to 64 MiB per request: the engine splits
// larger unmaps), so the syscalls run on the replica's unmap thread
// (SerialWorker), not on the connection's reader, which goes on reading and
// serving the connection's other requests meanwhile. The range lock is
// still taken on the caller's thread: a connection's write and a later
// unmap of the same blocks (or the reverse) apply in the order they
// arrived, and a read never waits for an unmap (reads take no range lock;
// the index changes only after the blocks did). One thread per replica,
// one unmap at a time: the engine sends the pieces of a large unmap one
// after another anyway, and they all go to the same disk.
//
//   reader: Begin (admission, in flight) -> range lock -> Post ---.
//   unmap thread:  UnmapLocked (syscalls, index) -> release lock  <-'
//                  -> End -> done
//
// Close and SetEpoch wait for queued unmaps like for any op in flight.
#include <algorithm>
#include <utility>
#include <vector>

#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica.h"

namespace shorthorn::replicad {

Status Replica::UnmapLocked(uint64_t offset, uint64_t length) {
  uint64_t end = offset + length;
  uint64_t first = offset / kSectorSize;
  uint64_t last = (end + kSectorSize - 1) / kSectorSize;
  // The head, the lower layers nobody needs and the rest.
  const auto [head, unneeded, kept] = layers_.LowerLayers();
  SH_RETURN_IF_ERROR(Fault("unmap", "punch a hole in " + head->file));
  const bool rebuilding = rebuilding_.load();
  if (rebuilding && (offset % kSectorSize != 0 || end % kSectorSize != 0)) {
    return Unaligned("unmap", offset, length);
  }
  UndoLog::Change change;
  if (undo_ != nullptr) {
    // Everything this unmap may change: the head's blocks, and the removed
    // snapshots' blocks it punches.
    uint64_t a = (offset + kSectorSize - 1) / kSectorSize, z = end / kSectorSize;
    std::vector<UndoLog::Region> regions{
        {head->fd.get(), head->file, head, first * kSectorSize, (last - first) * kSectorSize}};
    for (const auto& l : unneeded) {
      if (!rebuilding && a < z) {
        regions.push_back({l->fd.get(), l->file, l, a * kSectorSize, (z - a) * kSectorSize});
      }
    }
    auto id = undo_->Begin(std::move(regions));
    if (!id.ok()) return id.status();
    change = UndoLog::Change(undo_.get(), *id);
  }
  if (rebuilding) {
    // The copied chain will sit under the head: a zero run hides it (real
    // zeros when the map cannot be recorded now). The range is aligned.
    auto added = AddZeroRuns(head, {{first, last - first}});
    if (!added.ok()) return added.status();
    if (*added) {
      SH_RETURN_IF_ERROR(PunchHole(head->fd.get(), offset, length, head->file));
    } else {
      SH_RETURN_IF_ERROR(WriteZeros(head->fd.get(), offset, length, head->file));
    }
    layers_.SetRange(first, last - first, head->slot);
    return Status::Ok();
  }
  // Partial edge blocks: zero their part in a whole-block copy.
  std::vector<uint64_t> edges;
  if (offset % kSectorSize != 0) edges.push_back(first);
  if (end % kSectorSize != 0 && (edges.empty() || last - 1 != first)) edges.push_back(last - 1);
  for (uint64_t b : edges) {
    uint8_t block[kSectorSize];
    SH_RETURN_IF_ERROR(ReadChainBlocking(b, 1, block));
    uint64_t zs = std::max(offset, b * kSectorSize), ze = std::min(end, (b + 1) * kSectorSize);
    std::memset(block + (zs - b * kSectorSize), 0, ze - zs);
    SH_RETURN_IF_ERROR(PwriteFull(head->fd.get(), block, kSectorSize, b * kSectorSize, head->file));
    layers_.SetRange(b, 1, head->slot);
  }
  uint64_t a = (offset + kSectorSize - 1) / kSectorSize, z = end / kSectorSize;
  if (a >= z) return Status::Ok();
  // Blocks a kept lower layer holds must read as zeros: collect them.
  std::vector<std::pair<uint64_t, uint64_t>> shadow;  // [start, end) blocks
  for (const auto& l : kept) {
    auto ext = AllocatedExtents(l->fd.get(), a * kSectorSize, z * kSectorSize, l->file);
    if (!ext.ok()) return ext.status();
    for (const auto& e : *ext) {
      shadow.emplace_back(e.offset / kSectorSize,
                          (e.offset + e.length + kSectorSize - 1) / kSectorSize);
    }
  }
  std::sort(shadow.begin(), shadow.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& r : shadow) {
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  // Zero runs only where lower data is (clipped to the range): a run over
  // blocks nothing lower holds would make the head own them, and every later
  // copy of the layer (merge, rebuild, backup) would carry their zeros.
  bool zero_runs = false;
  if (!merged.empty()) {
    std::vector<ZeroMap::Run> runs;
    for (const auto& [s, e] : merged) {
      uint64_t rs = std::max(s, a), re = std::min(e, z);
      if (rs < re) runs.push_back({rs, re - rs});
    }
    auto added = AddZeroRuns(head, runs);
    if (!added.ok()) return added.status();
    zero_runs = *added;
  }
  SH_RETURN_IF_ERROR(PunchHole(head->fd.get(), a * kSectorSize, (z - a) * kSectorSize, head->file));
  // Removed snapshots under the head: only the head reads through them, and
  // it reads zeros here from now on. A merge copying one of them into its
  // child meanwhile copies at most these holes' zeros into the child's
  // holes, which read as zeros already.
  for (const auto& l : unneeded) {
    SH_RETURN_IF_ERROR(PunchHole(l->fd.get(), a * kSectorSize, (z - a) * kSectorSize, l->file));
    // The next FLUSH makes this punch durable too (not only the head's).
    std::lock_guard dirty(dirty_mu_);
    if (std::find(dirty_lower_.begin(), dirty_lower_.end(), l) == dirty_lower_.end()) {
      dirty_lower_.push_back(l);
    }
  }
  for (const auto& [s, e] : merged) {
    if (zero_runs) break;
    SH_RETURN_IF_ERROR(
        WriteZeros(head->fd.get(), s * kSectorSize, (e - s) * kSectorSize, head->file));
  }
  std::vector<BlockIndex::Extent> runs{{a, z - a, BlockIndex::kNone}};
  for (const auto& [s, e] : merged) runs.push_back({s, e - s, head->slot});
  layers_.SetRanges(runs);
  return Status::Ok();
}

Result<bool> Replica::AddZeroRuns(const LayerPtr& head, const std::vector<ZeroMap::Run>& runs) {
  const std::string file = ZeroMap::FileName(head->file);
  SH_RETURN_IF_ERROR(Fault("zero-map", "write zero map " + dir_ + "/" + file));
  if (head->zero_map_recorded.load()) {
    SH_RETURN_IF_ERROR(head->zeros.Add(dir_, file, runs));
    return true;
  }
  std::unique_lock meta_lock(meta_mu_, std::try_to_lock);
  if (!meta_lock.owns_lock()) return false;
  // The runs first: replica.json never names a map that is not on the disk.
  // Until that commit the whole map is unofficial: when it fails, the map is
  // dropped (memory and file), so no copy, merge or later commit sees runs
  // whose unmap failed.
  SH_RETURN_IF_ERROR(head->zeros.Add(dir_, file, runs));
  ReplicaMeta next = meta_;
  LayerMeta* l = FindLayer(next, head->id);
  Status s = l != nullptr ? Status::Ok()
                          : Status(ErrorKind::kFailed,
                                   "unmap " + Object() + ": the head is not in replica.json", EIO);
  if (s.ok()) {
    l->zero_map = true;
    s = CommitLocked(std::move(next), "record the zero map of the head of");
  }
  if (!s.ok()) {
    head->zeros.Drop(dir_, file);
    return s;
  }
  head->zero_map_recorded = true;
  return true;
}

void Replica::Unmap(uint64_t epoch, uint64_t offset, uint64_t length, Done done) {
  if (Status s = MarkSessionDirty(); !s.ok()) return done(std::move(s));
  if (Status s = Begin("unmap", epoch, offset, length); !s.ok()) return done(std::move(s));
  if (length == 0) {
    End();
    return done(Status::Ok());
  }
  uint64_t first = offset / kSectorSize;
  uint64_t last = (offset + length + kSectorSize - 1) / kSectorSize;
  // Taken here, in arrival order; held until the unmap thread is done.
  auto guard = std::make_shared<RangeLock::Guard>(range_lock_.Lock(first, last));
  unmaps_.Post([self = shared_from_this(), offset, length, guard, done = std::move(done)] {
    Status s = self->UnmapLocked(offset, length);
    if (!s.ok() && s.kind() != ErrorKind::kInvalidArgument) {
      s = s.WithContext("unmap " + self->Object());
    }
    guard->Release();
    self->End();
    done(std::move(s));
  });
}

}  // namespace shorthorn::replicad
