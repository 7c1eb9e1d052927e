// Design notes: lock times are wall-clock milliseconds since the epoch, so
// holders on different hosts compare them; clocks more than kStale apart
// would let a live lock look stale (documented). Any other conflicting
// live lock stops an acquire, whatever its creation time: only then is a
// party that already holds (it listed before our PUT landed) never joined
// by a second. The Busy message names the oldest such lock.
#include "backup/lock.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <optional>
#include <set>
#include <vector>

#include "backup/format.h"
#include "common/clock.h"
#include "common/log.h"

namespace shorthorn::backup {
namespace json = boost::json;
namespace {

uint64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Boost.JSON keeps a non-negative integer as int64 when it fits.
bool IsU64(const json::value* v) {
  return v != nullptr && (v->is_uint64() || (v->is_int64() && v->as_int64() >= 0));
}
uint64_t U64(const json::value* v) { return v->is_uint64() ? v->as_uint64() : v->as_int64(); }

struct LockInfo {
  std::string key;
  LockKind kind = LockKind::kDelete;
  uint64_t created = 0;
  uint64_t refreshed = 0;
  std::string owner;
};

std::optional<LockKind> KindFromName(std::string_view s) {
  if (s == "backup") return LockKind::kBackup;
  if (s == "restore") return LockKind::kRestore;
  if (s == "delete") return LockKind::kDelete;
  return std::nullopt;
}

std::string Body(LockKind kind, uint64_t created, const std::string& owner) {
  json::object o{
      {"kind", LockKindName(kind)}, {"created", created}, {"refreshed", NowMs()}, {"owner", owner}};
  return json::serialize(o);
}

// A lock object that does not parse is treated as a delete lock that never
// goes stale by itself: the safe reading of a damaged lock. Operators
// remove it by hand (the message names it).
LockInfo ParseLock(const std::string& key, const std::vector<uint8_t>& data) {
  LockInfo info;
  info.key = key;
  info.created = 0;
  info.refreshed = UINT64_MAX;
  info.owner = "unknown (damaged lock object)";
  json::error_code ec;
  json::value v =
      json::parse(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), ec);
  if (ec || !v.is_object()) return info;
  const json::object& o = v.as_object();
  const json::value* kind = o.if_contains("kind");
  const json::value* created = o.if_contains("created");
  const json::value* refreshed = o.if_contains("refreshed");
  const json::value* owner = o.if_contains("owner");
  if (kind == nullptr || !kind->is_string() || !IsU64(created) || !IsU64(refreshed) ||
      owner == nullptr || !owner->is_string()) {
    return info;
  }
  auto k = KindFromName(kind->as_string());
  if (!k) return info;
  info.kind = *k;
  info.created = U64(created);
  info.refreshed = U64(refreshed);
  info.owner = std::string(owner->as_string());
  return info;
}

// The locks this process holds now. A lock object of this process's owner
// that is not among them was left by a release that failed (the store was
// unreachable): it is ours to remove, rather than to wait kStale for.
std::mutex held_mu;
std::set<std::string>& HeldKeys() {
  static std::set<std::string> held;
  return held;
}

std::string Describe(const LockInfo& l) {
  return std::string("a ") + LockKindName(l.kind) + " by " + l.owner + " since " +
         Rfc3339(static_cast<std::time_t>(l.created / 1000)) + " (" + l.key + ")";
}

}  // namespace

const char* LockKindName(LockKind kind) {
  switch (kind) {
    case LockKind::kBackup:
      return "backup";
    case LockKind::kRestore:
      return "restore";
    case LockKind::kDelete:
      return "delete";
  }
  return "?";
}

bool LocksConflict(LockKind a, LockKind b) {
  if (a == LockKind::kDelete || b == LockKind::kDelete) return true;
  return a == LockKind::kBackup && b == LockKind::kBackup;
}

