// ReplicaClient against a scripted replicad on loopback TCP: what OPEN's
// "clean" becomes, and how Checksum checks a CHECKSUM reply (the count of
// hashes, their form) before the engine trusts it.
#include "fused/engine/replica_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/auth.h"
#include "common/frame_io.h"
#include "common/log.h"

namespace shorthorn::fused {
namespace {

namespace json = boost::json;

// Answers OPEN_REPLICA with `open_reply`, HELLO with the size, CHECKSUM
// with `checksum_reply` (or `checksum_errno` and a message), CLOSE with {}.
// Records the last CHECKSUM request.
std::shared_ptr<const auth::ClusterKey> Key() {
  static const auto key = std::make_shared<const auth::ClusterKey>(
      *auth::ClusterKey::FromHex(std::string(64, 'c'), "test key"));
  return key;
}

class FakeReplicad {
 public:
  FakeReplicad() {
    listen_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(listen_.get(), 16), 0);
    EXPECT_EQ(::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeReplicad() {
    stop_ = true;
    ::shutdown(listen_.get(), SHUT_RDWR);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int fd : conns_) ::close(fd);
  }

  ReplicaTarget target() const { return {address_, "v", "r"}; }

  std::string open_reply = R"({"size":1048576,"epoch":1,"generation":0,"rebuilding":false})";
  std::string checksum_reply;
  int checksum_errno = 0;

