// Replica and ReplicaStore: metadata, epoch rules and the data path on every
// engine.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/replica_store.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/io/uring_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::FailingSyncEngine;
using testing::TempDir;
using testing::Wait;

constexpr uint64_t kSize = 1 << 20;

TEST(ReplicaMetaTest, RoundTrip) {
  ReplicaMeta m = NewReplicaMeta("vol1", "r1", 8192);
  m.epoch = 7;
  auto back = DecodeReplicaMeta(EncodeReplicaMeta(m), "x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->volume, "vol1");
  EXPECT_EQ(back->replica, "r1");
  EXPECT_EQ(back->size, 8192u);
  EXPECT_EQ(back->epoch, 7u);
  ASSERT_EQ(back->layers.size(), 1u);
  EXPECT_EQ(back->layers[0].file, "layer-1.img");
  EXPECT_EQ(back->head, back->layers[0].id);
  EXPECT_FALSE(back->upgraded);
}

TEST(ReplicaMetaTest, ReadsFormat1AsOneLayer) {
  auto m = DecodeReplicaMeta(R"({"format":1,"volume":"v","replica":"r","size":4096,)"
                             R"("epoch":3,"head":"head.img"})",
                             "x");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->upgraded);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].file, "head.img");
  EXPECT_EQ(m->epoch, 3u);
}

TEST(ReplicaMetaTest, RejectsBadContent) {
  EXPECT_FALSE(DecodeReplicaMeta("not json", "x").ok());
  EXPECT_FALSE(DecodeReplicaMeta("[]", "x").ok());
  EXPECT_FALSE(DecodeReplicaMeta(R"({"format":4,"volume":"v","replica":"r","size":4096,)"
                                 R"("epoch":0,"head":"head.img"})",
                                 "x")
                   .ok());
  EXPECT_FALSE(DecodeReplicaMeta(R"({"format":1,"volume":"v","replica":"r","size":4097,)"
                                 R"("epoch":0,"head":"head.img"})",
                                 "x")
                   .ok());
  EXPECT_FALSE(DecodeReplicaMeta(R"({"format":1,"volume":"v","replica":"r","size":4096,)"
                                 R"("epoch":0,"head":"../etc/passwd"})",
                                 "x")
                   .ok());
}

// `owner` is optional: written only when set, so an unowned replica.json
// is what replicads before the field wrote.
TEST(ReplicaMetaTest, OwnerRoundTripsAndIsOptional) {
  ReplicaMeta m = NewReplicaMeta("vol1", "r1", 8192);
  std::string text = EncodeReplicaMeta(m);
  EXPECT_EQ(text.find("owner"), std::string::npos) << text;
  auto none = DecodeReplicaMeta(text, "x");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->owner, "");

  ReplicaMeta owned = NewReplicaMeta("vol1", "r1", 8192, "fused-a1");
  EXPECT_EQ(owned.owner, "fused-a1");
  auto back = DecodeReplicaMeta(EncodeReplicaMeta(owned), "x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->owner, "fused-a1");
  EXPECT_FALSE(back->upgraded);

  // An explicit "" is no owner too.
  std::string empty = EncodeReplicaMeta(owned);
  empty.replace(empty.find("\"fused-a1\""), 10, "\"\"");
  auto cleared = DecodeReplicaMeta(empty, "x");
  ASSERT_TRUE(cleared.ok()) << cleared.status().ToString() << " " << empty;
  EXPECT_EQ(cleared->owner, "");
}

TEST(ReplicaMetaTest, RejectsBadOwner) {
  const std::string good = EncodeReplicaMeta(NewReplicaMeta("vol1", "r1", 8192, "fa"));
  for (std::string bad :
       {std::string("\"Fa\""), std::string("\"f a\""), std::string("\"f.a\""),
        std::string("\"f_a\""), "\"" + std::string(kMaxOwnerLength + 1, 'a') + "\"",
        std::string("7"), std::string("null"), std::string("true")}) {
    std::string text = good;
    text.replace(text.find("\"fa\""), 4, bad);
    auto m = DecodeReplicaMeta(text, "/data/r1/replica.json");
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().kind(), ErrorKind::kIoError) << bad;
    EXPECT_EQ(m.status().sys_errno(), EIO);
    EXPECT_NE(m.status().message().find("read /data/r1/replica.json: "), std::string::npos)
        << m.status().message();
    EXPECT_NE(m.status().message().find("owner"), std::string::npos) << m.status().message();
  }
  std::string longest = good;
  longest.replace(longest.find("\"fa\""), 4, "\"" + std::string(kMaxOwnerLength, '-') + "\"");
  EXPECT_TRUE(DecodeReplicaMeta(longest, "x").ok());
}

