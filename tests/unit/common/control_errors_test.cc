// What an error about a peer's message may quote of it: an excerpt
// (json_fields::Excerpt), so that a hostile replicad or fused cannot make an
// error, and the log line that carries it, as long as the message.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

#include "common/control_messages.h"
#include "common/json_fields.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;

json::object Parse(const std::string& text) { return json::parse(text).as_object(); }

TEST(ExcerptTest, KeepsShortTextAndCutsLongTextAtACharacter) {
  using json_fields::Excerpt;
  EXPECT_EQ(Excerpt(""), "");
  EXPECT_EQ(Excerpt(std::string(64, 'a')), std::string(64, 'a'));
  EXPECT_EQ(Excerpt(std::string(65, 'a')), std::string(64, 'a') + "...");
  // "é" is two bytes: a cut at byte 4 of "abcé..." would split it.
  EXPECT_EQ(Excerpt("abc\xC3\xA9xyz", 4), "abc...");
  EXPECT_EQ(Excerpt("abc\xC3\xA9xyz", 5), "abc\xC3\xA9...");
}

TEST(ControlErrorsTest, ALongSnapshotNameIsQuotedShort) {
  const std::string name(5000, 'n');
  LayerList m;
  Status s = Decode(Parse(R"({"snapshots":[{"name":")" + name + R"(","parent":1}]})"), &m, "peer");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kProtocol);
  EXPECT_LT(s.message().size(), 200u) << s.message().substr(0, 300);
  EXPECT_NE(s.message().find("snapshot " + std::string(64, 'n') + "...: field 'parent'"),
            std::string::npos)
      << s.message().substr(0, 300);
}

TEST(ControlErrorsTest, AMalformedExtentIsQuotedShort) {
  std::string big = "[";
  for (int i = 0; i < 2000; ++i) big += "1,";
  big += "1]";
  LayerExtentsReply m;
  Status s = Decode(Parse(R"({"extents":[)" + big + R"(],"next":null})"), &m, "peer");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kProtocol);
  EXPECT_LT(s.message().size(), 200u) << s.message().substr(0, 300);
  EXPECT_NE(s.message().find("a malformed extent [1,1,1"), std::string::npos) << s.message();
}

TEST(ControlErrorsTest, ALongReplicaNameBeforeABadOwnerIsQuotedShort) {
  const std::string replica(5000, 'r');
  OpenReplicaRequest m;
  Status s =
      Decode(Parse(R"({"volume":"v","replica":")" + replica + R"(","epoch":1,"owner":"BAD"})"), &m);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u) << s.message().substr(0, 300);
  EXPECT_NE(s.message().find("owner 'BAD'"), std::string::npos) << s.message();
}

TEST(ControlErrorsTest, AHugeArrayFailsAtItsFirstBadElement) {
  // 200k elements, the first one bad: refused, the output untouched.
  std::string many = R"({"replicas":[0)";
  for (int i = 0; i < 200000; ++i) many += ",0";
  many += "]}";
  ListReplicasReply m;
  Status s = Decode(Parse(many), &m, "peer");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kProtocol);
  EXPECT_TRUE(m.replicas.empty());
}

}  // namespace
}  // namespace shorthorn::msg
