// The fused id: made once, read back unchanged, and a damaged file is an
// error rather than a new id (which would disown the replicas).
#include "fused/core/fused_id.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace shorthorn::fused {
namespace {

class FusedIdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fused-id-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink((dir_ + "/fused-id").c_str());
    ::rmdir(dir_.c_str());
  }
  void Write(const std::string& text) { std::ofstream(dir_ + "/fused-id") << text; }
  std::string dir_;
};

TEST_F(FusedIdTest, MadeOnceThenReadBack) {
  auto first = LoadOrCreateFusedId(dir_);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 32u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos) << *first;
  auto again = LoadOrCreateFusedId(dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
}

TEST_F(FusedIdTest, TwoStateDirectoriesGetDifferentIds) {
  auto a = LoadOrCreateFusedId(dir_);
  ASSERT_TRUE(a.ok());
  ::unlink((dir_ + "/fused-id").c_str());
  auto b = LoadOrCreateFusedId(dir_);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
}

TEST_F(FusedIdTest, DamagedFileIsAnErrorNotANewId) {
  for (const std::string bad :
       {"", "\n", "0123456789abcdef0123456789abcde\n", "0123456789ABCDEF0123456789abcdef\n",
        "0123456789abcdef0123456789abcdef0\n", "../../etc/passwd"}) {
    Write(bad);
    auto id = LoadOrCreateFusedId(dir_);
    ASSERT_FALSE(id.ok()) << "'" << bad << "' accepted as " << *id;
    EXPECT_EQ(id.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(id.status().message().find("fused-id"), std::string::npos);
  }
  Write("0123456789abcdef0123456789abcdef\n");
  auto id = LoadOrCreateFusedId(dir_);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "0123456789abcdef0123456789abcdef");
}

}  // namespace
}  // namespace shorthorn::fused
