// The layer ops through the protocol handler (SNAPSHOT, DELETE_SNAPSHOT,
// REVERT, EXPAND, LIST_LAYERS, VERIFY): JSON shapes, fencing, bad input
// (each a named error with nothing changed), and through the Replica:
// format-1 upgrade, leftover files, corruption found by VERIFY.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/log.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/chain_test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::ChainFixture;
using testing::TempDir;

struct Reply {
  int32_t status = -1;
  std::string payload;
};

class LayerOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ASSERT_TRUE(store_.Create("v", "r", 1 << 20).ok());
    ASSERT_TRUE(store_.Open("v", "r", 1).ok());
    ASSERT_EQ(Call(&conn_, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":1})").status,
              0);
  }
  Reply Call(ConnectionState* state, wire::Op op, std::string payload, uint64_t epoch = 1,
             uint64_t offset = 0, uint64_t length = 0) {
    Frame f;
    f.payload.assign(payload.begin(), payload.end());
    f.header = wire::MakeRequest(op, ++next_id_, epoch, offset, length, f.payload);
    Reply out;
    Status s = handler_.Handle(state, std::move(f),
                               [&](const wire::Header&, int32_t st, std::vector<uint8_t> p) {
                                 out = {st, std::string(p.begin(), p.end())};
                               });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  Reply Op(wire::Op op, const json::object& o) { return Call(&conn_, op, json::serialize(o)); }
  json::object List() {
    Reply r = Op(wire::Op::kListLayers, {});
    EXPECT_EQ(r.status, 0) << r.payload;
    return json::parse(r.payload).as_object();
  }
  Reply Snap(const std::string& name) {
    return Op(wire::Op::kSnapshot,
              {{"name", name}, {"created", "2024-05-01T10:00:00Z"}, {"user_created", true}});
  }
  void WaitIdle() { ASSERT_TRUE((*store_.Find("v", "r"))->WaitIdle()); }

  TempDir dir_{/*in_memory=*/true};
  SyncIoEngine engine_{0};
  ReplicaStore store_{dir_.path(), &engine_};
  RequestHandler handler_{&store_};
  ConnectionState conn_;
  uint64_t next_id_ = 0;
};

TEST_F(LayerOpsTest, SnapshotListShape) {
  std::string data(8192, 'a');
  ASSERT_EQ(Call(&conn_, wire::Op::kWrite, data, 1, 0, data.size()).status, 0);
  Reply r = Snap("s1");
  ASSERT_EQ(r.status, 0) << r.payload;
  EXPECT_EQ(r.payload, "{}");
  WaitIdle();
  json::object l = List();
  EXPECT_EQ(l.at("size").to_number<uint64_t>(), 1u << 20);
  EXPECT_GE(l.at("actual_size").to_number<uint64_t>(), 8192u);
  EXPECT_EQ(l.at("head").as_object().at("parent").as_string(), "s1");
  EXPECT_EQ(l.at("head").as_object().at("size_held").to_number<uint64_t>(), 0u);
  const json::array& snaps = l.at("snapshots").as_array();
  ASSERT_EQ(snaps.size(), 1u);
  const json::object& s = snaps[0].as_object();
  EXPECT_EQ(s.at("name").as_string(), "s1");
  EXPECT_TRUE(s.at("parent").is_null());
  EXPECT_EQ(s.at("created").as_string(), "2024-05-01T10:00:00Z");
  EXPECT_EQ(s.at("user_created").as_bool(), true);
  EXPECT_GE(s.at("size_held").to_number<uint64_t>(), 8192u);
  EXPECT_EQ(s.at("removed").as_bool(), false);
  EXPECT_EQ(s.at("checksum").as_string().size(), 16u);
  EXPECT_EQ(s.at("checksum_state").as_string(), "done");
  EXPECT_TRUE(l.at("tasks").as_array().empty());
  EXPECT_EQ(l.at("verify").as_object().at("state").as_string(), "idle");

  ASSERT_EQ(Op(wire::Op::kVerify, {}).status, 0);
  WaitIdle();
  json::object v = List().at("verify").as_object();
  EXPECT_EQ(v.at("state").as_string(), "done");
  EXPECT_EQ(v.at("checked").to_number<uint64_t>(), 1u);
  EXPECT_TRUE(v.at("bad").as_array().empty());
}

