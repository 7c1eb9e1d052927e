// RequestHandler: the protocol's meaning on decoded frames, no sockets.
#include "replicad/core/request_handler.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <sys/statvfs.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/names.h"
#include "replicad/core/replica_meta.h"
#include "replicad/io/sync_io_engine.h"
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
  RequestHandler handler_{&store_, {"host-a", "node-a.example", {"zone=rack1", "ssd"}}};
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
      json::parse(
          R"({"size":65536,"epoch":1,"generation":0,"rebuilding":false,"clean":true,"owner":""})"));
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

TEST_F(HandlerTest, OwnerFieldsOfCreateOpenAndDelete) {
  Reply bad = Control(wire::Op::kCreateReplica,
                      {{"volume", "v"}, {"replica", "r"}, {"size", 65536}, {"owner", "Host A"}});
  EXPECT_EQ(bad.status, EINVAL);
  EXPECT_NE(bad.payload.find("create replica r: owner 'Host A'"), std::string::npos) << bad.payload;
  Reply number = Control(wire::Op::kCreateReplica,
                         {{"volume", "v"}, {"replica", "r"}, {"size", 65536}, {"owner", 7}});
  EXPECT_EQ(number.status, EINVAL);
  EXPECT_EQ(number.payload, "create replica r: field 'owner' is not a string");
  ASSERT_EQ(Control(wire::Op::kCreateReplica,
                    {{"volume", "v"}, {"replica", "r"}, {"size", 65536}, {"owner", "fused-a"}})
                .status,
            0);

  json::object open{{"volume", "v"}, {"replica", "r"}, {"epoch", 2}, {"owner", "fused-a"}};
  Reply opened = Control(wire::Op::kOpenReplica, open);
  ASSERT_EQ(opened.status, 0) << opened.payload;
  EXPECT_EQ(json::parse(opened.payload).as_object().at("owner"), "fused-a");

  open["owner"] = "";
  Reply empty = Control(wire::Op::kOpenReplica, open);
  EXPECT_EQ(empty.status, EINVAL);
  EXPECT_EQ(empty.payload, "open replica r: owner is empty");
  open["owner"] = "fused-b";
  open["take_over"] = "yes";
  Reply not_bool = Control(wire::Op::kOpenReplica, open);
  EXPECT_EQ(not_bool.status, EINVAL);
  EXPECT_NE(not_bool.payload.find("'take_over' is not a boolean"), std::string::npos)
      << not_bool.payload;

  open.erase("take_over");
  open["epoch"] = 3;
  Reply moved = Control(wire::Op::kOpenReplica, open);
  EXPECT_EQ(moved.status, EXDEV);
  EXPECT_NE(moved.payload.find("open replica r of volume v: it belongs to fused fused-a now"),
            std::string::npos)
      << moved.payload;

  Reply del_moved =
      Control(wire::Op::kDeleteReplica,
              {{"volume", "v"}, {"replica", "r"}, {"epoch", 3}, {"owner", "fused-b"}});
  EXPECT_EQ(del_moved.status, EXDEV);
  EXPECT_NE(del_moved.payload.find("delete replica r of volume v"), std::string::npos)
      << del_moved.payload;

  open["take_over"] = true;
  Reply taken = Control(wire::Op::kOpenReplica, open);
  ASSERT_EQ(taken.status, 0) << taken.payload;
  EXPECT_EQ(json::parse(taken.payload).as_object().at("owner"), "fused-b");
  EXPECT_EQ(json::parse(taken.payload).as_object().at("epoch"), 3);

  // Without an owner: not checked, the owner stays.
  Reply plain = Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r"}, {"epoch", 3}});
  ASSERT_EQ(plain.status, 0) << plain.payload;
  EXPECT_EQ(json::parse(plain.payload).as_object().at("owner"), "fused-b");

  EXPECT_EQ(Control(wire::Op::kDeleteReplica,
                    {{"volume", "v"}, {"replica", "r"}, {"epoch", 3}, {"owner", "fused-b"}})
                .status,
            0);
}

