// ReplicaStore: creating, opening, listing and deleting replicas, the
// epoch rules and the owner (the fused a replica belongs to).
#include "replicad/core/replica_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "replicad/core/replica_meta.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;
using testing::Wait;

constexpr uint64_t kSize = 1 << 20;

class StoreTest : public ::testing::Test {
 protected:
  ReplicaMeta OnDisk(const std::string& replica) {
    std::string path = dir_.path() + "/" + replica + "/replica.json";
    auto text = ReadFileToString(path);
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    if (!text.ok()) return {};
    auto meta = DecodeReplicaMeta(*text, path);
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    return meta.ok() ? *meta : ReplicaMeta{};
  }

  TempDir dir_;
  SyncIoEngine engine_{0};
  ReplicaStore store_{dir_.path(), &engine_};
};

TEST_F(StoreTest, CreateMakesSparseHeadAndMetadata) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/r1/layer-1.img").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
  EXPECT_EQ(st.st_blocks, 0);  // sparse
  auto text = ReadFileToString(dir_.path() + "/r1/replica.json");
  ASSERT_TRUE(text.ok());
  auto meta = DecodeReplicaMeta(*text, "replica.json");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->epoch, 0u);
  EXPECT_EQ(meta->volume, "vol");
}

TEST_F(StoreTest, CreateValidates) {
  EXPECT_EQ(store_.Create("vol", "r1", 0).sys_errno(), EINVAL);
  EXPECT_EQ(store_.Create("vol", "r1", 4097).sys_errno(), EINVAL);
  EXPECT_EQ(store_.Create("vol", "../x", 4096).sys_errno(), EINVAL);
  EXPECT_EQ(store_.Create("bad/vol", "r1", 4096).sys_errno(), EINVAL);
  ASSERT_TRUE(store_.Create("vol", "r1", 4096).ok());
  Status again = store_.Create("vol", "r1", 4096);
  EXPECT_EQ(again.sys_errno(), EEXIST);
  EXPECT_NE(again.message().find("create replica r1"), std::string::npos) << again.message();
}

TEST_F(StoreTest, OpenEpochRules) {
  EXPECT_EQ(store_.Open("vol", "nope", 1).status().sys_errno(), ENOENT);
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  EXPECT_EQ(store_.Open("other", "r1", 1).status().sys_errno(), EINVAL);
  auto r = store_.Open("vol", "r1", 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->epoch(), 3u);
  EXPECT_EQ((*r)->size(), kSize);
  auto same = store_.Open("vol", "r1", 3);  // idempotent
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->get(), r->get());
  EXPECT_EQ(store_.Open("vol", "r1", 2).status().sys_errno(), ESTALE);
  ASSERT_TRUE(store_.Open("vol", "r1", 5).ok());
  EXPECT_EQ(store_.Close("vol", "r1", 4).sys_errno(), ESTALE);
  ASSERT_TRUE(store_.Close("vol", "r1", 5).ok());
  EXPECT_TRUE((*r)->closed());
}

TEST_F(StoreTest, EpochSurvivesReopen) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  ASSERT_TRUE(store_.Open("vol", "r1", 9).ok());
  store_.CloseAll();
  ReplicaStore fresh(dir_.path(), &engine_);
  EXPECT_EQ(fresh.Open("vol", "r1", 8).status().sys_errno(), ESTALE);
  auto r = fresh.Open("vol", "r1", 9);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->epoch(), 9u);
}

TEST_F(StoreTest, FindAndDelete) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  auto missing = store_.Find("vol", "r1");
  EXPECT_EQ(missing.status().sys_errno(), ENOENT);
  EXPECT_NE(missing.status().message().find("replica r1 is not open"), std::string::npos);
  ASSERT_TRUE(store_.Open("vol", "r1", 1).ok());
  EXPECT_TRUE(store_.Find("vol", "r1").ok());
  EXPECT_EQ(store_.Delete("other", "r1", 1).sys_errno(), EINVAL);
  ASSERT_TRUE(store_.Delete("vol", "r1", 1).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/r1"));
  EXPECT_EQ(store_.Delete("vol", "r1", 1).sys_errno(), ENOENT);
  EXPECT_EQ(store_.Find("vol", "r1").status().sys_errno(), ENOENT);
}

