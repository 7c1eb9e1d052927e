// Backup, restore and delete when something goes wrong: an interrupted
// upload, a missing or damaged block, cancellation, a held lock, chains
// without their base; each leaves the store consistent.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "backup/block_codec.h"
#include "backup/runner.h"
#include "tests/unit/backup/runner_fixture.h"

namespace shorthorn::backup {
namespace {

using namespace runner_fixture;  // NOLINT: the fixture's helpers and fakes

TEST_F(RunnerTest, InterruptedBackupLeavesNoRecordAndTheRetryReusesItsBlocks) {
  FakeSource src(8 * K);
  src.AddLayer("s1", "t1");
  src.Write(0, RandomBytes(8 * K, 60));  // 8 distinct blocks
  store_.FailPutsAfter(3, BlocksPrefix(kVolume));
  auto failed = Backup(src);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().kind(), ErrorKind::kUnavailable) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find("injected fault"), std::string::npos);
  ExpectNoBackups();
  EXPECT_EQ(StoredHashes().size(), 3u);

  store_.ClearFaults();
  store_.ResetCounts();
  auto retry = Backup(src);
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_FALSE(retry->incremental);
  EXPECT_EQ(BlockPuts(), 5u);
  EXPECT_EQ(retry->record.blocks_uploaded, 5u);
  EXPECT_EQ(retry->record.blocks.size(), 8u);
  ExpectRestores(retry->record.name, src.Content());

  // An interrupted incremental backup leaves the list as it was.
  src.AddLayer("s2", "t2");
  src.Write(0, RandomBytes(4 * K, 61));
  store_.FailPutsAfter(2, BlocksPrefix(kVolume));
  auto failed2 = Backup(src);
  ASSERT_FALSE(failed2.ok());
  store_.ClearFaults();
  EXPECT_EQ(ListedNames(), std::vector<std::string>{retry->record.name});
  EXPECT_EQ(store_.KeysUnder(BackupsPrefix(kVolume)).size(), 1u);
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty());
  EXPECT_EQ(StoredHashes().size(), 10u);

  // Delete sweeps the blocks the interrupted backup left.
  auto del = RunDelete(store_, kVolume, retry->record.name, Options());
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->blocks_deleted, 10u);
  EXPECT_TRUE(StoredHashes().empty());
}

TEST_F(RunnerTest, FailedRecordWriteLeavesNoBackup) {
  auto src = MakeSource(65);
  store_.FailPutsAfter(0, BackupsPrefix(kVolume));
  auto failed = Backup(*src);
  ASSERT_FALSE(failed.ok());
  ExpectNoBackups();
}

// A server killed during a PUT may keep a truncated object under a block's
// name: a backup must not take it for the block.
TEST_F(RunnerTest, TruncatedBlockObjectIsReplaced) {
  auto src = MakeSource(75);
  const auto blocks = NonZeroBlocks(src->Content());
  const std::string key = BlockKey(kVolume, blocks[0].hash);
  store_.Poke(key, std::vector<uint8_t>(100, 0x5a));
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(BlockPuts(), blocks.size());
  EXPECT_NE(store_.Peek(key)->size(), 100u);
  ExpectRestores(b->record.name, src->Content());
}

// A store whose size query fails for blocks (s3rver answers InternalError
// for an object a killed PUT left half-written): the backup uploads them.
class SizeFailingStore : public fakes::MemoryStore {
 public:
  Result<std::optional<uint64_t>> Size(const std::string& key) override {
    if (!HashOfBlockKey(key).empty()) {
      return Status(ErrorKind::kFailed, "size " + key + ": the server failed (InternalError)");
    }
    return MemoryStore::Size(key);
  }
};

