// Design notes: the workers of a backup take block offsets from one atomic
// cursor, so memory is bounded by workers x (one block + its compressed
// copy) whatever the volume size, and each worker has its own reader (its
// own connection to the replica). The first error stops every worker; the
// record is never written after an error, so a failed backup leaves only
// blocks (reused by the next attempt, swept by the next delete).
#include "backup/runner.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "backup/block_codec.h"
#include "backup/lock.h"
#include "common/clock.h"
#include "common/log.h"

namespace shorthorn::backup {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string_view Text(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

// Runs `body(i)` for i in [0, count) on `workers` threads; stops at the
// first error, which it returns. `body` gets its worker's state from
// `make_state` (once per worker).
template <typename State>
Status ParallelFor(size_t count, int workers,
                   const std::function<Result<std::unique_ptr<State>>()>& make_state,
                   const std::function<Status(State&, size_t)>& body) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  Status first;
  auto fail = [&](Status s) {
    std::lock_guard lock(mu);
    if (first.ok()) first = std::move(s);
    stop = true;
  };
  auto run = [&] {
    auto state = make_state();
    if (!state.ok()) return fail(state.status());
    while (!stop.load()) {
      size_t i = next.fetch_add(1);
      if (i >= count) return;
      Status s = body(**state, i);
      if (!s.ok()) return fail(std::move(s));
    }
  };
  int n = static_cast<int>(std::min<size_t>(std::max(workers, 1), std::max<size_t>(count, 1)));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  return first;
}

// Progress from several workers: a running sum, and cancellation.
class Meter {
 public:
  Meter(const Progress& progress, uint64_t total) : progress_(progress), total_(total) {}
  // False when cancelled.
  bool Add(uint64_t bytes) {
    if (!progress_) {
      done_ += bytes;
      return true;
    }
    // Counted under the lock, so the reports never go back.
    std::lock_guard lock(mu_);
    uint64_t done = done_.fetch_add(bytes) + bytes;
    return progress_(done, total_);
  }

 private:
  const Progress& progress_;
  const uint64_t total_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
};

Status Cancelled(const std::string& what) {
  return Status(ErrorKind::kFailed, what + ": cancelled", ECANCELED);
}

// Block `ref` of a backup of `volume` (of `size` bytes), decoded and checked
// against its hash and length.
Result<std::vector<uint8_t>> FetchBlock(BackupStore& store, const std::string& volume,
                                        const BlockRef& ref, uint64_t size,
                                        const std::string& what) {
  const std::string block = "block " + ref.hash + " at offset " + std::to_string(ref.offset);
  auto object = store.Get(BlockKey(volume, ref.hash));
  if (!object.ok()) {
    if (object.status().kind() == ErrorKind::kNotFound) {
      return Status(ErrorKind::kNotFound, what + ": " + block + " is missing from the store",
                    ENOENT);
    }
    return object.status().WithContext(what);
  }
  auto data = DecodeBlock(*object, ref.hash, what + ": " + block);
  if (!data.ok()) return data.status();
  if (data->size() != BlockLength(ref.offset, size)) {
    return Status(ErrorKind::kIoError,
                  what + ": " + block + ": damaged: it holds " + std::to_string(data->size()) +
                      " bytes, the backup expects " + std::to_string(BlockLength(ref.offset, size)),
                  EIO);
  }
  return data;
}

}  // namespace

Result<VolumeBackups> ListBackups(BackupStore& store, const std::string& volume) {
  const std::string what = "list backups of volume " + volume + " on " + store.url();
  auto data = store.Get(VolumeRecordKey(volume));
  if (!data.ok()) {
    if (data.status().kind() == ErrorKind::kNotFound) {
      return Status(ErrorKind::kNotFound, what + ": there are none", ENOENT);
    }
    return data.status().WithContext(what);
  }
  auto v = DecodeVolumeBackups(Text(*data), what + ": " + VolumeRecordKey(volume));
  if (v.ok() && v->volume != volume) {
    return Status(ErrorKind::kProtocol,
                  what + ": " + VolumeRecordKey(volume) + " is of volume " + v->volume, EPROTO);
  }
  return v;
}

