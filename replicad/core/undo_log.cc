// Design notes: a change is captured whole before it is made (the caller
// holds its range lock, so nothing else changes the region meanwhile), and
// only counts as in flight once its capture is recorded; a capture that
// loses the race with PowerLoss is thrown away and its change refused, so
// PowerLoss only has to wait for the changes recorded before it.
//
// Entries are kept per file region, not per change, because a change may
// touch several files (an unmap punches the head and removed snapshots
// under it) and each file becomes durable by its own fdatasync.
#include "replicad/core/undo_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

namespace shorthorn::replicad {

Result<UndoLog::Entry> UndoLog::Capture(uint64_t change, Region region) {
  Entry e;
  e.change = change;
  const uint64_t end = region.offset + region.length;
  auto runs = AllocatedExtents(region.fd, region.offset, end, region.file);
  if (!runs.ok()) return runs.status();
  uint64_t total = 0;
  for (const auto& r : *runs) total += r.length;
  e.bytes.resize(total);
  uint64_t at = 0;
  for (const auto& r : *runs) {
    SH_RETURN_IF_ERROR(PreadFull(region.fd, e.bytes.data() + at, r.length, r.offset, region.file));
    at += r.length;
  }
  e.data = std::move(*runs);
  e.region = std::move(region);
  return e;
}

Result<uint64_t> UndoLog::Begin(std::vector<Region> regions) {
  auto refused = [] {
    return Status(ErrorKind::kIoError, "power loss simulated: no change reaches the files any more",
                  EIO);
  };
  {
    std::lock_guard lock(mu_);
    if (lost_) return refused();
  }
  std::vector<Entry> captured;
  for (auto& r : regions) {
    if (r.length == 0) continue;
    auto e = Capture(0, std::move(r));
    if (!e.ok()) return e.status().WithContext("capture the old content for the power-loss test");
    captured.push_back(std::move(*e));
  }
  std::lock_guard lock(mu_);
  if (lost_) return refused();
  uint64_t id = ++next_change_;
  for (auto& e : captured) e.change = id;
  open_.emplace(id, std::move(captured));
  return id;
}

void UndoLog::End(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return;
  ++clock_;
  for (auto& e : it->second) {
    e.ended = clock_;
    entries_.push_back(std::move(e));
  }
  open_.erase(it);
  if (open_.empty()) idle_.notify_all();
}

uint64_t UndoLog::Mark() {
  std::lock_guard lock(mu_);
  return clock_;
}

void UndoLog::Synced(int fd, uint64_t mark) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const Entry& e) { return e.region.fd == fd && e.ended <= mark; });
}

Status UndoLog::Restore(const Entry& e) {
  const Region& r = e.region;
  uint64_t pos = r.offset, at = 0;
  for (const auto& d : e.data) {
    SH_RETURN_IF_ERROR(PunchHole(r.fd, pos, d.offset - pos, r.file));
    SH_RETURN_IF_ERROR(PwriteFull(r.fd, e.bytes.data() + at, d.length, d.offset, r.file));
    at += d.length;
    pos = d.offset + d.length;
  }
  return PunchHole(r.fd, pos, r.offset + r.length - pos, r.file);
}

Result<UndoLog::Dropped> UndoLog::PowerLoss() {
  std::vector<Entry> entries;
  {
    std::unique_lock lock(mu_);
    lost_ = true;
    idle_.wait(lock, [this] { return open_.empty(); });
    entries.swap(entries_);
  }
  Dropped dropped;
  std::set<uint64_t> changes;
  std::vector<Entry*> files;  // one entry per file to sync (it keeps the fd open)
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    SH_RETURN_IF_ERROR(Restore(*it).WithContext("simulate a power loss"));
    changes.insert(it->change);
    dropped.bytes += it->region.length;
    if (std::none_of(files.begin(), files.end(),
                     [&](const Entry* f) { return f->region.fd == it->region.fd; })) {
      files.push_back(&*it);
    }
  }
  for (const Entry* f : files) {
    if (::fdatasync(f->region.fd) != 0) {
      return ErrnoStatus(errno, "simulate a power loss: fdatasync " + f->region.file);
    }
  }
  dropped.changes = changes.size();
  return dropped;
}

}  // namespace shorthorn::replicad