TEST_F(HandlerTest, ListReplicas) {
  ASSERT_EQ(Control(wire::Op::kCreateReplica,
                    {{"volume", "v"}, {"replica", "r2"}, {"size", 65536}, {"owner", "fused-a"}})
                .status,
            0);
  ASSERT_EQ(Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r1"}, {"size", 8192}})
                .status,
            0);
  ASSERT_EQ(Control(wire::Op::kCreateReplica, {{"volume", "w"}, {"replica", "r3"}, {"size", 8192}})
                .status,
            0);
  ASSERT_EQ(Control(wire::Op::kOpenReplica,
                    {{"volume", "v"}, {"replica", "r2"}, {"epoch", 5}, {"owner", "fused-a"}})
                .status,
            0);
  ConnectionState conn;
  ASSERT_EQ(Call(&conn, wire::Op::kHello, R"({"volume":"v","replica":"r2","epoch":5})").status, 0);
  ASSERT_EQ(Call(&conn, wire::Op::kWrite, std::string(4096, 'x'), 5, 0, 4096).status, 0);
  ASSERT_EQ(Call(&conn, wire::Op::kSnapshot, R"({"name":"s1","created":"2024-05-01T10:00:00Z"})", 5)
                .status,
            0);
  ASSERT_EQ(Call(&conn, wire::Op::kSnapshot, R"({"name":"s2","created":"2024-05-01T11:00:00Z"})", 5)
                .status,
            0);
  ASSERT_EQ(Call(&conn, wire::Op::kSetGeneration, R"({"generation":9})", 5).status, 0);

  // No HELLO needed (control_ has none).
  Reply list = Control(wire::Op::kListReplicas, {{"volume", "v"}});
  ASSERT_EQ(list.status, 0) << list.payload;
  EXPECT_EQ(json::parse(list.payload), json::parse(R"({"replicas":[
      {"replica":"r1","volume":"v","size":8192,"epoch":0,"generation":0,"rebuilding":false,
       "open":false,"owner":"","snapshots":[]},
      {"replica":"r2","volume":"v","size":65536,"epoch":5,"generation":9,"rebuilding":false,
       "open":true,"owner":"fused-a","snapshots":["s1","s2"]}]})"))
      << list.payload;
  Reply other = Control(wire::Op::kListReplicas, {{"volume", "w"}});
  ASSERT_EQ(other.status, 0) << other.payload;
  EXPECT_EQ(json::parse(other.payload).at("replicas").as_array().size(), 1u);
  Reply none = Control(wire::Op::kListReplicas, {{"volume", "nothing"}});
  ASSERT_EQ(none.status, 0) << none.payload;
  EXPECT_EQ(json::parse(none.payload), json::parse(R"({"replicas":[]})"));
}

TEST_F(HandlerTest, ListReplicasBadRequests) {
  Reply missing = Control(wire::Op::kListReplicas, {});
  EXPECT_EQ(missing.status, EINVAL);
  EXPECT_EQ(missing.payload, "list replicas: field 'volume' is missing or not a string");
  EXPECT_EQ(Control(wire::Op::kListReplicas, {{"volume", 5}}).status, EINVAL);
  Reply bad = Control(wire::Op::kListReplicas, {{"volume", "../etc"}});
  EXPECT_EQ(bad.status, EINVAL);
  EXPECT_NE(bad.payload.find("list replicas: volume name '../etc'"), std::string::npos)
      << bad.payload;
  EXPECT_EQ(Control(wire::Op::kListReplicas, {{"volume", ""}}).status, EINVAL);

  Frame array;
  std::string text = R"(["v"])";
  array.payload.assign(text.begin(), text.end());
  array.header = wire::MakeRequest(wire::Op::kListReplicas, 1, 0, 0, 0, array.payload);
  bool replied = false;
  Status s =
      handler_.Handle(&control_, std::move(array),
                      [&](const wire::Header&, int32_t, std::vector<uint8_t>) { replied = true; });
  EXPECT_EQ(s.kind(), ErrorKind::kProtocol);
  EXPECT_NE(s.message().find("LIST_REPLICAS payload is not a JSON object"), std::string::npos)
      << s.message();
  EXPECT_FALSE(replied);
}

