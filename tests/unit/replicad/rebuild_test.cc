// REBUILD between two in-process replicads on loopback: the copy of a
// source's layer tree into a fresh target while engine-like writes reach the
// target's head, a tree with branches (after a revert), the checks against a
// damaged source layer, the bandwidth limit, the rules while rebuilding, a
// crash and a cancel mid-rebuild, and the source-side ops LAYER_EXTENTS and
// READ_SNAPSHOT.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/log.h"
#include "replicad/core/layer_chain.h"
#include "replicad/core/replica_meta.h"
#include "tests/unit/replicad/chain_test_util.h"
#include "tests/unit/replicad/rebuild_test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::Answer;
using testing::EngineClient;
using testing::Hash;
using testing::Node;
using testing::RandomBytes;
using testing::ReadAll;
using testing::ReadSnap;

constexpr uint64_t kSize = 8 << 20;
constexpr uint64_t kEpoch = 7;
constexpr uint64_t kK = 1024, kM = 1 << 20;

json::object RebuildRequestJson(const Node& source, const std::string& snapshot,
                                uint64_t bandwidth = 0) {
  return {{"source", source.address()}, {"source_volume", "vol"}, {"source_replica", "src"},
          {"source_epoch", kEpoch},     {"snapshot", snapshot},   {"bandwidth", bandwidth}};
}

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

class RebuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ASSERT_TRUE(source_.store().Create("vol", "src", kSize).ok());
    src_ = std::make_unique<EngineClient>(source_.address(), "src", kEpoch);
  }

  // The target: a fresh empty replica, opened and bound like the engine does.
  void MakeTarget(Node* node, bool rebuilding = false) {
    ASSERT_TRUE(node->store().Create("vol", "dst", kSize, rebuilding).ok());
    dst_ = std::make_unique<EngineClient>(node->address(), "dst", kEpoch);
  }

  void Write(EngineClient* c, uint64_t off, uint64_t len) {
    Answer a = c->Write(off, RandomBytes(rng_, len));
    ASSERT_EQ(a.status, 0) << a.payload;
  }
  void Snap(const std::string& name) {
    Answer a = src_->Control(wire::Op::kSnapshot, {{"name", name}, {"user_created", true}});
    ASSERT_EQ(a.status, 0) << a.payload;
  }
  // Source: s1, s2 (with zeros over s1 from an unmap), s3, empty head.
  void FillSource() {
    Write(src_.get(), 0, kM);
    Write(src_.get(), 3 * kM, 256 * kK);
    for (uint64_t b = 0; b < 4; ++b) Write(src_.get(), 2 * kM + b * 64 * kK, 4 * kK);
    Snap("s1");
    Write(src_.get(), 512 * kK, 64 * kK);
    ASSERT_EQ(src_->Unmap(3 * kM, 64 * kK).status, 0);
    Snap("s2");
    Write(src_.get(), 5 * kM, 2 * kM);
    Snap("s3");
  }
  // The same engine write to source and target.
  void WriteBoth(uint64_t off, uint64_t len) {
    std::vector<uint8_t> data = RandomBytes(rng_, len);
    ASSERT_EQ(src_->Write(off, data).status, 0);
    Answer a = dst_->Write(off, data);
    ASSERT_EQ(a.status, 0) << a.payload;
  }
  void UnmapBoth(uint64_t off, uint64_t len) {
    ASSERT_EQ(src_->Unmap(off, len).status, 0);
    Answer a = dst_->Unmap(off, len);
    ASSERT_EQ(a.status, 0) << a.payload;
  }
  // Every snapshot (names, parents, checksums, removed), in the same order,
  // the head's parent, each snapshot's content and the live data of the
  // target equal the source's.
  void ExpectSameAsSource(Node* target) {
    json::object s = src_->List(), d = dst_->List();
    EXPECT_EQ(d.at("rebuilding"), false);
    EXPECT_EQ(d.at("head").at("parent"), s.at("head").at("parent"));
    ASSERT_EQ(s.at("snapshots").as_array().size(), d.at("snapshots").as_array().size()) << d;
    std::vector<std::string> names;
    for (size_t i = 0; i < s.at("snapshots").as_array().size(); ++i) {
      const json::object& a = s.at("snapshots").as_array()[i].as_object();
      const json::object& b = d.at("snapshots").as_array()[i].as_object();
      for (const char* key :
           {"name", "parent", "checksum", "checksum_state", "user_created", "removed"}) {
        EXPECT_EQ(a.at(key), b.at(key)) << key << " of " << a.at("name");
      }
      names.emplace_back(a.at("name").as_string());
    }
    auto src = source_.Find("src");
    auto dst = target->Find("dst");
    ASSERT_TRUE(src && dst);
    for (const auto& name : names) {
      EXPECT_EQ(Hash(ReadSnap(*src, name)), Hash(ReadSnap(*dst, name))) << name;
    }
    EXPECT_EQ(Hash(ReadAll(*src, kEpoch)), Hash(ReadAll(*dst, kEpoch)));
  }

  std::mt19937_64 rng_{42};
  Node source_;
  std::unique_ptr<EngineClient> src_, dst_;
};

