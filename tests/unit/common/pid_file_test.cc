#include "common/pid_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>

namespace shorthorn {
namespace {

TEST(PidFileTest, OneHolderAtATimeAndItsPidIsWritten) {
  char dir[] = "/tmp/shorthorn-pidfile-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/fused.pid";
  std::optional<Result<PidFile>> first;
  first.emplace(PidFile::Lock(path));
  ASSERT_TRUE(first->ok()) << first->status().message();
  EXPECT_EQ(PidFile::Owner(path), getpid());
  // flock locks belong to the open file: a second open in this process is
  // refused like another process would be.
  auto second = PidFile::Lock(path, std::chrono::milliseconds(100));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().kind(), ErrorKind::kBusy);
  EXPECT_NE(second.status().message().find(std::to_string(getpid())), std::string::npos)
      << second.status().message();
  first.reset();  // released with its descriptor
  auto third = PidFile::Lock(path);
  EXPECT_TRUE(third.ok()) << third.status().message();
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace shorthorn
