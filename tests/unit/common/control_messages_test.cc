// The replica protocol's control messages (common/control_messages.h) and
// the field readers under them (common/json_fields.h): every message
// survives encode + decode; the bytes of the encodings peers depend on are
// pinned; a missing required field, a wrong type and an out-of-range value
// are refused with a message naming the op (or peer) and the key.
#include "common/control_messages.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/json_fields.h"
#include "common/json_mapping.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

// Encodes `m`, serializes it, parses it back and decodes it.
template <typename T, typename... Context>
T RoundTrip(const T& m, Context... context) {
  json::object o = Parse(json::serialize(json::value_from(m)));
  auto back = Decode<T>(o, context...);
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  return back.ok() ? *back : T{};
}

void ExpectRefused(const Status& s, ErrorKind kind, const std::string& message) {
  EXPECT_EQ(s.kind(), kind) << s.ToString();
  EXPECT_EQ(s.message(), message);
}

TEST(JsonFieldsTest, ReadersNameContextAndKey) {
  using namespace json_fields;
  json::object o = Parse(R"({"s":"x","u":5,"n":-1,"d":1.5,"b":true,"a":[1],"o":{}})");
  FieldContext ctx = RequestContext("open replica");
  std::string s;
  uint64_t u = 0;
  bool b = false;
  const json::array* a = nullptr;
  const json::object* obj = nullptr;
  EXPECT_TRUE(GetString(o, "s", ctx, &s).ok());
  EXPECT_EQ(s, "x");
  EXPECT_TRUE(GetUint64(o, "u", ctx, &u).ok());
  EXPECT_EQ(u, 5u);
  EXPECT_TRUE(GetBool(o, "b", ctx, &b).ok());
  EXPECT_TRUE(b);
  EXPECT_TRUE(GetArray(o, "a", ctx, &a).ok());
  EXPECT_TRUE(GetObject(o, "o", ctx, &obj).ok());
  ExpectRefused(GetUint64(o, "n", ctx, &u), ErrorKind::kInvalidArgument,
                "open replica: field 'n' is missing or not an unsigned integer");
  ExpectRefused(GetUint64(o, "d", ctx, &u), ErrorKind::kInvalidArgument,
                "open replica: field 'd' is missing or not an unsigned integer");
  EXPECT_EQ(GetUint64(o, "d", ctx, &u).sys_errno(), EINVAL);
  EXPECT_EQ(u, 5u);  // unchanged on error
  ExpectRefused(GetString(o, "missing", ctx, &s), ErrorKind::kInvalidArgument,
                "open replica: field 'missing' is missing or not a string");
  ExpectRefused(GetOptionalBool(o, "s", ctx, &b), ErrorKind::kInvalidArgument,
                "open replica: field 's' is not a boolean");
  EXPECT_TRUE(GetOptionalString(o, "missing", ctx, &s).ok());
  EXPECT_EQ(s, "x");  // an absent optional field keeps the default
  Status reply = GetObject(o, "a", ReplyContext("replicad at h:1"), &obj);
  EXPECT_EQ(reply.kind(), ErrorKind::kProtocol);
  EXPECT_EQ(reply.sys_errno(), EPROTO);
  Status file = GetArray(o, "o", FileContext("read /x/replica.json"), &a);
  EXPECT_EQ(file.kind(), ErrorKind::kIoError);
  EXPECT_EQ(file.message(), "read /x/replica.json: field 'o' is missing or not an array");
}

TEST(ControlMessagesTest, ReplicaRequestsRoundTrip) {
  CreateReplicaRequest create{"vol", "r1", 1 << 20, true, "fused-a"};
  auto c = RoundTrip(create);
  EXPECT_EQ(c.volume, "vol");
  EXPECT_EQ(c.replica, "r1");
  EXPECT_EQ(c.size, 1u << 20);
  EXPECT_TRUE(c.rebuilding);
  EXPECT_EQ(c.owner, "fused-a");

  OpenReplicaRequest open{"vol", "r1", 7, "fused-b", true};
  auto o = RoundTrip(open);
  EXPECT_EQ(o.epoch, 7u);
  EXPECT_EQ(o.owner, "fused-b");
  EXPECT_TRUE(o.take_over);

  auto h = RoundTrip(HelloRequest{"vol", "r1", 3});
  EXPECT_EQ(h.replica, "r1");
  EXPECT_EQ(h.epoch, 3u);
  auto cl = RoundTrip(CloseReplicaRequest{"vol", "r1", 4});
  EXPECT_EQ(cl.epoch, 4u);
  auto d = RoundTrip(DeleteReplicaRequest{"vol", "r1", 5, "fused-a"});
  EXPECT_EQ(d.epoch, 5u);
  EXPECT_EQ(d.owner, "fused-a");
  EXPECT_EQ(RoundTrip(ListReplicasRequest{"vol"}).volume, "vol");
}

