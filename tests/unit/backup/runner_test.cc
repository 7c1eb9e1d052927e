// Backup, restore and delete end to end over the in-memory fakes: restored
// bytes equal the snapshot's, incremental backups read and upload only what
// changed, blocks are shared and collected; also a clone's copy and a
// standby's apply. Failures are in runner_failure_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "backup/block_codec.h"
#include "backup/runner.h"
#include "tests/unit/backup/runner_fixture.h"

namespace shorthorn::backup {
namespace {

using namespace runner_fixture;  // NOLINT: the fixture's helpers and fakes

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