// Volume locks in a store: which kinds conflict, Busy naming the holder,
// stale and damaged lock objects, release, and two parties racing.
#include "backup/lock.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <thread>

#include "backup/format.h"
#include "tests/unit/backup/core_fakes.h"

namespace shorthorn::backup {
namespace {
namespace json = boost::json;
using fakes::MemoryStore;
using namespace std::chrono_literals;

constexpr char kVolume[] = "vol1";
constexpr std::chrono::milliseconds kShortWait{200};

uint64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<VolumeLock>> Take(MemoryStore& store, LockKind kind,
                                         const std::string& owner,
                                         std::chrono::milliseconds wait = kShortWait) {
  return VolumeLock::Acquire(store, kVolume, kind, owner, wait);
}

std::vector<std::string> LockKeys(const MemoryStore& store) {
  return store.KeysUnder(LocksPrefix(kVolume));
}

// A lock object as another (maybe dead) party wrote it.
std::string PokeLock(MemoryStore& store, const std::string& kind, uint64_t created,
                     uint64_t refreshed, const std::string& owner) {
  std::string key = LocksPrefix(kVolume) + kind + "-" + std::to_string(created) + "-0badf00d.json";
  std::string body = json::serialize(json::object{
      {"kind", kind}, {"created", created}, {"refreshed", refreshed}, {"owner", owner}});
  store.Poke(key, std::vector<uint8_t>(body.begin(), body.end()));
  return key;
}

void ExpectBusy(const Result<std::unique_ptr<VolumeLock>>& r, const std::string& names) {
  ASSERT_FALSE(r.ok()) << "got the lock; expected Busy naming " << names;
  EXPECT_EQ(r.status().kind(), ErrorKind::kBusy) << r.status().ToString();
  EXPECT_NE(r.status().message().find(names), std::string::npos) << r.status().message();
}

TEST(LockTest, ConflictTable) {
  using K = LockKind;
  EXPECT_TRUE(LocksConflict(K::kBackup, K::kBackup));
  EXPECT_FALSE(LocksConflict(K::kBackup, K::kRestore));
  EXPECT_FALSE(LocksConflict(K::kRestore, K::kBackup));
  EXPECT_FALSE(LocksConflict(K::kRestore, K::kRestore));
  for (K k : {K::kBackup, K::kRestore, K::kDelete}) {
    EXPECT_TRUE(LocksConflict(K::kDelete, k));
    EXPECT_TRUE(LocksConflict(k, K::kDelete));
  }
  EXPECT_STREQ(LockKindName(K::kBackup), "backup");
  EXPECT_STREQ(LockKindName(K::kRestore), "restore");
  EXPECT_STREQ(LockKindName(K::kDelete), "delete");
}

TEST(LockTest, SecondBackupIsBusyNamingTheFirst) {
  MemoryStore store;
  auto first = Take(store, LockKind::kBackup, "fused on host-a pid 1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(LockKeys(store).size(), 1u);
  const std::string first_key = LockKeys(store)[0];

  auto start = std::chrono::steady_clock::now();
  auto second = Take(store, LockKind::kBackup, "fused on host-b pid 2");
  auto took = std::chrono::steady_clock::now() - start;
  ExpectBusy(second, "a backup by fused on host-a pid 1");
  ExpectBusy(second, first_key);
  EXPECT_NE(second.status().message().find(kVolume), std::string::npos);
  EXPECT_LT(took, 2s) << "Busy should come after about the lock wait";
  // The loser left nothing behind.
  EXPECT_EQ(LockKeys(store), std::vector<std::string>{first_key});
  for (const auto& p : store.listed_prefixes()) EXPECT_EQ(p, LocksPrefix(kVolume));
}

TEST(LockTest, BackupAndRestoresRunTogether) {
  MemoryStore store;
  auto backup = Take(store, LockKind::kBackup, "b");
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  auto restore1 = Take(store, LockKind::kRestore, "r1");
  ASSERT_TRUE(restore1.ok()) << restore1.status().ToString();
  auto restore2 = Take(store, LockKind::kRestore, "r2");
  ASSERT_TRUE(restore2.ok()) << restore2.status().ToString();
  EXPECT_EQ(LockKeys(store).size(), 3u);

  // A restore first, then a backup.
  MemoryStore other;
  auto r = VolumeLock::Acquire(other, kVolume, LockKind::kRestore, "r", kShortWait);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto b = VolumeLock::Acquire(other, kVolume, LockKind::kBackup, "b", kShortWait);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
}

TEST(LockTest, DeleteConflictsWithEverything) {
  for (LockKind held : {LockKind::kBackup, LockKind::kRestore}) {
    MemoryStore store;
    auto h = Take(store, held, "holder");
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ExpectBusy(Take(store, LockKind::kDelete, "deleter"),
               std::string("a ") + LockKindName(held) + " by holder");
  }
  MemoryStore store;
  auto d = Take(store, LockKind::kDelete, "deleter");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  for (LockKind k : {LockKind::kBackup, LockKind::kRestore, LockKind::kDelete}) {
    ExpectBusy(Take(store, k, "other"), "a delete by deleter");
  }
  EXPECT_EQ(LockKeys(store).size(), 1u);
}

TEST(LockTest, ReleaseDeletesTheObject) {
  MemoryStore store;
  auto lock = Take(store, LockKind::kBackup, "fused on host-a pid 7");
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  auto keys = LockKeys(store);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].rfind(LocksPrefix(kVolume) + "backup-", 0), 0u) << keys[0];
  auto body = store.Peek(keys[0]);
  ASSERT_TRUE(body.has_value());
  json::value v = json::parse(std::string(body->begin(), body->end()));
  EXPECT_EQ(v.at("kind").as_string(), "backup");
  EXPECT_EQ(v.at("owner").as_string(), "fused on host-a pid 7");
  EXPECT_TRUE((*lock)->healthy());