TEST(ControlMessagesTest, LayerRequestsRoundTrip) {
  auto s = RoundTrip(SnapshotRequest{"s1", "2024-05-01T10:00:00Z", false});
  EXPECT_EQ(s.name, "s1");
  EXPECT_EQ(s.created, "2024-05-01T10:00:00Z");
  EXPECT_FALSE(s.user_created);
  auto plain = RoundTrip(SnapshotRequest{"s2", std::nullopt, true});
  EXPECT_FALSE(plain.created.has_value());
  EXPECT_TRUE(plain.user_created);
  EXPECT_EQ(RoundTrip(SnapshotNameRequest{"s1"}, "revert replica").name, "s1");
  EXPECT_EQ(RoundTrip(ExpandRequest{8192}).size, 8192u);
  EXPECT_EQ(RoundTrip(SetGenerationRequest{12}).generation, 12u);
  auto r = RoundTrip(RebuildRequest{"10.0.0.1:7400", "vol", "r1", 4, "rebuild-x", 1000});
  EXPECT_EQ(r.source, "10.0.0.1:7400");
  EXPECT_EQ(r.source_volume, "vol");
  EXPECT_EQ(r.source_replica, "r1");
  EXPECT_EQ(r.source_epoch, 4u);
  EXPECT_EQ(r.snapshot, "rebuild-x");
  EXPECT_EQ(r.bandwidth, 1000u);
  auto e = RoundTrip(LayerExtentsRequest{"s1", 4096, 10});
  EXPECT_EQ(e.name, "s1");
  EXPECT_EQ(e.from, 4096u);
  EXPECT_EQ(e.max, 10u);
  auto bare = RoundTrip(LayerExtentsRequest{"s1", std::nullopt, std::nullopt});
  EXPECT_FALSE(bare.from.has_value());
  EXPECT_FALSE(bare.max.has_value());
  auto k = RoundTrip(ChecksumRequest{4096, 20000, 8192});
  EXPECT_EQ(k.offset, 4096u);
  EXPECT_EQ(k.length, 20000u);
  EXPECT_EQ(k.chunk, 8192u);
}

