// The backup store format (doc/backup-format.md): object names, the backup
// record, the backup-volume record, and their JSON mapping. Pure: no I/O.
//
// Layout under a target's root, per backed-up volume <v>:
//   volumes/<v>/volume.json                  VolumeBackups: the volume's backups
//   volumes/<v>/backups/<backup>.json        BackupRecord: one complete backup
//   volumes/<v>/blocks/<h[0:2]>/<h[2:4]>/<h>.blk  one block, named by its XXH3-128
//   volumes/<v>/locks/<lock>.json            locks (lock.h)
// A backup record is written after every block it names is durable, and
// volume.json after the record: a record is the mark of a complete backup.
//
// Decoders treat their input as hostile: every field is type-checked and
// range-checked (offsets aligned, inside the size, in order, hashes 32 hex
// digits) and a bad one is kProtocol naming the object and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shorthorn::backup {

inline constexpr uint64_t kBlockSize = 2 << 20;  // 2 MiB
inline constexpr int kFormat = 1;

// Object keys; every name made in one place.
std::string VolumePrefix(const std::string& volume);  // "volumes/<v>/"
std::string VolumeRecordKey(const std::string& volume);
std::string BackupRecordKey(const std::string& volume, const std::string& backup);
std::string BackupsPrefix(const std::string& volume);
std::string BlockKey(const std::string& volume, const std::string& hash);
std::string BlocksPrefix(const std::string& volume);
std::string LocksPrefix(const std::string& volume);
// The hash a block key names, or "" when `key` is not a block key.
std::string HashOfBlockKey(std::string_view key);

// A fresh backup name: "backup-<UTC yyyymmddThhmmssZ>-<8 hex>"; names sort by time.
std::string NewBackupName();
// Backup names: "backup-" then [A-Za-z0-9-], 8..80 chars.
Status ValidateBackupName(const std::string& name);
// 32 lowercase hex digits.
bool IsBlockHash(std::string_view hash);

struct BlockRef {
  uint64_t offset = 0;  // multiple of kBlockSize
  std::string hash;     // XXH3-128 of the block's data, 32 hex digits
  bool operator==(const BlockRef&) const = default;
};

struct BackupRecord {
  std::string name;
  std::string volume;
  std::string snapshot;
  std::string snapshot_created;  // the snapshot's creation time (tells reused names apart)
  std::string created;           // when the backup completed, RFC 3339 UTC
  uint64_t size = 0;             // volume size at the snapshot
  uint64_t block_size = kBlockSize;
  std::vector<BlockRef> blocks;  // non-zero blocks, offset order; absent blocks are zeros
  std::string base;              // the backup this one was incremental to, "" for full
  uint64_t bytes_read = 0;       // volume data read for this backup
  uint64_t bytes_uploaded = 0;   // stored (compressed) bytes of the blocks it uploaded
  uint64_t blocks_uploaded = 0;
};

struct BackupSummary {
  std::string name;
  std::string snapshot;
  std::string snapshot_created;
  std::string created;
  uint64_t size = 0;
  uint64_t blocks = 0;
  bool operator==(const BackupSummary&) const = default;
};

struct VolumeBackups {
  std::string volume;
  std::vector<BackupSummary> backups;  // oldest first
};

std::string EncodeBackupRecord(const BackupRecord& r);
Result<BackupRecord> DecodeBackupRecord(std::string_view text, const std::string& what);
std::string EncodeVolumeBackups(const VolumeBackups& v);
Result<VolumeBackups> DecodeVolumeBackups(std::string_view text, const std::string& what);
BackupSummary Summarize(const BackupRecord& r);

// A backup's address for users: "<target url>?volume=<v>&backup=<b>".
std::string BackupUrl(const std::string& target_url, const std::string& volume,
                      const std::string& backup);
struct BackupAddress {
  std::string target_url;
  std::string volume;
  std::string backup;
};
Result<BackupAddress> ParseBackupUrl(const std::string& url);
// "<target>?volume=<volume>": all backups of one volume (a DR standby's
// source); `backup` is "". InvalidArgument naming the URL otherwise.
Result<BackupAddress> ParseBackupVolumeUrl(const std::string& url);

}  // namespace shorthorn::backup
