// ReplicaMeta: replica.json's encoding, its format 1 upgrade, and the
// checks of what it holds (owner included).
#include "replicad/core/replica_meta.h"

#include <gtest/gtest.h>

#include <string>

#include "common/control_messages.h"

namespace shorthorn::replicad {
namespace {

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

}  // namespace
}  // namespace shorthorn::replicad
