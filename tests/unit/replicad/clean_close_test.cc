// The clean-close flag (replica.json "open", the OPEN_REPLICA reply's
// "clean"): set by the first write after a clean close; only a
// CLOSE_REPLICA ends a session cleanly; a crash, a daemon shutdown, a
// failed close or a second engine opening a replica that was written leave
// the next OPEN unclean. OPENs for control ops only change nothing. Each
// transition is one replace of replica.json.
#include <atomic>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/file_util.h"
#include "common/log.h"
#include "replicad/core/replica_meta.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::FailingSyncEngine;
using testing::TempDir;
using testing::Wait;

class CleanCloseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    options_.fail_io = [this](std::string_view point) {
      if (point == "commit") ++commits_;
      return 0;
    };
    NewStore();
    ASSERT_TRUE(store_->Create("v", "r", 1 << 20).ok());
  }
  // A new store on the same directory: a replicad restart.
  void NewStore() {
    handler_.reset();
    store_.reset();
    store_ = std::make_unique<ReplicaStore>(dir_.path(), &engine_, options_);
    handler_ = std::make_unique<RequestHandler>(store_.get());
  }
  struct Reply {
    int32_t status = -1;
    std::string payload;
  };
  Reply Control(wire::Op op, const json::object& o) {
    Frame f;
    std::string text = json::serialize(o);
    f.payload.assign(text.begin(), text.end());
    f.header = wire::MakeRequest(op, ++next_id_, 0, 0, 0, f.payload);
    Reply out;
    ConnectionState conn;
    Status s = handler_->Handle(&conn, std::move(f),
                                [&](const wire::Header&, int32_t st, std::vector<uint8_t> p) {
                                  out = {st, std::string(p.begin(), p.end())};
                                });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  // OPEN_REPLICA at `epoch`; its "clean".
  bool Open(uint64_t epoch) {
    Reply r =
        Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", epoch}});
    EXPECT_EQ(r.status, 0) << r.payload;
    if (r.status != 0) return false;
    json::object o = json::parse(r.payload).as_object();
    EXPECT_TRUE(o.contains("clean") && o.at("clean").is_bool()) << r.payload;
    return o.contains("clean") && o.at("clean").as_bool();
  }
  // OPEN_REPLICA at `epoch` and one WRITE: its "clean".
  bool OpenAndWrite(uint64_t epoch) {
    bool clean = Open(epoch);
    auto r = store_->Find("v", "r");
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return clean;
    std::vector<uint8_t> data(4096, 'w');
    EXPECT_TRUE(Wait([&](auto done) { (*r)->Write(epoch, 0, data, done); }).ok());
    return clean;
  }
  Reply Close(uint64_t epoch) {
    return Control(wire::Op::kCloseReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", epoch}});
  }
  std::string MetaPath() const { return dir_.path() + "/r/replica.json"; }
  // The "open" flag on disk.
  bool OpenOnDisk() {
    auto text = ReadFileToString(MetaPath());
    EXPECT_TRUE(text.ok());
    auto meta = DecodeReplicaMeta(text.ok() ? *text : "", MetaPath());
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    return meta.ok() && meta->open;
  }

  TempDir dir_{/*in_memory=*/true};
  FailingSyncEngine engine_;
  ReplicaOptions options_;
  std::atomic<int> commits_{0};
  std::unique_ptr<ReplicaStore> store_;
  std::unique_ptr<RequestHandler> handler_;
  uint64_t next_id_ = 0;
};

TEST_F(CleanCloseTest, NewReplicaIsClean) {
  EXPECT_FALSE(OpenOnDisk());
  EXPECT_TRUE(Open(1));
  EXPECT_FALSE(OpenOnDisk());  // nothing written yet
  EXPECT_TRUE(OpenAndWrite(1));
  EXPECT_TRUE(OpenOnDisk());  // the first write set it
}

TEST_F(CleanCloseTest, CloseThenOpenIsClean) {
  ASSERT_TRUE(OpenAndWrite(1));
  ASSERT_EQ(Close(1).status, 0);
  EXPECT_FALSE(OpenOnDisk());
  EXPECT_TRUE(OpenAndWrite(1));  // same epoch
  ASSERT_EQ(Close(1).status, 0);
  EXPECT_TRUE(OpenAndWrite(2));  // a newer one
  ASSERT_EQ(Close(2).status, 0);
  NewStore();  // survives a restart
  EXPECT_TRUE(Open(2));
}

TEST_F(CleanCloseTest, OpenOfAWrittenReplicaIsNotClean) {
  ASSERT_TRUE(OpenAndWrite(1));
  EXPECT_FALSE(Open(1));  // the same engine again (ReplicaClient::Call does)
  EXPECT_FALSE(Open(2));  // a new engine while the old one may still write
  ASSERT_EQ(Close(2).status, 0);
  EXPECT_TRUE(Open(3));
}

TEST_F(CleanCloseTest, ControlOnlyOpensLeaveItClean) {
  ASSERT_TRUE(OpenAndWrite(1));
  ASSERT_EQ(Close(1).status, 0);
  EXPECT_TRUE(Open(2));  // LIST_LAYERS of a detached volume, say
  EXPECT_TRUE(Open(2));
  EXPECT_FALSE(OpenOnDisk());
  NewStore();
  EXPECT_TRUE(Open(3));
}

TEST_F(CleanCloseTest, DaemonShutdownLeavesItUnclean) {
  ASSERT_TRUE(OpenAndWrite(1));
  store_->CloseAll();  // SIGTERM: replicad closes its replicas itself
  EXPECT_TRUE(OpenOnDisk());
  NewStore();
  EXPECT_FALSE(Open(1));
  ASSERT_EQ(Close(1).status, 0);
  EXPECT_TRUE(Open(1));
}

TEST_F(CleanCloseTest, CrashLeavesItUnclean) {
  const std::string dir = dir_.path() + "/r";
  {
    auto r = Replica::Open(dir, &engine_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto clean = (*r)->OpenSession(1);
    ASSERT_TRUE(clean.ok()) << clean.status().ToString();
    EXPECT_TRUE(*clean);
    std::vector<uint8_t> data(4096, 'x');
    ASSERT_TRUE(Wait([&](auto done) { (*r)->Write(1, 0, data, done); }).ok());
    // Dropped without Close: the process died.
  }
  auto r = Replica::Open(dir, &engine_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto clean = (*r)->OpenSession(1);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_FALSE(*clean);
  ASSERT_TRUE((*r)->Close().ok());
  ASSERT_TRUE((*r)->EndSession().ok());
  EXPECT_FALSE(OpenOnDisk());
}

TEST_F(CleanCloseTest, FailedCloseLeavesItUnclean) {
  ASSERT_TRUE(OpenAndWrite(1));
  auto r = store_->Find("v", "r");
  ASSERT_TRUE(r.ok());
  engine_.fail_sync = true;  // a FLUSH fails the replica
  EXPECT_EQ(Wait([&](auto done) { (*r)->Flush(1, done); }).sys_errno(), EIO);
  engine_.fail_sync = false;
  EXPECT_EQ(Close(1).status, EIO);
  EXPECT_TRUE(OpenOnDisk());
  NewStore();
  EXPECT_FALSE(Open(1));
}

TEST_F(CleanCloseTest, EndSessionNeedsAClosedReplica) {
  ASSERT_TRUE(OpenAndWrite(1));
  auto r = store_->Find("v", "r");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->EndSession().sys_errno(), EINVAL);
  EXPECT_TRUE(OpenOnDisk());
}

TEST_F(CleanCloseTest, OneReplacePerTransition) {
  commits_ = 0;
  ASSERT_TRUE(Open(1));  // the epoch
  EXPECT_EQ(commits_.load(), 1);
  ASSERT_TRUE(OpenAndWrite(1));  // the flag, at the first write only
  EXPECT_EQ(commits_.load(), 2);
  ASSERT_FALSE(OpenAndWrite(1));  // nothing changes
  EXPECT_EQ(commits_.load(), 2);
  ASSERT_FALSE(Open(2));
  EXPECT_EQ(commits_.load(), 3);
  ASSERT_EQ(Close(2).status, 0);
  EXPECT_EQ(commits_.load(), 4);
  ASSERT_EQ(Close(2).status, 0);  // not open: nothing to record
  EXPECT_EQ(commits_.load(), 4);
  ASSERT_TRUE(Open(2));
  EXPECT_EQ(commits_.load(), 4);
}

TEST_F(CleanCloseTest, FileWithoutTheFlagIsUnclean) {
  // replica.json as a replicad before the flag wrote it.
  auto text = ReadFileToString(MetaPath());
  ASSERT_TRUE(text.ok());
  json::object o = json::parse(*text).as_object();
  ASSERT_TRUE(o.erase("open"));
  ASSERT_TRUE(WriteFileAtomic(MetaPath(), json::serialize(o)).ok());
  EXPECT_TRUE(OpenOnDisk());
  EXPECT_FALSE(Open(1));
  ASSERT_EQ(Close(1).status, 0);
  EXPECT_TRUE(Open(1));
}

TEST(ReplicaMetaOpenTest, RoundTripAndBadType) {
  ReplicaMeta m = NewReplicaMeta("v", "r", 4096);
  EXPECT_FALSE(m.open);
  for (bool open : {false, true}) {
    m.open = open;
    auto back = DecodeReplicaMeta(EncodeReplicaMeta(m), "x");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->open, open);
  }
  json::object o = json::parse(EncodeReplicaMeta(m)).as_object();
  o["open"] = 1;
  auto bad = DecodeReplicaMeta(json::serialize(o), "x");
  EXPECT_EQ(bad.status().sys_errno(), EIO);
  EXPECT_NE(bad.status().message().find("'open'"), std::string::npos) << bad.status().message();
  // Formats 1 and 2 never had it: open.
  auto old = DecodeReplicaMeta(R"({"format":1,"volume":"v","replica":"r","size":4096,)"
                               R"("epoch":3,"head":"head.img"})",
                               "x");
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->open);
}

}  // namespace
}  // namespace shorthorn::replicad
