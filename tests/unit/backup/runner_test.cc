// Backup, restore and delete end to end over the in-memory fakes: restored
// bytes equal the snapshot's, incremental backups read and upload only what
// changed, blocks are shared and collected, and failures (an interrupted
// upload, a missing or damaged block, cancellation, a held lock) leave the
// store consistent.
#include "backup/runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "backup/block_codec.h"
#include "backup/lock.h"
#include "tests/unit/backup/core_fakes.h"

namespace shorthorn::backup {
namespace {

using fakes::CompressibleBytes;
using fakes::FakeSink;
using fakes::FakeSource;
using fakes::MemoryStore;
using fakes::RandomBytes;
using namespace std::chrono_literals;

constexpr char kVolume[] = "vol";
constexpr uint64_t K = kBlockSize;
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t kSize = 5 * K + 256 * KiB;  // 6 blocks, the last one partial

RunOptions Options(int workers = 4) {
  RunOptions o;
  o.workers = workers;
  o.owner = "runner_test";
  o.lock_wait = 200ms;
  return o;
}

std::string FirstDifference(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (got.size() != want.size()) {
    return "size " + std::to_string(got.size()) + ", expected " + std::to_string(want.size());
  }
  auto [a, b] = std::mismatch(got.begin(), got.end(), want.begin());
  if (a == got.end()) return "";
  return "first difference at byte " + std::to_string(a - got.begin());
}

// The non-zero blocks of `content`, as a backup of it must list them.
std::vector<BlockRef> NonZeroBlocks(const std::vector<uint8_t>& content) {
  std::vector<BlockRef> out;
  for (uint64_t off = 0; off < content.size(); off += K) {
    std::span<const uint8_t> block(content.data() + off, BlockLength(off, content.size()));
    if (!IsAllZero(block)) out.push_back({off, BlockHash(block)});
  }
  return out;
}

std::set<std::string> Hashes(const std::vector<BlockRef>& blocks) {
  std::set<std::string> out;
  for (const auto& b : blocks) out.insert(b.hash);
  return out;
}

// The usual test volume, in two layers "s1" and "s2":
//   block 0: random (s1)
//   block 1: random (s1), its second MiB rewritten (s2)
//   block 2: never written (a hole)
//   block 3: zeros written over all of it (s1) and again in part (s2)
//   block 4: 64 KiB random (s1) and 8 KiB compressible (s2), zeros between
//   block 5: 256 KiB long, its first 128 KiB random (s1)
std::unique_ptr<FakeSource> MakeSource(uint64_t seed) {
  auto src = std::make_unique<FakeSource>(kSize);
  src->AddLayer("s1", "2024-01-01T00:00:00Z");
  src->Write(0, RandomBytes(2 * K, seed));
  src->Write(3 * K, std::vector<uint8_t>(K));
  src->Write(4 * K + 512 * KiB, RandomBytes(64 * KiB, seed + 1));
  src->Write(5 * K, RandomBytes(128 * KiB, seed + 2));
  src->AddLayer("s2", "2024-01-02T00:00:00Z");
  src->Write(K + MiB, RandomBytes(MiB, seed + 3));
  src->Write(3 * K + 64 * KiB, std::vector<uint8_t>(4 * KiB));
  src->Write(4 * K + MiB, CompressibleBytes(8 * KiB, seed + 4));
  return src;
}

class RunnerTest : public ::testing::Test {
 protected:
  Result<BackupResult> Backup(FakeSource& src, const RunOptions& options = Options(),
                              const std::string& volume = kVolume) {
    return RunBackup(store_, src, volume, src.chain().back().name, options);
  }

  // Restores into a fresh zeroed volume and returns its bytes.
  Result<std::vector<uint8_t>> Restore(const std::string& backup,
                                       const RunOptions& options = Options(),
                                       const std::string& volume = kVolume) {
    std::unique_ptr<FakeSink> sink;
    auto r = RunRestore(
        store_, volume, backup,
        [&](const BackupRecord& rec) -> Result<VolumeSink*> {
          sink = std::make_unique<FakeSink>(rec.size);
          return sink.get();
        },
        options);
    if (!r.ok()) return r.status();
    EXPECT_EQ(sink->flushes(), 1u);
    return sink->data();
  }

