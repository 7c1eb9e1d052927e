// RebuildTask: the state LIST_LAYERS reports before, during and after a
// rebuild, one rebuild at a time, and Stop cancelling the running one and
// refusing later ones. The sources here never answer (a port nobody
// listens on, a listener that never accepts); rebuild_test.cc copies from
// a real one.
#include "replicad/core/replica_rebuild.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "common/file_util.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;

// A loopback TCP socket bound to a free port; listening when asked (it
// never accepts: a connection stays waiting for the handshake).
struct Loopback {
  explicit Loopback(bool listen) : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(fd.get(), 4), 0);
    }
  }
  UniqueFd fd;
  uint16_t port = 0;
};

class RebuildTaskTest : public ::testing::Test {
 protected:
  RebuildRequest Request(uint16_t port) {
    return RebuildRequest{"127.0.0.1:" + std::to_string(port), "vol", "src", 1, "s1", 0};
  }
  RebuildTarget Target() {
    RebuildTarget t;
    t.dir = dir_.path();
    t.replica = "r1";
    t.size = 1 << 20;
    t.first_id = 2;
    return t;
  }
  RebuildOptions Options() {
    RebuildOptions o;
    // The silent source holds a connect (its handshake) this long at most:
    // Stop cancels the pull once it has connected, or when that gives up.
    o.io_timeout_ms = 3000;
    o.cluster_key = testing::TestKey();
    return o;
  }

  TempDir dir_;
  std::atomic<int> links_{0};
  RebuildTask task_{"replica r1", /*rebuilding=*/true,
                    [this](const std::string&, const std::vector<LayerMeta>&) {
                      ++links_;
                      return Status::Ok();
                    }};
};

TEST_F(RebuildTaskTest, IdleUntilStartedThenFailedWhenTheSourceIsGone) {
  msg::RebuildState idle = task_.report().state;
  EXPECT_EQ(idle.state, msg::RebuildPhase::kIdle);
  EXPECT_NE(idle.message.find("send REBUILD"), std::string::npos) << idle.message;
  EXPECT_EQ(task_.report().task, std::nullopt);
  EXPECT_TRUE(task_.CheckIdle("rebuild").ok());

  uint16_t port = Loopback(/*listen=*/false).port;  // closed again: refused
  ASSERT_TRUE(task_.Start(Request(port), Target(), Options(), "rebuild").ok());
  task_.Wait();
  msg::RebuildState failed = task_.report().state;
  EXPECT_EQ(failed.state, msg::RebuildPhase::kFailed);
  EXPECT_FALSE(failed.message.empty());
  EXPECT_EQ(task_.report().task, std::nullopt);
  EXPECT_EQ(links_.load(), 0);
  // Another may start after a failed one.
  EXPECT_TRUE(task_.CheckIdle("rebuild").ok());
}

TEST_F(RebuildTaskTest, OneAtATimeAndStopCancelsAndRefusesMore) {
  Loopback source(/*listen=*/true);
  ASSERT_TRUE(task_.Start(Request(source.port), Target(), Options(), "rebuild").ok());
  RebuildTask::Report report = task_.report();
  EXPECT_EQ(report.state.state, msg::RebuildPhase::kRunning);
  auto running = report.task;
  ASSERT_TRUE(running.has_value());
  EXPECT_EQ(running->op, "rebuild");
  EXPECT_EQ(running->name, "src");
  EXPECT_EQ(task_.CheckIdle("rebuild").sys_errno(), EBUSY);
  Status second = task_.Start(Request(source.port), Target(), Options(), "rebuild r1");
  EXPECT_EQ(second.sys_errno(), EBUSY);
  EXPECT_EQ(second.message(), "rebuild r1: a rebuild from replica src is running");

  task_.Stop();  // cancels the pull waiting on the silent source
  EXPECT_EQ(task_.report().state.state, msg::RebuildPhase::kFailed);
  EXPECT_EQ(links_.load(), 0);
  EXPECT_EQ(task_.CheckIdle("rebuild").sys_errno(), ESHUTDOWN);
  EXPECT_EQ(task_.Start(Request(source.port), Target(), Options(), "rebuild").sys_errno(),
            ESHUTDOWN);
  task_.Wait();  // nothing runs
}

}  // namespace
}  // namespace shorthorn::replicad