Result<std::unique_ptr<VolumeLock>> VolumeLock::Acquire(BackupStore& store,
                                                        const std::string& volume, LockKind kind,
                                                        const std::string& owner,
                                                        std::chrono::milliseconds wait) {
  const std::string what = std::string("lock backup volume ") + volume + " on " + store.url() +
                           " for a " + LockKindName(kind);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    uint64_t created = NowMs();
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = static_cast<uint32_t>(::getpid());
    char tail[16];
    std::snprintf(tail, sizeof(tail), "%08x", r);
    std::string key = LocksPrefix(volume) + LockKindName(kind) + "-" + std::to_string(created) +
                      "-" + tail + ".json";
    std::string body = Body(kind, created, owner);
    SH_RETURN_IF_ERROR(store.Put(key, {reinterpret_cast<const uint8_t*>(body.data()), body.size()})
                           .WithContext(what));
    auto keys = store.List(LocksPrefix(volume));
    if (!keys.ok()) {
      (void)store.Delete(key);
      return keys.status().WithContext(what);
    }
    std::optional<LockInfo> blocker;
    uint64_t now = NowMs();
    for (const auto& other : *keys) {
      if (other == key) continue;
      auto data = store.Get(other);
      if (!data.ok()) continue;  // released meanwhile
      LockInfo l = ParseLock(other, *data);
      bool orphan = false;
      if (l.owner == owner) {
        std::lock_guard held(held_mu);
        orphan = HeldKeys().count(other) == 0;
      }
      if (orphan) {
        LogInfo(what + ": removing " + other + ", left by this process when its release failed");
        (void)store.Delete(other);
        continue;
      }
      if (l.refreshed != UINT64_MAX &&
          now > l.refreshed + std::chrono::milliseconds(kStale).count()) {
        LogWarning(what + ": removing the stale lock " + other + " (" + Describe(l) + ")");
        (void)store.Delete(other);
        continue;
      }
      if (!LocksConflict(kind, l.kind)) continue;
      if (!blocker || l.created < blocker->created) blocker = l;
    }
    if (!blocker) {
      {
        std::lock_guard held(held_mu);
        HeldKeys().insert(key);
      }
      return std::unique_ptr<VolumeLock>(new VolumeLock(store, key, std::move(body)));
    }
    (void)store.Delete(key);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(ErrorKind::kBusy, what + ": the volume is locked by " + Describe(*blocker) +
                                          "; try again when it ends");
    }
    // A random pause, so that two parties that keep seeing each other part;
    // never past the deadline.
    uint32_t jitter = 0;
    if (getrandom(&jitter, sizeof(jitter), 0) != sizeof(jitter)) jitter = r;
    auto pause = std::chrono::milliseconds(250 + jitter % 500);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::min(pause, left));
  }
}

VolumeLock::VolumeLock(BackupStore& store, std::string key, std::string body)
    : store_(store), key_(std::move(key)), body_(std::move(body)) {
  refresher_ = std::thread([this] { RefreshLoop(); });
}

VolumeLock::~VolumeLock() { (void)Release(); }

Status VolumeLock::Release() {
  {
    std::lock_guard lock(mu_);
    if (released_) return Status::Ok();
    released_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  {
    std::lock_guard held(held_mu);
    HeldKeys().erase(key_);
  }
  Status s = store_.Delete(key_);
  if (!s.ok()) {
    LogWarning("release backup lock " + key_ + ": " + s.message() +
               " (the next operation of this process removes it; others ignore it after " +
               std::to_string(kStale.count()) + " s)");
  }
  return s;
}

void VolumeLock::RefreshLoop() {
  std::unique_lock lock(mu_);
  while (!released_) {
    if (cv_.wait_for(lock, kRefresh, [this] { return released_; })) break;
    lock.unlock();
    // Keep kind, created and owner; only "refreshed" moves.
    json::error_code ec;
    json::value v = json::parse(body_, ec);
    if (!ec && v.is_object()) {
      v.as_object()["refreshed"] = NowMs();
      body_ = json::serialize(v);
    }
    Status s = store_.Put(key_, {reinterpret_cast<const uint8_t*>(body_.data()), body_.size()});
    if (!s.ok()) {
      healthy_ = false;
      LogWarning("refresh backup lock " + key_ + ": " + s.message());
    }
    lock.lock();
  }
}

}  // namespace shorthorn::backup
