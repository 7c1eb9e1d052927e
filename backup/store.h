// BackupStore: the object store a backup target is (doc/backup-format.md).
// Keys are relative to the target's root ("volumes/<volume>/..."); values
// are whole objects, at most a few MiB (a compressed 2 MiB block, or a
// backup record). Two implementations: FileStore (a directory, file://) and
// S3Store (libs3, s3://). Everything above this interface (format, backup,
// restore, delete) is the same for both, so tests may use either.
//
// Promises of every implementation:
//  * Put replaces the object whole or leaves the old one: a reader never
//    sees a half-written object (file: temp file, fsync, rename, fsync dir;
//    S3: one PUT).
//  * Put returns only when the object is durable on the target.
//  * Get of a missing key is kNotFound naming the key; Delete of a missing
//    key is OK (deletes are retried after failures).
//  * List returns the keys under `prefix` (which ends in "/"), recursively,
//    as full keys, in no particular order. Callers only list under one
//    volume's prefix, never the whole target.
//  * Errors name the target and the key: "put s3://bucket/prefix key
//    volumes/v/blocks/ab/cd...: <reason>". Unreachable: kUnavailable;
//    refused credentials or signature: kNotAuthorized; full: kNoSpace.
//
// Threads: one store may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::backup {

class BackupStore {
 public:
  virtual ~BackupStore() = default;

  virtual Status Put(const std::string& key, std::span<const uint8_t> data) = 0;
  virtual Result<std::vector<uint8_t>> Get(const std::string& key) = 0;
  virtual Result<bool> Exists(const std::string& key) = 0;
  // The stored size of `key`, or nullopt when it does not exist. A server
  // that died in the middle of a PUT may keep a truncated object (s3rver
  // does): a backup compares this with the size it would upload before it
  // trusts an object it did not write. The default reads the object.
  virtual Result<std::optional<uint64_t>> Size(const std::string& key) {
    auto data = Get(key);
    if (data.ok()) return std::optional<uint64_t>(data->size());
    if (data.status().kind() == ErrorKind::kNotFound) return std::optional<uint64_t>();
    return data.status();
  }
  virtual Status Delete(const std::string& key) = 0;
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
  // The target's URL, for messages ("file:///srv/backups", "s3://b/p").
  virtual const std::string& url() const = 0;
};

}  // namespace shorthorn::backup