// REPLICAD_INFO: no HELLO, fields ignored; the identity the daemon was
// given, its data directory's file system, and every replica it holds.
TEST_F(HandlerTest, ReplicadInfo) {
  Reply empty = Control(wire::Op::kReplicadInfo, {});
  ASSERT_EQ(empty.status, 0) << empty.payload;
  json::object o = json::parse(empty.payload).as_object();
  EXPECT_EQ(o.size(), 7u) << empty.payload;
  EXPECT_EQ(o.at("host_id"), "host-a");
  EXPECT_EQ(o.at("hostname"), "node-a.example");
  EXPECT_EQ(o.at("tags"), json::parse(R"(["zone=rack1","ssd"])"));
  EXPECT_EQ(o.at("provisioned_bytes"), 0u);
  EXPECT_EQ(o.at("replicas"), 0u);
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(dir_.path().c_str(), &fs), 0);
  EXPECT_EQ(o.at("total_bytes").to_number<uint64_t>(),
            static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize);
  EXPECT_GT(o.at("free_bytes").to_number<uint64_t>(), 0u);
  EXPECT_LE(o.at("free_bytes").to_number<uint64_t>(), o.at("total_bytes").to_number<uint64_t>());

  // Two replicas of 1 MiB and 2 MiB, of two volumes, one of them open.
  ASSERT_EQ(
      Control(wire::Op::kCreateReplica, {{"volume", "v"}, {"replica", "r1"}, {"size", 1 << 20}})
          .status,
      0);
  ASSERT_EQ(
      Control(wire::Op::kCreateReplica, {{"volume", "w"}, {"replica", "r2"}, {"size", 2 << 20}})
          .status,
      0);
  ASSERT_EQ(
      Control(wire::Op::kOpenReplica, {{"volume", "v"}, {"replica", "r1"}, {"epoch", 1}}).status,
      0);
  // Not replicas, as for LIST_REPLICAS: an unfinished create (no
  // replica.json), a symbolic link to a replica, a name the store cannot
  // have made.
  std::filesystem::create_directory(dir_.path() + "/unfinished");
  std::filesystem::create_directory_symlink(dir_.path() + "/r2", dir_.path() + "/link");
  std::filesystem::create_directory(dir_.path() + "/lost+found");
  // Unknown fields are ignored; a HELLO-bound connection may ask too.
  ConnectionState bound;
  ASSERT_EQ(Call(&bound, wire::Op::kHello, R"({"volume":"v","replica":"r1","epoch":1})").status, 0);
  Reply info = Call(&bound, wire::Op::kReplicadInfo, R"({"volume":"v","verbose":true})", 1);
  ASSERT_EQ(info.status, 0) << info.payload;
  o = json::parse(info.payload).as_object();
  EXPECT_EQ(o.at("provisioned_bytes"), 3u << 20);
  EXPECT_EQ(o.at("replicas"), 2u);
  EXPECT_EQ(o.at("host_id"), "host-a");

  // EXPAND is in replica.json at once; DELETE removes it from the count.
  ASSERT_EQ(Call(&bound, wire::Op::kExpand, R"({"size":4194304})", 1).status, 0);
  o = json::parse(Control(wire::Op::kReplicadInfo, {}).payload).as_object();
  EXPECT_EQ(o.at("provisioned_bytes"), 6u << 20);
  ASSERT_EQ(
      Control(wire::Op::kDeleteReplica, {{"volume", "w"}, {"replica", "r2"}, {"epoch", 0}}).status,
      0);
  o = json::parse(Control(wire::Op::kReplicadInfo, {}).payload).as_object();
  EXPECT_EQ(o.at("provisioned_bytes"), 4u << 20);
  EXPECT_EQ(o.at("replicas"), 1u);
}

TEST_F(HandlerTest, ReplicadInfoBadRequestAndNoDataDirectory) {
  for (std::string text : {"[]", "\"info\"", "", "{"}) {
    Frame f;
    f.payload.assign(text.begin(), text.end());
    f.header = wire::MakeRequest(wire::Op::kReplicadInfo, 1, 0, 0, 0, f.payload);
    bool replied = false;
    Status s = handler_.Handle(
        &control_, std::move(f),
        [&](const wire::Header&, int32_t, std::vector<uint8_t>) { replied = true; });
    EXPECT_EQ(s.kind(), ErrorKind::kProtocol) << text;
    EXPECT_NE(s.message().find("REPLICAD_INFO payload is not a JSON object"), std::string::npos)
        << s.message();
    EXPECT_FALSE(replied);
  }
  // The data directory vanished under the daemon: an error reply, not a
  // closed connection.
  std::filesystem::remove_all(dir_.path());
  Reply gone = Control(wire::Op::kReplicadInfo, {});
  EXPECT_EQ(gone.status, ENOENT);
  EXPECT_NE(gone.payload.find("replicad info: statvfs " + dir_.path()), std::string::npos)
      << gone.payload;
}