TEST(ControlMessagesTest, RepliesRoundTrip) {
  auto o = RoundTrip(OpenReplicaReply{1 << 20, 4, 12, true, true, "f1"}, "open");
  EXPECT_EQ(o.size, 1u << 20);
  EXPECT_EQ(o.epoch, 4u);
  EXPECT_EQ(o.generation, 12u);
  EXPECT_TRUE(o.rebuilding);
  EXPECT_TRUE(o.clean);
  EXPECT_EQ(o.owner, "f1");
  EXPECT_EQ(RoundTrip(HelloReply{65536}, "hello").size, 65536u);

  ListReplicasReply list;
  list.replicas.push_back({"r1", "vol", 4096, 2, 3, false, true, "f1", {"s1", "s2"}});
  list.truncated = true;
  auto l = RoundTrip(list, "list");
  ASSERT_EQ(l.replicas.size(), 1u);
  EXPECT_EQ(l.replicas[0].replica, "r1");
  EXPECT_EQ(l.replicas[0].generation, 3u);
  EXPECT_TRUE(l.replicas[0].open);
  EXPECT_EQ(l.replicas[0].snapshots, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_TRUE(l.truncated);

  ReplicadInfoReply info{"host-1", "node-1", {"zone=a", "ssd"}, 100, 50, 30, 2};
  auto i = RoundTrip(info, "info");
  EXPECT_EQ(i.host_id, "host-1");
  EXPECT_EQ(i.hostname, "node-1");
  EXPECT_EQ(i.tags, info.tags);
  EXPECT_EQ(i.total_bytes, 100u);
  EXPECT_EQ(i.free_bytes, 50u);
  EXPECT_EQ(i.provisioned_bytes, 30u);
  EXPECT_EQ(i.replicas, 2u);

  LayerList layers;
  layers.size = 1 << 20;
  layers.generation = 12;
  layers.actual_size = 24576;
  layers.head_parent = "s2";
  layers.head_size_held = 4096;
  layers.snapshots.push_back(
      {"s1", std::nullopt, "t1", true, 8192, false, "5e18677ba94ab76c", true});
  layers.snapshots.push_back({"s2", "s1", "t2", false, 12288, true, "", false});
  layers.tasks.push_back({"delete_snapshot", "s2", 1, 4});
  layers.verify = {VerifyPhase::kDone, {"s1"}, 2};
  layers.rebuild = {RebuildPhase::kFailed, "why", 77};
  auto back = RoundTrip(layers, "list layers");
  EXPECT_EQ(back.size, layers.size);
  EXPECT_EQ(back.generation, 12u);
  EXPECT_EQ(back.actual_size, 24576u);
  EXPECT_EQ(back.head_parent, "s2");
  EXPECT_EQ(back.head_size_held, 4096u);
  ASSERT_EQ(back.snapshots.size(), 2u);
  EXPECT_FALSE(back.snapshots[0].parent.has_value());
  EXPECT_TRUE(back.snapshots[0].checksum_done);
  EXPECT_EQ(back.snapshots[0].checksum, "5e18677ba94ab76c");
  EXPECT_EQ(back.snapshots[1].parent, "s1");
  EXPECT_TRUE(back.snapshots[1].removed);
  EXPECT_FALSE(back.snapshots[1].checksum_done);
  ASSERT_EQ(back.tasks.size(), 1u);
  EXPECT_EQ(back.tasks[0].op, "delete_snapshot");
  EXPECT_EQ(back.tasks[0].total_bytes, 4u);
  EXPECT_EQ(back.verify.bad, (std::vector<std::string>{"s1"}));
  EXPECT_EQ(back.verify.checked, 2u);
  EXPECT_EQ(back.verify.state, VerifyPhase::kDone);
  EXPECT_EQ(back.rebuild.state, RebuildPhase::kFailed);
  EXPECT_EQ(back.rebuild.bytes, 77u);
  ASSERT_NE(back.Find("s2"), nullptr);
  EXPECT_EQ(back.Find("s3"), nullptr);

  auto ex = RoundTrip(LayerExtentsReply{{{0, 4096}, {8192, 4096}}, 12288}, "extents");
  ASSERT_EQ(ex.extents.size(), 2u);
  EXPECT_EQ(ex.extents[1].offset, 8192u);
  EXPECT_EQ(ex.next, 12288u);
  EXPECT_FALSE(RoundTrip(LayerExtentsReply{{}, std::nullopt}, "extents").next.has_value());

  auto sums = RoundTrip(ChecksumReply{8192, {0x0123456789abcdefULL, ~0ULL, 0}}, "checksum");
  EXPECT_EQ(sums.chunk, 8192u);
  EXPECT_EQ(sums.hashes, (std::vector<uint64_t>{0x0123456789abcdefULL, ~0ULL, 0}));
}

// The bytes peers of every release exchange.
TEST(ControlMessagesTest, WireBytesArePinned) {
  auto text = [](const auto& m) { return json::serialize(json::value_from(m)); };
  EXPECT_EQ(text(CreateReplicaRequest{"v", "r", 4096, false, ""}),
            R"({"volume":"v","replica":"r","size":4096})");
  EXPECT_EQ(text(CreateReplicaRequest{"v", "r", 4096, true, "f"}),
            R"({"volume":"v","replica":"r","owner":"f","size":4096,"rebuilding":true})");
  EXPECT_EQ(text(OpenReplicaRequest{"v", "r", 2, "f", true}),
            R"({"volume":"v","replica":"r","owner":"f","epoch":2,"take_over":true})");
  EXPECT_EQ(text(OpenReplicaRequest{"v", "r", 2, "", false}),
            R"({"volume":"v","replica":"r","epoch":2})");
  EXPECT_EQ(text(SnapshotRequest{"s", std::nullopt, false}),
            R"({"name":"s","user_created":false})");
  EXPECT_EQ(text(LayerExtentsRequest{"s", 0, std::nullopt}), R"({"name":"s","from":0})");
  EXPECT_EQ(text(LayerExtentsReply{{{0, 4096}}, std::nullopt}),
            R"({"extents":[[0,4096]],"next":null})");
  EXPECT_EQ(text(ChecksumReply{4096, {1}}), R"({"chunk":4096,"hashes":["0000000000000001"]})");
  EXPECT_EQ(text(ListReplicasReply{{}, false}), R"({"replicas":[]})");
}

TEST(ControlMessagesTest, ListReplicasIsCappedInCountAndBytes) {
  std::vector<ReplicaSummary> many(3, ReplicaSummary{"r", "v", 4096, 1, 0, false, false, "", {}});
  std::string all = EncodeListReplicasReply(many, 64, 1 << 20);
  EXPECT_EQ(Parse(all).at("replicas").as_array().size(), 3u);
  EXPECT_FALSE(Parse(all).contains("truncated"));
  std::string two = EncodeListReplicasReply(many, 2, 1 << 20);
  EXPECT_EQ(Parse(two).at("replicas").as_array().size(), 2u);
  EXPECT_EQ(Parse(two).at("truncated"), true);
  std::string small = EncodeListReplicasReply(many, 64, 300);
  EXPECT_LE(small.size(), 300u);
  EXPECT_EQ(Parse(small).at("truncated"), true);
}

TEST(ControlMessagesTest, RequestsRefuseBadFieldsNamingOpAndKey) {
  OpenReplicaRequest open;
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r"})"), &open),
                ErrorKind::kInvalidArgument,
                "open replica: field 'epoch' is missing or not an unsigned integer");
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r","epoch":"1"})"), &open),
                ErrorKind::kInvalidArgument,
                "open replica: field 'epoch' is missing or not an unsigned integer");
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r","epoch":-1})"), &open),
                ErrorKind::kInvalidArgument,
                "open replica: field 'epoch' is missing or not an unsigned integer");
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r","epoch":1,"take_over":1})"), &open),
                ErrorKind::kInvalidArgument, "open replica: field 'take_over' is not a boolean");
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r1","epoch":1,"owner":"F"})"), &open),
                ErrorKind::kInvalidArgument,
                "open replica r1: owner 'F': only [0-9a-z-] are allowed");

  CreateReplicaRequest create;
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r","size":1,"owner":7})"), &create),
                ErrorKind::kInvalidArgument, "create replica r: field 'owner' is not a string");
  ExpectRefused(Decode(Parse(R"({"volume":"v","replica":"r","size":1,"owner":""})"), &create),
                ErrorKind::kInvalidArgument, "create replica r: owner is empty");
  ExpectRefused(
      Decode(Parse(R"({"volume":"v","replica":"r","size":18446744073709551616})"), &create),
      ErrorKind::kInvalidArgument,
      "create replica: field 'size' is missing or not an unsigned integer");

  ListReplicasRequest list;
  ExpectRefused(Decode(Parse("{}"), &list), ErrorKind::kInvalidArgument,
                "list replicas: field 'volume' is missing or not a string");

  ChecksumRequest sum;
  ExpectRefused(Decode(Parse(R"({"offset":0,"length":1})"), &sum, "checksum replica r1"),
                ErrorKind::kInvalidArgument,
                "checksum replica r1: field 'chunk' is missing or not an unsigned integer");
  SnapshotRequest snap;
  ExpectRefused(Decode(Parse(R"({"name":"s","created":5})"), &snap), ErrorKind::kInvalidArgument,
                "snapshot replica: field 'created' is not a string");
  RebuildRequest rebuild;
  ExpectRefused(Decode(Parse(R"({"source":"h:1","source_volume":"v","source_replica":"r",)"
                             R"("source_epoch":1})"),
                       &rebuild),
                ErrorKind::kInvalidArgument,
                "rebuild replica: field 'snapshot' is missing or not a string");
  LayerExtentsRequest extents;
  ExpectRefused(Decode(Parse(R"({"name":"s","max":-4})"), &extents), ErrorKind::kInvalidArgument,
                "layer extents replica: field 'max' is not an unsigned integer");
  SnapshotNameRequest name;
  ExpectRefused(Decode(Parse(R"({"name":null})"), &name, "delete snapshot replica"),
                ErrorKind::kInvalidArgument,
                "delete snapshot replica: field 'name' is missing or not a string");
  ExpandRequest expand;
  ExpectRefused(Decode(Parse(R"({"size":1.5})"), &expand), ErrorKind::kInvalidArgument,
                "expand replica: field 'size' is missing or not an unsigned integer");
}