TEST(ReplicaMetaTest, ValidateOwner) {
  EXPECT_TRUE(ValidateOwner("a").ok());
  EXPECT_TRUE(ValidateOwner("host-1-0123456789abcdef").ok());
  EXPECT_TRUE(ValidateOwner(std::string(kMaxOwnerLength, 'z')).ok());
  EXPECT_EQ(ValidateOwner("").sys_errno(), EINVAL);
  EXPECT_EQ(ValidateOwner(std::string(kMaxOwnerLength + 1, 'z')).sys_errno(), EINVAL);
  Status upper = ValidateOwner("Host1");
  EXPECT_EQ(upper.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(upper.message().find("owner 'Host1'"), std::string::npos) << upper.message();
  EXPECT_FALSE(ValidateOwner("a/b").ok());
  EXPECT_FALSE(ValidateOwner("a\n").ok());
}

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

// The data path on each engine. The engines get every read and write
// (inline_reads/inline_writes off), except in kUringWithInlineIo, replicad's
// default: page-cache reads and writes on the caller's thread.
enum class EngineKind { kInline, kThreads, kUring, kUringWithInlineIo };

class DataPathTest : public ::testing::TestWithParam<EngineKind> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case EngineKind::kInline:
        engine_ = std::make_unique<SyncIoEngine>(0);
        break;
      case EngineKind::kThreads:
        engine_ = std::make_unique<SyncIoEngine>(4);
        break;
      case EngineKind::kUring:
      case EngineKind::kUringWithInlineIo: {
        auto uring = UringIoEngine::Create();
        if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
        engine_ = std::move(*uring);
        break;
      }
    }
    ReplicaOptions options;
    options.inline_reads = options.inline_writes = GetParam() == EngineKind::kUringWithInlineIo;
    store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get(), options);
    ASSERT_TRUE(store_->Create("vol", "r1", kSize).ok());
    auto r = store_->Open("vol", "r1", 1);
    ASSERT_TRUE(r.ok());
    replica_ = *r;
  }
  void TearDown() override {
    replica_.reset();
    store_.reset();
  }

  std::vector<uint8_t> Read(uint64_t offset, uint64_t length, Status* status = nullptr) {
    std::vector<uint8_t> buf(length, 0xee);
    Status s = Wait([&](auto done) { replica_->Read(1, offset, buf, done); });
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.ToString();
    return buf;
  }
  Status Write(uint64_t offset, const std::vector<uint8_t>& data) {
    return Wait([&](auto done) { replica_->Write(1, offset, data, done); });
  }

  TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<ReplicaStore> store_;
  std::shared_ptr<Replica> replica_;
};

TEST_P(DataPathTest, HolesReadAsZeros) {
  EXPECT_EQ(Read(12345, 70000), std::vector<uint8_t>(70000, 0));
}

TEST_P(DataPathTest, WriteReadRoundTripUnaligned) {
  std::vector<uint8_t> data(10000);
  std::iota(data.begin(), data.end(), 0);
  ASSERT_TRUE(Write(4093, data).ok());
  EXPECT_EQ(Read(4093, data.size()), data);
  std::vector<uint8_t> big(kSize / 2, 0x5a);
  ASSERT_TRUE(Write(kSize / 2, big).ok());  // ends exactly at the size
  EXPECT_EQ(Read(kSize / 2, big.size()), big);
  EXPECT_TRUE(Wait([&](auto done) { replica_->Flush(1, done); }).ok());
}

TEST_P(DataPathTest, UnmapPunchesHole) {
  std::vector<uint8_t> data(64 << 10, 0x77);
  ASSERT_TRUE(Write(0, data).ok());
  ASSERT_TRUE(Wait([&](auto done) { replica_->Flush(1, done); }).ok());
  struct stat before {};
  ASSERT_EQ(::stat((dir_.path() + "/r1/layer-1.img").c_str(), &before), 0);
  EXPECT_GT(before.st_blocks, 0);
  ASSERT_TRUE(Wait([&](auto done) { replica_->Unmap(1, 0, data.size(), done); }).ok());
  EXPECT_EQ(Read(0, data.size()), std::vector<uint8_t>(data.size(), 0));
  struct stat after {};
  ASSERT_EQ(::stat((dir_.path() + "/r1/layer-1.img").c_str(), &after), 0);
  EXPECT_LT(after.st_blocks, before.st_blocks);
  EXPECT_EQ(static_cast<uint64_t>(after.st_size), kSize);  // KEEP_SIZE
}