TEST_F(RebuildTest, CopiesChainWhileHeadTakesWrites) {
  FillSource();
  Node target;
  MakeTarget(&target);
  // Rebuilding rules apply from the REBUILD reply on; 8 MiB/s keeps the
  // ~3.4 MiB copy running for ~0.4 s while the engine writes.
  Answer r = dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s3", 8 * kM));
  ASSERT_EQ(r.status, 0) << r.payload;
  EXPECT_EQ(r.payload, "{}");
  WriteBoth(0, 8 * kK);                   // over s1's data
  WriteBoth(6 * kM + 4 * kK, 4 * kK);     // over s3's data
  UnmapBoth(5 * kM + 128 * kK, 64 * kK);  // s3 held data here: must read zeros
  UnmapBoth(100 * kK, 12 * kK);           // and here (s1)
  WriteBoth(7 * kM + 512 * kK, 16 * kK);  // over a hole

  Answer unaligned = dst_->Write(4096 + 512, std::vector<uint8_t>(1024, 1));
  EXPECT_EQ(unaligned.status, EINVAL);
  EXPECT_NE(unaligned.payload.find("is rebuilding: unaligned writes must be aligned by the engine"),
            std::string::npos)
      << unaligned.payload;
  EXPECT_EQ(dst_->Unmap(512, 4096).status, EINVAL);
  Answer snap = dst_->Control(wire::Op::kSnapshot, {{"name", "x"}});
  EXPECT_EQ(snap.status, EBUSY) << snap.payload;

  json::object during = dst_->List();
  EXPECT_EQ(during.at("rebuilding"), true);
  ASSERT_EQ(during.at("rebuild").at("state"), "running") << "the copy ended before the writes";
  ASSERT_EQ(during.at("tasks").as_array().size(), 1u);
  const json::object& task = during.at("tasks").as_array()[0].as_object();
  EXPECT_EQ(task.at("op"), "rebuild");
  EXPECT_EQ(task.at("name"), "src");
  EXPECT_LE(task.at("done_bytes").as_int64(), task.at("total_bytes").as_int64());

  json::object result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "done") << result;
  EXPECT_EQ(result.at("message"), "");
  EXPECT_GE(result.at("bytes").as_int64(), static_cast<int64_t>(3 * kM));
  EXPECT_TRUE(dst_->List().at("tasks").as_array().empty());
  ExpectSameAsSource(&target);
  std::vector<uint8_t> zeros(64 * kK, 0);
  std::vector<uint8_t> got(64 * kK);
  ASSERT_TRUE(testing::Wait([&](auto done) {
                target.Find("dst")->Read(kEpoch, 5 * kM + 128 * kK, got, done);
              }).ok());
  EXPECT_EQ(got, zeros);

  // Durable: the same after a close and an open from disk.
  ASSERT_EQ(target.store().Close("vol", "dst", kEpoch).ok(), true);
  dst_ = std::make_unique<EngineClient>(target.address(), "dst", kEpoch);
  ExpectSameAsSource(&target);
  // The copied layers behave like any others: a new snapshot, writes.
  Answer s4 = dst_->Control(wire::Op::kSnapshot, {{"name", "s4"}});
  EXPECT_EQ(s4.status, 0) << s4.payload;
  EXPECT_EQ(dst_->Write(4096 + 512, std::vector<uint8_t>(1024, 1)).status, 0);
}