TEST(ControlMessagesTest, RepliesRefuseBadFieldsNamingPeerAndKey) {
  const std::string info_ctx = "replicad at h:1: bad REPLICAD_INFO reply";
  auto info = [&](std::string_view text) {
    ReplicadInfoReply m;
    return Decode(Parse(text), &m, info_ctx);
  };
  ExpectRefused(info(R"({"tags":[],"total_bytes":1,"free_bytes":1,"provisioned_bytes":0,)"
                     R"("replicas":0})"),
                ErrorKind::kProtocol, info_ctx + ": field 'host_id' is missing or not a string");
  ExpectRefused(info(R"({"host_id":"h","tags":[],"total_bytes":1,"free_bytes":2,)"
                     R"("provisioned_bytes":0,"replicas":0})"),
                ErrorKind::kProtocol,
                info_ctx + ": field 'free_bytes' (2) is above 'total_bytes' (1)");
  ExpectRefused(info(R"({"host_id":"h","tags":[],"total_bytes":1,"free_bytes":1,)"
                     R"("provisioned_bytes":0,"replicas":4294967296})"),
                ErrorKind::kProtocol,
                info_ctx + ": field 'replicas' (4294967296) is above 4294967295");
  ExpectRefused(info(R"({"host_id":"h","tags":["a","a"],"total_bytes":1,"free_bytes":1,)"
                     R"("provisioned_bytes":0,"replicas":0})"),
                ErrorKind::kProtocol, info_ctx + ": field 'tags': tag 'a' is given twice");

  LayerList layers;
  ExpectRefused(Decode(Parse(R"({"generation":"7"})"), &layers, "LIST_LAYERS on r1"),
                ErrorKind::kProtocol,
                "LIST_LAYERS on r1: field 'generation' is not an unsigned integer");
  ExpectRefused(Decode(Parse(R"({"snapshots":[{"parent":null}]})"), &layers, "LIST_LAYERS on r1"),
                ErrorKind::kProtocol, "LIST_LAYERS on r1: field 'name' is missing or not a string");
  ExpectRefused(Decode(Parse(R"({"snapshots":[{"name":"s1","size_held":-1}]})"), &layers,
                       "LIST_LAYERS on r1"),
                ErrorKind::kProtocol,
                "LIST_LAYERS on r1: snapshot s1: field 'size_held' is not an unsigned integer");
  // Fields older replicads did not send are optional.
  EXPECT_TRUE(Decode(Parse("{}"), &layers, "LIST_LAYERS on r1").ok());

  LayerExtentsReply page;
  ExpectRefused(Decode(Parse(R"({"next":null})"), &page, "LAYER_EXTENTS"), ErrorKind::kProtocol,
                "LAYER_EXTENTS: field 'extents' is missing or not an array");
  ExpectRefused(Decode(Parse(R"({"extents":[]})"), &page, "LAYER_EXTENTS"), ErrorKind::kProtocol,
                "LAYER_EXTENTS: field 'next' is missing");
  ExpectRefused(Decode(Parse(R"({"extents":[[1,-2]],"next":null})"), &page, "LAYER_EXTENTS"),
                ErrorKind::kProtocol, "LAYER_EXTENTS: a malformed extent [1,-2]");

  ChecksumReply sums;
  ExpectRefused(Decode(Parse(R"({"chunk":4096})"), &sums, "CHECKSUM"), ErrorKind::kProtocol,
                "CHECKSUM: no 'hashes' array");
  ExpectRefused(Decode(Parse(R"({"hashes":["0123456789ABCDEF"]})"), &sums, "CHECKSUM"),
                ErrorKind::kProtocol, "CHECKSUM: hash 0 is not 16 lowercase hex digits");

  ListReplicasReply list;
  ExpectRefused(Decode(Parse(R"({"replicas":[{"replica":"r"}]})"), &list, "list: bad reply"),
                ErrorKind::kProtocol,
                "list: bad reply: a replica lacks replica, volume, size, epoch, generation, "
                "rebuilding or open");
  // OPEN_REPLICA's reply alone is lenient: an odd field counts as absent.
  OpenReplicaReply open;
  EXPECT_TRUE(Decode(Parse(R"({"size":-1,"clean":"yes","generation":3})"), &open, "open r1").ok());
  EXPECT_FALSE(open.clean);
  EXPECT_EQ(open.size, 0u);
  EXPECT_EQ(open.generation, 3u);
}

