#include "common/names.h"

#include <gtest/gtest.h>

namespace shorthorn {
namespace {

TEST(NamesTest, AcceptsOrdinaryNames) {
  EXPECT_TRUE(ValidateName("volume", "db-1").ok());
  EXPECT_TRUE(ValidateName("volume", "a.b_c").ok());
  EXPECT_TRUE(ValidateName("volume", std::string(kMaxNameLength, 'x')).ok());
}

TEST(NamesTest, RejectsBadNamesWithReason) {
  EXPECT_NE(ValidateName("volume", "").message().find("empty"), std::string::npos);
  EXPECT_NE(ValidateName("volume", std::string(kMaxNameLength + 1, 'x')).message().find("longer"),
            std::string::npos);
  EXPECT_EQ(ValidateName("volume", "a/b").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateName("volume", "..").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateName("volume", "a..b").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateName("volume", ".hidden").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateName("volume", "sp ace").kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(ValidateName("volume", "a/b").message().find("volume name 'a/b'"), std::string::npos);
}

TEST(NamesTest, HostIds) {
  EXPECT_TRUE(ValidateHostId("3d1219c7c4c5404aaa1f6d2a48adfda4").ok());  // a machine-id
  EXPECT_TRUE(ValidateHostId("test-host-r1").ok());
  EXPECT_TRUE(ValidateHostId("Host_1.example").ok());
  EXPECT_TRUE(ValidateHostId(".-_").ok());  // only the characters are checked
  EXPECT_TRUE(ValidateHostId(std::string(64, 'h')).ok());

  Status empty = ValidateHostId("");
  EXPECT_EQ(empty.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(empty.message(), "host id is empty");
  Status long_id = ValidateHostId(std::string(65, 'h'));
  EXPECT_EQ(long_id.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(long_id.message().find("longer than 64 characters"), std::string::npos)
      << long_id.message();
  for (const char* bad : {"a b", "a/b", "a=b", "a:b", "h\n", "caf\xc3\xa9"}) {
    Status s = ValidateHostId(bad);
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::string("host id '") + bad + "'"), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("only letters, digits"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(ValidateHostId(std::string_view("a\0b", 3)).ok());
}

TEST(NamesTest, Tags) {
  for (const char* good : {"ssd", "zone=rack1", "zone=a.b-c_d", "K=V", "x=y", "a", "nvme.2"}) {
    EXPECT_TRUE(ValidateTag(good).ok()) << good << ": " << ValidateTag(good).message();
  }
  EXPECT_TRUE(ValidateTag(std::string(64, 't')).ok());
  EXPECT_TRUE(ValidateTag("k=" + std::string(62, 'v')).ok());

  EXPECT_EQ(ValidateTag("").message(), "tag is empty");
  EXPECT_NE(ValidateTag(std::string(65, 't')).message().find("longer than 64"), std::string::npos);
  EXPECT_NE(ValidateTag("k=" + std::string(63, 'v')).message().find("longer than 64"),
            std::string::npos);
  EXPECT_NE(ValidateTag("a=b=c").message().find("more than one '='"), std::string::npos);
  for (const char* half : {"=a", "a=", "="}) {
    Status s = ValidateTag(half);
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << half;
    EXPECT_NE(s.message().find("both a key and a value"), std::string::npos) << s.message();
  }
  Status list = ValidateTag("ssd,zone=a");
  EXPECT_NE(list.message().find("tag 'ssd,zone=a'"), std::string::npos) << list.message();
  EXPECT_NE(list.message().find("separated by spaces"), std::string::npos) << list.message();
  EXPECT_EQ(ValidateTag("ssd zone=a").kind(), ErrorKind::kInvalidArgument);
  for (const char* bad : {"a/b", "zone=a:b", "tag!", "t\tt"}) {
    Status s = ValidateTag(bad);
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("only letters, digits"), std::string::npos) << s.message();
  }
}

// A hostile value (REPLICAD_INFO from the network) is not quoted whole.
TEST(NamesTest, LongValuesAreCutInMessages) {
  std::string huge(1 << 20, '!');
  Status s = ValidateHostId(huge);
  EXPECT_LT(s.message().size(), 200u) << s.message().substr(0, 300);
  EXPECT_NE(s.message().find("(1048576 characters)"), std::string::npos);
  EXPECT_LT(ValidateTag(huge).message().size(), 200u);
}

}  // namespace
}  // namespace shorthorn
