// Server and Connection over real sockets: socketpairs and TCP loopback.
#include "replicad/net/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/auth.h"
#include "common/frame_io.h"
#include "common/net.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/io/uring_io_engine.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;
using testing::TestKey;
using testing::TestServerOptions;

Status Send(int fd, wire::Op op, uint64_t id, uint64_t epoch, uint64_t offset, uint64_t length,
            std::string_view payload = {}) {
  auto bytes = wire::AsBytes(payload);
  return WriteFrame(fd, wire::MakeRequest(op, id, epoch, offset, length, bytes), bytes);
}

// Sends one request and returns its reply frame, whatever its status
// (common/net.h's Exchange; no other requests outstanding).
Frame Roundtrip(int fd, wire::Op op, uint64_t id, uint64_t epoch, uint64_t offset, uint64_t length,
                std::string_view payload = {}) {
  auto bytes = wire::AsBytes(payload);
  auto reply =
      Exchange(fd, "server", wire::MakeRequest(op, id, epoch, offset, length, bytes), bytes);
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
  if (!reply.ok()) return {};
  return std::move(*reply);
}

constexpr std::chrono::seconds kIoTimeout{10};

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
    server_ = std::make_unique<Server>(handler_.get(), options_);
    ASSERT_TRUE(store_->Create("vol", "r1", 1 << 20).ok());
    ASSERT_TRUE(store_->Open("vol", "r1", 1).ok());
  }
  void TearDown() override {
    server_.reset();
    handler_.reset();
    store_.reset();
    engine_.reset();
  }

  // A connected socketpair end served by the server, authenticated unless
  // `authenticate` is false.
  UniqueFd AdoptPair(const std::string& name, bool authenticate = true) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_->Adopt(UniqueFd(sv[1]), name);
    SetIoTimeouts(sv[0], kIoTimeout);
    if (authenticate) {
      Status s = auth::ClientHandshake(sv[0], *TestKey(), name);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return UniqueFd(sv[0]);
  }
  // Restarts the server with other options.
  void Restart(ServerOptions options) {
    server_.reset();
    options_ = std::move(options);
    server_ = std::make_unique<Server>(handler_.get(), options_);
  }

  ServerOptions options_ = TestServerOptions();
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
  SetIoTimeouts(fd, kIoTimeout);

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
  auto fd = ConnectTcp("127.0.0.1:" + std::to_string(server_->port()), kIoTimeout, kIoTimeout);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_TRUE(auth::ClientHandshake(fd->get(), *TestKey(), "server").ok());
  ExercisePipelined(fd->get());
}