// One message of every type, with every field away from its default: each
// encodes, decodes back to the same value (encoded again: the same bytes),
// and the decoder ignores a key it does not know.
TEST(ControlMessagesTest, EveryMessageRoundTripsThroughItsTable) {
  LayerList layers;
  layers.size = 1 << 20;
  layers.rebuilding = true;
  layers.head_parent = "s1";
  layers.snapshots.push_back(
      {"s1", std::nullopt, "t1", true, 8192, true, "5e18677ba94ab76c", true});
  layers.tasks.push_back({"verify", "s1", 1, 2});
  layers.verify = {VerifyPhase::kRunning, {"s1"}, 1};
  layers.rebuild = {RebuildPhase::kDone, "ok", 9};
  const auto all = std::tuple{
      CreateReplicaRequest{"v", "r", 4096, true, "f"},
      OpenReplicaRequest{"v", "r", 2, "f", true},
      HelloRequest{"v", "r", 3},
      CloseReplicaRequest{"v", "r", 4},
      DeleteReplicaRequest{"v", "r", 5, "f"},
      ListReplicasRequest{"v"},
      SnapshotRequest{"s", "2024-05-01T10:00:00Z", false},
      SnapshotNameRequest{"s"},
      ExpandRequest{8192},
      SetGenerationRequest{7},
      RebuildRequest{"h:1", "v", "r", 4, "s", 100},
      LayerExtentsRequest{"s", 4096, 8},
      ChecksumRequest{0, 8192, 4096},
      OpenReplicaReply{4096, 2, 3, true, true, "f"},
      HelloReply{4096},
      ReplicaSummary{"r", "v", 4096, 1, 2, true, true, "f", {"s1"}},
      ListReplicasReply{{{"r", "v", 4096, 1, 2, false, true, "", {}}}, true},
      ReplicadInfoReply{"h", "n", {"zone=a"}, 100, 50, 30, 2},
      layers,
      LayerExtentsReply{{{0, 4096}}, 4096},
      ChecksumReply{4096, {1, 2}},
  };
  static_assert(std::tuple_size_v<decltype(all)> ==
                boost::mp11::mp_size<detail::Requests>::value +
                    boost::mp11::mp_size<detail::Replies>::value);
  std::apply(
      [](const auto&... m) {
        auto check = [](const auto& message) {
          using T = std::decay_t<decltype(message)>;
          json::object o = ToObject(message);
          o["a_newer_key"] = "ignored";
          auto back = Decode<T>(o, "ctx");
          ASSERT_TRUE(back.ok()) << back.status().ToString();
          EXPECT_EQ(json::serialize(json::value_from(*back)), json::serialize(ToObject(message)));
        };
        (check(m), ...);
      },
      all);
}

