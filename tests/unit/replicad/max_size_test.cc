// max-volume-size in replicad: CREATE_REPLICA and EXPAND above the limit are
// EINVAL and change nothing; a replica.json above the ceiling is refused as
// corrupt, and one above the configured limit is not opened. Each refusal
// comes before any file or block index is sized by the number (a 2^62-byte
// index would be ~1.5 TiB), so the huge sizes here are cheap to test.
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/replica_store.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kHuge = uint64_t{1} << 62;

ReplicaOptions LimitGib(uint64_t gib) {
  ReplicaOptions o;
  o.max_volume_size_gib = gib;
  return o;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

TEST(MaxVolumeSizeTest, SizeAboveGibIsExactAndDoesNotOverflow) {
  EXPECT_FALSE(SizeAboveGib(kGiB, 1));
  EXPECT_TRUE(SizeAboveGib(kGiB + kSectorSize, 1));
  EXPECT_FALSE(SizeAboveGib(kMaxVolumeSizeCeilingGib * kGiB, kMaxVolumeSizeCeilingGib));
  EXPECT_TRUE(SizeAboveGib(kHuge, kDefaultMaxVolumeSizeGib));
  // A limit past 2^64 bytes must not wrap around to a small one.
  EXPECT_FALSE(SizeAboveGib(UINT64_MAX, uint64_t{1} << 40));
}

TEST(MaxVolumeSizeTest, CreateAboveTheDefaultLimitIsRefused) {
  TempDir dir;
  SyncIoEngine engine(0);
  ReplicaStore store(dir.path(), &engine);  // default options: 64 TiB
  Status s = store.Create("vol1", "r1", kHuge);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_EQ(s.message(),
            "create replica r1: size 4611686018427387904 bytes exceeds max-volume-size 65536 GiB");
  EXPECT_FALSE(Exists(ReplicaDir(dir.path(), "r1")));
}

TEST(MaxVolumeSizeTest, CreateHonoursTheConfiguredLimit) {
  TempDir dir;
  SyncIoEngine engine(0);
  ReplicaStore store(dir.path(), &engine, LimitGib(1));
  Status s = store.Create("vol1", "r1", kGiB + kSectorSize);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_EQ(s.message(), "create replica r1: size 1073745920 bytes exceeds max-volume-size 1 GiB");
  EXPECT_FALSE(Exists(ReplicaDir(dir.path(), "r1")));
  // The limit itself is allowed (the head is sparse: no space used).
  ASSERT_TRUE(store.Create("vol1", "r1", kGiB).ok());
}

TEST(MaxVolumeSizeTest, ExpandAboveTheLimitChangesNothing) {
  TempDir dir;
  SyncIoEngine engine(0);
  ReplicaStore store(dir.path(), &engine, LimitGib(1));
  ASSERT_TRUE(store.Create("vol1", "r1", 1 << 20).ok());
  auto r = store.Open("vol1", "r1", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string meta_path = MetaPath(ReplicaDir(dir.path(), "r1"));
  auto before = ReadFileToString(meta_path);
  ASSERT_TRUE(before.ok());

  for (uint64_t size : {kGiB + kSectorSize, kHuge}) {
    Status s = (*r)->Expand(size);
    ASSERT_FALSE(s.ok()) << size;
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(s.sys_errno(), EINVAL);
    EXPECT_EQ(s.message(), "expand replica r1: size " + std::to_string(size) +
                               " bytes exceeds max-volume-size 1 GiB");
  }
  EXPECT_EQ((*r)->size(), uint64_t{1} << 20);
  EXPECT_EQ((*r)->ListLayers().size, uint64_t{1} << 20);
  auto after = ReadFileToString(meta_path);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
  struct stat st {};
  ASSERT_EQ(::stat((ReplicaDir(dir.path(), "r1") + "/" + LayerFileName(1)).c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), uint64_t{1} << 20);

  ASSERT_TRUE((*r)->Expand(kGiB).ok());
  EXPECT_EQ((*r)->size(), kGiB);
}

TEST(MaxVolumeSizeTest, ExpandAboveTheDefaultLimitIsRefused) {
  TempDir dir;
  SyncIoEngine engine(0);
  ReplicaStore store(dir.path(), &engine);
  ASSERT_TRUE(store.Create("vol1", "r1", 1 << 20).ok());
  auto r = store.Open("vol1", "r1", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Status s = (*r)->Expand(kHuge);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "expand replica r1: size 4611686018427387904 bytes exceeds max-volume-size 65536 GiB");
  EXPECT_EQ((*r)->size(), uint64_t{1} << 20);
}

TEST(MaxVolumeSizeTest, DecodeRefusesASizeAboveTheCeiling) {
  ReplicaMeta m = NewReplicaMeta("vol1", "r1", kHuge);
  auto decoded = DecodeReplicaMeta(EncodeReplicaMeta(m), "/d/r1/replica.json");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().kind(), ErrorKind::kIoError);
  EXPECT_EQ(decoded.status().message(),
            "read /d/r1/replica.json: size 4611686018427387904 bytes exceeds the largest "
            "max-volume-size, 16777216 GiB");
  // The ceiling itself decodes (whether it opens is the configured limit's call).
  m.size = kMaxVolumeSizeCeilingGib * kGiB;
  EXPECT_TRUE(DecodeReplicaMeta(EncodeReplicaMeta(m), "x").ok());
}

TEST(MaxVolumeSizeTest, OpenRefusesAHugeReplicaJson) {
  TempDir dir;
  SyncIoEngine engine(0);
  ReplicaStore store(dir.path(), &engine);
  ASSERT_TRUE(store.Create("vol1", "r1", 1 << 20).ok());
  const std::string meta_path = MetaPath(ReplicaDir(dir.path(), "r1"));
  ASSERT_TRUE(
      WriteFileAtomic(meta_path, EncodeReplicaMeta(NewReplicaMeta("vol1", "r1", kHuge))).ok());
  auto r = store.Open("vol1", "r1", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().sys_errno(), EIO);
  EXPECT_NE(r.status().message().find(meta_path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("4611686018427387904"), std::string::npos);
  // The head file was not grown to the size in the file.
  struct stat st {};
  ASSERT_EQ(::stat((ReplicaDir(dir.path(), "r1") + "/" + LayerFileName(1)).c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), uint64_t{1} << 20);
}

TEST(MaxVolumeSizeTest, OpenRefusesAReplicaAboveTheConfiguredLimit) {
  TempDir dir;
  SyncIoEngine engine(0);
  {
    ReplicaStore big(dir.path(), &engine);
    ASSERT_TRUE(big.Create("vol1", "r1", 2 * kGiB).ok());
  }
  ReplicaStore small(dir.path(), &engine, LimitGib(1));
  auto r = small.Open("vol1", "r1", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.status().sys_errno(), EINVAL);
  EXPECT_EQ(r.status().message(), "open replica r1: read " +
                                      MetaPath(ReplicaDir(dir.path(), "r1")) +
                                      ": size 2147483648 bytes exceeds max-volume-size 1 GiB "
                                      "(raise max-volume-size to open the replica)");
  // Nothing was changed: a store with a larger limit opens it.
  ReplicaStore big(dir.path(), &engine, LimitGib(2));
  auto opened = big.Open("vol1", "r1", 1);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ((*opened)->size(), 2 * kGiB);
}

}  // namespace
}  // namespace shorthorn::replicad