TEST_F(RunnerTest, FailingSizeQueryUploadsTheBlock) {
  auto src = MakeSource(77);
  SizeFailingStore store;
  auto b = RunBackup(store, *src, kVolume, src->chain().back().name, Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const auto blocks = NonZeroBlocks(src->Content());
  EXPECT_EQ(store.PutsUnder(BlocksPrefix(kVolume)), blocks.size());
  for (const auto& ref : blocks) {
    EXPECT_TRUE(store.Peek(BlockKey(kVolume, ref.hash)).has_value()) << ref.hash;
  }
}

TEST_F(RunnerTest, MissingBlockFailsRestoreNamingIt) {
  auto src = MakeSource(70);
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const BlockRef& victim = b->record.blocks[1];
  store_.Hide(BlockKey(kVolume, victim.hash));
  auto r = Restore(b->record.name);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find(victim.hash), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("missing"), std::string::npos) << r.status().message();
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty()) << "the lock was not released";
}

TEST_F(RunnerTest, CorruptedBlockFailsRestore) {
  auto src = MakeSource(80);
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (size_t i : {size_t{0}, b->record.blocks.size() - 1}) {  // raw and compressed blocks
    const BlockRef& victim = b->record.blocks[i];
    const std::string key = BlockKey(kVolume, victim.hash);
    auto object = store_.Peek(key);
    ASSERT_TRUE(object.has_value());
    auto damaged = *object;
    damaged[kBlockHeaderSize + (damaged.size() - kBlockHeaderSize) / 2] ^= 0x10;
    store_.Poke(key, damaged);
    auto r = Restore(b->record.name);
    ASSERT_FALSE(r.ok()) << "block " << i;
    EXPECT_EQ(r.status().kind(), ErrorKind::kIoError) << r.status().ToString();
    EXPECT_NE(r.status().message().find("damaged"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(victim.hash), std::string::npos) << r.status().message();
    store_.Poke(key, *object);
  }
  ExpectRestores(b->record.name, src->Content());
}

TEST_F(RunnerTest, ProgressCountsUpToTheTotal) {
  auto src = MakeSource(90);
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  RunOptions o = Options(4);
  o.progress = [&](uint64_t done, uint64_t total) {
    std::lock_guard l(mu);
    calls.emplace_back(done, total);
    return true;
  };
  auto b = Backup(*src, o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_FALSE(calls.empty());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, b->record.bytes_read);
    if (i > 0) {
      EXPECT_LE(calls[i - 1].first, calls[i].first) << "progress went back";
    }
  }
  EXPECT_EQ(calls.back().first, b->record.bytes_read);

  calls.clear();
  auto r = Restore(b->record.name, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  uint64_t total = 0;
  for (const auto& ref : b->record.blocks) total += BlockLength(ref.offset, kSize);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(total, total));
}

TEST_F(RunnerTest, CancelledBackupFailsAndLeavesNoRecord) {
  auto src = MakeSource(100);
  for (int cancel_after : {0, 2}) {
    std::atomic<int> calls{0};
    RunOptions o = Options(2);
    o.progress = [&](uint64_t, uint64_t) { return calls++ < cancel_after; };
    auto b = Backup(*src, o);
    ASSERT_FALSE(b.ok()) << "cancel after " << cancel_after;
    EXPECT_EQ(b.status().kind(), ErrorKind::kFailed) << b.status().ToString();
    EXPECT_EQ(b.status().sys_errno(), ECANCELED);
    EXPECT_NE(b.status().message().find("cancelled"), std::string::npos);
    ExpectNoBackups();
  }

  // A cancelled restore fails too (and releases its lock).
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  RunOptions o = Options(2);
  o.progress = [](uint64_t, uint64_t) { return false; };
  auto r = Restore(b->record.name, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().sys_errno(), ECANCELED) << r.status().ToString();
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty());
}