  json::object last_checksum() {
    std::lock_guard lock(mu_);
    return last_checksum_;
  }
  uint64_t last_checksum_epoch() {
    std::lock_guard lock(mu_);
    return last_epoch_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard lock(mu_);
      conns_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  // `fd` is closed by the destructor, after every thread ended.
  void Serve(int fd) {
    if (!auth::ServerHandshake(fd, *Key()).ok()) return;
    for (;;) {
      auto frame = ReadFrame(fd);
      if (!frame.ok()) return;
      const wire::Header& h = frame->header;
      std::string text(frame->payload.begin(), frame->payload.end());
      std::string out = "{}";
      int status = 0;
      switch (h.op) {
        case wire::Op::kOpenReplica:
          out = open_reply;
          break;
        case wire::Op::kHello:
          out = R"({"size":1048576})";
          break;
        case wire::Op::kChecksum: {
          std::lock_guard lock(mu_);
          last_checksum_ = json::parse(text).as_object();
          last_epoch_ = h.epoch;
          status = checksum_errno;
          out = status != 0 ? "checksum replica r: chunk 1 is not a multiple of 4096"
                            : checksum_reply;
          break;
        }
        default:
          break;
      }
      auto bytes = wire::AsBytes(out);
      if (!WriteFrame(fd, wire::MakeReply(h, status, bytes), bytes).ok()) return;
    }
  }

  UniqueFd listen_;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;            // accepted sockets; guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
  json::object last_checksum_;        // guarded by mu_
  uint64_t last_epoch_ = 0;           // guarded by mu_
};

ClientOptions Quick() {
  ClientOptions o;
  o.key = Key();
  o.connect = std::chrono::milliseconds(2000);
  o.request = std::chrono::milliseconds(2000);
  return o;
}

TEST(ReplicaClientCleanTest, FromTheOpenReply) {
  SetLogLevel(LogLevel::kWarning);
  FakeReplicad fake;
  {
    auto c = ReplicaClient::Open(fake.target(), 1, 1, Quick());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_FALSE((*c)->clean());  // an older replicad says nothing: not clean
  }
  fake.open_reply = R"({"size":1048576,"epoch":1,"generation":0,"rebuilding":false,"clean":true})";
  {
    auto c = ReplicaClient::Open(fake.target(), 1, 1, Quick());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE((*c)->clean());
  }
  fake.open_reply = R"({"size":1048576,"epoch":1,"generation":0,"rebuilding":false,"clean":"yes"})";
  auto c = ReplicaClient::Open(fake.target(), 1, 1, Quick());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE((*c)->clean());
}

TEST(ReplicaClientChecksumTest, ParsesAndChecksTheReply) {
  SetLogLevel(LogLevel::kWarning);
  FakeReplicad fake;
  fake.checksum_reply =
      R"({"chunk":8192,"hashes":["0123456789abcdef","ffffffffffffffff","0000000000000000"]})";
  auto sums = ReplicaClient::Checksum(fake.target(), 7, 4096, 20000, 8192, Quick());
  ASSERT_TRUE(sums.ok()) << sums.status().ToString();
  EXPECT_EQ(*sums, (std::vector<uint64_t>{0x0123456789abcdefULL, ~0ULL, 0}));
  EXPECT_EQ(fake.last_checksum(),
            json::parse(R"({"offset":4096,"length":20000,"chunk":8192})").as_object());
  EXPECT_EQ(fake.last_checksum_epoch(), 7u);

  auto protocol_error = [&](const std::string& reply, const std::string& reason) {
    fake.checksum_reply = reply;
    auto r = ReplicaClient::Checksum(fake.target(), 7, 4096, 20000, 8192, Quick());
    ASSERT_FALSE(r.ok()) << reply;
    EXPECT_EQ(r.status().kind(), ErrorKind::kProtocol) << reply;
    EXPECT_NE(r.status().message().find("CHECKSUM on replica r (" + fake.target().address + ")"),
              std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(reason), std::string::npos) << r.status().message();
  };
  protocol_error(R"({"chunk":8192,"hashes":["0123456789abcdef","ffffffffffffffff"]})",
                 "2 hashes, expected 3");
  protocol_error(R"({"chunk":8192,"hashes":["0","1","2","3"]})", "4 hashes, expected 3");
  protocol_error(R"({"chunk":8192})", "no 'hashes'");
  protocol_error(R"({"chunk":8192,"hashes":"0123456789abcdef"})", "no 'hashes'");
  protocol_error(R"({"chunk":8192,"hashes":["0123456789ABCDEF","0","0"]})", "hash 0");
  protocol_error(R"({"chunk":8192,"hashes":["0123456789abcdef","123","0000000000000000"]})",
                 "hash 1");
  protocol_error(R"({"chunk":8192,"hashes":["0123456789abcdef","0000000000000000",12]})", "hash 2");
  protocol_error(R"({"chunk":8192,"hashes":["0123456789abcdef","0000000000000000",)"
                 R"("-123456789abcdef"]})",
                 "hash 2");
}

TEST(ReplicaClientChecksumTest, ErrorsPassThroughAndBadArgumentsStayLocal) {
  SetLogLevel(LogLevel::kWarning);
  FakeReplicad fake;
  fake.checksum_errno = EINVAL;
  auto r = ReplicaClient::Checksum(fake.target(), 1, 0, 4096, 1, Quick());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().sys_errno(), EINVAL);
  EXPECT_NE(r.status().message().find("chunk 1 is not a multiple"), std::string::npos)
      << r.status().message();
  // Nothing to divide by: refused before anything is sent.
  EXPECT_EQ(ReplicaClient::Checksum(fake.target(), 1, 0, 4096, 0, Quick()).status().sys_errno(),
            EINVAL);
  EXPECT_EQ(ReplicaClient::Checksum(fake.target(), 1, 0, 0, 4096, Quick()).status().sys_errno(),
            EINVAL);
}

// Every connection authenticates: a replicad with another key is refused
// before any request reaches it, and without a key nothing is tried.
TEST(ReplicaClientAuthTest, AnotherKeyOrNoKeyIsRefused) {
  SetLogLevel(LogLevel::kError);
  FakeReplicad fake;
  ClientOptions other = Quick();
  other.key = std::make_shared<const auth::ClusterKey>(auth::ClusterKey::Generate());
  auto c = ReplicaClient::Open(fake.target(), 1, 1, other);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().kind(), ErrorKind::kNotAuthorized) << c.status().ToString();
  EXPECT_NE(c.status().message().find(fake.target().address), std::string::npos);
  ClientOptions none = Quick();
  none.key.reset();
  Status s = ReplicaClient::CreateReplica(fake.target(), 1 << 20, none);
  EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized) << s.ToString();
}

}  // namespace
}  // namespace shorthorn::fused
