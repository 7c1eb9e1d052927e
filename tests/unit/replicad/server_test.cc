// Server and Connection over real sockets: socketpairs and TCP loopback.
#include "replicad/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/frame_io.h"
#include "replicad/sync_io_engine.h"
#include "replicad/uring_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;

Status Send(int fd, wire::Op op, uint64_t id, uint64_t epoch, uint64_t offset, uint64_t length,
            std::string_view payload = {}) {
  auto bytes = wire::AsBytes(payload);
  return WriteFrame(fd, wire::MakeRequest(op, id, epoch, offset, length, bytes), bytes);
}

// Sends one request and reads its reply (no other requests outstanding).
Frame Roundtrip(int fd, wire::Op op, uint64_t id, uint64_t epoch, uint64_t offset, uint64_t length,
                std::string_view payload = {}) {
  EXPECT_TRUE(Send(fd, op, id, epoch, offset, length, payload).ok());
  auto reply = ReadFrame(fd);
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
  if (!reply.ok()) return {};
  EXPECT_TRUE(reply->header.is_reply());
  EXPECT_EQ(reply->header.request_id, id);
  return std::move(*reply);
}

void SetReceiveTimeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

class ServerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      auto uring = UringIoEngine::Create();
      if (!uring.ok()) GTEST_SKIP() << "io_uring unavailable: " << uring.status().message();
      engine_ = std::move(*uring);
    } else {
      engine_ = std::make_unique<SyncIoEngine>(4);
    }
    store_ = std::make_unique<ReplicaStore>(dir_.path(), engine_.get());
    handler_ = std::make_unique<RequestHandler>(store_.get());
    server_ = std::make_unique<Server>(handler_.get());
    ASSERT_TRUE(store_->Create("vol", "r1", 1 << 20).ok());
    ASSERT_TRUE(store_->Open("vol", "r1", 1).ok());
  }
  void TearDown() override {
    server_.reset();
    handler_.reset();
    store_.reset();
    engine_.reset();
  }

  // A connected socketpair end served by the server.
  UniqueFd AdoptPair(const std::string& name) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_->Adopt(UniqueFd(sv[1]), name);
    SetReceiveTimeout(sv[0], 10);
    return UniqueFd(sv[0]);
  }

  TempDir dir_;
  std::unique_ptr<IoEngine> engine_;
  std::unique_ptr<ReplicaStore> store_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<Server> server_;
};

TEST_P(ServerTest, MalformedFrameClosesOnlyThatConnection) {
  UniqueFd bad = AdoptPair("bad-peer");
  UniqueFd good = AdoptPair("good-peer");
  EXPECT_EQ(Roundtrip(good.get(), wire::Op::kPing, 1, 0, 0, 0).header.status, 0);

  uint8_t garbage[wire::kHeaderSize];
  std::memset(garbage, 0xab, sizeof(garbage));
  ASSERT_EQ(::write(bad.get(), garbage, sizeof(garbage)), static_cast<ssize_t>(sizeof(garbage)));
  uint8_t byte;
  EXPECT_EQ(::read(bad.get(), &byte, 1), 0);  // closed by the server

  // A bad checksum, and a request with the reply flag, also close.
  UniqueFd bad2 = AdoptPair("bad-checksum");
  std::string payload = R"({"volume":"vol","replica":"r1","epoch":1})";
  wire::Header h = wire::MakeRequest(wire::Op::kHello, 1, 0, 0, 0, wire::AsBytes(payload));
  h.payload_checksum ^= 1;
  ASSERT_TRUE(WriteFrame(bad2.get(), h, wire::AsBytes(payload)).ok());
  EXPECT_EQ(::read(bad2.get(), &byte, 1), 0);
  UniqueFd bad3 = AdoptPair("reply-flag");
  h = wire::MakeRequest(wire::Op::kPing, 1, 0, 0, 0, {});
  h.flags = wire::kFlagReply;
  ASSERT_TRUE(WriteFrame(bad3.get(), h, {}).ok());
  EXPECT_EQ(::read(bad3.get(), &byte, 1), 0);

  Frame hello = Roundtrip(good.get(), wire::Op::kHello, 2, 0, 0, 0, payload);
  EXPECT_EQ(hello.header.status, 0);
  EXPECT_EQ(Roundtrip(good.get(), wire::Op::kPing, 3, 1, 0, 0).header.status, 0);
}