TEST_F(RunnerTest, ChainWithoutTheBaseSnapshotIsAFullBackup) {
  // Back up a, then b on top of it.
  FakeSource ab(4 * K);
  ab.AddLayer("a", "t-a");
  ab.Write(0, RandomBytes(2 * K, 110));
  auto ba = RunBackup(store_, ab, kVolume, "a", Options());
  ASSERT_TRUE(ba.ok()) << ba.status().ToString();
  ab.AddLayer("b", "t-b");
  ab.Write(2 * K, RandomBytes(K, 111));
  auto bb = Backup(ab);
  ASSERT_TRUE(bb.ok()) << bb.status().ToString();
  EXPECT_TRUE(bb->incremental);
  EXPECT_EQ(bb->record.base, ba->record.name);

  // Reverted to a, then c: incremental to a's backup (not b's, which is
  // newer but not in this chain), reading only c's layer.
  FakeSource ac(4 * K);
  ac.AddLayer("a", "t-a");
  ac.Write(0, RandomBytes(2 * K, 110));
  ac.AddLayer("c", "t-c");
  ac.Write(3 * K, RandomBytes(K, 112));
  auto bc = Backup(ac);
  ASSERT_TRUE(bc.ok()) << bc.status().ToString();
  EXPECT_TRUE(bc->incremental);
  EXPECT_EQ(bc->record.base, ba->record.name);
  EXPECT_EQ(ac.TakeExtentsAsked(), std::vector<std::string>{"c"});
  ExpectRestores(bc->record.name, ac.Content());

  // Same names, other snapshots (a recreated, so another creation time):
  // nothing in the store is a base.
  FakeSource other(4 * K);
  other.AddLayer("a", "t-a-again");
  other.Write(K, RandomBytes(K, 113));
  other.AddLayer("b", "t-b-again");
  other.Write(0, RandomBytes(4096, 114));
  auto bo = Backup(other);
  ASSERT_TRUE(bo.ok()) << bo.status().ToString();
  EXPECT_FALSE(bo->incremental);
  EXPECT_EQ(bo->record.base, "");
  EXPECT_EQ(other.TakeExtentsAsked(), (std::vector<std::string>{"a", "b"}));
  ExpectRestores(bo->record.name, other.Content());
  // And the older backups still restore to their own content.
  ExpectRestores(bb->record.name, ab.Content());
}

TEST_F(RunnerTest, RevertedChainWithNoBackedUpSnapshotIsFull) {
  FakeSource ab(3 * K);
  ab.AddLayer("a", "t-a");
  ab.Write(0, RandomBytes(K, 120));
  ab.AddLayer("b", "t-b");
  ab.Write(K, RandomBytes(K, 121));
  auto bb = Backup(ab);
  ASSERT_TRUE(bb.ok()) << bb.status().ToString();

  FakeSource ac(3 * K);  // reverted to a (never backed up), then c
  ac.AddLayer("a", "t-a");
  ac.Write(0, RandomBytes(K, 120));
  ac.AddLayer("c", "t-c");
  ac.Write(2 * K, RandomBytes(K, 122));
  auto bc = Backup(ac);
  ASSERT_TRUE(bc.ok()) << bc.status().ToString();
  EXPECT_FALSE(bc->incremental);
  EXPECT_EQ(bc->record.blocks, NonZeroBlocks(ac.Content()));
  ExpectRestores(bc->record.name, ac.Content());
}

TEST_F(RunnerTest, BaseWhoseRecordIsMissingIsSkipped) {
  auto src = MakeSource(130);
  auto first = Backup(*src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  store_.Hide(BackupRecordKey(kVolume, first->record.name));
  src->AddLayer("s3", "t3");
  src->Write(0, RandomBytes(4096, 131));
  auto second = Backup(*src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->incremental);
  ExpectRestores(second->record.name, src->Content());
}

TEST_F(RunnerTest, HeldLocksMakeOperationsBusyFast) {
  auto src = MakeSource(140);
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  auto held = VolumeLock::Acquire(store_, kVolume, LockKind::kBackup, "another fused", 1s);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  auto start = std::chrono::steady_clock::now();
  auto busy = Backup(*src);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().kind(), ErrorKind::kBusy) << busy.status().ToString();
  EXPECT_NE(busy.status().message().find("another fused"), std::string::npos);
  auto del = RunDelete(store_, kVolume, b->record.name, Options());
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.status().kind(), ErrorKind::kBusy) << del.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  // A restore runs beside a backup.
  ExpectRestores(b->record.name, src->Content());
  EXPECT_TRUE((*held)->Release().ok());

  // A delete excludes restores.
  auto deleting = VolumeLock::Acquire(store_, kVolume, LockKind::kDelete, "a delete", 1s);
  ASSERT_TRUE(deleting.ok()) << deleting.status().ToString();
  auto r = Restore(b->record.name);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kBusy) << r.status().ToString();
  EXPECT_TRUE((*deleting)->Release().ok());
  EXPECT_EQ(ListedNames(), std::vector<std::string>{b->record.name});
}

