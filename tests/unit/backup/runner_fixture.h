// The fixture of the backup runner tests (runner_test.cc,
// runner_failure_test.cc): a test volume of two layers over the in-memory
// fakes, and backup, restore and listing helpers against one MemoryStore.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backup/block_codec.h"
#include "backup/lock.h"
#include "backup/runner.h"
#include "tests/unit/backup/core_fakes.h"

namespace shorthorn::backup::runner_fixture {

using fakes::CompressibleBytes;
using fakes::FakeSink;
using fakes::FakeSource;
using fakes::MemoryStore;
using fakes::RandomBytes;
using namespace std::chrono_literals;

inline constexpr char kVolume[] = "vol";
constexpr uint64_t K = kBlockSize;
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t kSize = 5 * K + 256 * KiB;  // 6 blocks, the last one partial

inline RunOptions Options(int workers = 4) {
  RunOptions o;
  o.workers = workers;
  o.owner = "runner_test";
  o.lock_wait = 200ms;
  return o;
}

inline std::string FirstDifference(const std::vector<uint8_t>& got,
                                   const std::vector<uint8_t>& want) {
  if (got.size() != want.size()) {
    return "size " + std::to_string(got.size()) + ", expected " + std::to_string(want.size());
  }
  auto [a, b] = std::mismatch(got.begin(), got.end(), want.begin());
  if (a == got.end()) return "";
  return "first difference at byte " + std::to_string(a - got.begin());
}

// The non-zero blocks of `content`, as a backup of it must list them.
inline std::vector<BlockRef> NonZeroBlocks(const std::vector<uint8_t>& content) {
  std::vector<BlockRef> out;
  for (uint64_t off = 0; off < content.size(); off += K) {
    std::span<const uint8_t> block(content.data() + off, BlockLength(off, content.size()));
    if (!IsAllZero(block)) out.push_back({off, BlockHash(block)});
  }
  return out;
}

inline std::set<std::string> Hashes(const std::vector<BlockRef>& blocks) {
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
inline std::unique_ptr<FakeSource> MakeSource(uint64_t seed) {
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

}  // namespace shorthorn::backup::runner_fixture