// An engine fenced by a newer one cannot delete the replica, open or not,
// and the error does not tell it the newer epoch.
TEST_F(StoreTest, DeleteWithAnOlderEpochIsStale) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  ASSERT_TRUE(store_.Open("vol", "r1", 7).ok());
  Status open_stale = store_.Delete("vol", "r1", 6);
  EXPECT_EQ(open_stale.sys_errno(), ESTALE);
  EXPECT_EQ(open_stale.message().find('7'), std::string::npos) << open_stale.message();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/r1"));
  ASSERT_TRUE(store_.Close("vol", "r1", 7).ok());
  EXPECT_EQ(store_.Delete("vol", "r1", 0).sys_errno(), ESTALE);  // closed: epoch from replica.json
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/r1"));
  ASSERT_TRUE(store_.Delete("vol", "r1", 8).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/r1"));
}

TEST_F(StoreTest, CreateRecordsTheOwner) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize, false, "fused-a").ok());
  EXPECT_EQ(OnDisk("r1").owner, "fused-a");
  ASSERT_TRUE(store_.Create("vol", "r2", kSize).ok());
  EXPECT_EQ(OnDisk("r2").owner, "");
  Status bad = store_.Create("vol", "r3", kSize, false, "Fused A");
  EXPECT_EQ(bad.sys_errno(), EINVAL);
  EXPECT_NE(bad.message().find("create replica r3: owner"), std::string::npos) << bad.message();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/r3"));
}

TEST_F(StoreTest, FirstOwnerIsRecordedWithTheEpoch) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  auto r = store_.Open("vol", "r1", 2, nullptr, {"fused-a"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->owner(), "fused-a");
  ReplicaMeta m = OnDisk("r1");
  EXPECT_EQ(m.owner, "fused-a");
  EXPECT_EQ(m.epoch, 2u);
  // The same owner again, at the same epoch: idempotent.
  ASSERT_TRUE(store_.Open("vol", "r1", 2, nullptr, {"fused-a"}).ok());
  // An unowned replica that is open already is claimed without a new epoch.
  ASSERT_TRUE(store_.Create("vol", "r2", kSize).ok());
  ASSERT_TRUE(store_.Open("vol", "r2", 3).ok());
  ASSERT_TRUE(store_.Open("vol", "r2", 3, nullptr, {"fused-b"}).ok());
  EXPECT_EQ(OnDisk("r2").owner, "fused-b");
  EXPECT_EQ(OnDisk("r2").epoch, 3u);
}