// The policies of common/json_mapping.h, each on a struct of its own.
struct PolicyProbe {
  std::string required;
  uint64_t optional = 5;
  bool flag = false;
  std::optional<uint64_t> maybe;
  std::string lenient = "default";
};

auto ProbeFields() {
  using namespace json_mapping;
  using M = PolicyProbe;
  return std::tuple{Required("required", &M::required), Optional("optional", &M::optional),
                    SentIfSet("flag", &M::flag), SentIfSet("maybe", &M::maybe),
                    Lenient("lenient", &M::lenient)};
}

Status ReadProbe(std::string_view text, PolicyProbe* out) {
  return json_mapping::ReadObject(Parse(text), json_fields::ReplyContext("probe"), ProbeFields(),
                                  out);
}

std::string WriteProbe(const PolicyProbe& m) {
  return json::serialize(json_mapping::ToJsonObject(m, ProbeFields()));
}

TEST(JsonMappingTest, RequiredIsAnErrorWhenMissingOrMistyped) {
  PolicyProbe m;
  ExpectRefused(ReadProbe("{}", &m), ErrorKind::kProtocol,
                "probe: field 'required' is missing or not a string");
  ExpectRefused(ReadProbe(R"({"required":1})", &m), ErrorKind::kProtocol,
                "probe: field 'required' is missing or not a string");
  ASSERT_TRUE(ReadProbe(R"({"required":"x"})", &m).ok());
  EXPECT_EQ(m.required, "x");
  EXPECT_EQ(WriteProbe(PolicyProbe{}), R"({"required":"","optional":5,"lenient":"default"})");
}