Result<BackupRecord> ReadBackupRecord(BackupStore& store, const std::string& volume,
                                      const std::string& backup) {
  const std::string what = "read backup " + backup + " of volume " + volume + " on " + store.url();
  SH_RETURN_IF_ERROR(ValidateBackupName(backup).WithContext(what));
  auto data = store.Get(BackupRecordKey(volume, backup));
  if (!data.ok()) {
    if (data.status().kind() == ErrorKind::kNotFound) {
      return Status(ErrorKind::kNotFound, what + ": no such backup", ENOENT);
    }
    return data.status().WithContext(what);
  }
  auto r = DecodeBackupRecord(Text(*data), what + ": " + BackupRecordKey(volume, backup));
  if (r.ok() && (r->volume != volume || r->name != backup)) {
    return Status(ErrorKind::kProtocol,
                  what + ": the record names backup " + r->name + " of volume " + r->volume,
                  EPROTO);
  }
  return r;
}

Result<BackupResult> RunBackup(BackupStore& store, SnapshotSource& source,
                               const std::string& volume, const std::string& snapshot,
                               const RunOptions& options) {
  const std::string what =
      "back up snapshot " + snapshot + " of volume " + volume + " to " + store.url();
  const auto& chain = source.chain();
  if (chain.empty() || chain.back().name != snapshot) {
    return Status(ErrorKind::kInvalidArgument, what + ": the source has no such snapshot", EINVAL);
  }
  auto lock =
      VolumeLock::Acquire(store, volume, LockKind::kBackup, options.owner, options.lock_wait);
  if (!lock.ok()) return lock.status().WithContext(what);

  VolumeBackups existing{volume, {}};
  if (auto listed = ListBackups(store, volume); listed.ok()) {
    existing = std::move(*listed);
  } else if (listed.status().kind() != ErrorKind::kNotFound) {
    return listed.status().WithContext(what);
  }

  // The base: the newest backup whose snapshot is in this chain.
  std::optional<BackupRecord> base;
  size_t base_layer = 0;
  for (auto it = existing.backups.rbegin(); it != existing.backups.rend() && !base; ++it) {
    for (size_t i = 0; i < chain.size(); ++i) {
      if (chain[i].name != it->snapshot || chain[i].created != it->snapshot_created) continue;
      auto record = ReadBackupRecord(store, volume, it->name);
      if (!record.ok()) {
        LogWarning(what + ": not incremental to " + it->name + ": " + record.status().message());
        break;
      }
      base = std::move(*record);
      base_layer = i;
      break;
    }
  }
  std::vector<Extent> extents;
  for (size_t i = base ? base_layer + 1 : 0; i < chain.size(); ++i) {
    auto e = source.LayerExtents(chain[i].name);
    if (!e.ok()) return e.status().WithContext(what);
    extents.insert(extents.end(), e->begin(), e->end());
  }
  const uint64_t size = source.size();
  BackupPlan plan =
      PlanBackup(size, extents, base ? &base->blocks : nullptr, base ? base->size : 0);

  std::mutex mu;
  std::unordered_set<std::string> known;  // hashes present in the store
  if (base) {
    for (const auto& b : base->blocks) known.insert(b.hash);
  }
  std::vector<BlockRef> fresh;
  std::atomic<uint64_t> uploaded_bytes{0}, uploaded_blocks{0};
  Meter meter(options.progress, plan.read_bytes);
  struct Worker {
    std::unique_ptr<SnapshotReader> reader;
    std::vector<uint8_t> buf;
  };
  std::function<Result<std::unique_ptr<Worker>>()> make = [&]() -> Result<std::unique_ptr<Worker>> {
    auto reader = source.OpenReader();
    if (!reader.ok()) return reader.status();
    auto w = std::make_unique<Worker>();
    w->reader = std::move(*reader);
    w->buf.resize(kBlockSize);
    return w;
  };
  std::function<Status(Worker&, size_t)> body = [&](Worker& w, size_t i) -> Status {
    if (!lock->get()->healthy()) {
      return Status(ErrorKind::kUnavailable,
                    what + ": lost the lock (the store stopped answering)");
    }
    uint64_t offset = plan.read[i];
    std::span<uint8_t> data(w.buf.data(), BlockLength(offset, size));
    SH_RETURN_IF_ERROR(w.reader->Read(offset, data).WithContext(what));
    if (!IsAllZero(data)) {
      std::string hash = BlockHash(data);
      bool present;
      {
        std::lock_guard l(mu);
        present = known.count(hash) != 0;
      }
      const std::string key = BlockKey(volume, hash);
      if (!present) {
        // An object this run did not write is trusted only when its size is
        // the size of what would be uploaded: a server killed during an
        // earlier PUT may hold a truncated one under the name.
        std::vector<uint8_t> object = EncodeBlock(data, hash);
        auto stored = store.Size(key);
        if (!stored.ok()) {
          // A server may fail on what an earlier failure left under the
          // name (s3rver: a half-written object); a PUT replaces it, and
          // fails itself when the store is really unusable.
          LogWarning(what + ": uploading " + key + " again: " + stored.status().message());
          stored = std::optional<uint64_t>();
        }
        if (!stored->has_value() || **stored != object.size()) {
          if (stored->has_value()) {
            LogWarning(what + ": replacing " + key + ": it holds " + std::to_string(**stored) +
                       " bytes, not " + std::to_string(object.size()));
          }
          SH_RETURN_IF_ERROR(store.Put(key, object).WithContext(what));
          uploaded_bytes += object.size();
          ++uploaded_blocks;
        }
      }
      std::lock_guard l(mu);
      known.insert(hash);
      fresh.push_back({offset, std::move(hash)});
    }
    if (!meter.Add(data.size())) return Cancelled(what);
    return Status::Ok();
  };
  SH_RETURN_IF_ERROR(ParallelFor<Worker>(plan.read.size(), options.workers, make, body));

  BackupResult result;
  result.incremental = base.has_value();
  BackupRecord& r = result.record;
  r.name = NewBackupName();
  r.volume = volume;
  r.snapshot = snapshot;
  r.snapshot_created = chain.back().created;
  r.created = NowRfc3339();
  r.size = size;
  r.base = base ? base->name : "";
  r.bytes_read = plan.read_bytes;
  r.bytes_uploaded = uploaded_bytes;
  r.blocks_uploaded = uploaded_blocks;
  r.blocks = std::move(plan.reuse);
  r.blocks.insert(r.blocks.end(), fresh.begin(), fresh.end());
  std::sort(r.blocks.begin(), r.blocks.end(),
            [](const BlockRef& a, const BlockRef& b) { return a.offset < b.offset; });
  // Last: the record (the mark of a complete backup), then the list.
  SH_RETURN_IF_ERROR(
      store.Put(BackupRecordKey(volume, r.name), Bytes(EncodeBackupRecord(r))).WithContext(what));
  existing.volume = volume;
  existing.backups.push_back(Summarize(r));
  SH_RETURN_IF_ERROR(
      store.Put(VolumeRecordKey(volume), Bytes(EncodeVolumeBackups(existing))).WithContext(what));
  Status released = (*lock)->Release();
  if (!released.ok()) LogWarning(what + ": " + released.message());
  return result;
}