  Status s = (*lock)->Release();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(LockKeys(store).empty());
  EXPECT_TRUE((*lock)->Release().ok()) << "a second release is a no-op";
  // Now another backup gets it at once.
  auto next = Take(store, LockKind::kBackup, "next", 0ms);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
}

TEST(LockTest, DestructorReleases) {
  MemoryStore store;
  {
    auto lock = Take(store, LockKind::kDelete, "d");
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
    EXPECT_EQ(LockKeys(store).size(), 1u);
  }
  EXPECT_TRUE(LockKeys(store).empty());
}

TEST(LockTest, StaleLockIsIgnoredAndRemoved) {
  MemoryStore store;
  uint64_t long_ago = NowMs() - 3600 * 1000;
  std::string stale = PokeLock(store, "delete", long_ago, long_ago + 1000, "a dead host");
  auto lock = Take(store, LockKind::kBackup, "alive");
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_FALSE(store.Peek(stale).has_value()) << "the stale lock was left";
  EXPECT_EQ(LockKeys(store).size(), 1u);
}

TEST(LockTest, OldButRefreshedLockIsLive) {
  MemoryStore store;
  uint64_t now = NowMs();
  std::string key = PokeLock(store, "backup", now - 3600 * 1000, now, "a long backup");
  ExpectBusy(Take(store, LockKind::kBackup, "another"), "a backup by a long backup");
  EXPECT_TRUE(store.Peek(key).has_value());
  // Refreshed just inside kStale: still live.
  uint64_t recent = NowMs() - std::chrono::milliseconds(VolumeLock::kStale).count() + 30000;
  MemoryStore store2;
  PokeLock(store2, "delete", recent, recent, "a slow delete");
  ExpectBusy(VolumeLock::Acquire(store2, kVolume, LockKind::kRestore, "r", kShortWait),
             "a delete by a slow delete");
}

TEST(LockTest, DamagedLockBlocksAndIsNamed) {
  MemoryStore store;
  std::string key = LocksPrefix(kVolume) + "backup-1-00000000.json";
  std::string junk = "{\"kind\": \"backup\", \"created\": \"yesterday\"";
  store.Poke(key, std::vector<uint8_t>(junk.begin(), junk.end()));
  auto r = Take(store, LockKind::kRestore, "r");
  ExpectBusy(r, "damaged");
  ExpectBusy(r, key);
  EXPECT_TRUE(store.Peek(key).has_value()) << "a damaged lock is for an operator to remove";
}

TEST(LockTest, StoreErrorsAreNotBusy) {
  MemoryStore store;
  store.FailPutsAfter(0);
  auto r = Take(store, LockKind::kBackup, "b");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("lock backup volume vol1"), std::string::npos)
      << r.status().message();
}

TEST(LockTest, WaitsForTheHolderToRelease) {
  MemoryStore store;
  auto holder = Take(store, LockKind::kBackup, "holder");
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);
    (void)(*holder)->Release();
  });
  auto start = std::chrono::steady_clock::now();
  auto waiter = Take(store, LockKind::kBackup, "waiter", 10s);
  releaser.join();
  ASSERT_TRUE(waiter.ok()) << waiter.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(LockKeys(store).size(), 1u);
}

// A party whose lock is created first but lands late (a slow PUT) must not
// take the lock from one that listed before it landed and already holds:
// here a delete would sweep blocks a running backup counts on.
TEST(LockTest, AnEarlierLockThatLandsLateDoesNotHold) {
  MemoryStore store;
  std::mutex mu;
  std::condition_variable cv;
  bool delete_putting = false, backup_holds = false;
  store.SetPutHook([&](const std::string& key) {
    if (key.find("/locks/delete-") == std::string::npos) return;
    std::unique_lock l(mu);
    delete_putting = true;
    cv.notify_all();
    cv.wait(l, [&] { return backup_holds; });
  });
  Result<std::unique_ptr<VolumeLock>> deleter = Status(ErrorKind::kFailed, "not run");
  std::thread t([&] { deleter = Take(store, LockKind::kDelete, "deleter", 0ms); });
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return delete_putting; });
  }
  std::this_thread::sleep_for(5ms);  // the backup's lock is created later
  auto backup = Take(store, LockKind::kBackup, "backer", 0ms);
  {
    std::lock_guard l(mu);
    backup_holds = true;
  }
  cv.notify_all();
  t.join();
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  ExpectBusy(deleter, "a backup by backer");
  EXPECT_EQ(LockKeys(store).size(), 1u);
}

// Several parties at once: each gets the lock in turn, never two at a time.
TEST(LockTest, ContendersHoldOneAtATime) {
  MemoryStore store;
  std::atomic<int> holding{0}, max_holding{0}, got{0};
  std::vector<std::thread> threads;
  std::vector<std::string> errors(3);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      auto lock = Take(store, LockKind::kBackup, "party " + std::to_string(i), 20s);
      if (!lock.ok()) {
        errors[i] = lock.status().ToString();
        return;
      }
      int now = ++holding;
      int prev = max_holding.load();
      while (now > prev && !max_holding.compare_exchange_weak(prev, now)) {
      }
      std::this_thread::sleep_for(50ms);
      --holding;
      ++got;
      (void)(*lock)->Release();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(got.load(), 3);
  EXPECT_EQ(max_holding.load(), 1);
  EXPECT_TRUE(LockKeys(store).empty());
}

}  // namespace
}  // namespace shorthorn::backup