TEST(JsonMappingTest, OptionalKeepsItsDefaultAndIsAlwaysSent) {
  PolicyProbe m;
  ASSERT_TRUE(ReadProbe(R"({"required":"x"})", &m).ok());
  EXPECT_EQ(m.optional, 5u);
  ASSERT_TRUE(ReadProbe(R"({"required":"x","optional":0})", &m).ok());
  EXPECT_EQ(m.optional, 0u);
  ExpectRefused(ReadProbe(R"({"required":"x","optional":-1})", &m), ErrorKind::kProtocol,
                "probe: field 'optional' is not an unsigned integer");
  EXPECT_EQ(m.optional, 0u);  // unchanged on error
  PolicyProbe zero;
  zero.optional = 0;
  EXPECT_NE(WriteProbe(zero).find(R"("optional":0)"), std::string::npos);
}

TEST(JsonMappingTest, SentIfSetOmitsFalseAndNullopt) {
  PolicyProbe m;
  EXPECT_EQ(WriteProbe(m).find("flag"), std::string::npos);
  EXPECT_EQ(WriteProbe(m).find("maybe"), std::string::npos);
  m.flag = true;
  m.maybe = 0;
  EXPECT_EQ(WriteProbe(m), R"({"required":"","optional":5,"flag":true,"maybe":0,)"
                           R"("lenient":"default"})");
  PolicyProbe back;
  ASSERT_TRUE(ReadProbe(WriteProbe(m), &back).ok());
  EXPECT_TRUE(back.flag);
  EXPECT_EQ(back.maybe, 0u);
  ASSERT_TRUE(ReadProbe(R"({"required":"x"})", &back).ok());
  EXPECT_FALSE(back.flag);
  EXPECT_FALSE(back.maybe.has_value());
  ExpectRefused(ReadProbe(R"({"required":"x","flag":"yes"})", &back), ErrorKind::kProtocol,
                "probe: field 'flag' is not a boolean");
  // The messages' owners: "" is not sent.
  EXPECT_FALSE(ToObject(DeleteReplicaRequest{"v", "r", 1, ""}).contains("owner"));
}

TEST(JsonMappingTest, LenientTakesAValueOfAnotherTypeAsAbsent) {
  PolicyProbe m;
  ASSERT_TRUE(ReadProbe(R"({"required":"x","lenient":7})", &m).ok());
  EXPECT_EQ(m.lenient, "default");
  ASSERT_TRUE(ReadProbe(R"({"required":"x","lenient":"set"})", &m).ok());
  EXPECT_EQ(m.lenient, "set");
  // OPEN_REPLICA's reply: every field so, and all sent.
  EXPECT_EQ(json::serialize(json::value_from(OpenReplicaReply{})),
            R"({"size":0,"epoch":0,"generation":0,"rebuilding":false,"clean":false,"owner":""})");
  OpenReplicaReply open;
  ASSERT_TRUE(Decode(Parse(R"({"epoch":"2","owner":5,"rebuilding":1})"), &open, "open").ok());
  EXPECT_EQ(open.epoch, 0u);
  EXPECT_EQ(open.owner, "");
  EXPECT_FALSE(open.rebuilding);
}

// A decoder leaves *out as it was when it refuses.
TEST(ControlMessagesTest, RefusedDecodeLeavesTheOutputAlone) {
  RebuildRequest r{"h:1", "v", "r", 4, "s", 100};
  EXPECT_FALSE(Decode(Parse(R"({"source":"h:2","source_volume":1})"), &r).ok());
  EXPECT_EQ(r.source, "h:1");
  LayerList l;
  l.size = 9;
  EXPECT_FALSE(Decode(Parse(R"({"size":1,"tasks":[1]})"), &l, "ctx").ok());
  EXPECT_EQ(l.size, 9u);
}