// After a revert the layer tree has branches: the rebuild copies all of
// them, not only the chain under the snapshot the head goes on. Source:
// s1 -> s2 -> s3 reverted to s1, then s1 deleted (kept, removed, for its
// two children) and s4 taken: s1 has children s2 and s4, s3 sits on s2's
// branch. The target must hold the same tree, s1 still removed and not
// merged away, and s2 and s3 readable and revert targets.
TEST_F(RebuildTest, CopiesEveryBranchOfTheTree) {
  FillSource();
  ASSERT_TRUE(source_.Find("src")->WaitIdle());
  Answer reverted = src_->Control(wire::Op::kRevert, {{"name", "s1"}});
  ASSERT_EQ(reverted.status, 0) << reverted.payload;
  Write(src_.get(), 4 * kM, 512 * kK);
  Answer deleted = src_->Control(wire::Op::kDeleteSnapshot, {{"name", "s1"}});
  ASSERT_EQ(deleted.status, 0) << deleted.payload;
  Snap("s4");
  ASSERT_TRUE(source_.Find("src")->WaitIdle());

  Node target;
  MakeTarget(&target);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s4")).status, 0);
  WriteBoth(6 * kM, 8 * kK);
  json::object result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "done") << result;
  ASSERT_TRUE(target.Find("dst")->WaitIdle());  // a merge would have run by now
  ExpectSameAsSource(&target);
  json::object l = dst_->List();
  ASSERT_EQ(l.at("snapshots").as_array().size(), 4u) << l;
  EXPECT_EQ(l.at("snapshots").as_array()[0].at("removed"), true) << l;  // s1, two children
  EXPECT_EQ(l.at("head").at("parent"), "s4");

  // Ids still grow with creation time, parents below children.
  auto text = ReadFileToString(target.dir("dst") + "/replica.json");
  ASSERT_TRUE(text.ok());
  auto meta = DecodeReplicaMeta(*text, "replica.json");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  uint64_t last = 0;
  for (const char* name : {"s1", "s2", "s3", "s4"}) {
    const LayerMeta* m = FindSnapshot(*meta, name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_GT(m->id, last) << name;
    if (m->parent) {
      EXPECT_LT(*m->parent, m->id) << name;
    }
    last = m->id;
  }

  // A snapshot of the other branch is a revert target on the copy, with
  // the source's data (the same revert on both).
  Answer back = dst_->Control(wire::Op::kRevert, {{"name", "s3"}});
  ASSERT_EQ(back.status, 0) << back.payload;
  ASSERT_EQ(src_->Control(wire::Op::kRevert, {{"name", "s3"}}).status, 0);
  EXPECT_EQ(Hash(ReadAll(*source_.Find("src"), kEpoch)),
            Hash(ReadAll(*target.Find("dst"), kEpoch)));
}

// The engine adds the new replica (WO) before it sends REBUILD: created
// "rebuilding", its head follows the rules from the first op, so an unmap
// in that window cannot punch a hole the copied layers would show through.
TEST_F(RebuildTest, CreatedRebuildingFollowsTheRulesBeforeRebuild) {
  FillSource();
  Node target;
  MakeTarget(&target, /*rebuilding=*/true);
  EXPECT_EQ(dst_->List().at("rebuilding"), true);
  EXPECT_EQ(dst_->Write(512, std::vector<uint8_t>(4096, 1)).status, EINVAL);
  UnmapBoth(0, 64 * kK);  // s1 holds data here
  WriteBoth(5 * kM, 4 * kK);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s3")).status, 0);
  json::object result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "done") << result;
  ExpectSameAsSource(&target);
  // Through the protocol too.
  Node other;
  auto c = PeerClient::Connect(other.address(), 5000, testing::TestKey().get());
  ASSERT_TRUE(c.ok());
  auto created = (*c)->CallJson(
      wire::Op::kCreateReplica, 0,
      {{"volume", "vol"}, {"replica", "fresh"}, {"size", kSize}, {"rebuilding", true}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto opened = (*c)->CallJson(wire::Op::kOpenReplica, 0,
                               {{"volume", "vol"}, {"replica", "fresh"}, {"epoch", 1}});
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->at("rebuilding"), true);
}

TEST_F(RebuildTest, DamagedSourceLayerFailsNamingIt) {
  FillSource();
  ASSERT_TRUE(source_.Find("src")->WaitIdle());  // checksums computed
  auto text = ReadFileToString(source_.dir("src") + "/replica.json");
  ASSERT_TRUE(text.ok());
  auto meta = DecodeReplicaMeta(*text, "replica.json");
  ASSERT_TRUE(meta.ok());
  std::string path = source_.dir("src") + "/" + FindSnapshot(*meta, "s2")->file;
  UniqueFd fd(::open(path.c_str(), O_RDWR));
  ASSERT_TRUE(fd.valid());
  uint8_t byte = 0;
  ASSERT_EQ(::pread(fd.get(), &byte, 1, 512 * kK + 100), 1);
  byte ^= 0x5a;
  ASSERT_EQ(::pwrite(fd.get(), &byte, 1, 512 * kK + 100), 1);

  Node target;
  MakeTarget(&target);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s3")).status, 0);
  json::object result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "failed");
  std::string message(result.at("message").as_string());
  EXPECT_NE(message.find("layer s2: checksum mismatch"), std::string::npos) << message;
  json::object l = dst_->List();
  EXPECT_EQ(l.at("rebuilding"), true);
  EXPECT_TRUE(l.at("snapshots").as_array().empty());
  // Nothing half-copied is left behind.
  EXPECT_EQ(Files(target.dir("dst")), (std::set<std::string>{"layer-1.img", "replica.json"}));
}

