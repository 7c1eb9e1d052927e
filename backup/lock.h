// Locks of one backed-up volume in a store (doc/backup-format.md, "Locks").
// Object stores have no compare-and-swap (S3 through libs3 2.0 has no
// conditional PUT), so a lock is an object every holder writes and every
// other party reads:
//
//   acquire: PUT locks/<kind>-<created ms>-<random>.json
//            LIST locks/ ─► any other conflicting live lock?
//              yes ─► DELETE ours, retry after a random pause (or Busy)
//              no  ─► held
//   hold:    re-PUT it every kRefresh (a thread) so others see it is live
//   release: DELETE it
//
// Of two parties that acquire at the same time, the one that lists second
// sees the other's lock, so at most one holds; when both see both, both
// back off and retry after random pauses. (Letting the lock created first
// win is not safe: it may land after the other party listed, and that
// party already holds.)
// A lock not refreshed for kStale (a holder that died) is ignored and
// removed; so is, at once, a lock of this very process (same `owner`) that
// it no longer holds (its release failed because the store was down). Conflicts: delete excludes
// everything; backup excludes backup and delete; restore excludes only delete (many restores and
// one backup may run together).
//
// Threads: a VolumeLock is used by one thread; its refresher runs on its own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backup/store.h"

namespace shorthorn::backup {

enum class LockKind { kBackup, kRestore, kDelete };
const char* LockKindName(LockKind kind);
bool LocksConflict(LockKind a, LockKind b);

class VolumeLock {
 public:
  static constexpr std::chrono::seconds kRefresh{20};
  static constexpr std::chrono::seconds kStale{120};

  // Tries until `wait` has passed; kBusy naming the holder's kind, host and
  // start time when it could not get the lock. `owner` is written into the
  // lock for the message others see; it must name this process uniquely
  // (host and pid).
  static Result<std::unique_ptr<VolumeLock>> Acquire(BackupStore& store, const std::string& volume,
                                                     LockKind kind, const std::string& owner,
                                                     std::chrono::milliseconds wait);
  ~VolumeLock();  // releases (best effort)
  VolumeLock(const VolumeLock&) = delete;
  VolumeLock& operator=(const VolumeLock&) = delete;

  // Releases now; the error of the DELETE, if any.
  Status Release();
  // False once a refresh failed (the store became unreachable): the holder
  // should stop, since others may take the lock after kStale.
  bool healthy() const { return healthy_.load(); }

 private:
  VolumeLock(BackupStore& store, std::string key, std::string body);
  void RefreshLoop();

  BackupStore& store_;
  const std::string key_;
  std::string body_;
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;  // guarded by mu_
  std::thread refresher_;
};

}  // namespace shorthorn::backup