// Frames the server finds in one read: with io_uring their writes wait in
// the reader's SubmitBatch. A second write to the same blocks waits for
// the first one's range lock, and a snapshot for the writes in flight;
// both must hand the held writes to the kernel first, or the connection
// hangs.
TEST_P(ServerTest, FramesInOneReadThatWaitOnEachOtherAreAllAnswered) {
  UniqueFd fd = AdoptPair("batched");
  ASSERT_EQ(Roundtrip(fd.get(), wire::Op::kHello, 1, 0, 0, 0,
                      R"({"volume":"vol","replica":"r1","epoch":1})")
                .header.status,
            0);
  const std::string a(4096, 'a'), b(4096, 'b'), c(4096, 'c'), d(4096, 'd');
  const std::string snap = R"({"name":"s1","created":"2026-12-07T10:00:00Z"})";
  std::vector<OutFrame> frames;
  auto add = [&](wire::Op op, uint64_t id, uint64_t offset, uint64_t length,
                 const std::string& payload) {
    auto bytes = wire::AsBytes(payload);
    frames.push_back({wire::MakeRequest(op, id, 1, offset, length, bytes), bytes});
  };
  add(wire::Op::kWrite, 10, 0, 4096, a);
  add(wire::Op::kWrite, 11, 4096, 4096, c);
  add(wire::Op::kWrite, 12, 0, 4096, b);  // the same blocks as 10
  add(wire::Op::kSnapshot, 13, 0, 0, snap);
  add(wire::Op::kWrite, 14, 4096, 4096, d);  // after the snapshot
  add(wire::Op::kWrite, 15, 8192, 4096, a);
  auto* uring = dynamic_cast<UringIoEngine*>(engine_.get());
  const uint64_t held_before = uring != nullptr ? uring->held_total() : 0;
  ASSERT_TRUE(WriteFrames(fd.get(), frames).ok());
  std::map<uint64_t, int32_t> status;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto reply = ReadFrame(fd.get());
    ASSERT_TRUE(reply.ok()) << reply.status().ToString() << " after " << i << " replies";
    status[reply->header.request_id] = reply->header.status;
  }
  for (uint64_t id = 10; id <= 15; ++id) EXPECT_EQ(status[id], 0) << id;
  // With io_uring, writes were held (one read brought them all): the case
  // this test is about happened.
  if (uring != nullptr) {
    EXPECT_GE(uring->held_total() - held_before, 2u);
  }
  Frame read = Roundtrip(fd.get(), wire::Op::kRead, 20, 1, 0, 12288);
  ASSERT_EQ(read.header.status, 0);
  EXPECT_EQ(std::string(read.payload.begin(), read.payload.end()), b + d + a);
  Frame old = Roundtrip(fd.get(), wire::Op::kReadSnapshotView, 21, 1, 0, 8192, R"({"name":"s1"})");
  ASSERT_EQ(old.header.status, 0) << std::string(old.payload.begin(), old.payload.end());
  EXPECT_EQ(std::string(old.payload.begin(), old.payload.end()), b + c);
}