Result<BackupRecord> RunRestore(
    BackupStore& store, const std::string& volume, const std::string& backup,
    const std::function<Result<VolumeSink*>(const BackupRecord&)>& prepare,
    const RunOptions& options) {
  const std::string what =
      "restore backup " + backup + " of volume " + volume + " from " + store.url();
  auto lock =
      VolumeLock::Acquire(store, volume, LockKind::kRestore, options.owner, options.lock_wait);
  if (!lock.ok()) return lock.status().WithContext(what);
  auto record = ReadBackupRecord(store, volume, backup);
  if (!record.ok()) return record.status();
  auto sink = prepare(*record);
  if (!sink.ok()) return sink.status().WithContext(what);
  uint64_t total = 0;
  for (const auto& b : record->blocks) total += BlockLength(b.offset, record->size);
  Meter meter(options.progress, total);
  struct None {};
  std::function<Result<std::unique_ptr<None>>()> make = [] { return std::make_unique<None>(); };
  std::function<Status(None&, size_t)> body = [&](None&, size_t i) -> Status {
    const BlockRef& ref = record->blocks[i];
    auto data = FetchBlock(store, volume, ref, record->size, what);
    if (!data.ok()) return data.status();
    SH_RETURN_IF_ERROR((*sink)->Write(ref.offset, *data).WithContext(what));
    if (!meter.Add(data->size())) return Cancelled(what);
    return Status::Ok();
  };
  SH_RETURN_IF_ERROR(ParallelFor<None>(record->blocks.size(), options.workers, make, body));
  SH_RETURN_IF_ERROR((*sink)->Flush().WithContext(what));
  Status released = (*lock)->Release();
  if (!released.ok()) LogWarning(what + ": " + released.message());
  return record;
}