TEST_F(LayerOpsTest, BadInputIsNamedAndChangesNothing) {
  ASSERT_EQ(Snap("s1").status, 0);
  Reply dup = Snap("s1");
  EXPECT_EQ(dup.status, EEXIST);
  EXPECT_NE(dup.payload.find("snapshot s1 exists"), std::string::npos) << dup.payload;
  Reply bad = Snap("../x");
  EXPECT_EQ(bad.status, EINVAL);
  EXPECT_NE(bad.payload.find("snapshot name"), std::string::npos) << bad.payload;
  EXPECT_EQ(Op(wire::Op::kSnapshot, {{"created", "x"}}).status, EINVAL);  // no name
  Reply unknown = Op(wire::Op::kDeleteSnapshot, {{"name", "nope"}});
  EXPECT_EQ(unknown.status, ENOENT);
  EXPECT_NE(unknown.payload.find("nope"), std::string::npos) << unknown.payload;
  EXPECT_EQ(Op(wire::Op::kRevert, {{"name", "nope"}}).status, ENOENT);
  Reply smaller = Op(wire::Op::kExpand, {{"size", 4096}});
  EXPECT_EQ(smaller.status, EINVAL);
  EXPECT_NE(smaller.payload.find("expand replica r: new size 4096 is smaller than"),
            std::string::npos)
      << smaller.payload;
  EXPECT_EQ(Op(wire::Op::kExpand, {{"size", (1 << 21) + 1}}).status, EINVAL);
  json::object l = List();
  EXPECT_EQ(l.at("size").to_number<uint64_t>(), 1u << 20);
  EXPECT_EQ(l.at("snapshots").as_array().size(), 1u);

  // Fencing and binding apply as to data ops.
  EXPECT_EQ(Call(&conn_, wire::Op::kSnapshot, R"({"name":"s2"})", 0).status, ESTALE);
  ConnectionState unbound;
  EXPECT_EQ(Call(&unbound, wire::Op::kListLayers, "{}").status, EPROTO);

  ASSERT_EQ(Op(wire::Op::kExpand, {{"size", 1 << 21}}).status, 0);
  EXPECT_EQ(List().at("size").to_number<uint64_t>(), 1u << 21);
  std::string tail(4096, 'z');
  EXPECT_EQ(Call(&conn_, wire::Op::kWrite, tail, 1, (1 << 21) - 4096, 4096).status, 0);
}

TEST_F(LayerOpsTest, SnapshotLimit) {
  for (size_t i = 1; i < kMaxSnapshots; ++i) ASSERT_EQ(Snap("s" + std::to_string(i)).status, 0);
  ASSERT_EQ(Snap("last").status, 0);
  Reply over = Snap("one-too-many");
  EXPECT_EQ(over.status, EMLINK);
  EXPECT_NE(over.payload.find("already has 250 snapshots, the limit"), std::string::npos)
      << over.payload;
  EXPECT_EQ(List().at("snapshots").as_array().size(), kMaxSnapshots);
  // Deleting one makes room again.
  ASSERT_EQ(Op(wire::Op::kDeleteSnapshot, {{"name", "s7"}}).status, 0);
  EXPECT_EQ(Snap("one-more").status, 0);  // counts before its merge has run
  WaitIdle();
  EXPECT_EQ(Op(wire::Op::kDeleteSnapshot, {{"name", "s7"}}).status, ENOENT);  // merged: gone
}

TEST_F(LayerOpsTest, DeletingTwiceWhileKeptHiddenIsOk) {
  ASSERT_EQ(Snap("s1").status, 0);
  ASSERT_EQ(Snap("s2").status, 0);
  ASSERT_EQ(Op(wire::Op::kRevert, {{"name", "s1"}}).status, 0);  // s1: children s2 and the head
  ASSERT_EQ(Op(wire::Op::kDeleteSnapshot, {{"name", "s1"}}).status, 0);
  WaitIdle();
  ASSERT_EQ(Op(wire::Op::kDeleteSnapshot, {{"name", "s1"}}).status, 0);  // idempotent
  bool removed = false;
  json::object l = List();
  for (const auto& s : l.at("snapshots").as_array()) {
    if (s.as_object().at("name").as_string() == "s1")
      removed = s.as_object().at("removed").as_bool();
  }
  EXPECT_TRUE(removed);
}

TEST_F(LayerOpsTest, RevertKeepsNewerSnapshots) {
  auto write = [&](char c) {
    std::string d(4096, c);
    ASSERT_EQ(Call(&conn_, wire::Op::kWrite, d, 1, 0, d.size()).status, 0);
  };
  auto read = [&] { return Call(&conn_, wire::Op::kRead, "", 1, 0, 4096).payload; };
  write('A');
  ASSERT_EQ(Snap("s1").status, 0);
  write('B');
  ASSERT_EQ(Snap("s2").status, 0);
  write('C');
  ASSERT_EQ(Op(wire::Op::kRevert, {{"name", "s1"}}).status, 0);
  EXPECT_EQ(read(), std::string(4096, 'A'));
  ASSERT_EQ(Op(wire::Op::kRevert, {{"name", "s2"}}).status, 0);
  EXPECT_EQ(read(), std::string(4096, 'B'));
  ASSERT_EQ(Op(wire::Op::kDeleteSnapshot, {{"name", "s1"}}).status, 0);
  WaitIdle();
  EXPECT_EQ(read(), std::string(4096, 'B'));
  json::object l = List();
  ASSERT_EQ(l.at("snapshots").as_array().size(), 1u);
  EXPECT_EQ(l.at("snapshots").as_array()[0].as_object().at("name").as_string(), "s2");
  EXPECT_TRUE(l.at("snapshots").as_array()[0].as_object().at("parent").is_null());
}

