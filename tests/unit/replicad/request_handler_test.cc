// RequestHandler: the protocol's meaning on decoded frames, no sockets.
#include "replicad/request_handler.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "replicad/sync_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;
using testing::FailingSyncEngine;
using testing::TempDir;

struct Reply {
  wire::Header request;
  int32_t status = -1;
  std::string payload;
};

class HandlerTest : public ::testing::Test {
 protected:
  // Handles one frame on `state` and returns its reply (the inline engine
  // answers before Handle returns; UNMAP answers from the unmap thread).
  Reply Call(ConnectionState* state, wire::Op op, std::string payload, uint64_t epoch = 0,
             uint64_t offset = 0, uint64_t length = 0) {
    Frame f;
    f.payload.assign(payload.begin(), payload.end());
    f.header = wire::MakeRequest(op, ++next_id_, epoch, offset, length, f.payload);
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto replied = std::make_shared<std::promise<Reply>>();
    std::future<Reply> answer = replied->get_future();
    Status s = handler_.Handle(
        state, std::move(f),
        [calls, replied](const wire::Header& h, int32_t st, std::vector<uint8_t> p) {
          if (++*calls == 1) replied->set_value({h, st, std::string(p.begin(), p.end())});
        });
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    EXPECT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    Reply out = answer.get();
    EXPECT_EQ(calls->load(), 1);
    EXPECT_EQ(out.request.request_id, next_id_);
    return out;
  }
  Reply Control(wire::Op op, const json::object& o) {
    return Call(&control_, op, json::serialize(o));
  }

  TempDir dir_;
  FailingSyncEngine engine_;
  ReplicaStore store_{dir_.path(), &engine_};
  RequestHandler handler_{&store_};
  ConnectionState control_;
  uint64_t next_id_ = 0;
};

TEST_F(HandlerTest, ControlOpsAndHello) {
  EXPECT_EQ(
      Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r"}, {"size", 4095}}).status,
      EINVAL);
  Reply created =
      Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r"}, {"size", 65536}});
  EXPECT_EQ(created.status, 0);
  EXPECT_EQ(created.payload, "{}");
  EXPECT_EQ(Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r"}, {"size", 65536}})
                .status,
            EEXIST);
  Reply missing = Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}});
  EXPECT_EQ(missing.status, EINVAL);
  EXPECT_NE(missing.payload.find("epoch"), std::string::npos);

  ConnectionState conn;
  Reply hello = Call(&conn, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":1})");
  EXPECT_EQ(hello.status, ENOENT);
  EXPECT_NE(hello.payload.find("replica r is not open"), std::string::npos) << hello.payload;

  Reply opened = Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 1}});
  ASSERT_EQ(opened.status, 0) << opened.payload;
  EXPECT_EQ(
      json::parse(opened.payload),
      json::parse(R"({"size":65536,"epoch":1,"generation":0,"rebuilding":false,"clean":true})"));
  EXPECT_EQ(Call(&conn, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":0})").status,
            ESTALE);
  hello = Call(&conn, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":1})");
  ASSERT_EQ(hello.status, 0) << hello.payload;
  EXPECT_EQ(json::parse(hello.payload), json::parse(R"({"size":65536})"));

  std::string data(5000, 'x');
  EXPECT_EQ(Call(&conn, wire::Op::kWrite, data, 1, 100, data.size()).status, 0);
  Reply read = Call(&conn, wire::Op::kRead, "", 1, 100, data.size());
  EXPECT_EQ(read.status, 0);
  EXPECT_EQ(read.payload, data);
  EXPECT_EQ(Call(&conn, wire::Op::kRead, "", 1, 65536, 1).status, EINVAL);
  EXPECT_EQ(Call(&conn, wire::Op::kFlush, "", 1).status, 0);
  EXPECT_EQ(Call(&conn, wire::Op::kUnmap, "", 1, 0, 4096).status, 0);
  EXPECT_EQ(Call(&conn, wire::Op::kPing, "", 1).status, 0);

  // A newer epoch fences the old connection.
  ASSERT_EQ(
      Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 2}}).status, 0);
  Reply fenced = Call(&conn, wire::Op::kWrite, data, 1, 0, data.size());
  EXPECT_EQ(fenced.status, ESTALE);
  EXPECT_NE(fenced.payload.find("write replica r: epoch 1"), std::string::npos) << fenced.payload;

  // Close: bound connections get ESHUTDOWN.
  ConnectionState conn2;
  ASSERT_EQ(Call(&conn2, wire::Op::kHello, R"({"volume":"v","replica":"r","epoch":2})").status, 0);
  EXPECT_EQ(
      Control(wire::Op::kCloseReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 1}}).status,
      ESTALE);
  EXPECT_EQ(
      Control(wire::Op::kCloseReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 2}}).status,
      0);
  EXPECT_EQ(Call(&conn2, wire::Op::kRead, "", 2, 0, 10).status, ESHUTDOWN);

  // DELETE needs an epoch, and one no older than the replica's.
  EXPECT_EQ(Control(wire::Op::kDeleteReplica, {{"volume", "v"}, {"replica", "r"}}).status, EINVAL);
  Reply stale =
      Control(wire::Op::kDeleteReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 1}});
  EXPECT_EQ(stale.status, ESTALE);
  EXPECT_EQ(stale.payload.find('2'), std::string::npos)
      << "names the current epoch: " << stale.payload;
  EXPECT_EQ(
      Control(wire::Op::kDeleteReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 2}}).status,
      0);
  EXPECT_EQ(
      Control(wire::Op::kDeleteReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 2}}).status,
      ENOENT);
}

