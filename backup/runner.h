// Backup, restore and delete of one volume's backups, over narrow
// interfaces: a SnapshotSource (a replica that holds the snapshot: fused
// implements it over the replica protocol), a VolumeSink (the new volume a
// restore writes: fused implements it over an engine) and a BackupStore.
// The logic here is pure of sockets and D-Bus; tests use in-memory fakes.
//
//   Backup:  lock(backup) ─► volume.json ─► base = newest backup whose
//            snapshot (name and creation time) is in the snapshot's chain
//            ─► extents of the layers above the base (all, without one)
//            ─► PlanBackup ─► N workers: read block, skip zeros, hash,
//            upload unless present, compress ─► backups/<b>.json
//            ─► volume.json ─► unlock
//   Restore: lock(restore) ─► backups/<b>.json ─► N workers: get block,
//            decode and verify its hash, write ─► flush ─► unlock
//   Apply:   lock(restore) ─► the new record ─► blocks whose hash differs
//            from the held backup's, blocks it no longer has ─► N workers:
//            get, verify, write (or write zeros) ─► flush ─► unlock
//   Copy:    extents of every layer of the chain ─► PlanBackup ─► N workers:
//            read block, skip zeros, write to the sink ─► flush (no store)
//   Delete:  lock(delete) ─► drop <b> from volume.json ─► delete its record
//            ─► list blocks/ of this volume, delete every block no remaining
//            backup names (also blocks of interrupted backups) ─► unlock
//
// Threads: each Run* call blocks its caller; workers are its own threads.
// Progress is reported from those threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backup/format.h"
#include "backup/plan.h"
#include "backup/store.h"

namespace shorthorn::backup {

struct LayerInfo {
  std::string name;     // snapshot name
  std::string created;  // its creation time
};

// A replica's view of one snapshot.
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  // `buf.size()` bytes of the snapshot's content at `offset` (zeros where
  // nothing was written).
  virtual Status Read(uint64_t offset, std::span<uint8_t> buf) = 0;
};

class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual uint64_t size() const = 0;  // the volume size at the snapshot
  // The snapshot's chain, oldest first, ending with the snapshot itself.
  virtual const std::vector<LayerInfo>& chain() const = 0;
  // The allocated extents of snapshot `layer`'s own layer.
  virtual Result<std::vector<Extent>> LayerExtents(const std::string& layer) = 0;
  // One reader per worker (each may hold its own connection).
  virtual Result<std::unique_ptr<SnapshotReader>> OpenReader() = 0;
};

class VolumeSink {
 public:
  virtual ~VolumeSink() = default;
  // May be called from several threads at once, for different blocks.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status Flush() = 0;
};

// bytes done, total bytes; return false to cancel.
using Progress = std::function<bool(uint64_t done, uint64_t total)>;

struct RunOptions {
  int workers = 4;
  std::string owner;  // written into locks: "fused on <host> pid <pid>"
  std::chrono::milliseconds lock_wait{std::chrono::seconds(30)};
  Progress progress;
};

struct BackupResult {
  BackupRecord record;
  bool incremental = false;
};

Result<BackupResult> RunBackup(BackupStore& store, SnapshotSource& source,
                               const std::string& volume, const std::string& snapshot,
                               const RunOptions& options);

// Reads the record first (kNotFound naming the backup); `prepare` is
// called with it before any block is written (fused creates the volume
// there) and returns the sink.
Result<BackupRecord> RunRestore(
    BackupStore& store, const std::string& volume, const std::string& backup,
    const std::function<Result<VolumeSink*>(const BackupRecord&)>& prepare,
    const RunOptions& options);

// Copies the snapshot `source` holds into `sink` (a new volume, which reads
// zeros wherever nothing was written): the 2 MiB blocks any layer of its
// chain touches, except those all zero, by `options.workers` readers; then
// flushes the sink. A clone of a snapshot (fused's CreateVolume with
// from-snapshot). Progress counts the bytes read; `what` starts errors.
struct CopyResult {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};
Result<CopyResult> RunCopy(SnapshotSource& source, VolumeSink& sink, const std::string& what,
                           const RunOptions& options);

// Brings a volume that holds backup `held` (nullptr: unknown) to backup
// `backup` of `volume`: writes each block of `backup` whose hash differs
// from `held`'s at that offset and zeros each block `held` has and `backup`
// has not; with `held` unknown, writes all of `backup` and zeros every
// other block. Blocks are verified as in a restore; the sink is flushed.
// The restore lock is held. A DR standby's poll (fused). The caller grows
// the volume first when `backup` is larger.
struct ApplyResult {
  BackupRecord record;  // of `backup`
  uint64_t blocks_written = 0;
  uint64_t bytes_written = 0;  // data written from the backup
  uint64_t bytes_zeroed = 0;   // zeros written where `held` had data
};
Result<ApplyResult> RunApply(BackupStore& store, const std::string& volume,
                             const BackupRecord* held, const std::string& backup, VolumeSink& sink,
                             const RunOptions& options);

struct DeleteResult {
  uint64_t blocks_deleted = 0;
  uint64_t blocks_kept = 0;
};
Result<DeleteResult> RunDelete(BackupStore& store, const std::string& volume,
                               const std::string& backup, const RunOptions& options);

// The backups of `volume` on `store`, oldest first (kNotFound when the
// volume has none there).
Result<VolumeBackups> ListBackups(BackupStore& store, const std::string& volume);
Result<BackupRecord> ReadBackupRecord(BackupStore& store, const std::string& volume,
                                      const std::string& backup);

}  // namespace shorthorn::backup
