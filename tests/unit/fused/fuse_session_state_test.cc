#include "fused/core/fuse_session_state.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace shorthorn::fused {
namespace {

FuseSessionState Sample() {
  FuseSessionState s;
  s.mount_device = "0:53";
  s.init = {7, 44, 131072, 0xfbfffffbu, kFuseHasResendFlag2 | 0x3};
  s.max_write = 1 << 20;
  s.next_ino = 5;
  s.volumes["db"] = {2, 1ull << 30};
  s.volumes["logs.1"] = {4, 4096};
  return s;
}

// Replaces the first `from` in Sample()'s encoding by `to`.
std::string Edited(const std::string& from, const std::string& to) {
  std::string text = EncodeSessionState(Sample());
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from << " in " << text;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

TEST(SessionStateTest, RoundTripsEveryField) {
  auto back = DecodeSessionState(EncodeSessionState(Sample()));
  ASSERT_TRUE(back.ok()) << back.status().message();
  const FuseSessionState want = Sample();
  EXPECT_EQ(back->mount_device, want.mount_device);
  EXPECT_EQ(back->init.major, 7u);
  EXPECT_EQ(back->init.minor, 44u);
  EXPECT_EQ(back->init.max_readahead, 131072u);
  EXPECT_EQ(back->init.flags, 0xfbfffffbu);
  EXPECT_EQ(back->init.flags2, want.init.flags2);
  EXPECT_EQ(back->max_write, 1u << 20);
  EXPECT_EQ(back->next_ino, 5u);
  ASSERT_EQ(back->volumes.size(), 2u);
  EXPECT_EQ(back->volumes.at("db").ino, 2u);
  EXPECT_EQ(back->volumes.at("db").size, 1ull << 30);
  EXPECT_EQ(back->volumes.at("logs.1").ino, 4u);
  EXPECT_TRUE(back->kernel_can_resend());
}

TEST(SessionStateTest, ResendNeedsItsFlag) {
  FuseSessionState s = Sample();
  s.init.flags2 = 0x3;
  EXPECT_FALSE(s.kernel_can_resend());
  s.init.flags2 = 1u << 7;  // FUSE_HAS_RESEND is bit 39 of the 64-bit flags
  EXPECT_TRUE(s.kernel_can_resend());
}

TEST(SessionStateTest, RefusesWhatIsOutOfRange) {
  struct Case {
    std::string from, to, why;
  };
  const Case cases[] = {
      {"\"format\":1", "\"format\":2", "unknown format"},
      {"\"minor\":44", "\"minor\":35", "7.36 or later"},
      {"\"major\":7", "\"major\":8", "7.36 or later"},
      {"\"max_write\":1048576", "\"max_write\":0", "max_write"},
      {"\"max_write\":1048576", "\"max_write\":33554432", "max_write"},
      {"\"next_ino\":5", "\"next_ino\":4", "inode 4"},
      {"\"next_ino\":5", "\"next_ino\":1", "next_ino"},
      {"{\"ino\":4", "{\"ino\":2", "share inode 2"},
      {"{\"ino\":2", "{\"ino\":1", "inode 1"},
      {"\"logs.1\"", "\"../x\"", "../x"},
      {"\"mount_device\":\"0:53\"", "\"mount_device\":\"\"", "mount_device"},
      {"\"minor\":44", "\"minor\":-1", "FUSE session state"},
      {"\"flags2\":", "\"flags3\":", "FUSE session state"},
      {"\"size\":4096", "\"size\":\"4096\"", "FUSE session state"},
  };
  for (const auto& c : cases) {
    auto got = DecodeSessionState(Edited(c.from, c.to));
    ASSERT_FALSE(got.ok()) << c.to;
    EXPECT_EQ(got.status().kind(), ErrorKind::kInvalidArgument) << c.to;
    EXPECT_NE(got.status().message().find(c.why), std::string::npos)
        << c.to << ": " << got.status().message();
  }
  EXPECT_FALSE(DecodeSessionState("").ok());
  EXPECT_FALSE(DecodeSessionState("[]").ok());
  EXPECT_FALSE(DecodeSessionState(EncodeSessionState(Sample()).substr(0, 40)).ok());
}

TEST(SessionStateTest, SavesAndLoads) {
  char dir[] = "/tmp/shorthorn-session-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/fuse-session.json";
  auto missing = LoadSessionState(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().kind(), ErrorKind::kNotFound);
  ASSERT_TRUE(SaveSessionState(path, Sample()).ok());
  auto back = LoadSessionState(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->volumes.size(), 2u);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace shorthorn::fused