TEST(ControlMessagesTest, NestedObjectsNameTheirContext) {
  LayerList l;
  ExpectRefused(Decode(Parse(R"({"head":{"parent":1}})"), &l, "L"), ErrorKind::kProtocol,
                "L: head: field 'parent' is not a string or null");
  ExpectRefused(Decode(Parse(R"({"head":[]})"), &l, "L"), ErrorKind::kProtocol,
                "L: field 'head' is not an object");
  ExpectRefused(Decode(Parse(R"({"tasks":[{"op":1}]})"), &l, "L"), ErrorKind::kProtocol,
                "L: tasks: field 'op' is not a string");
  ExpectRefused(Decode(Parse(R"({"tasks":[3]})"), &l, "L"), ErrorKind::kProtocol,
                "L: tasks: a task is not an object");
  ExpectRefused(Decode(Parse(R"({"snapshots":[3]})"), &l, "L"), ErrorKind::kProtocol,
                "L: a snapshot is not an object");
  ExpectRefused(Decode(Parse(R"({"verify":{"bad":["a",2]}})"), &l, "L"), ErrorKind::kProtocol,
                "L: verify: field 'bad': element 1 is not a string");
  ExpectRefused(Decode(Parse(R"({"snapshots":[{"name":"s","checksum_state":1}]})"), &l, "L"),
                ErrorKind::kProtocol, "L: snapshot s: field 'checksum_state' is not a string");
  ListReplicasReply list;
  ExpectRefused(Decode(Parse(R"({"replicas":{}})"), &list, "L"), ErrorKind::kProtocol,
                "L: no 'replicas' array");
  ExpectRefused(Decode(Parse(R"({"replicas":[{"replica":"r","volume":"v","size":1,"epoch":1,)"
                             R"("generation":1,"rebuilding":false,"open":false,)"
                             R"("snapshots":[1]}]})"),
                       &list, "L"),
                ErrorKind::kProtocol, "L: a snapshot name is not a string");
  LayerExtentsReply page;
  ExpectRefused(Decode(Parse(R"({"extents":[],"next":"1"})"), &page, "L"), ErrorKind::kProtocol,
                "L: field 'next' is not an unsigned integer or null");
}

// Each phase: its wire name both ways, and in an encoded LayerList (the
// `key` object's "state") and back.
template <typename Phase, typename State>
void ExpectPhasesMap(const std::vector<std::pair<Phase, std::string>>& phases,
                     std::optional<Phase> (*parse)(std::string_view), State LayerList::*member,
                     const char* key) {
  for (const auto& [phase, name] : phases) {
    EXPECT_EQ(PhaseName(phase), name);
    EXPECT_EQ(parse(name), phase);
    LayerList layers;
    (layers.*member).state = phase;
    EXPECT_EQ(ToObject(layers).at(key).at("state").as_string(), name);
    EXPECT_EQ((RoundTrip(layers, "list layers").*member).state, phase);
  }
}

// The phases are enums inside and exactly today's strings on the wire; a
// string that names no phase is refused, naming the field.
TEST(ControlMessagesTest, PhasesMapToTheirWireStrings) {
  ExpectPhasesMap<VerifyPhase>({{VerifyPhase::kIdle, "idle"},
                                {VerifyPhase::kRunning, "running"},
                                {VerifyPhase::kDone, "done"}},
                               &ParseVerifyPhase, &LayerList::verify, "verify");
  ExpectPhasesMap<RebuildPhase>({{RebuildPhase::kIdle, "idle"},
                                 {RebuildPhase::kRunning, "running"},
                                 {RebuildPhase::kDone, "done"},
                                 {RebuildPhase::kFailed, "failed"}},
                                &ParseRebuildPhase, &LayerList::rebuild, "rebuild");
  EXPECT_EQ(ParseVerifyPhase("failed"), std::nullopt);
  EXPECT_EQ(ParseRebuildPhase("Done"), std::nullopt);

  LayerList layers;
  ExpectRefused(Decode(Parse(R"({"verify":{"state":"failed"}})"), &layers, "LIST_LAYERS on r1"),
                ErrorKind::kProtocol,
                "LIST_LAYERS on r1: verify: field 'state' is not one of idle, running, done");
  ExpectRefused(Decode(Parse(R"({"rebuild":{"state":"stopped"}})"), &layers, "LIST_LAYERS on r1"),
                ErrorKind::kProtocol,
                "LIST_LAYERS on r1: rebuild: field 'state' is not one of idle, running, done, "
                "failed");
  ExpectRefused(Decode(Parse(R"({"rebuild":{"state":3}})"), &layers, "LIST_LAYERS on r1"),
                ErrorKind::kProtocol, "LIST_LAYERS on r1: rebuild: field 'state' is not a string");
  // Absent: idle, as from replicads that sent no state.
  ASSERT_TRUE(Decode(Parse(R"({"verify":{},"rebuild":{}})"), &layers, "LIST_LAYERS on r1").ok());
  EXPECT_EQ(layers.verify.state, VerifyPhase::kIdle);
  EXPECT_EQ(layers.rebuild.state, RebuildPhase::kIdle);
}

}  // namespace
}  // namespace shorthorn::msg