// With a socket directory, a loopback listener also serves <dir>/<port>.sock
// (made with its directory, mode 0660), and Stop removes it.
TEST_P(ServerTest, LoopbackListenerAlsoServesItsUnixSocket) {
  TempDir sockets;
  const std::string dir = sockets.path() + "/run";
  ASSERT_TRUE(server_->Start("127.0.0.1", 0, dir).ok());
  const std::string path = ReplicadSocketPath(dir, server_->port());
  ASSERT_EQ(path, dir + "/" + std::to_string(server_->port()) + ".sock");
  ASSERT_EQ(server_->socket_path(), path);
  // fused finds it from the TCP address alone.
  EXPECT_EQ(LocalSocketPath("127.0.0.1:" + std::to_string(server_->port()), dir), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  auto fd = ConnectUnix(path, kIoTimeout);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_TRUE(auth::ClientHandshake(fd->get(), *TestKey(), path).ok());
  ExercisePipelined(fd->get());
  fd->Reset();
  server_->Stop();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << " is left after Stop";
}

// Reads until EOF (or error); the bytes before it.
std::string ReadToEnd(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Before authenticating, a request of any kind gets EACCES and the
// connection closes; the 4 MiB payload a WRITE header announces is never
// read (the server answers after the 64 header bytes).
TEST_P(ServerTest, RequestsBeforeAuthenticationAreRefused) {
  const std::string hello = R"({"volume":"vol","replica":"r1","epoch":1})";
  for (wire::Op op : {wire::Op::kHello, wire::Op::kWrite, wire::Op::kPing}) {
    UniqueFd fd = AdoptPair("early", /*authenticate=*/false);
    wire::Header h;
    if (op == wire::Op::kWrite) {
      h = wire::MakeRequest(op, 7, 1, 0, 4 << 20, {});
      h.payload_length = 4 << 20;  // announced, never sent
      h.payload_checksum = 1;
      uint8_t raw[wire::kHeaderSize];
      wire::EncodeHeader(h, raw);
      ASSERT_EQ(::write(fd.get(), raw, sizeof(raw)), static_cast<ssize_t>(sizeof(raw)));
    } else {
      ASSERT_TRUE(Send(fd.get(), op, 7, 1, 0, 0, op == wire::Op::kHello ? hello : "").ok());
    }
    auto reply = ReadFrame(fd.get());
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(reply->header.status, EACCES);
    std::string message(reply->payload.begin(), reply->payload.end());
    EXPECT_NE(message.find("has not authenticated"), std::string::npos) << message;
    EXPECT_EQ(ReadToEnd(fd.get()), "");  // closed
  }
  EXPECT_EQ(store_->Find("vol", "r1").ok(), true);
}

// A client with another key: the server's proof does not match, so the
// client stops before sending its own (it learns nothing it could use).
// A client that sends a wrong proof gets EACCES and the connection closes.
TEST_P(ServerTest, AWrongKeyIsRefusedBothWays) {
  UniqueFd fd = AdoptPair("other-key", /*authenticate=*/false);
  auto other = auth::ClusterKey::FromHex(std::string(64, '6'), "other");
  ASSERT_TRUE(other.ok());
  Status s = auth::ClientHandshake(fd.get(), *other, "server");
  EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized) << s.ToString();
  EXPECT_NE(s.message().find("did not prove it holds the cluster key"), std::string::npos);

  UniqueFd forger = AdoptPair("forger", /*authenticate=*/false);
  auth::Nonce nonce = auth::RandomNonce();
  Frame challenge = Roundtrip(forger.get(), wire::Op::kAuthChallenge, 1, 0, 0, 0,
                              std::string_view(reinterpret_cast<char*>(nonce.data()), 32));
  ASSERT_EQ(challenge.header.status, 0);
  ASSERT_EQ(challenge.payload.size(), 64u);
  std::string guess(32, 'x');
  Frame refused = Roundtrip(forger.get(), wire::Op::kAuthProof, 2, 0, 0, 0, guess);
  EXPECT_EQ(refused.header.status, EACCES);
  EXPECT_EQ(ReadToEnd(forger.get()), "");
  fd.Reset();  // the refused client hangs up; both connections end
  for (int i = 0; i < 100 && server_->connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server_->connections(), 0u);
}

// A version 1 client (before authentication existed) gets an error reply in
// its own framing that names both versions, then the connection closes.
TEST_P(ServerTest, AnOldClientIsToldBothVersions) {
  UniqueFd fd = AdoptPair("old", /*authenticate=*/false);
  std::string open = R"({"volume":"vol","replica":"r1","epoch":1})";
  wire::Header h = wire::MakeRequest(wire::Op::kOpenReplica, 3, 1, 0, 0, wire::AsBytes(open));
  h.version = 1;
  ASSERT_TRUE(WriteFrame(fd.get(), h, wire::AsBytes(open)).ok());
  std::string bytes = ReadToEnd(fd.get());
  ASSERT_GE(bytes.size(), wire::kHeaderSize);
  EXPECT_EQ(bytes[4], 1);  // version 1 framing
  EXPECT_EQ(bytes[5], 0);
  std::string message = bytes.substr(wire::kHeaderSize);
  EXPECT_NE(message.find("protocol version 2, the client version 1"), std::string::npos) << message;
  EXPECT_EQ(static_cast<uint8_t>(bytes[12]), EPROTONOSUPPORT);
}

// A connection that does not authenticate in time is closed; one that
// authenticated may then stay idle.
TEST_P(ServerTest, SilentConnectionsAreClosedAfterTheAuthTimeout) {
  ServerOptions o = TestServerOptions();
  o.connection.auth_timeout = std::chrono::milliseconds(300);
  Restart(o);
  UniqueFd silent = AdoptPair("silent", /*authenticate=*/false);
  UniqueFd ready = AdoptPair("ready");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadToEnd(silent.get()), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(Roundtrip(ready.get(), wire::Op::kPing, 1, 0, 0, 0).header.status, 0);
}

// At most max_unauthenticated connections may be in the handshake and at
// most max_connections open; more are closed at once.
TEST_P(ServerTest, ConnectionLimitsRefuseTheExcess) {
  ServerOptions o = TestServerOptions();
  o.max_unauthenticated = 2;
  o.max_connections = 3;
  Restart(o);
  UniqueFd a = AdoptPair("a", false), b = AdoptPair("b", false);
  UniqueFd c = AdoptPair("c", false);  // a third in the handshake: refused
  EXPECT_EQ(ReadToEnd(c.get()), "");
  EXPECT_EQ(server_->unauthenticated(), 2u);
  ASSERT_TRUE(auth::ClientHandshake(a.get(), *TestKey(), "a").ok());
  // The server counts `a` as authenticated just after its last reply.
  for (int i = 0; i < 100 && server_->unauthenticated() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  UniqueFd d = AdoptPair("d");  // one slot in the handshake again
  EXPECT_EQ(server_->connections(), 3u);
  UniqueFd e = AdoptPair("e", false);  // three open: refused
  EXPECT_EQ(ReadToEnd(e.get()), "");
  EXPECT_EQ(Roundtrip(d.get(), wire::Op::kPing, 1, 0, 0, 0).header.status, 0);
}

// A client that asks for reads and never takes the replies is dropped after
// the send timeout instead of pinning their memory.
TEST_P(ServerTest, AClientThatStopsReadingIsDropped) {
  ServerOptions o = TestServerOptions();
  o.connection.send_timeout = std::chrono::milliseconds(500);
  Restart(o);
  UniqueFd stalled = AdoptPair("stalled");
  const std::string hello = R"({"volume":"vol","replica":"r1","epoch":1})";
  ASSERT_EQ(Roundtrip(stalled.get(), wire::Op::kHello, 1, 0, 0, 0, hello).header.status, 0);
  for (uint64_t id = 10; id < 42; ++id) {  // 32 MiB of replies
    ASSERT_TRUE(Send(stalled.get(), wire::Op::kRead, id, 1, 0, 1 << 20).ok());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(server_->connections(), 0u);
}

// AUTH_CHALLENGE again after authenticating breaks the protocol: closed.
TEST_P(ServerTest, ASecondHandshakeClosesTheConnection) {
  UniqueFd fd = AdoptPair("again");
  auth::Nonce nonce = auth::RandomNonce();
  ASSERT_TRUE(Send(fd.get(), wire::Op::kAuthChallenge, 1, 0, 0, 0,
                   std::string_view(reinterpret_cast<char*>(nonce.data()), 32))
                  .ok());
  EXPECT_EQ(ReadToEnd(fd.get()), "");
}

// On the Unix socket only root and replicad's own user may connect
// (SO_PEERCRED), whatever the file's mode says.
TEST_P(ServerTest, UnixSocketRefusesOtherUsers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  TempDir sockets;
  const std::string dir = sockets.path() + "/run";
  ASSERT_TRUE(server_->Start("127.0.0.1", 0, dir).ok());
  const std::string path = server_->socket_path();
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sockets.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);  // let nobody reach connect()
  // The child only makes system calls (the parent has threads): the
  // challenge frame is encoded here.
  auth::Nonce nonce = auth::RandomNonce();
  wire::Header h = wire::MakeRequest(wire::Op::kAuthChallenge, 1, 0, 0, 0, nonce);
  uint8_t frame[wire::kHeaderSize + auth::kNonceSize];
  wire::EncodeHeader(h, frame);
  std::memcpy(frame + wire::kHeaderSize, nonce.data(), nonce.size());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ::_exit(3);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // The server may have closed already: then the send fails (EPIPE).
    if (::send(fd, frame, sizeof(frame), MSG_NOSIGNAL) < 0) ::_exit(errno == EPIPE ? 4 : 7);
    char byte;
    ssize_t n = ::read(fd, &byte, 1);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) ::_exit(4);  // closed without an answer
    ::_exit(n > 0 ? 5 : 6);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4) << "4: closed before the handshake";
}

INSTANTIATE_TEST_SUITE_P(Engines, ServerTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "IoUring" : "Sync"; });

}  // namespace
}  // namespace shorthorn::replicad