TEST_F(RebuildTest, BandwidthLimitIsHonoured) {
  Write(src_.get(), 0, 4 * kM);
  Snap("s1");
  Node target;
  MakeTarget(&target);
  auto start = std::chrono::steady_clock::now();
  json::object req = RebuildRequestJson(source_, "s1", 8 * kM);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, req).status, 0);
  json::object result = dst_->WaitRebuild();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(result.at("state"), "done") << result;
  EXPECT_EQ(result.at("bytes").as_int64(), static_cast<int64_t>(4 * kM));
  EXPECT_GE(seconds, 0.4);  // 4 MiB at 8 MiB/s, no initial burst
  EXPECT_LT(seconds, 5.0);
}

TEST_F(RebuildTest, CrashMidRebuildLeavesRebuildingAndRestarts) {
  FillSource();
  auto crash = std::make_shared<std::atomic<bool>>(true);
  ReplicaOptions options;
  options.crash_at = [crash](std::string_view point) {
    return point == "rebuild-layer" && crash->load();
  };
  Node target(options);
  MakeTarget(&target);
  WriteBoth(1 * kM, 4 * kK);  // a write before the REBUILD reaches the head too
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s3")).status, 0);
  json::object result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "failed");
  EXPECT_EQ(Files(target.dir("dst")).count("layer-2.img"), 1u);  // s1's copy, as a crash leaves it

  // "Restart": close and open from disk.
  ASSERT_TRUE(target.store().Close("vol", "dst", kEpoch).ok());
  dst_ = std::make_unique<EngineClient>(target.address(), "dst", kEpoch);
  json::object l = dst_->List();
  EXPECT_EQ(l.at("rebuilding"), true);
  EXPECT_EQ(l.at("rebuild").at("state"), "idle");
  EXPECT_NE(std::string(l.at("rebuild").at("message").as_string()).find("send REBUILD"),
            std::string::npos);
  EXPECT_EQ(Files(target.dir("dst")), (std::set<std::string>{"layer-1.img", "replica.json"}));

  crash->store(false);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s3")).status, 0);
  WriteBoth(2 * kM, 8 * kK);
  result = dst_->WaitRebuild();
  ASSERT_EQ(result.at("state"), "done") << result;
  ExpectSameAsSource(&target);
}

TEST_F(RebuildTest, CloseCancelsAndDeleteWorks) {
  Write(src_.get(), 0, 4 * kM);
  Snap("s1");
  Node target;
  MakeTarget(&target);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s1", 1 * kM)).status, 0);
  Answer again = dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s1"));
  EXPECT_EQ(again.status, EBUSY) << again.payload;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(target.store().Close("vol", "dst", kEpoch).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  dst_ = std::make_unique<EngineClient>(target.address(), "dst", kEpoch);
  EXPECT_EQ(dst_->List().at("rebuilding"), true);
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "s1", 1 * kM)).status, 0);
  ASSERT_TRUE(target.store().Delete("vol", "dst", kEpoch).ok());
}

TEST_F(RebuildTest, RefusesBadRequestsAndRebuildingSources) {
  FillSource();
  Node target;
  MakeTarget(&target);
  json::object bad = RebuildRequestJson(source_, "s3");
  bad.erase("source_epoch");
  EXPECT_EQ(dst_->Control(wire::Op::kRebuild, bad).status, EINVAL);
  bad = RebuildRequestJson(source_, "s3");
  bad["source"] = "no-port";
  EXPECT_EQ(dst_->Control(wire::Op::kRebuild, bad).status, EINVAL);
  // Unknown snapshot: fails in the background, naming it.
  ASSERT_EQ(dst_->Control(wire::Op::kRebuild, RebuildRequestJson(source_, "nope")).status, 0);
  json::object result = dst_->WaitRebuild();
  EXPECT_EQ(result.at("state"), "failed");
  EXPECT_NE(std::string(result.at("message").as_string()).find("no snapshot nope"),
            std::string::npos)
      << result;
  // A rebuilding replica is never a source.
  Node third;
  ASSERT_TRUE(third.store().Create("vol", "dst2", kSize).ok());
  EngineClient dst2(third.address(), "dst2", kEpoch);
  json::object from_rebuilding = RebuildRequestJson(source_, "s3");
  from_rebuilding["source"] = target.address();
  from_rebuilding["source_replica"] = "dst";
  ASSERT_EQ(dst2.Control(wire::Op::kRebuild, from_rebuilding).status, 0);
  result = dst2.WaitRebuild();
  EXPECT_EQ(result.at("state"), "failed");
  EXPECT_NE(std::string(result.at("message").as_string()).find("itself rebuilding"),
            std::string::npos)
      << result;
}