// A client that sends reads and does not take the replies fills its socket:
// the replies an engine thread completes must then wait in the writer, not
// hold the engine thread, and still arrive whole and in order of bytes.
TEST_P(ServerTest, StalledReaderHoldsUpOnlyItsOwnConnection) {
  const std::string hello = R"({"volume":"vol","replica":"r1","epoch":1})";
  UniqueFd stalled = AdoptPair("stalled");
  UniqueFd good = AdoptPair("good");
  ASSERT_EQ(Roundtrip(stalled.get(), wire::Op::kHello, 1, 0, 0, 0, hello).header.status, 0);
  ASSERT_EQ(Roundtrip(good.get(), wire::Op::kHello, 1, 0, 0, 0, hello).header.status, 0);
  constexpr uint64_t kPiece = 256 << 10;
  std::string data(1 << 20, 0);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + i / 4096);
  for (uint64_t p = 0; p < 4; ++p) {
    Frame w = Roundtrip(stalled.get(), wire::Op::kWrite, 10 + p, 1, p * kPiece, kPiece,
                        std::string_view(data).substr(p * kPiece, kPiece));
    ASSERT_EQ(w.header.status, 0);
  }
  // 4 MiB of replies asked for, none read yet: far more than a socket holds.
  constexpr uint64_t kReads = 16;
  for (uint64_t id = 100; id < 100 + kReads; ++id) {
    ASSERT_TRUE(Send(stalled.get(), wire::Op::kRead, id, 1, (id % 4) * kPiece, kPiece).ok());
  }
  ::usleep(200 * 1000);  // let the engine complete what it can
  // Another connection on the same engine is served meanwhile.
  Frame w = Roundtrip(good.get(), wire::Op::kWrite, 2, 1, 0, 4096, data.substr(0, 4096));
  EXPECT_EQ(w.header.status, 0);
  Frame r = Roundtrip(good.get(), wire::Op::kRead, 3, 1, kPiece, kPiece);
  ASSERT_EQ(r.header.status, 0);
  EXPECT_EQ(std::string(r.payload.begin(), r.payload.end()), data.substr(kPiece, kPiece));
  // Now the stalled client reads: every reply whole, with its data.
  std::map<uint64_t, int> answered;
  for (uint64_t i = 0; i < kReads; ++i) {
    auto reply = ReadFrame(stalled.get());
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ASSERT_EQ(reply->header.status, 0);
    uint64_t id = reply->header.request_id;
    ++answered[id];
    EXPECT_EQ(std::string(reply->payload.begin(), reply->payload.end()),
              data.substr((id % 4) * kPiece, kPiece))
        << id;
  }
  EXPECT_EQ(answered.size(), kReads);
}

// 64 pipelined writes then 64 reads on one connection: each answered once,
// by id, with the data written; then a flush and an out-of-range read.
void ExercisePipelined(int fd) {
  SetReceiveTimeout(fd, 10);

  Frame hello = Roundtrip(fd, wire::Op::kHello, 1000, 0, 0, 0,
                          R"({"volume":"vol","replica":"r1","epoch":1})");
  ASSERT_EQ(hello.header.status, 0);

  constexpr int kWrites = 64;
  constexpr uint64_t kLen = 12288;
  std::map<uint64_t, std::string> data;  // request id -> data at offset (id-1)*kLen
  for (uint64_t id = 1; id <= kWrites; ++id) {
    std::string d(kLen, static_cast<char>('A' + id % 26));
    d[0] = static_cast<char>(id);
    ASSERT_TRUE(Send(fd, wire::Op::kWrite, id, 1, (id - 1) * kLen, kLen, d).ok());
    data[id] = d;
  }
  std::map<uint64_t, int> answered;
  for (int i = 0; i < kWrites; ++i) {
    auto reply = ReadFrame(fd);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(reply->header.op, wire::Op::kWrite);
    EXPECT_EQ(reply->header.status, 0);
    ++answered[reply->header.request_id];
  }
  ASSERT_EQ(answered.size(), static_cast<size_t>(kWrites));
  for (const auto& [id, n] : answered) EXPECT_EQ(n, 1) << id;

  for (uint64_t id = 1; id <= kWrites; ++id) {
    ASSERT_TRUE(Send(fd, wire::Op::kRead, 100 + id, 1, (id - 1) * kLen, kLen).ok());
  }
  for (int i = 0; i < kWrites; ++i) {
    auto reply = ReadFrame(fd);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ASSERT_EQ(reply->header.status, 0);
    uint64_t id = reply->header.request_id - 100;
    ASSERT_TRUE(data.count(id));
    EXPECT_EQ(std::string(reply->payload.begin(), reply->payload.end()), data[id]) << id;
  }
  EXPECT_EQ(Roundtrip(fd, wire::Op::kFlush, 2000, 1, 0, 0).header.status, 0);
  Frame beyond = Roundtrip(fd, wire::Op::kRead, 2001, 1, 1 << 20, 1);
  EXPECT_EQ(beyond.header.status, EINVAL);
  EXPECT_FALSE(beyond.payload.empty());
}

TEST_P(ServerTest, PipelinedRequestsOverTcpAreAnsweredById) {
  ASSERT_TRUE(server_->Start("127.0.0.1", 0).ok());
  ASSERT_NE(server_->port(), 0);
  EXPECT_EQ(server_->socket_path(), "");  // no socket-dir given
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ExercisePipelined(fd.get());
}

// With a socket directory, a loopback listener also serves <dir>/<port>.sock
// (made with its directory, open to every local user), and Stop removes it.
TEST_P(ServerTest, LoopbackListenerAlsoServesItsUnixSocket) {
  TempDir sockets;
  const std::string dir = sockets.path() + "/run";
  ASSERT_TRUE(server_->Start("127.0.0.1", 0, dir).ok());
  const std::string path = dir + "/" + std::to_string(server_->port()) + ".sock";
  ASSERT_EQ(server_->socket_path(), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ExercisePipelined(fd.get());
  fd.Reset();
  server_->Stop();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << " is left after Stop";
}

INSTANTIATE_TEST_SUITE_P(Engines, ServerTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "IoUring" : "Sync"; });

}  // namespace
}  // namespace shorthorn::replicad