Result<CopyResult> RunCopy(SnapshotSource& source, VolumeSink& sink, const std::string& what,
                           const RunOptions& options) {
  std::vector<Extent> extents;
  for (const auto& layer : source.chain()) {
    auto e = source.LayerExtents(layer.name);
    if (!e.ok()) return e.status().WithContext(what);
    extents.insert(extents.end(), e->begin(), e->end());
  }
  const uint64_t size = source.size();
  const BackupPlan plan = PlanBackup(size, extents, nullptr, 0);
  Meter meter(options.progress, plan.read_bytes);
  std::atomic<uint64_t> written{0};
  struct Worker {
    std::unique_ptr<SnapshotReader> reader;
    std::vector<uint8_t> buf;
  };
  std::function<Result<std::unique_ptr<Worker>>()> make = [&]() -> Result<std::unique_ptr<Worker>> {
    auto reader = source.OpenReader();
    if (!reader.ok()) return reader.status().WithContext(what);
    auto w = std::make_unique<Worker>();
    w->reader = std::move(*reader);
    w->buf.resize(kBlockSize);
    return w;
  };
  std::function<Status(Worker&, size_t)> body = [&](Worker& w, size_t i) -> Status {
    const uint64_t offset = plan.read[i];
    std::span<uint8_t> data(w.buf.data(), BlockLength(offset, size));
    SH_RETURN_IF_ERROR(w.reader->Read(offset, data).WithContext(what));
    if (!IsAllZero(data)) {
      SH_RETURN_IF_ERROR(sink.Write(offset, data).WithContext(what));
      written += data.size();
    }
    if (!meter.Add(data.size())) return Cancelled(what);
    return Status::Ok();
  };
  SH_RETURN_IF_ERROR(ParallelFor<Worker>(plan.read.size(), options.workers, make, body));
  SH_RETURN_IF_ERROR(sink.Flush().WithContext(what));
  return CopyResult{plan.read_bytes, written.load()};
}

Result<ApplyResult> RunApply(BackupStore& store, const std::string& volume,
                             const BackupRecord* held, const std::string& backup, VolumeSink& sink,
                             const RunOptions& options) {
  const std::string what = "apply backup " + backup + " of volume " + volume + " from " +
                           store.url() + (held ? " over " + held->name : " (in full)");
  auto lock =
      VolumeLock::Acquire(store, volume, LockKind::kRestore, options.owner, options.lock_wait);
  if (!lock.ok()) return lock.status().WithContext(what);
  auto record = ReadBackupRecord(store, volume, backup);
  if (!record.ok()) return record.status();
  // What the volume holds now, by block: the held backup's hashes, or
  // unknown (every block of the new one is written, every other zeroed).
  std::map<uint64_t, std::string> now;
  if (held != nullptr) {
    for (const auto& b : held->blocks) now[b.offset] = b.hash;
  }
  std::vector<BlockRef> writes;
  for (const auto& b : record->blocks) {
    auto it = now.find(b.offset);
    if (held == nullptr || it == now.end() || it->second != b.hash) writes.push_back(b);
    if (it != now.end()) now.erase(it);
  }
  std::vector<uint64_t> zeros;  // blocks held that the new backup has as zeros
  if (held != nullptr) {
    for (const auto& [offset, hash] : now) {
      if (offset < record->size) zeros.push_back(offset);
    }
  } else {
    std::set<uint64_t> present;
    for (const auto& b : record->blocks) present.insert(b.offset);
    for (uint64_t offset = 0; offset < record->size; offset += kBlockSize) {
      if (present.count(offset) == 0) zeros.push_back(offset);
    }
  }
  uint64_t total = 0;
  for (const auto& b : writes) total += BlockLength(b.offset, record->size);
  for (uint64_t z : zeros) total += BlockLength(z, record->size);
  Meter meter(options.progress, total);
  ApplyResult result;
  result.record = *record;
  std::atomic<uint64_t> written{0}, zeroed{0};
  const std::vector<uint8_t> zero_block(kBlockSize, 0);
  struct None {};
  std::function<Result<std::unique_ptr<None>>()> make = [] { return std::make_unique<None>(); };
  std::function<Status(None&, size_t)> body = [&](None&, size_t i) -> Status {
    uint64_t length = 0;
    if (i < writes.size()) {
      const BlockRef& ref = writes[i];
      auto data = FetchBlock(store, volume, ref, record->size, what);
      if (!data.ok()) return data.status();
      SH_RETURN_IF_ERROR(sink.Write(ref.offset, *data).WithContext(what));
      length = data->size();
      written += length;
    } else {
      const uint64_t offset = zeros[i - writes.size()];
      length = BlockLength(offset, record->size);
      SH_RETURN_IF_ERROR(
          sink.Write(offset, std::span(zero_block.data(), length)).WithContext(what));
      zeroed += length;
    }
    if (!meter.Add(length)) return Cancelled(what);
    return Status::Ok();
  };
  SH_RETURN_IF_ERROR(ParallelFor<None>(writes.size() + zeros.size(), options.workers, make, body));
  SH_RETURN_IF_ERROR(sink.Flush().WithContext(what));
  Status released = (*lock)->Release();
  if (!released.ok()) LogWarning(what + ": " + released.message());
  result.blocks_written = writes.size();
  result.bytes_written = written.load();
  result.bytes_zeroed = zeroed.load();
  return result;
}

