// A full disk (ENOSPC), injected where the replica writes: data pwrites (an
// IoEngine fake), replica.json replaces and layer file creation (the
// fail_io hook), and the rebuild's copies. Each op answers ENOSPC with a
// message naming the replica, and the replica still opens with everything
// that was acknowledged.
#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "replicad/core/layer_chain.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"
#include "tests/unit/replicad/rebuild_test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::ChainFixture;
using testing::EngineClient;
using testing::Node;

constexpr uint64_t kSize = 1 << 20;

// Inline engine whose writes fail with ENOSPC while `full` is set.
class FullDiskEngine : public IoEngine {
 public:
  std::string_view name() const override { return "full-disk"; }
  void Submit(const IoRequest& request, IoCallback done) override {
    if (request.op == IoOp::kWrite && full) return done(-ENOSPC);
    done(RunIoBlocking(request));
  }
  std::atomic<bool> full{false};
};

// The fail_io hook: ENOSPC at `point` while armed (after `skip` hits).
struct Faults {
  std::string point;
  int skip = 0;
  ReplicaOptions Options() {
    ReplicaOptions o;
    o.fail_io = [this](std::string_view p) {
      if (p != point) return 0;
      return skip-- > 0 ? 0 : ENOSPC;
    };
    return o;
  }
};

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

TEST(DiskFullTest, WriteAnswersEnospcAndKeepsAcknowledgedData) {
  FullDiskEngine engine;
  ReplicaOptions options;
  options.inline_writes = false;  // every write through the engine fake
  ChainFixture f(&engine, kSize, options);
  std::vector<uint8_t> a(8192, 'a');
  ASSERT_TRUE(f.Write(0, a).ok());
  engine.full = true;
  Status s = f.Write(8192, std::vector<uint8_t>(4096, 'b'));
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_NE(s.message().find("write replica r1"), std::string::npos) << s.message();
  s = f.Write(100, std::vector<uint8_t>(10, 'c'));  // unaligned: read-modify-write
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_FALSE(f.r().failed());
  EXPECT_EQ(f.Read(0, 8192), a);
  engine.full = false;
  f.Reopen();
  EXPECT_EQ(f.Read(0, 8192), a);
}

// The same on the default path, where writes run on the caller's thread.
TEST(DiskFullTest, InlineWriteAnswersEnospcAndKeepsAcknowledgedData) {
  SyncIoEngine engine(0);
  std::atomic<bool> full{false};
  ReplicaOptions options;
  options.fail_io = [&full](std::string_view p) { return p == "write" && full ? ENOSPC : 0; };
  ChainFixture f(&engine, kSize, options);
  std::vector<uint8_t> a(8192, 'a');
  ASSERT_TRUE(f.Write(0, a).ok());
  full = true;
  Status s = f.Write(8192, std::vector<uint8_t>(4096, 'b'));
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_NE(s.message().find("write replica r1"), std::string::npos) << s.message();
  s = f.Write(100, std::vector<uint8_t>(10, 'c'));
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_FALSE(f.r().failed());
  EXPECT_EQ(f.Read(0, 8192), a);
  full = false;
  f.Reopen();
  EXPECT_EQ(f.Read(0, 8192), a);
  EXPECT_EQ(f.Read(8192, 4096), std::vector<uint8_t>(4096, 0));
}

TEST(DiskFullTest, FailedSnapshotLeavesAChainThatOpens) {
  for (const char* point : {"create-layer", "commit"}) {
    SCOPED_TRACE(point);
    SyncIoEngine engine(0);
    // The first write records `open` (a commit) before the disk is full.
    Faults faults{point, std::string_view(point) == "commit" ? 1 : 0};
    ChainFixture f(&engine, kSize, faults.Options());
    std::vector<uint8_t> a(4096, 'a');
    ASSERT_TRUE(f.Write(0, a).ok());
    std::set<std::string> before = Files(f.dir());
    Status s = f.Snapshot("s1");
    EXPECT_EQ(s.sys_errno(), ENOSPC) << s.ToString();
    EXPECT_NE(s.message().find("snapshot replica r1"), std::string::npos) << s.message();
    EXPECT_EQ(Files(f.dir()), before);  // no half-made layer file
    EXPECT_TRUE(f.r().ListLayers().snapshots.empty());
    ASSERT_TRUE(f.Write(4096, a).ok());  // still serving
    f.Reopen(ReplicaOptions{});
    EXPECT_TRUE(f.r().ListLayers().snapshots.empty());
    EXPECT_EQ(f.Read(0, 4096), a);
    EXPECT_EQ(f.Read(4096, 4096), a);
    ASSERT_TRUE(f.Snapshot("s1").ok());  // the same layer id again
    EXPECT_EQ(f.ReadSnapshot("s1").size(), kSize);
  }
}