  void ExpectRestores(const std::string& backup, const std::vector<uint8_t>& want,
                      const std::string& volume = kVolume) {
    auto got = Restore(backup, Options(), volume);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(FirstDifference(*got, want), "") << "restore of " << backup;
  }

  std::set<std::string> StoredHashes(const std::string& volume = kVolume) {
    std::set<std::string> out;
    for (const auto& key : store_.KeysUnder(BlocksPrefix(volume))) {
      std::string h = HashOfBlockKey(key);
      EXPECT_NE(h, "") << key;
      out.insert(h);
    }
    return out;
  }

  uint64_t BlockPuts(const std::string& volume = kVolume) {
    return store_.PutsUnder(BlocksPrefix(volume));
  }

  // No backup record, no list, no lock: the state a failed first backup
  // must leave.
  void ExpectNoBackups() {
    EXPECT_TRUE(store_.KeysUnder(BackupsPrefix(kVolume)).empty());
    EXPECT_FALSE(store_.Peek(VolumeRecordKey(kVolume)).has_value());
    auto listed = ListBackups(store_, kVolume);
    ASSERT_FALSE(listed.ok());
    EXPECT_EQ(listed.status().kind(), ErrorKind::kNotFound) << listed.status().ToString();
    EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty()) << "a lock was left";
  }

  std::vector<std::string> ListedNames(const std::string& volume = kVolume) {
    auto listed = ListBackups(store_, volume);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    std::vector<std::string> names;
    if (listed.ok()) {
      for (const auto& b : listed->backups) names.push_back(b.name);
    }
    return names;
  }

  MemoryStore store_;
};

TEST_F(RunnerTest, FullBackupRestoresByteForByte) {
  auto src = MakeSource(1);
  const auto content = src->Content();
  const auto expected = NonZeroBlocks(content);
  ASSERT_EQ(expected.size(), 4u) << "blocks 0, 1, 4 and 5 hold data";

  auto b = Backup(*src);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const BackupRecord& r = b->record;
  EXPECT_FALSE(b->incremental);
  EXPECT_EQ(r.base, "");
  EXPECT_TRUE(ValidateBackupName(r.name).ok()) << r.name;
  EXPECT_EQ(r.volume, kVolume);
  EXPECT_EQ(r.snapshot, "s2");
  EXPECT_EQ(r.snapshot_created, "2024-01-02T00:00:00Z");
  EXPECT_EQ(r.size, kSize);
  EXPECT_EQ(r.blocks, expected);
  // Every block some layer touched, and only those: not the hole (block 2).
  EXPECT_EQ(r.bytes_read, 4 * K + 256 * KiB);
  EXPECT_EQ(src->bytes_read(), r.bytes_read);
  EXPECT_EQ(r.blocks_uploaded, 4u);
  EXPECT_GT(r.bytes_uploaded, 0u);
  EXPECT_EQ(src->TakeExtentsAsked(), (std::vector<std::string>{"s1", "s2"}));

  // The store holds exactly the non-zero blocks, nothing for zeros.
  EXPECT_EQ(StoredHashes(), Hashes(expected));
  std::vector<uint8_t> zeros(K);
  EXPECT_FALSE(store_.Peek(BlockKey(kVolume, BlockHash(zeros))).has_value());
  for (const auto& key : store_.KeysUnder("")) {
    EXPECT_EQ(key.rfind(VolumePrefix(kVolume), 0), 0u) << key;
  }
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty()) << "the lock was not released";

  // The record as stored, and the list.
  auto stored = ReadBackupRecord(store_, kVolume, r.name);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->blocks, r.blocks);
  auto listed = ListBackups(store_, kVolume);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->backups.size(), 1u);
  EXPECT_EQ(listed->backups[0], Summarize(r));

  ExpectRestores(r.name, content);
}