Result<DeleteResult> RunDelete(BackupStore& store, const std::string& volume,
                               const std::string& backup, const RunOptions& options) {
  const std::string what =
      "delete backup " + backup + " of volume " + volume + " on " + store.url();
  SH_RETURN_IF_ERROR(ValidateBackupName(backup).WithContext(what));
  auto lock =
      VolumeLock::Acquire(store, volume, LockKind::kDelete, options.owner, options.lock_wait);
  if (!lock.ok()) return lock.status().WithContext(what);
  auto listed = ListBackups(store, volume);
  if (!listed.ok()) return listed.status().WithContext(what);
  auto& list = listed->backups;
  auto it = std::find_if(list.begin(), list.end(),
                         [&](const BackupSummary& b) { return b.name == backup; });
  auto record_exists = store.Exists(BackupRecordKey(volume, backup));
  if (!record_exists.ok()) return record_exists.status().WithContext(what);
  if (it == list.end() && !*record_exists) {
    return Status(ErrorKind::kNotFound, what + ": no such backup", ENOENT);
  }
  // First out of the list, then the record, then the blocks: a crash at
  // any step leaves every listed backup whole.
  if (it != list.end()) {
    list.erase(it);
    SH_RETURN_IF_ERROR(
        store.Put(VolumeRecordKey(volume), Bytes(EncodeVolumeBackups(*listed))).WithContext(what));
  }
  SH_RETURN_IF_ERROR(store.Delete(BackupRecordKey(volume, backup)).WithContext(what));

  // Every record left under backups/ keeps its blocks, listed or not.
  auto records = store.List(BackupsPrefix(volume));
  if (!records.ok()) return records.status().WithContext(what);
  std::unordered_set<std::string> referenced;
  for (const auto& key : *records) {
    constexpr std::string_view kExt = ".json";
    if (key.size() <= BackupsPrefix(volume).size() + kExt.size()) continue;
    std::string name = key.substr(BackupsPrefix(volume).size(),
                                  key.size() - BackupsPrefix(volume).size() - kExt.size());
    auto r = ReadBackupRecord(store, volume, name);
    if (!r.ok()) {
      // A record that cannot be read may still name blocks: keep them all.
      return r.status().WithContext(what + ": not collecting blocks");
    }
    for (const auto& b : r->blocks) referenced.insert(b.hash);
  }
  auto blocks = store.List(BlocksPrefix(volume));
  if (!blocks.ok()) return blocks.status().WithContext(what);
  DeleteResult result;
  std::vector<std::string> garbage;
  for (const auto& key : *blocks) {
    std::string hash = HashOfBlockKey(key);
    if (hash.empty()) continue;  // not ours
    if (referenced.count(hash) != 0) {
      ++result.blocks_kept;
    } else {
      garbage.push_back(key);
    }
  }
  Meter meter(options.progress, garbage.size());
  struct None {};
  std::function<Result<std::unique_ptr<None>>()> make = [] { return std::make_unique<None>(); };
  std::function<Status(None&, size_t)> body = [&](None&, size_t i) -> Status {
    SH_RETURN_IF_ERROR(store.Delete(garbage[i]).WithContext(what));
    meter.Add(1);
    return Status::Ok();
  };
  SH_RETURN_IF_ERROR(ParallelFor<None>(garbage.size(), options.workers, make, body));
  result.blocks_deleted = garbage.size();
  Status released = (*lock)->Release();
  if (!released.ok()) LogWarning(what + ": " + released.message());
  return result;
}

}  // namespace shorthorn::backup
