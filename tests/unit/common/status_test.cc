#include "common/status.h"

#include <gtest/gtest.h>

namespace shorthorn {
namespace {

TEST(StatusTest, ErrnoMapsToKindAndBack) {
  Status s = ErrnoStatus(ENOENT, "open replica r1");
  EXPECT_EQ(s.kind(), ErrorKind::kNotFound);
  EXPECT_EQ(s.sys_errno(), ENOENT);
  EXPECT_NE(s.message().find("open replica r1: "), std::string::npos);
  EXPECT_EQ(ErrnoStatus(ENOSPC, "write").kind(), ErrorKind::kNoSpace);
  EXPECT_EQ(ErrnoStatus(ECONNREFUSED, "connect").kind(), ErrorKind::kUnavailable);
}

TEST(StatusTest, KindWithoutErrnoStillHasOne) {
  EXPECT_EQ(Status(ErrorKind::kBusy, "x").sys_errno(), EBUSY);
  EXPECT_EQ(Status(ErrorKind::kFailed, "x").sys_errno(), EIO);
  EXPECT_EQ(Status().sys_errno(), 0);
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  Result<int> good(5);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 5);
  Result<int> bad(Status(ErrorKind::kNotFound, "volume v: not found"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().WithContext("attach").message(), "attach: volume v: not found");
}

}  // namespace
}  // namespace shorthorn