TEST(LayerFilesTest, MultiChildSnapshotIsHiddenThenMerged) {
  SyncIoEngine engine(0);
  ChainFixture f(&engine, 1 << 20);
  std::vector<uint8_t> a(4096, 'A'), b(4096, 'B');
  ASSERT_TRUE(f.Write(0, a).ok());
  ASSERT_TRUE(f.Snapshot("s1").ok());
  ASSERT_TRUE(f.Write(0, b).ok());
  ASSERT_TRUE(f.Snapshot("s2").ok());
  ASSERT_TRUE(f.r().Revert("s1").ok());  // s1 has two children: s2 and the head
  ASSERT_TRUE(f.r().DeleteSnapshot("s1").ok());
  ASSERT_TRUE(f.r().WaitIdle());
  msg::LayerList l = f.r().ListLayers();
  ASSERT_EQ(l.snapshots.size(), 2u);
  EXPECT_TRUE(l.snapshots[0].removed);
  EXPECT_EQ(f.r().Snapshot("s1", "", true).sys_errno(), EEXIST);
  EXPECT_EQ(f.r().Revert("s1").sys_errno(), ENOENT);
  ASSERT_TRUE(f.r().Revert("s2").ok());  // s1 is down to one child: merged
  ASSERT_TRUE(f.r().WaitIdle());
  l = f.r().ListLayers();
  ASSERT_EQ(l.snapshots.size(), 1u);
  EXPECT_EQ(f.ReadSnapshot("s2"), [&] {
    std::vector<uint8_t> v(1 << 20, 0);
    std::copy(b.begin(), b.end(), v.begin());
    return v;
  }());
}

TEST(LayerFilesTest, VerifyFindsACorruptedLayer) {
  SyncIoEngine engine(0);
  ChainFixture f(&engine, 1 << 20);
  ASSERT_TRUE(f.Write(8192, std::vector<uint8_t>(8192, 'q')).ok());
  ASSERT_TRUE(f.Snapshot("s1").ok());
  ASSERT_TRUE(f.r().WaitIdle());
  {
    UniqueFd fd(::open((f.dir() + "/layer-1.img").c_str(), O_WRONLY));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::pwrite(fd.get(), "X", 1, 9000), 1);
  }
  ASSERT_TRUE(f.r().StartVerify().ok());
  ASSERT_TRUE(f.r().WaitIdle());
  msg::LayerList l = f.r().ListLayers();
  EXPECT_EQ(l.verify.state, msg::VerifyPhase::kDone);
  ASSERT_EQ(l.verify.bad.size(), 1u);
  EXPECT_EQ(l.verify.bad[0], "s1");
}

TEST(LayerFilesTest, OpenUpgradesFormat1AndRemovesLeftovers) {
  SetLogLevel(LogLevel::kWarning);
  TempDir tmp;
  std::string dir = tmp.path() + "/old";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  {
    UniqueFd fd(::open((dir + "/head.img").c_str(), O_RDWR | O_CREAT, 0600));
    ASSERT_EQ(::ftruncate(fd.get(), 1 << 20), 0);
    ASSERT_EQ(::pwrite(fd.get(), "hello", 5, 4096), 5);
  }
  ASSERT_TRUE(WriteFileAtomic(dir + "/replica.json",
                              R"({"format":1,"volume":"v","replica":"old","size":1048576,)"
                              R"("epoch":4,"head":"head.img"})")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/layer-9.img", "stray").ok());  // a crashed snapshot
  SyncIoEngine engine(0);
  auto r = Replica::Open(dir, &engine);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->epoch(), 4u);
  EXPECT_NE(::access((dir + "/layer-9.img").c_str(), F_OK), 0);
  std::vector<uint8_t> buf(5);
  ASSERT_TRUE(testing::Wait([&](auto done) { (*r)->Read(4, 4096, buf, done); }).ok());
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "hello");
  ASSERT_TRUE((*r)->Snapshot("s1", "", false).ok());
  ASSERT_TRUE((*r)->Close().ok());
  auto text = ReadFileToString(dir + "/replica.json");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\"format\":3"), std::string::npos) << *text;
  EXPECT_NE(text->find("\"generation\":0,\"rebuilding\":false"), std::string::npos) << *text;
}

}  // namespace
}  // namespace shorthorn::replicad