TEST(DiskFullTest, FailedMetadataWritesChangeNothing) {
  SyncIoEngine engine(0);
  Faults faults{"commit"};
  ChainFixture f(&engine, kSize, faults.Options());
  Status s = f.r().SetGeneration(4);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_NE(s.message().find("set generation of replica r1"), std::string::npos) << s.message();
  s = f.r().Expand(2 * kSize);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_EQ(f.r().size(), kSize);
  s = f.r().SetEpoch(9);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_EQ(f.r().epoch(), 0u);
  f.Reopen(ReplicaOptions{});
  EXPECT_EQ(f.r().generation(), 0u);
  EXPECT_EQ(f.r().epoch(), 0u);
  EXPECT_EQ(f.r().size(), kSize);
}

class DiskFullRebuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ASSERT_TRUE(source_.store().Create("vol", "src", 4 << 20).ok());
    EngineClient src(source_.address(), "src", 3);
    ASSERT_EQ(src.Write(0, std::vector<uint8_t>(2 << 20, 'x')).status, 0);
    ASSERT_EQ(src.Control(wire::Op::kSnapshot, {{"name", "s1"}}).status, 0);
  }
  json::object Rebuild(Node* target) {
    EXPECT_TRUE(target->store().Create("vol", "dst", 4 << 20).ok());
    EngineClient dst(target->address(), "dst", 3);
    json::object req{
        {"source", source_.address()}, {"source_volume", "vol"}, {"source_replica", "src"},
        {"source_epoch", 3},           {"snapshot", "s1"},       {"bandwidth", 0}};
    EXPECT_EQ(dst.Control(wire::Op::kRebuild, req).status, 0);
    return dst.WaitRebuild();
  }
  Node source_;
};

TEST_F(DiskFullRebuildTest, CopyFailsCleanly) {
  Faults faults{"rebuild-write", 1};
  Node target(faults.Options());
  json::object result = Rebuild(&target);
  ASSERT_EQ(result.at("state"), "failed");
  std::string message(result.at("message").as_string());
  EXPECT_NE(message.find("rebuild replica dst"), std::string::npos) << message;
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  EXPECT_EQ(Files(target.dir("dst")), (std::set<std::string>{"layer-1.img", "replica.json"}));
  ASSERT_TRUE(target.store().Close("vol", "dst", 3).ok());
  EngineClient again(target.address(), "dst", 3);
  EXPECT_EQ(again.List().at("rebuilding"), true);
}

TEST_F(DiskFullRebuildTest, LinkCommitFailsCleanly) {
  Faults faults{"commit", 2};  // the epoch and REBUILD commits pass, the link fails
  Node target(faults.Options());
  json::object result = Rebuild(&target);
  ASSERT_EQ(result.at("state"), "failed");
  EXPECT_NE(std::string(result.at("message").as_string()).find("No space left"), std::string::npos);
  EXPECT_EQ(Files(target.dir("dst")), (std::set<std::string>{"layer-1.img", "replica.json"}));
  // Nothing was written to it through WRITE (`open` is not set), so the
  // close has nothing to record although the disk is still full; it stays
  // "rebuilding", which keeps it from being trusted.
  Status closed = target.store().Close("vol", "dst", 3);
  EXPECT_TRUE(closed.ok()) << closed.ToString();
  EngineClient again(target.address(), "dst", 3);
  json::object l = again.List();
  EXPECT_EQ(l.at("rebuilding"), true);
  EXPECT_TRUE(l.at("snapshots").as_array().empty());
}

}  // namespace
}  // namespace shorthorn::replicad