TEST_P(DataPathTest, OutOfRangeIsEinval) {
  Status s;
  Read(kSize - 4096, 8192, &s);
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_NE(s.message().find("read replica r1"), std::string::npos) << s.message();
  Read(kSize + 1, 0, &s);
  EXPECT_EQ(s.sys_errno(), EINVAL);
  EXPECT_EQ(Write(kSize, std::vector<uint8_t>(1)).sys_errno(), EINVAL);
  EXPECT_EQ(Wait([&](auto done) { replica_->Unmap(1, 0, kSize + 4096, done); }).sys_errno(),
            EINVAL);
}

TEST_P(DataPathTest, ManyConcurrentOps) {
  constexpr int kOps = 300;
  std::vector<std::vector<uint8_t>> bufs(kOps);
  std::vector<std::promise<Status>> done(kOps);
  for (int i = 0; i < kOps; ++i) {
    bufs[i].assign(3000, static_cast<uint8_t>(i));
    replica_->Write(1, static_cast<uint64_t>(i) * 3000, bufs[i],
                    [&done, i](Status s) { done[i].set_value(std::move(s)); });
  }
  for (auto& d : done) ASSERT_TRUE(d.get_future().get().ok());
  for (int i = 0; i < kOps; i += 37)
    EXPECT_EQ(Read(static_cast<uint64_t>(i) * 3000, 3000), bufs[i]);
}

INSTANTIATE_TEST_SUITE_P(Engines, DataPathTest,
                         ::testing::Values(EngineKind::kInline, EngineKind::kThreads,
                                           EngineKind::kUring, EngineKind::kUringWithInlineIo),
                         [](const auto& info) {
                           switch (info.param) {
                             case EngineKind::kInline:
                               return "SyncInline";
                             case EngineKind::kThreads:
                               return "SyncThreads";
                             case EngineKind::kUring:
                               return "IoUring";
                             case EngineKind::kUringWithInlineIo:
                               return "IoUringWithInlineIo";
                           }
                           return "Unknown";
                         });