TEST_F(RunnerTest, FullBackupWithOneWorkerAndManyWorkersAgree) {
  auto src = MakeSource(2);
  auto one = Backup(*src, Options(1));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  auto many = Backup(*src, Options(16));
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  EXPECT_EQ(one->record.blocks, NonZeroBlocks(src->Content()));
  // The same snapshot again: incremental, nothing read or uploaded.
  EXPECT_TRUE(many->incremental);
  EXPECT_EQ(many->record.base, one->record.name);
  EXPECT_EQ(many->record.blocks, one->record.blocks);
  EXPECT_EQ(many->record.bytes_read, 0u);
  EXPECT_EQ(many->record.blocks_uploaded, 0u);
  ExpectRestores(many->record.name, src->Content());
}

TEST_F(RunnerTest, IncrementalBackupUploadsOnlyChangedBlocks) {
  auto src = MakeSource(3);
  const auto old_content = src->Content();
  auto first = Backup(*src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  (void)src->TakeExtentsAsked();

  src->AddLayer("s3", "2024-01-03T00:00:00Z");
  src->Write(K + 4 * KiB, RandomBytes(8 * KiB, 30));          // block 1
  src->Write(3 * K + K - 4 * KiB, RandomBytes(4 * KiB, 31));  // block 3, zeros until now
  const auto new_content = src->Content();
  const uint64_t read_before = src->bytes_read();
  store_.ResetCounts();

  auto second = Backup(*src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  const BackupRecord& r = second->record;
  EXPECT_TRUE(second->incremental);
  EXPECT_EQ(r.base, first->record.name);
  EXPECT_EQ(r.snapshot, "s3");
  EXPECT_EQ(src->TakeExtentsAsked(), std::vector<std::string>{"s3"});
  EXPECT_EQ(BlockPuts(), 2u);
  EXPECT_EQ(r.blocks_uploaded, 2u);
  EXPECT_EQ(r.bytes_read, 2 * K);
  EXPECT_EQ(src->bytes_read() - read_before, 2 * K);
  EXPECT_EQ(r.blocks, NonZeroBlocks(new_content));
  std::set<std::string> both = Hashes(first->record.blocks);
  both.merge(Hashes(r.blocks));
  EXPECT_EQ(StoredHashes(), both);

  ExpectRestores(r.name, new_content);
  ExpectRestores(first->record.name, old_content);
  EXPECT_EQ(ListedNames(), (std::vector<std::string>{first->record.name, r.name}));
}

TEST_F(RunnerTest, IdenticalBlocksAreStoredOnce) {
  FakeSource src(6 * K);
  src.AddLayer("s1", "t1");
  auto same = RandomBytes(K, 40);
  auto other = RandomBytes(K, 41);
  src.Write(0, same);
  src.Write(K, other);
  src.Write(2 * K, same);
  src.Write(4 * K, same);
  src.AddLayer("s2", "t2");
  src.Write(5 * K, std::span(same).first(K / 2));  // block 5 = same, from two layers
  src.Write(5 * K + K / 2, std::span(same).subspan(K / 2));

  auto b = Backup(src, Options(1));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->record.blocks.size(), 5u);
  EXPECT_EQ(BlockPuts(), 2u);
  EXPECT_EQ(b->record.blocks_uploaded, 2u);
  EXPECT_EQ(StoredHashes(), (std::set<std::string>{BlockHash(same), BlockHash(other)}));
  ExpectRestores(b->record.name, src.Content());

  // A block rewritten with data the store already has uploads nothing.
  src.AddLayer("s3", "t3");
  src.Write(3 * K, other);
  store_.ResetCounts();
  auto c = Backup(src, Options(4));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(BlockPuts(), 0u);
  EXPECT_EQ(c->record.blocks.size(), 6u);
  EXPECT_EQ(StoredHashes().size(), 2u);
  ExpectRestores(c->record.name, src.Content());

  // Many workers on a fresh store: still one object per distinct block.
  MemoryStore fresh;
  auto d = RunBackup(fresh, src, kVolume, "s3", Options(8));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(fresh.KeysUnder(BlocksPrefix(kVolume)).size(), 2u);
}

TEST_F(RunnerTest, DeleteRemovesOnlyUnreferencedBlocks) {
  // Another volume in the same store must not be touched.
  auto neighbour = MakeSource(50);
  auto nb = Backup(*neighbour, Options(), "vol-2");
  ASSERT_TRUE(nb.ok()) << nb.status().ToString();
  const auto neighbour_keys = store_.KeysUnder(VolumePrefix("vol-2"));

  auto src = MakeSource(51);
  auto first = Backup(*src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  src->AddLayer("s3", "t3");
  src->Write(0, RandomBytes(K, 52));      // block 0 replaced
  src->Write(4 * K, RandomBytes(K, 53));  // block 4 replaced
  auto second = Backup(*src);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  const auto h1 = Hashes(first->record.blocks), h2 = Hashes(second->record.blocks);
  std::set<std::string> only_first;
  std::set_difference(h1.begin(), h1.end(), h2.begin(), h2.end(),
                      std::inserter(only_first, only_first.end()));
  ASSERT_EQ(only_first.size(), 2u);

  store_.ResetCounts();
  auto del = RunDelete(store_, kVolume, first->record.name, Options());
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->blocks_deleted, 2u);
  EXPECT_EQ(del->blocks_kept, h2.size());
  EXPECT_EQ(StoredHashes(), h2);
  EXPECT_FALSE(store_.Peek(BackupRecordKey(kVolume, first->record.name)).has_value());
  EXPECT_EQ(ListedNames(), std::vector<std::string>{second->record.name});
  EXPECT_TRUE(store_.KeysUnder(LocksPrefix(kVolume)).empty());
  // Delete lists only under this volume's prefix, never the whole target.
  EXPECT_FALSE(store_.listed_prefixes().empty());
  for (const auto& p : store_.listed_prefixes()) {
    EXPECT_EQ(p.rfind(VolumePrefix(kVolume), 0), 0u) << "listed " << p;
  }

  ExpectRestores(second->record.name, src->Content());
  auto gone = Restore(first->record.name);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().kind(), ErrorKind::kNotFound) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find(first->record.name), std::string::npos);

  // Deleting it again: not found. Deleting the last one empties the blocks.
  auto again = RunDelete(store_, kVolume, first->record.name, Options());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().kind(), ErrorKind::kNotFound) << again.status().ToString();
  auto last = RunDelete(store_, kVolume, second->record.name, Options());
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->blocks_deleted, h2.size());
  EXPECT_TRUE(StoredHashes().empty());
  EXPECT_TRUE(store_.KeysUnder(BackupsPrefix(kVolume)).empty());

  EXPECT_EQ(store_.KeysUnder(VolumePrefix("vol-2")), neighbour_keys);
  ExpectRestores(nb->record.name, neighbour->Content(), "vol-2");
}

