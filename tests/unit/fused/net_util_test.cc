// Which replica addresses fused tries to reach through a local replicad's
// Unix socket, and that a missing socket is an error (so it falls back to
// TCP) rather than a hang.
#include "fused/engine/net_util.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace shorthorn::fused {
namespace {

TEST(LocalSocketPathTest, OnlyLoopbackAddressesWithADirectory) {
  EXPECT_EQ(LocalSocketPath("127.0.0.1:9500", "/run/r"), "/run/r/9500.sock");
  EXPECT_EQ(LocalSocketPath("127.8.9.10:1", "/run/r"), "/run/r/1.sock");
  EXPECT_EQ(LocalSocketPath("localhost:9501", "/run/r"), "/run/r/9501.sock");
  EXPECT_EQ(LocalSocketPath("[::1]:9502", "/run/r"), "/run/r/9502.sock");
  EXPECT_EQ(LocalSocketPath("10.0.0.7:9500", "/run/r"), "");
  EXPECT_EQ(LocalSocketPath("128.0.0.1:9500", "/run/r"), "");
  EXPECT_EQ(LocalSocketPath("storage-2:9500", "/run/r"), "");
  EXPECT_EQ(LocalSocketPath("127.0.0.1:9500", ""), "");
  EXPECT_EQ(LocalSocketPath("127.0.0.1", "/run/r"), "");  // no port: not an address
}

TEST(ConnectUnixTest, MissingSocketIsENOENT) {
  auto fd = ConnectUnix("/nonexistent-shorthorn-dir/9500.sock", std::chrono::seconds(1));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().sys_errno(), ENOENT);
  EXPECT_NE(fd.status().message().find("/nonexistent-shorthorn-dir/9500.sock"), std::string::npos);
}

}  // namespace
}  // namespace shorthorn::fused