// Whole-block writes go to the disk past the page cache (O_DIRECT), on the
// engine or, when the caller may block, on the caller's thread; where the
// file system turns O_DIRECT down (EINVAL) they go buffered. Page-cache
// residency of the head after the write tells the two apart.
class DirectWriteTest : public ::testing::TestWithParam<bool> {  // may_block
 protected:
  void Open(ReplicaOptions options) {
    auto uring = UringIoEngine::Create();
    if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
    engine_ = std::move(*uring);
    store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get(), std::move(options));
    ASSERT_TRUE(store_->Create("vol", "r1", kSize).ok());
    auto r = store_->Open("vol", "r1", 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    replica_ = *r;
  }
  void TearDown() override {
    replica_.reset();
    store_.reset();
  }
  // Pages of [offset, offset+length) of the head in the page cache.
  size_t CachedPages(uint64_t offset, uint64_t length, const std::string& file = "layer-1.img") {
    UniqueFd fd(::open((dir_.path() + "/r1/" + file).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    void* map =
        ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd.get(), static_cast<off_t>(offset));
    EXPECT_NE(map, MAP_FAILED);
    if (map == MAP_FAILED) return SIZE_MAX;
    std::vector<unsigned char> resident(length / 4096);
    EXPECT_EQ(::mincore(map, length, resident.data()), 0);
    ::munmap(map, length);
    return static_cast<size_t>(std::count_if(resident.begin(), resident.end(),
                                             [](unsigned char c) { return (c & 1) != 0; }));
  }
  Status Write(uint64_t offset, std::span<const uint8_t> data) {
    return Wait([&](auto done) { replica_->Write(1, offset, data, done, GetParam()); });
  }
  std::vector<uint8_t> Read(uint64_t offset, uint64_t length) {
    std::vector<uint8_t> buf(length, 0xee);
    Status s = Wait([&](auto done) { replica_->Read(1, offset, buf, done, GetParam()); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return buf;
  }

  TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<ReplicaStore> store_;
  std::shared_ptr<Replica> replica_;
};

TEST_P(DirectWriteTest, WholeBlocksSkipThePageCacheAndReadBack) {
  Open({});
  // A payload that is not page-aligned (as a frame's is), whole blocks.
  std::vector<uint8_t> storage(256 * 1024 + 1);
  std::span<uint8_t> data(storage.data() + 1, 256 * 1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_TRUE(Write(64 * 1024, data).ok());
  EXPECT_EQ(CachedPages(64 * 1024, data.size()), 0u);
  EXPECT_TRUE(std::ranges::equal(Read(64 * 1024, data.size()), data));
  // An unaligned write around it: edges from the chain, then direct too.
  std::vector<uint8_t> small(100, 0x42);
  ASSERT_TRUE(Write(64 * 1024 + 4000, small).ok());
  std::vector<uint8_t> want(data.begin(), data.end());
  std::copy(small.begin(), small.end(), want.begin() + 4000);
  EXPECT_TRUE(std::ranges::equal(Read(64 * 1024, want.size()), want));
  // And it is all still there after a reopen.
  replica_.reset();
  store_.reset();
  store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get());
  auto r = store_->Open("vol", "r1", 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  replica_ = *r;
  std::vector<uint8_t> back(want.size());
  ASSERT_TRUE(Wait([&](auto done) { replica_->Read(2, 64 * 1024, back, done); }).ok());
  EXPECT_EQ(back, want);
}

TEST_P(DirectWriteTest, TheHeadAfterASnapshotTakesDirectWritesToo) {
  Open({});
  std::vector<uint8_t> before(64 * 1024, 0x11), after(64 * 1024, 0x22);
  ASSERT_TRUE(Write(0, before).ok());
  ASSERT_TRUE(replica_->Snapshot("s1", "2026-11-22T00:00:00Z", true).ok());
  ASSERT_TRUE(Write(0, after).ok());
  EXPECT_EQ(CachedPages(0, after.size(), "layer-2.img"), 0u);
  EXPECT_EQ(Read(0, after.size()), after);
  std::vector<uint8_t> snap(before.size());
  ASSERT_TRUE(replica_->ReadLayer("s1", 0, snap).ok());
  EXPECT_EQ(snap, before);
}

TEST_P(DirectWriteTest, BufferedWhenDirectIsOff) {
  ReplicaOptions off;
  off.direct_writes = false;
  Open(off);
  std::vector<uint8_t> data(64 * 1024, 0x5c);
  ASSERT_TRUE(Write(0, data).ok());
  EXPECT_EQ(CachedPages(0, data.size()), data.size() / 4096);
  EXPECT_EQ(Read(0, data.size()), data);
}

TEST_P(DirectWriteTest, BufferedWhereDirectIsRefused) {
  std::vector<uint8_t> data(64 * 1024, 0x5c);
  ReplicaOptions refused;
  refused.fail_io = [](std::string_view point) { return point == "direct-write" ? EINVAL : 0; };
  Open(refused);
  ASSERT_TRUE(Write(128 * 1024, data).ok());
  EXPECT_EQ(CachedPages(128 * 1024, data.size()), data.size() / 4096);
  EXPECT_EQ(Read(128 * 1024, data.size()), data);
}

TEST_P(DirectWriteTest, OtherDirectErrorsFailTheWrite) {
  ReplicaOptions io_error;
  io_error.fail_io = [](std::string_view point) { return point == "direct-write" ? EIO : 0; };
  Open(io_error);
  std::vector<uint8_t> data(8192, 1);
  Status s = Write(0, data);
  EXPECT_EQ(s.kind(), ErrorKind::kIoError) << s.ToString();
  EXPECT_EQ(s.sys_errno(), EIO) << s.ToString();
  EXPECT_NE(s.message().find("layer-1.img"), std::string::npos) << s.message();
  EXPECT_EQ(Read(0, data.size()), std::vector<uint8_t>(data.size(), 0));
}

INSTANTIATE_TEST_SUITE_P(Callers, DirectWriteTest, ::testing::Bool(), [](const auto& info) {
  return info.param ? "MayBlock" : "ThroughEngine";
});

TEST(FlushFailureTest, FailedFdatasyncFailsReplicaForGood) {
  TempDir dir;
  FailingSyncEngine engine;
  ReplicaStore store(dir.path(), &engine);
  ASSERT_TRUE(store.Create("vol", "r1", kSize).ok());
  auto r = store.Open("vol", "r1", 1);
  ASSERT_TRUE(r.ok());
  std::vector<uint8_t> buf(4096, 3);
  ASSERT_TRUE(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).ok());
  engine.fail_sync = true;
  Status flush = Wait([&](auto done) { (*r)->Flush(1, done); });
  EXPECT_EQ(flush.sys_errno(), EIO);
  EXPECT_TRUE((*r)->failed());
  engine.fail_sync = false;  // the disk "recovers": still no success
  EXPECT_EQ(Wait([&](auto done) { (*r)->Flush(1, done); }).sys_errno(), EIO);
  EXPECT_EQ(Wait([&](auto done) { (*r)->Read(1, 0, buf, done); }).sys_errno(), EIO);
  EXPECT_EQ(Wait([&](auto done) { (*r)->Write(1, 0, buf, done); }).sys_errno(), EIO);
  EXPECT_EQ(engine.sync_calls, 1);  // never retried
  EXPECT_EQ(store.Close("vol", "r1", 1).sys_errno(), EIO);
  EXPECT_EQ(store.Open("vol", "r1", 1).status().sys_errno(), EIO);  // sticky
  ASSERT_TRUE(store.Delete("vol", "r1", 1).ok());
}

}  // namespace
}  // namespace shorthorn::replicad