TEST_F(RebuildTest, LayerExtentsPagesAndReadSnapshotReadsOneLayer) {
  for (uint64_t i = 0; i < 5; ++i) Write(src_.get(), i * 64 * kK, 4 * kK);
  Snap("s1");
  Write(src_.get(), 64 * kK, 4 * kK);
  Snap("s2");
  std::vector<std::vector<uint64_t>> seen;
  json::value from = 0;
  for (int pages = 0; !from.is_null(); ++pages) {
    ASSERT_LT(pages, 10);
    Answer a = src_->Control(wire::Op::kLayerExtents, {{"name", "s1"}, {"from", from}, {"max", 2}});
    ASSERT_EQ(a.status, 0) << a.payload;
    json::object page = json::parse(a.payload).as_object();
    ASSERT_LE(page.at("extents").as_array().size(), 2u);
    for (const auto& e : page.at("extents").as_array()) {
      seen.push_back(
          {e.as_array()[0].to_number<uint64_t>(), e.as_array()[1].to_number<uint64_t>()});
    }
    from = page.at("next");
  }
  ASSERT_EQ(seen.size(), 5u);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i], (std::vector<uint64_t>{i * 64 * kK, 4 * kK}));
  EXPECT_EQ(src_->Control(wire::Op::kLayerExtents, {{"name", "zz"}}).status, ENOENT);

  // s2's own layer holds only 64K..68K: its byte 0 is a hole (zeros), not s1's.
  std::string name = json::serialize(json::object{{"name", "s2"}});
  Answer r = src_->Call(wire::Op::kReadSnapshot, 0, 128 * kK, name);
  ASSERT_EQ(r.status, 0) << r.payload;
  ASSERT_EQ(r.payload.size(), 128 * kK);
  EXPECT_EQ(r.payload.substr(0, 4096), std::string(4096, '\0'));
  EXPECT_NE(r.payload.substr(64 * kK, 4096), std::string(4096, '\0'));
  EXPECT_EQ(src_->Call(wire::Op::kReadSnapshot, kSize, 4096, name).status, EINVAL);
  EXPECT_EQ(src_->Call(wire::Op::kReadSnapshot, 0, 4096, R"({"name":"zz"})").status, ENOENT);
}

TEST(WireRebuildOpsTest, ReadSnapshotLimits) {
  std::string json = R"({"name":"s1"})";
  auto req = wire::MakeRequest(wire::Op::kReadSnapshot, 1, 1, 0, 1 << 20, wire::AsBytes(json));
  uint8_t raw[wire::kHeaderSize];
  wire::EncodeHeader(req, raw);
  EXPECT_TRUE(wire::DecodeHeader(raw).ok());
  req.length = wire::kMaxIoLength + 4096;
  wire::EncodeHeader(req, raw);
  EXPECT_FALSE(wire::DecodeHeader(raw).ok());
  std::vector<uint8_t> data(8192);
  auto ok_reply =
      wire::MakeReply(wire::MakeRequest(wire::Op::kReadSnapshot, 1, 1, 0, 8192, {}), 0, data);
  wire::EncodeHeader(ok_reply, raw);
  EXPECT_TRUE(wire::DecodeHeader(raw).ok());
  auto short_reply =
      wire::MakeReply(wire::MakeRequest(wire::Op::kReadSnapshot, 1, 1, 0, 16384, {}), 0, data);
  wire::EncodeHeader(short_reply, raw);
  EXPECT_FALSE(wire::DecodeHeader(raw).ok());
  EXPECT_EQ(wire::OpName(38), "SET_GENERATION");
  EXPECT_EQ(wire::OpName(39), "REBUILD");
  EXPECT_EQ(wire::OpName(40), "LAYER_EXTENTS");
  EXPECT_EQ(wire::OpName(41), "READ_SNAPSHOT");
  EXPECT_TRUE(wire::IsLayerOp(wire::Op::kRebuild));
  EXPECT_FALSE(wire::IsControlOp(wire::Op::kReadSnapshot));
}

}  // namespace
}  // namespace shorthorn::replicad