TEST_F(HandlerTest, DataOpWithoutHelloIsRefused) {
  ConnectionState conn;
  Reply r = Call(&conn, wire::Op::kRead, "", 0, 0, 4096);
  EXPECT_EQ(r.status, EPROTO);
  EXPECT_NE(r.payload.find("no HELLO"), std::string::npos) << r.payload;
  EXPECT_EQ(Call(&conn, wire::Op::kWrite, "abc", 0, 0, 3).status, EPROTO);
  EXPECT_EQ(Call(&conn, wire::Op::kFlush, "").status, EPROTO);
  EXPECT_EQ(Call(&conn, wire::Op::kPing, "").status, 0);  // liveness needs no HELLO
}

TEST_F(HandlerTest, FlushFailureAnswersEioOnEveryConnection) {
  ASSERT_EQ(
      Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r"}, {"size", 8192}}).status,
      0);
  ASSERT_EQ(
      Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 1}}).status, 0);
  ConnectionState a, b;
  const std::string hello = R"({"volume":"v","replica":"r","epoch":1})";
  ASSERT_EQ(Call(&a, wire::Op::kHello, hello).status, 0);
  ASSERT_EQ(Call(&b, wire::Op::kHello, hello).status, 0);
  engine_.fail_sync = true;
  EXPECT_EQ(Call(&a, wire::Op::kFlush, "", 1).status, EIO);
  engine_.fail_sync = false;
  EXPECT_EQ(Call(&b, wire::Op::kFlush, "", 1).status, EIO);
  EXPECT_EQ(Call(&b, wire::Op::kRead, "", 1, 0, 10).status, EIO);
  EXPECT_EQ(engine_.sync_calls, 1);
}

TEST_F(HandlerTest, ProtocolViolationsAskToClose) {
  ConnectionState conn;
  auto handle = [&](Frame f) {
    bool replied = false;
    Status s = handler_.Handle(
        &conn, std::move(f),
        [&](const wire::Header&, int32_t, std::vector<uint8_t>) { replied = true; });
    EXPECT_FALSE(replied);
    return s;
  };
  Frame not_json;
  std::string text = "{not json";
  not_json.payload.assign(text.begin(), text.end());
  not_json.header = wire::MakeRequest(wire::Op::kOpenReplica, 1, 0, 0, 0, not_json.payload);
  EXPECT_EQ(handle(std::move(not_json)).kind(), ErrorKind::kProtocol);

  Frame array;
  text = "[1]";
  array.payload.assign(text.begin(), text.end());
  array.header = wire::MakeRequest(wire::Op::kHello, 2, 0, 0, 0, array.payload);
  EXPECT_EQ(handle(std::move(array)).kind(), ErrorKind::kProtocol);

  Frame reply;
  reply.header = wire::MakeRequest(wire::Op::kPing, 3, 0, 0, 0, {});
  reply.header.flags = wire::kFlagReply;
  EXPECT_EQ(handle(std::move(reply)).kind(), ErrorKind::kProtocol);
}

}  // namespace
}  // namespace shorthorn::replicad