TEST_F(RunnerTest, DeleteRejectsBadNames) {
  auto r = RunDelete(store_, kVolume, "../../etc", Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(store_.listed_prefixes().empty());
}

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

namespace shorthorn::backup {
namespace {

// A clone's copy: the sink ends up with the snapshot's bytes, all-zero
// blocks (block 3) are read but not written, holes (block 2) not even read;
// with one worker or many; progress reaches the bytes read; the sink is
// flushed once.
TEST(RunCopyTest, CopiesTheSnapshotAndSkipsZeros) {
  for (int workers : {1, 4}) {
    auto src = MakeSource(11);
    FakeSink sink(kSize);
    uint64_t last = 0;
    RunOptions options = Options(workers);
    options.progress = [&last](uint64_t done, uint64_t total) {
      EXPECT_GE(done, last);
      EXPECT_LE(done, total);
      last = done;
      return true;
    };
    auto copied = RunCopy(*src, sink, "clone", options);
    ASSERT_TRUE(copied.ok()) << copied.status().ToString();
    EXPECT_EQ(sink.data(), src->Content()) << workers << " workers";
    EXPECT_EQ(copied->bytes_read, 4 * K + 256 * KiB);     // blocks 0, 1, 3, 4 and 5 (partial)
    EXPECT_EQ(copied->bytes_written, 3 * K + 256 * KiB);  // not block 3 (zeros)
    EXPECT_EQ(src->bytes_read(), copied->bytes_read);
    EXPECT_EQ(last, copied->bytes_read);
    EXPECT_EQ(sink.flushes(), 1u);
  }
}

// A cancelled copy and a failing sink stop with an error naming the copy.
TEST(RunCopyTest, CancelAndSinkErrorsStopIt) {
  auto src = MakeSource(12);
  FakeSink sink(kSize);
  RunOptions options = Options(2);
  options.progress = [](uint64_t, uint64_t) { return false; };
  auto cancelled = RunCopy(*src, sink, "clone x", options);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_NE(cancelled.status().message().find("clone x: cancelled"), std::string::npos)
      << cancelled.status().message();
  EXPECT_EQ(sink.flushes(), 0u);

  class FailingSink : public VolumeSink {
   public:
    Status Write(uint64_t, std::span<const uint8_t>) override {
      return Status(ErrorKind::kNoSpace, "disk full");
    }
    Status Flush() override { return Status::Ok(); }
  } failing;
  auto failed = RunCopy(*src, failing, "clone y", Options(2));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(failed.status().message(), "clone y: disk full");
}

}  // namespace
}  // namespace shorthorn::backup

namespace shorthorn::backup {
namespace {

class RunApplyTest : public RunnerTest {};

// A standby's poll: from the volume as backup 1 left it, applying backup 2
// writes only the blocks whose hash changed and zeros the one backup 2 no
// longer has; the result equals a full restore of backup 2. Without the
// held record it writes everything and zeros the rest, with the same result.
TEST_F(RunApplyTest, WritesOnlyWhatDiffersAndZerosWhatWent) {
  auto src = MakeSource(21);
  auto b1 = Backup(*src);
  ASSERT_TRUE(b1.ok()) << b1.status().ToString();
  auto restored = Restore(b1->record.name);
  ASSERT_TRUE(restored.ok());
  src->AddLayer("s3", "2024-01-03T00:00:00Z");
  src->Write(0, RandomBytes(64 * KiB, 99));     // block 0 changes
  src->Write(4 * K, std::vector<uint8_t>(K));   // block 4 becomes zeros
  src->Write(2 * K, RandomBytes(4 * KiB, 98));  // block 2 appears
  auto b2 = Backup(*src);
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  const auto want = src->Content();

  FakeSink sink(kSize);
  ASSERT_TRUE(sink.Write(0, *restored).ok());
  auto applied = RunApply(store_, kVolume, &b1->record, b2->record.name, sink, Options());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(sink.data(), want);
  EXPECT_EQ(applied->blocks_written, 2u);  // blocks 0 and 2
  EXPECT_EQ(applied->bytes_written, 2 * K);
  EXPECT_EQ(applied->bytes_zeroed, K);  // block 4
  EXPECT_EQ(applied->record.name, b2->record.name);
  EXPECT_EQ(sink.flushes(), 1u);

  // Unknown content: a sink full of garbage ends the same.
  FakeSink dirty(kSize);
  ASSERT_TRUE(dirty.Write(0, RandomBytes(kSize, 7)).ok());
  auto full = RunApply(store_, kVolume, nullptr, b2->record.name, dirty, Options());
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(dirty.data(), want);
  EXPECT_EQ(full->blocks_written, b2->record.blocks.size());
  EXPECT_EQ(full->bytes_written + full->bytes_zeroed, kSize);
}

TEST_F(RunApplyTest, UnknownBackupAndMissingBlockFailNamingThem) {
  auto src = MakeSource(22);
  auto b1 = Backup(*src);
  ASSERT_TRUE(b1.ok());
  FakeSink sink(kSize);
  auto unknown =
      RunApply(store_, kVolume, nullptr, "backup-20000101T000000Z-00000000", sink, Options());
  EXPECT_EQ(unknown.status().kind(), ErrorKind::kNotFound) << unknown.status().ToString();
  const BlockRef& first = b1->record.blocks.front();
  ASSERT_TRUE(store_.Delete(BlockKey(kVolume, first.hash)).ok());
  auto missing = RunApply(store_, kVolume, nullptr, b1->record.name, sink, Options());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(first.hash), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace shorthorn::backup
