// The generation counter: OPEN_REPLICA and LIST_LAYERS report it,
// SET_GENERATION persists it and never lowers it, it survives a reopen, and
// the op is fenced like every layer op.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/log.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::TempDir;

struct Reply {
  int32_t status = -1;
  std::string payload;
};

class GenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarning);
    ASSERT_TRUE(store_.Create("v", "r", 1 << 20).ok());
  }
  Reply Call(ConnectionState* conn, wire::Op op, const json::object& o, uint64_t epoch) {
    Frame f;
    std::string text = json::serialize(o);
    f.payload.assign(text.begin(), text.end());
    f.header = wire::MakeRequest(op, ++next_id_, epoch, 0, 0, f.payload);
    Reply out;
    Status s = handler_.Handle(conn, std::move(f),
                               [&](const wire::Header&, int32_t st, std::vector<uint8_t> p) {
                                 out = {st, std::string(p.begin(), p.end())};
                               });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  json::object Open(ConnectionState* conn, uint64_t epoch) {
    json::object who{{"volume", "v"}, {"replica", "r"}, {"epoch", epoch}};
    Reply opened = Call(conn, wire::Op::kOpenReplica, who, 0);
    EXPECT_EQ(opened.status, 0) << opened.payload;
    EXPECT_EQ(Call(conn, wire::Op::kHello, who, 0).status, 0);
    return json::parse(opened.payload).as_object();
  }
  Reply Set(ConnectionState* conn, uint64_t generation, uint64_t epoch) {
    return Call(conn, wire::Op::kSetGeneration, {{"generation", generation}}, epoch);
  }

  TempDir dir_{/*in_memory=*/true};
  SyncIoEngine engine_{0};
  ReplicaStore store_{dir_.path(), &engine_};
  RequestHandler handler_{&store_};
  uint64_t next_id_ = 0;
};

TEST_F(GenerationTest, PersistsAndNeverGoesDown) {
  ConnectionState conn;
  json::object opened = Open(&conn, 1);
  EXPECT_EQ(
      opened,
      json::parse(
          R"({"size":1048576,"epoch":1,"generation":0,"rebuilding":false,"clean":true,"owner":""})"));

  Reply r = Set(&conn, 5, 1);
  ASSERT_EQ(r.status, 0) << r.payload;
  EXPECT_EQ(r.payload, "{}");
  EXPECT_EQ(Set(&conn, 5, 1).status, 0);  // equal: idempotent
  Reply lower = Set(&conn, 3, 1);
  EXPECT_EQ(lower.status, EINVAL);
  EXPECT_EQ(lower.payload,
            "set generation of replica r: generation 3 is lower than the current generation 5");
  Reply list = Call(&conn, wire::Op::kListLayers, {}, 1);
  ASSERT_EQ(list.status, 0);
  json::object l = json::parse(list.payload).as_object();
  EXPECT_EQ(l.at("generation"), 5);
  EXPECT_EQ(l.at("rebuilding"), false);
  EXPECT_EQ(l.at("rebuild"), json::parse(R"({"state":"idle","message":"","bytes":0})"));

  // Durable: a close and an open from disk (at a newer epoch) keep it.
  ASSERT_TRUE(store_.Close("v", "r", 1).ok());
  ConnectionState conn2;
  EXPECT_EQ(Open(&conn2, 2).at("generation"), 5);
  EXPECT_EQ(Set(&conn2, 6, 2).status, 0);
  EXPECT_EQ((*store_.Find("v", "r"))->generation(), 6u);
}

TEST_F(GenerationTest, FencedAndValidated) {
  ConnectionState unbound;
  EXPECT_EQ(Set(&unbound, 1, 1).status, EPROTO);
  ConnectionState conn;
  Open(&conn, 3);
  EXPECT_EQ(Set(&conn, 1, 2).status, ESTALE);  // an older engine
  EXPECT_EQ(Call(&conn, wire::Op::kSetGeneration, {{"generation", "x"}}, 3).status, EINVAL);
  EXPECT_EQ(Call(&conn, wire::Op::kSetGeneration, {}, 3).status, EINVAL);
  EXPECT_EQ((*store_.Find("v", "r"))->generation(), 0u);
}

}  // namespace
}  // namespace shorthorn::replicad