// A handler built without an identity (tests) still answers, with an empty
// host id, which fused refuses: the daemon always passes one.
TEST_F(HandlerTest, ReplicadInfoWithoutIdentity) {
  RequestHandler bare(&store_);
  Frame f;
  f.payload = {'{', '}'};
  f.header = wire::MakeRequest(wire::Op::kReplicadInfo, 1, 0, 0, 0, f.payload);
  std::string payload;
  ASSERT_TRUE(bare.Handle(&control_, std::move(f),
                          [&](const wire::Header&, int32_t status, std::vector<uint8_t> p) {
                            EXPECT_EQ(status, 0);
                            payload.assign(p.begin(), p.end());
                          })
                  .ok());
  json::object o = json::parse(payload).as_object();
  EXPECT_EQ(o.at("host_id"), "");
  EXPECT_EQ(o.at("tags"), json::array());
}

// Writes <data-dir>/<replica>/replica.json directly (no layer files: LIST
// reads only the metadata), with `snapshots` snapshots of long names.
void WriteMeta(const std::string& data_dir, const std::string& replica, size_t snapshots) {
  ReplicaMeta m;
  m.volume = "v";
  m.replica = replica;
  m.size = 4096;
  for (uint64_t id = 1; id <= snapshots + 1; ++id) {
    LayerMeta l;
    l.id = id;
    l.file = LayerFileName(id);
    if (id > 1) l.parent = id - 1;
    if (id <= snapshots) {
      char prefix[16];
      std::snprintf(prefix, sizeof(prefix), "s%05llu", static_cast<unsigned long long>(id));
      l.name = std::string(prefix) + std::string(kMaxNameLength - 6, 'n');
      l.created = "2024-05-01T10:00:00Z";
    }
    m.layers.push_back(l);
  }
  m.head = snapshots + 1;
  m.next_layer_id = snapshots + 2;
  std::filesystem::create_directory(data_dir + "/" + replica);
  std::ofstream(data_dir + "/" + replica + "/replica.json") << EncodeReplicaMeta(m);
}

TEST_F(HandlerTest, ListReplicasIsCappedInCount) {
  for (int i = 0; i < 66; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "r%02d", i);
    WriteMeta(dir_.path(), name, 0);
  }
  Reply list = Control(wire::Op::kListReplicas, {{"volume", "v"}});
  ASSERT_EQ(list.status, 0) << list.payload.substr(0, 200);
  json::object o = json::parse(list.payload).as_object();
  const json::array& replicas = o.at("replicas").as_array();
  ASSERT_EQ(replicas.size(), 64u);
  EXPECT_EQ(replicas.front().at("replica"), "r00");
  EXPECT_EQ(replicas.back().at("replica"), "r63");
  EXPECT_EQ(o.at("truncated"), true);
}

// 64 replicas of 250 snapshots with the longest names would exceed a
// control payload: the reply stops before and says so.
TEST_F(HandlerTest, ListReplicasFitsAControlPayload) {
  for (int i = 0; i < 64; ++i) {
    char prefix[8];
    std::snprintf(prefix, sizeof(prefix), "r%02d", i);
    WriteMeta(dir_.path(), std::string(prefix) + std::string(kMaxNameLength - 3, 'x'),
              kMaxSnapshots);
  }
  Reply list = Control(wire::Op::kListReplicas, {{"volume", "v"}});
  ASSERT_EQ(list.status, 0) << list.payload.substr(0, 200);
  EXPECT_LE(list.payload.size(), wire::kMaxControlPayload);
  json::object o = json::parse(list.payload).as_object();
  const json::array& replicas = o.at("replicas").as_array();
  EXPECT_GT(replicas.size(), 50u);
  EXPECT_LT(replicas.size(), 64u);
  EXPECT_EQ(replicas[0].at("snapshots").as_array().size(), kMaxSnapshots);
  EXPECT_EQ(o.at("truncated"), true);
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