TEST_F(RunnerTest, GrownVolumeBacksUpIncrementally) {
  FakeSource src(2 * K + MiB);
  src.AddLayer("s1", "t1");
  src.Write(0, RandomBytes(2 * K + MiB, 150));
  auto first = Backup(src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto old_content = src.Content();

  src.set_size(4 * K);
  src.AddLayer("s2", "t2");
  src.Write(3 * K, RandomBytes(4096, 151));
  auto second = Backup(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->incremental);
  EXPECT_EQ(second->record.bytes_read, 2 * K);  // the old partial block and block 3
  EXPECT_EQ(second->record.size, 4 * K);
  EXPECT_EQ(second->record.blocks, NonZeroBlocks(src.Content()));
  ExpectRestores(second->record.name, src.Content());
  ExpectRestores(first->record.name, old_content);
}

TEST_F(RunnerTest, ShrunkVolumeBacksUpIncrementally) {
  FakeSource src(4 * K);
  src.AddLayer("s1", "t1");
  src.Write(0, RandomBytes(4 * K, 160));
  auto first = Backup(src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  src.set_size(2 * K + MiB);
  src.AddLayer("s2", "t2");
  auto second = Backup(src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->incremental);
  EXPECT_EQ(second->record.blocks, NonZeroBlocks(src.Content()));
  ExpectRestores(second->record.name, src.Content());
}

TEST_F(RunnerTest, RestoreOfUnknownBackup) {
  bool prepared = false;
  auto prepare = [&](const BackupRecord&) -> Result<VolumeSink*> {
    prepared = true;
    return Status(ErrorKind::kFailed, "not expected");
  };
  const std::string name = "backup-20240101T000000Z-00000000";
  auto r = RunRestore(store_, kVolume, name, prepare, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find(name), std::string::npos);
  EXPECT_FALSE(prepared);
  auto bad = RunRestore(store_, kVolume, "../x", prepare, Options());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::kInvalidArgument) << bad.status().ToString();
  EXPECT_FALSE(prepared);
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty());
}

TEST_F(RunnerTest, RestorePrepareErrorStopsBeforeWriting) {
  auto src = MakeSource(170);
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  store_.ResetCounts();
  auto r = RunRestore(
      store_, kVolume, b->record.name,
      [](const BackupRecord& rec) -> Result<VolumeSink*> {
        EXPECT_EQ(rec.size, kSize);
        return Status(ErrorKind::kNoSpace, "create volume: no space");
      },
      Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kNoSpace) << r.status().ToString();
  EXPECT_EQ(store_.gets(), 1u) << "only the record was read";
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty());
}

TEST_F(RunnerTest, RecordOfAnotherBackupIsRejected) {
  auto src = MakeSource(180);
  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const std::string other = "backup-20240101T000000Z-00000001";
  store_.Poke(BackupRecordKey(kVolume, other),
              *store_.Peek(BackupRecordKey(kVolume, b->record.name)));
  auto r = ReadBackupRecord(store_, kVolume, other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kProtocol) << r.status().ToString();
  store_.Poke(BackupRecordKey("vol-2", b->record.name),
              *store_.Peek(BackupRecordKey(kVolume, b->record.name)));
  auto w = ReadBackupRecord(store_, "vol-2", b->record.name);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().kind(), ErrorKind::kProtocol) << w.status().ToString();
}

TEST_F(RunnerTest, SnapshotMustBeTheChainsLast) {
  auto src = MakeSource(190);
  auto r = RunBackup(store_, *src, kVolume, "s1", Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(store_.KeysUnder("").empty());
}

}  // namespace
}  // namespace shorthorn::backup
