// common/net.h: which addresses parse and how they fail, the one loopback
// rule and the socket naming fused and replicad share, connects that fail
// (refused, timed out) naming the address, and the blocking control call
// against a scripted peer on a socketpair (good and error replies, late
// replies skipped, a frame cut short, silence).
#include "common/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/peer_client.h"

namespace shorthorn {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------- addresses

TEST(ParseHostPortTest, GoodAddresses) {
  struct Case {
    std::string address, host;
    uint16_t port;
  };
  for (const Case& c : std::vector<Case>{
           {"10.0.0.7:9500", "10.0.0.7", 9500},
           {"127.0.0.1:1", "127.0.0.1", 1},
           {"[::1]:9502", "::1", 9502},
           {"[fe80::1%eth0]:65535", "fe80::1%eth0", 65535},
           {"::1:9500", "::1", 9500},  // unbracketed: the port follows the last ':'
           {"storage-2:9500", "storage-2", 9500},
           {"replicad.example.org:009500", "replicad.example.org", 9500},
       }) {
    auto parsed = ParseHostPort(c.address);
    ASSERT_TRUE(parsed.ok()) << c.address << ": " << parsed.status().ToString();
    EXPECT_EQ(parsed->host, c.host) << c.address;
    EXPECT_EQ(parsed->port, c.port) << c.address;
  }
}

TEST(ParseHostPortTest, BadAddressesNameTheAddressAndTheReason) {
  struct Case {
    std::string address, reason;
  };
  const std::string form = "expected host:port or [address]:port";
  for (const Case& c : std::vector<Case>{
           {"", form},
           {"storage-2", form},   // no port
           {"storage-2:", form},  // empty port
           {":9500", form},       // empty host
           {"[::1]", form},       // v6 without a port
           {"[::1]9500", form},   // no ':' after ']'
           {"[::1:9500", form},   // no ']'
           {"[]:9500", form},     // empty v6 host
           {"storage-2:0", "bad port '0'"},
           {"storage-2:65536", "bad port '65536'"},
           {"storage-2:99999999999999999999", "bad port"},
           {"storage-2:95a0", "bad port '95a0'"},
           {"storage-2:-1", "bad port '-1'"},
           {"storage-2: 9500", "bad port ' 9500'"},
       }) {
    auto parsed = ParseHostPort(c.address);
    ASSERT_FALSE(parsed.ok()) << c.address;
    EXPECT_EQ(parsed.status().kind(), ErrorKind::kInvalidArgument) << c.address;
    EXPECT_EQ(parsed.status().sys_errno(), EINVAL) << c.address;
    EXPECT_TRUE(Contains(parsed.status().message(), "address " + c.address + ": " + c.reason))
        << parsed.status().message();
  }
}

TEST(ParseHostPortTest, SplitHostPortGivesThePortAsText) {
  std::string host, port;
  ASSERT_TRUE(SplitHostPort("[::1]:9500", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, "9500");
  EXPECT_EQ(SplitHostPort("storage-2", &host, &port).kind(), ErrorKind::kInvalidArgument);
}

TEST(LoopbackTest, OneRuleForEveryone) {
  for (const char* host :
       {"localhost", "127.0.0.1", "127.8.9.10", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"", "10.0.0.7", "128.0.0.1", "126.255.255.255", "::2", "[::1]", "127.1",
                           "storage-2", "localhost.example.org", "0.0.0.0", "::"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(LoopbackTest, IsLocalAddressTakesLoopbackAndNeedsAPort) {
  EXPECT_TRUE(IsLocalAddress("127.0.0.1:9500"));
  EXPECT_TRUE(IsLocalAddress("127.3.0.1:9500"));
  EXPECT_TRUE(IsLocalAddress("localhost:1"));
  EXPECT_TRUE(IsLocalAddress("[::1]:9500"));
  EXPECT_FALSE(IsLocalAddress("192.0.2.1:9500"));  // TEST-NET-1: no host has it
  EXPECT_FALSE(IsLocalAddress("127.0.0.1"));       // no port: not an address
  EXPECT_FALSE(IsLocalAddress(""));
}

TEST(SocketPathTest, NamedOnceForReplicadAndFused) {
  EXPECT_EQ(ReplicadSocketPath("/run/shorthorn", 9500), "/run/shorthorn/9500.sock");
  EXPECT_EQ(ReplicadSocketPath("/run/r", 1), "/run/r/1.sock");
}

TEST(SocketPathTest, LocalSocketPathOnlyForLoopbackAddressesWithADirectory) {
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

// ---------------------------------------------------------------- connecting

TEST(ConnectUnixTest, MissingSocketIsENOENT) {
  auto fd = ConnectUnix("/nonexistent-shorthorn-dir/9500.sock", std::chrono::seconds(1));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().sys_errno(), ENOENT);
  EXPECT_TRUE(Contains(fd.status().message(), "/nonexistent-shorthorn-dir/9500.sock"));
}

TEST(ConnectUnixTest, TooLongAPathIsInvalid) {
  std::string path = "/tmp/" + std::string(200, 'x') + "/9500.sock";
  auto fd = ConnectUnix(path, std::chrono::seconds(1));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(fd.status().message(), "is too long"));
}

// A TCP socket on 127.0.0.1 with a free port; listening when `backlog` >= 0.
UniqueFd LoopbackSocket(int backlog, uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  if (backlog >= 0) {
    EXPECT_EQ(::listen(fd.get(), backlog), 0);
  }
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

TEST(ConnectTcpTest, ConnectsWithNoDelayAndTheIoTimeout) {
  uint16_t port = 0;
  UniqueFd listener = LoopbackSocket(4, &port);
  auto fd = ConnectTcp("127.0.0.1:" + std::to_string(port), milliseconds(1000), milliseconds(1500));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  int one = 0;
  socklen_t len = sizeof(one);
  ASSERT_EQ(::getsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
  EXPECT_NE(one, 0);
  timeval tv{};
  len = sizeof(tv);
  ASSERT_EQ(::getsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
  EXPECT_EQ(tv.tv_sec * 1000 + tv.tv_usec / 1000, 1500);
  EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);  // blocking again
  ClearReceiveTimeout(fd->get());
  len = sizeof(tv);
  ASSERT_EQ(::getsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
  EXPECT_EQ(tv.tv_sec + tv.tv_usec, 0);
  EXPECT_EQ(PeerName(fd->get()), "127.0.0.1:" + std::to_string(port));
}

TEST(ConnectTcpTest, AClosedPortIsRefusedNamingTheAddress) {
  uint16_t port = 0;
  UniqueFd bound = LoopbackSocket(-1, &port);  // bound, not listening: the port stays ours
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto fd = ConnectTcp(address, milliseconds(1000), milliseconds(1000));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(fd.status().sys_errno(), ECONNREFUSED);
  EXPECT_TRUE(Contains(fd.status().message(), "connect to replicad " + address + ": "))
      << fd.status().message();
}

// A listener whose accept queue is full drops further SYNs, so the connect
// is never answered: the connect timeout ends it.
TEST(ConnectTcpTest, AnUnansweredConnectTimesOutNamingTheAddress) {
  uint16_t port = 0;
  UniqueFd listener = LoopbackSocket(0, &port);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 8; ++i) {
    UniqueFd f(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(f.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    fillers.push_back(std::move(f));
  }
  auto start = std::chrono::steady_clock::now();
  auto fd = ConnectTcp(address, milliseconds(300), milliseconds(1000));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(fd.status().sys_errno(), ETIMEDOUT) << fd.status().ToString();
  EXPECT_TRUE(Contains(fd.status().message(), "connect to replicad " + address))
      << fd.status().message();
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(ConnectTcpTest, AMalformedAddressIsInvalid) {
  auto fd = ConnectTcp("storage-2", milliseconds(100), milliseconds(100));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Contains(fd.status().message(), "address storage-2"));
}

// ---------------------------------------------------------------- one request

// The other end of a socketpair, running `script` on its own thread with
// its fd; the test's end has a 2 s receive timeout (`Client`).
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::function<void(int)> script) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client_.Reset(sv[0]);
    peer_.Reset(sv[1]);
    SetIoTimeouts(client_.get(), std::chrono::seconds(2));
    thread_ = std::thread([this, script = std::move(script)] { script(peer_.get()); });
  }
  ~ScriptedPeer() {
    ::shutdown(client_.get(), SHUT_RDWR);
    thread_.join();
  }
  int Client() const { return client_.get(); }
  UniqueFd TakeClient() { return std::move(client_); }

 private:
  UniqueFd client_, peer_;
  std::thread thread_;
};

// Reads one request; on failure a request with op kPing and id 0.
wire::Header ReadRequest(int fd, std::string* body = nullptr) {
  auto frame = ReadFrame(fd);
  if (!frame.ok()) return wire::Header{};
  if (body != nullptr) body->assign(frame->payload.begin(), frame->payload.end());
  return frame->header;
}

void Reply(int fd, const wire::Header& request, int32_t status, std::string_view payload) {
  auto bytes = wire::AsBytes(payload);
  EXPECT_TRUE(WriteFrame(fd, wire::MakeReply(request, status, bytes), bytes).ok());
}

TEST(ControlCallTest, AGoodReplyIsItsJsonObject) {
  std::string body;
  uint64_t epoch = 0;
  ScriptedPeer peer([&](int fd) {
    wire::Header h = ReadRequest(fd, &body);
    epoch = h.epoch;
    Reply(fd, h, 0, R"({"size":1048576,"clean":true})");
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kOpenReplica, {{"volume", "v"}}, 7);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->at("size").to_number<uint64_t>(), 1048576u);
  EXPECT_TRUE(reply->at("clean").as_bool());
  EXPECT_EQ(body, R"({"volume":"v"})");
  EXPECT_EQ(epoch, 7u);
}

TEST(ControlCallTest, AnEmptyReplyIsTheEmptyObject) {
  ScriptedPeer peer([](int fd) { Reply(fd, ReadRequest(fd), 0, ""); });
  auto reply = ControlCall(peer.Client(), wire::Op::kCloseReplica, {}, 1);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->empty());
}

TEST(ControlCallTest, AnErrorReplyCarriesTheErrnoKindAndThePeersMessage) {
  ScriptedPeer peer([](int fd) {
    Reply(fd, ReadRequest(fd), ENOENT, "open replica r1 of volume v: no such replica");
    Reply(fd, ReadRequest(fd), ESTALE, "");
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kOpenReplica, {}, 1);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(reply.status().sys_errno(), ENOENT);
  EXPECT_EQ(reply.status().message(), "open replica r1 of volume v: no such replica");
  // Without a message the op is named.
  reply = ControlCall(peer.Client(), wire::Op::kCreateReplica, {}, 1);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kStale);
  EXPECT_EQ(reply.status().message(), "CREATE_REPLICA failed");
}

TEST(ControlCallTest, RepliesToOtherRequestsAreSkipped) {
  ScriptedPeer peer([](int fd) {
    wire::Header h = ReadRequest(fd);
    wire::Header late = h;
    late.request_id = h.request_id + 1000;
    Reply(fd, late, 0, R"({"late":true})");
    Reply(fd, late, EIO, "an earlier request failed");
    Reply(fd, h, 0, R"({"mine":true})");
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kListReplicas, {}, 0);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->contains("mine"));
  EXPECT_FALSE(reply->contains("late"));
}

// A peer that keeps sending frames that answer nothing cannot hold a call
// past its timeouts: after 64 of them the call fails.
TEST(ControlCallTest, EndlessRepliesToOtherRequestsAreAProtocolError) {
  ScriptedPeer peer([](int fd) {
    wire::Header h = ReadRequest(fd);
    wire::Header late = h;
    for (int i = 0; i < 65; ++i) {
      late.request_id = h.request_id + 1000 + i;
      Reply(fd, late, 0, "{}");
    }
    Reply(fd, h, 0, R"({"mine":true})");
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kListReplicas, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kProtocol);
  EXPECT_TRUE(Contains(reply.status().message(), "more than 64 frames"))
      << reply.status().message();
}

TEST(ControlCallTest, AReplyOfAnotherOpIsAProtocolError) {
  ScriptedPeer peer([](int fd) {
    wire::Header h = ReadRequest(fd);
    h.op = wire::Op::kPing;
    Reply(fd, h, 0, "");
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kHello, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kProtocol);
  EXPECT_TRUE(Contains(reply.status().message(), "HELLO to local peer: the reply is one to PING"))
      << reply.status().message();
}

TEST(ControlCallTest, AFrameCutShortIsUnavailable) {
  ScriptedPeer peer([](int fd) {
    wire::Header h = ReadRequest(fd);
    std::string payload(100, 'x');
    uint8_t raw[wire::kHeaderSize];
    wire::EncodeHeader(wire::MakeReply(h, 0, wire::AsBytes(payload)), raw);
    ASSERT_EQ(::write(fd, raw, sizeof(raw)), static_cast<ssize_t>(sizeof(raw)));
    ASSERT_EQ(::write(fd, payload.data(), 10), 10);
    ::shutdown(fd, SHUT_WR);
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kReplicadInfo, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(reply.status().sys_errno(), ECONNRESET);
  EXPECT_TRUE(Contains(reply.status().message(), "REPLICAD_INFO to local peer: "));
  EXPECT_TRUE(Contains(reply.status().message(), "mid-frame")) << reply.status().message();
}

TEST(ControlCallTest, AClosedConnectionIsECONNRESET) {
  ScriptedPeer peer([](int fd) {
    ReadRequest(fd);
    ::shutdown(fd, SHUT_WR);
  });
  auto reply = ControlCall(peer.Client(), wire::Op::kReplicadInfo, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(reply.status().sys_errno(), ECONNRESET);
  EXPECT_TRUE(Contains(reply.status().message(), "connection closed"));
}

TEST(ControlCallTest, SilenceIsATimeout) {
  ScriptedPeer peer([](int fd) {
    ReadRequest(fd);
    ReadRequest(fd);  // until the test's end shuts down
  });
  SetIoTimeouts(peer.Client(), milliseconds(200));
  auto reply = ControlCall(peer.Client(), wire::Op::kHello, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(reply.status().sys_errno(), ETIMEDOUT);
  EXPECT_TRUE(Contains(reply.status().message(), "HELLO to local peer: no reply in time"));
}

TEST(ControlCallTest, AReplyThatIsNotAnObjectIsAProtocolError) {
  ScriptedPeer peer([](int fd) { Reply(fd, ReadRequest(fd), 0, "[1,2]"); });
  auto reply = ControlCall(peer.Client(), wire::Op::kListLayers, {}, 0);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().kind(), ErrorKind::kProtocol);
  EXPECT_EQ(reply.status().sys_errno(), EPROTO);
  EXPECT_TRUE(Contains(reply.status().message(), "the reply is not a JSON object"));
}

// PeerClient on the same exchange: an error reply leaves it usable, a
// timeout does not (the stream's position is unknown).
TEST(PeerClientTest, AnErrorReplyKeepsTheClientATimeoutEndsIt) {
  ScriptedPeer peer([](int fd) {
    Reply(fd, ReadRequest(fd), EBUSY, "busy");
    Reply(fd, ReadRequest(fd), 0, R"({"ok":1})");
    ReadRequest(fd);  // no answer
    ReadRequest(fd);
  });
  UniqueFd fd = peer.TakeClient();
  int raw = fd.get();
  auto client = PeerClient::Adopt(std::move(fd), "10.0.0.7:9500");
  auto busy = client->CallJson(wire::Op::kListLayers, 3, {});
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().kind(), ErrorKind::kBusy);
  EXPECT_EQ(busy.status().message(), "busy");
  auto ok = client->CallJson(wire::Op::kListLayers, 3, {});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->at("ok").to_number<int>(), 1);
  SetIoTimeouts(raw, milliseconds(200));
  auto silent = client->CallJson(wire::Op::kListLayers, 3, {});
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.status().sys_errno(), ETIMEDOUT);
  EXPECT_TRUE(Contains(silent.status().message(), "LIST_LAYERS to 10.0.0.7:9500: no reply in time"))
      << silent.status().message();
  auto after = client->CallJson(wire::Op::kListLayers, 3, {});
  ASSERT_FALSE(after.ok());
  EXPECT_TRUE(Contains(after.status().message(), "the connection is closed"));
  client->Shutdown();  // ends the peer's last read
}

}  // namespace
}  // namespace shorthorn