// A fused the volume was imported away from is refused, before the epoch
// check, and nothing is written: open here or not.
TEST_F(StoreTest, OpenByAnotherOwnerIsMovedAndWritesNothing) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize, false, "fused-a").ok());
  auto r = store_.Open("vol", "r1", 3, nullptr, {"fused-a"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  auto moved = store_.Open("vol", "r1", 9, nullptr, {"fused-b"});
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.status().kind(), ErrorKind::kMoved);
  EXPECT_EQ(moved.status().sys_errno(), EXDEV);
  const std::string& m = moved.status().message();
  EXPECT_NE(m.find("open replica r1 of volume vol: it belongs to fused fused-a now"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("fenced"), std::string::npos) << m;
  EXPECT_EQ((*r)->epoch(), 3u);
  EXPECT_EQ(OnDisk("r1").epoch, 3u);
  EXPECT_EQ(OnDisk("r1").owner, "fused-a");

  // Older and of another owner: Moved, not Stale.
  EXPECT_EQ(store_.Open("vol", "r1", 1, nullptr, {"fused-b"}).status().sys_errno(), EXDEV);
  // A take-over with an older epoch is still stale.
  EXPECT_EQ(store_.Open("vol", "r1", 1, nullptr, {"fused-b", true}).status().sys_errno(), ESTALE);
  EXPECT_EQ(OnDisk("r1").owner, "fused-a");

  // Not open (a fresh replicad): the same from replica.json.
  store_.CloseAll();
  ReplicaStore fresh(dir_.path(), &engine_);
  EXPECT_EQ(fresh.Open("vol", "r1", 10, nullptr, {"fused-b"}).status().kind(), ErrorKind::kMoved);
  EXPECT_EQ(OnDisk("r1").epoch, 3u);
  EXPECT_EQ(fresh.Find("vol", "r1").status().sys_errno(), ENOENT);  // not left open
  EXPECT_TRUE(fresh.Open("vol", "r1", 4, nullptr, {"fused-a"}).ok());
}

TEST_F(StoreTest, TakeOverFencesTheOldOwner) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize, false, "fused-a").ok());
  ASSERT_TRUE(store_.Open("vol", "r1", 1, nullptr, {"fused-a"}).ok());
  // A take-over must come with a newer epoch: fused-a's engine may still
  // run at epoch 1.
  Status same = store_.Open("vol", "r1", 1, nullptr, {"fused-b", true}).status();
  EXPECT_EQ(same.kind(), ErrorKind::kStale) << same.ToString();
  EXPECT_EQ(OnDisk("r1").owner, "fused-a");
  auto taken = store_.Open("vol", "r1", 2, nullptr, {"fused-b", true});
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ((*taken)->owner(), "fused-b");
  EXPECT_EQ(OnDisk("r1").owner, "fused-b");
  EXPECT_EQ(OnDisk("r1").epoch, 2u);
  // The old owner is refused even with a higher epoch, here and after a restart.
  EXPECT_EQ(store_.Open("vol", "r1", 5, nullptr, {"fused-a"}).status().kind(), ErrorKind::kMoved);
  EXPECT_EQ(OnDisk("r1").epoch, 2u);
  store_.CloseAll();
  ReplicaStore fresh(dir_.path(), &engine_);
  Status again = fresh.Open("vol", "r1", 6, nullptr, {"fused-a"}).status();
  EXPECT_EQ(again.sys_errno(), EXDEV);
  EXPECT_NE(again.message().find("fused fused-b"), std::string::npos) << again.message();
  EXPECT_TRUE(fresh.Open("vol", "r1", 6, nullptr, {"fused-b"}).ok());
}

// replica_tool and a rebuild opening its source name no owner.
TEST_F(StoreTest, OpenWithoutOwnerIsNotChecked) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize, false, "fused-a").ok());
  auto r = store_.Open("vol", "r1", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->owner(), "fused-a");
  EXPECT_EQ(OnDisk("r1").owner, "fused-a");
  EXPECT_EQ(OnDisk("r1").epoch, 2u);
  EXPECT_EQ(store_.Open("vol", "r1", 2, nullptr, {"Bad Owner"}).status().sys_errno(), EINVAL);
}

TEST_F(StoreTest, DeleteByAnotherOwnerIsMoved) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize, false, "fused-a").ok());
  ASSERT_TRUE(store_.Open("vol", "r1", 3, nullptr, {"fused-a"}).ok());
  Status open_moved = store_.Delete("vol", "r1", 3, "fused-b");
  EXPECT_EQ(open_moved.kind(), ErrorKind::kMoved);
  EXPECT_NE(
      open_moved.message().find("delete replica r1 of volume vol: it belongs to fused fused-a"),
      std::string::npos)
      << open_moved.message();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/r1/replica.json"));
  EXPECT_TRUE(store_.Find("vol", "r1").ok());  // still open
  // Before the epoch check, as for OPEN.
  EXPECT_EQ(store_.Delete("vol", "r1", 1, "fused-b").sys_errno(), EXDEV);
  ASSERT_TRUE(store_.Close("vol", "r1", 3).ok());
  EXPECT_EQ(store_.Delete("vol", "r1", 9, "fused-b").sys_errno(), EXDEV);  // from replica.json
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/r1/replica.json"));
  EXPECT_EQ(store_.Delete("vol", "r1", 3, "BAD").sys_errno(), EINVAL);
  ASSERT_TRUE(store_.Delete("vol", "r1", 3, "fused-a").ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/r1"));
  // No owner in the request, or none recorded: not checked.
  ASSERT_TRUE(store_.Create("vol", "r2", kSize, false, "fused-a").ok());
  ASSERT_TRUE(store_.Delete("vol", "r2", 0).ok());
  ASSERT_TRUE(store_.Create("vol", "r3", kSize).ok());
  ASSERT_TRUE(store_.Delete("vol", "r3", 0, "fused-b").ok());
}

