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

}  // namespace
}  // namespace shorthorn