TEST_F(StoreTest, ListReturnsTheReplicasOfOneVolume) {
  ASSERT_TRUE(store_.Create("a", "r2", kSize).ok());
  ASSERT_TRUE(store_.Create("a", "r1", 2 * kSize, false, "fused-a").ok());
  ASSERT_TRUE(store_.Create("b", "r3", kSize).ok());
  auto r = store_.Open("a", "r1", 4, nullptr, {"fused-a"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE((*r)->SetGeneration(7).ok());
  std::vector<uint8_t> buf(4096, 1);
  ASSERT_TRUE(Wait([&](auto done) { (*r)->Write(4, 0, buf, done); }).ok());
  ASSERT_TRUE((*r)->Snapshot("s1", "2024-05-01T10:00:00Z", true).ok());
  ASSERT_TRUE((*r)->Snapshot("s2", "2024-05-01T11:00:00Z", false).ok());
  ASSERT_TRUE((*r)->Snapshot("s3", "2024-05-01T12:00:00Z", true).ok());
  ASSERT_TRUE((*r)->DeleteSnapshot("s2").ok());  // removed (or merged away): not listed
  // Not replicas: an unfinished create, a file, names the store never
  // makes, a link to a replica (never followed), a replica.json naming
  // another replica.
  std::filesystem::create_directory(dir_.path() + "/crashed");
  { std::ofstream(dir_.path() + "/file") << "x"; }
  std::filesystem::create_directory(dir_.path() + "/lost+found");
  std::filesystem::create_directory_symlink(dir_.path() + "/r1", dir_.path() + "/link");
  std::filesystem::create_directory(dir_.path() + "/copy");
  std::filesystem::copy_file(dir_.path() + "/r1/replica.json", dir_.path() + "/copy/replica.json");
  std::filesystem::create_directory(dir_.path() + "/junk");
  { std::ofstream(dir_.path() + "/junk/replica.json") << "{}"; }

  auto list = store_.List("a");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  const ReplicaMeta& r1 = (*list)[0];
  EXPECT_EQ(r1.replica, "r1");
  EXPECT_EQ(r1.volume, "a");
  EXPECT_EQ(r1.size, 2 * kSize);
  EXPECT_EQ(r1.epoch, 4u);
  EXPECT_EQ(r1.generation, 7u);
  EXPECT_EQ(r1.owner, "fused-a");
  EXPECT_TRUE(r1.open);
  EXPECT_FALSE(r1.rebuilding);
  std::vector<std::string> snapshots;
  for (const auto& l : r1.layers) {
    if (l.is_snapshot() && !l.removed) snapshots.push_back(l.name);
  }
  EXPECT_EQ(snapshots, (std::vector<std::string>{"s1", "s3"}));
  const ReplicaMeta& r2 = (*list)[1];
  EXPECT_EQ(r2.replica, "r2");
  EXPECT_EQ(r2.epoch, 0u);
  EXPECT_EQ(r2.owner, "");
  EXPECT_FALSE(r2.open);

  auto b = store_.List("b");
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].replica, "r3");
  auto none = store_.List("c");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  Status bad = store_.List("../a").status();
  EXPECT_EQ(bad.sys_errno(), EINVAL);
  EXPECT_NE(bad.message().find("list replicas: volume name"), std::string::npos) << bad.message();
}

TEST_F(StoreTest, StaleAndClosedReplicaRefusesOps) {
  ASSERT_TRUE(store_.Create("vol", "r1", kSize).ok());
  auto r = store_.Open("vol", "r1", 1);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(4096, 1);
  ASSERT_TRUE(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).ok());
  ASSERT_TRUE(store_.Open("vol", "r1", 2).ok());
  EXPECT_EQ(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).sys_errno(), ESTALE);
  ASSERT_TRUE(store_.Close("vol", "r1", 2).ok());
  EXPECT_EQ(Wait([&](auto done) { (*r)->Read(2, 0, buf, done); }).sys_errno(), ESHUTDOWN);
}

}  // namespace
}  // namespace shorthorn::replicad
