// ReplicaClient against a scripted replicad on loopback TCP: what OPEN's
// "clean" becomes, how Checksum checks a CHECKSUM reply (the count of
// hashes, their form) before the engine trusts it, and how Info and
// ParseReplicadInfo take a REPLICAD_INFO reply, valid and hostile.
#include "fused/net/replica_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/auth.h"
#include "common/frame_io.h"
#include "common/log.h"
#include "common/names.h"
#include "common/send_batch.h"

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
  // REPLICAD_INFO: this reply, or close the connection as a replicad
  // without the op does.
  std::string info_reply;
  bool close_on_info = false;
  // LIST_LAYERS: this reply.
  std::string list_layers_reply = "{}";

  // The last request payload of `op`, and its epoch ("" when none came).
  std::string last_request(wire::Op op) {
    std::lock_guard lock(mu_);
    auto it = last_request_.find(op);
    return it == last_request_.end() ? "" : it->second;
  }

  // The last REPLICAD_INFO request's payload and epoch.
  std::string last_info() {
    std::lock_guard lock(mu_);
    return last_info_;
  }

  // WRITE requests in the order they came: offset and payload.
  std::vector<std::pair<uint64_t, std::string>> writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }
  // On the next WRITE: record it, then shut every connection down.
  std::atomic<bool> drop_on_write{false};
  // On a WRITE: stop reading (a stuck replicad) until destroyed.
  std::atomic<bool> stall_writes{false};

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
      {
        std::lock_guard lock(mu_);
        last_request_[h.op] = text + " epoch " + std::to_string(h.epoch);
      }
      switch (h.op) {
        case wire::Op::kListLayers:
          out = list_layers_reply;
          break;
        case wire::Op::kOpenReplica:
          out = open_reply;
          break;
        case wire::Op::kPing:
          out.clear();
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
        case wire::Op::kReplicadInfo: {
          std::lock_guard lock(mu_);
          last_info_ = text + " epoch " + std::to_string(h.epoch);
          if (close_on_info) {
            ::shutdown(fd, SHUT_RDWR);
            return;
          }
          out = info_reply;
          break;
        }
        case wire::Op::kWrite: {
          if (stall_writes) {
            // The destructor holds mu_ while it joins: leave without it.
            while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
            return;
          }
          std::lock_guard lock(mu_);
          writes_.emplace_back(h.offset, text);
          if (drop_on_write) {
            for (int c : conns_) ::shutdown(c, SHUT_RDWR);
            return;
          }
          out.clear();
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
  std::vector<int> conns_;                                // accepted sockets; guarded by mu_
  std::vector<std::thread> threads_;                      // guarded by mu_
  json::object last_checksum_;                            // guarded by mu_
  uint64_t last_epoch_ = 0;                               // guarded by mu_
  std::string last_info_;                                 // guarded by mu_
  std::vector<std::pair<uint64_t, std::string>> writes_;  // guarded by mu_
  // Payload and epoch of the last request of each op; guarded by mu_.
  std::map<wire::Op, std::string> last_request_;
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

// The typed layer ops send the protocol's JSON at the volume's epoch and
// decode the replies strictly.
TEST(ReplicaClientLayerOpsTest, SendAndDecodeTypedMessages) {
  SetLogLevel(LogLevel::kWarning);
  FakeReplicad fake;
  fake.list_layers_reply =
      R"({"size":1048576,"generation":3,"rebuilding":false,"actual_size":8192,)"
      R"("snapshots":[{"name":"s1","parent":null,"created":"t","user_created":true,)"
      R"("size_held":4096,"removed":false,"checksum":"","checksum_state":"pending"}],)"
      R"("tasks":[],"verify":{"state":"idle","bad":[],"checked":0}})";
  auto layers = ReplicaClient::ListLayers(fake.target(), 5, Quick());
  ASSERT_TRUE(layers.ok()) << layers.status().ToString();
  EXPECT_EQ(layers->generation, 3u);
  ASSERT_NE(layers->Find("s1"), nullptr);
  EXPECT_EQ(layers->Find("s1")->size_held, 4096u);
  EXPECT_EQ(fake.last_request(wire::Op::kListLayers), "{} epoch 5");

  ASSERT_TRUE(ReplicaClient::Snapshot(fake.target(), 5, {"s2", std::nullopt, false}, Quick()).ok());
  EXPECT_EQ(fake.last_request(wire::Op::kSnapshot),
            R"({"name":"s2","user_created":false} epoch 5)");
  ASSERT_TRUE(ExpandCall(8192)(fake.target(), 6, Quick()).ok());
  EXPECT_EQ(fake.last_request(wire::Op::kExpand), R"({"size":8192} epoch 6)");
  ASSERT_TRUE(RevertCall("s1")(fake.target(), 6, Quick()).ok());
  EXPECT_EQ(fake.last_request(wire::Op::kRevert), R"({"name":"s1"} epoch 6)");
  ASSERT_TRUE(ReplicaClient::SetGeneration(fake.target(), 6, 9, Quick()).ok());
  EXPECT_EQ(fake.last_request(wire::Op::kSetGeneration), R"({"generation":9} epoch 6)");

  fake.list_layers_reply = R"({"generation":"3"})";
  layers = ReplicaClient::ListLayers(fake.target(), 5, Quick());
  ASSERT_FALSE(layers.ok());
  EXPECT_EQ(layers.status().kind(), ErrorKind::kProtocol);
  EXPECT_EQ(layers.status().message(),
            "LIST_LAYERS on replica r (" + fake.target().address +
                "): bad reply: field 'generation' is not an unsigned integer");
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

// ---------------------------------------------------------------- REPLICAD_INFO

// What replicad sends (request_handler.cc), with big numbers.
constexpr const char* kInfoReply =
    R"({"host_id":"3d1219c7c4c5404aaa1f6d2a48adfda4","hostname":"node-1.example",)"
    R"("tags":["zone=rack1","ssd"],"total_bytes":18446744073709551615,)"
    R"("free_bytes":1099511627776,"provisioned_bytes":3145728,"replicas":4294967295})";

json::object InfoReply() { return json::parse(kInfoReply).as_object(); }

TEST(ReplicadInfoParseTest, ValidReplies) {
  auto f = ParseReplicadInfo(InfoReply(), "10.0.0.2:9500");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->address, "10.0.0.2:9500");
  EXPECT_EQ(f->host_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
  EXPECT_EQ(f->hostname, "node-1.example");
  EXPECT_EQ(f->tags, (std::vector<std::string>{"zone=rack1", "ssd"}));
  EXPECT_EQ(f->total_bytes, UINT64_MAX);
  EXPECT_EQ(f->free_bytes, uint64_t{1} << 40);
  EXPECT_EQ(f->provisioned_bytes, 3u << 20);
  EXPECT_EQ(f->replicas, UINT32_MAX);

  // hostname is optional; unknown fields are ignored; free may equal
  // total; provisioned may exceed total (thin provisioning); no tags.
  json::object o = InfoReply();
  o.erase("hostname");
  o["tags"] = json::array();
  o["total_bytes"] = 4096;
  o["free_bytes"] = 4096;
  o["provisioned_bytes"] = 1 << 30;
  o["replicas"] = 0;
  o["version"] = "0.2.0";
  o["extra"] = json::object{{"nested", true}};
  f = ParseReplicadInfo(o, "a:1");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->hostname, "");
  EXPECT_TRUE(f->tags.empty());
  EXPECT_EQ(f->free_bytes, 4096u);
  EXPECT_EQ(f->replicas, 0u);

  o["tags"] = json::array();
  for (size_t i = 0; i < kMaxTags; ++i) o["tags"].as_array().emplace_back("t" + std::to_string(i));
  o["hostname"] = std::string(255, 'h');
  f = ParseReplicadInfo(o, "a:1");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->tags.size(), kMaxTags);
}

// Each hostile reply is a kProtocol error naming the replicad and the field.
TEST(ReplicadInfoParseTest, HostileReplies) {
  struct Case {
    const char* what;
    std::function<void(json::object&)> change;
    const char* field;   // named in the message
    const char* reason;  // also in the message
  };
  const std::string huge(1 << 20, 'x');
  std::vector<Case> cases = {
      {"no host_id", [](json::object& o) { o.erase("host_id"); }, "'host_id'", "missing"},
      {"host_id a number", [](json::object& o) { o["host_id"] = 5; }, "'host_id'", "not a string"},
      {"host_id null", [](json::object& o) { o["host_id"] = nullptr; }, "'host_id'", "missing"},
      {"host_id empty", [](json::object& o) { o["host_id"] = ""; }, "'host_id'", "empty"},
      {"host_id with a space", [](json::object& o) { o["host_id"] = "a b"; }, "'host_id'",
       "only letters"},
      {"host_id of 65", [](json::object& o) { o["host_id"] = std::string(65, 'h'); }, "'host_id'",
       "longer than 64"},
      {"host_id of 1 MiB", [&](json::object& o) { o["host_id"] = huge; }, "'host_id'",
       "(1048576 characters)"},
      {"hostname a number", [](json::object& o) { o["hostname"] = 1; }, "'hostname'",
       "not a string"},
      {"hostname null", [](json::object& o) { o["hostname"] = nullptr; }, "'hostname'",
       "not a string"},
      {"hostname of 256", [](json::object& o) { o["hostname"] = std::string(256, 'h'); },
       "'hostname'", "longer than 255"},
      {"hostname with a newline", [](json::object& o) { o["hostname"] = "a\nwarning: b"; },
       "'hostname'", "control character"},
      {"no tags", [](json::object& o) { o.erase("tags"); }, "'tags'", "missing"},
      {"tags a string", [](json::object& o) { o["tags"] = "ssd"; }, "'tags'", "not an array"},
      {"tags an object", [](json::object& o) { o["tags"] = json::object(); }, "'tags'",
       "not an array"},
      {"a tag a number",
       [](json::object& o) {
         o["tags"] = json::array{"ssd", 7};
       },
       "'tags'", "not a string"},
      {"a bad tag", [](json::object& o) { o["tags"] = json::array{"a=b=c"}; }, "'tags'",
       "tag 'a=b=c': more than one '='"},
      {"an empty tag", [](json::object& o) { o["tags"] = json::array{""}; }, "'tags'", "empty"},
      {"a tag with a comma", [](json::object& o) { o["tags"] = json::array{"ssd,hdd"}; }, "'tags'",
       "separated"},
      {"a duplicate tag",
       [](json::object& o) {
         o["tags"] = json::array{"ssd", "hdd", "ssd"};
       },
       "'tags'", "tag 'ssd' is given twice"},
      {"two zones",
       [](json::object& o) {
         o["tags"] = json::array{"zone=a", "zone=b"};
       },
       "'tags'", "two zones"},
      {"33 tags",
       [](json::object& o) {
         json::array a;
         for (size_t i = 0; i <= kMaxTags; ++i) a.emplace_back("t" + std::to_string(i));
         o["tags"] = a;
       },
       "'tags'", "33 tags, more than 32"},
      {"a million tags",
       [](json::object& o) {
         json::array a;
         for (int i = 0; i < 1000000; ++i) a.emplace_back("t");
         o["tags"] = a;
       },
       "'tags'", "more than 32"},
      {"no total", [](json::object& o) { o.erase("total_bytes"); }, "'total_bytes'", "missing"},
      {"total a string", [](json::object& o) { o["total_bytes"] = "1"; }, "'total_bytes'",
       "not an unsigned integer"},
      {"total negative", [](json::object& o) { o["total_bytes"] = -1; }, "'total_bytes'",
       "not an unsigned integer"},
      {"total above 2^64", [](json::object& o) { o["total_bytes"] = 1.8446744073709552e19; },
       "'total_bytes'", "not an unsigned integer"},
      {"no free", [](json::object& o) { o.erase("free_bytes"); }, "'free_bytes'", "missing"},
      {"free fractional", [](json::object& o) { o["free_bytes"] = 1.5; }, "'free_bytes'",
       "not an unsigned integer"},
      {"free above total",
       [](json::object& o) {
         o["total_bytes"] = 1000;
         o["free_bytes"] = 1001;
       },
       "'free_bytes' (1001)", "above 'total_bytes' (1000)"},
      {"no provisioned", [](json::object& o) { o.erase("provisioned_bytes"); },
       "'provisioned_bytes'", "missing"},
      {"provisioned null", [](json::object& o) { o["provisioned_bytes"] = nullptr; },
       "'provisioned_bytes'", "not an unsigned integer"},
      {"provisioned negative", [](json::object& o) { o["provisioned_bytes"] = INT64_MIN; },
       "'provisioned_bytes'", "not an unsigned integer"},
      {"no replicas", [](json::object& o) { o.erase("replicas"); }, "'replicas'", "missing"},
      {"replicas a bool", [](json::object& o) { o["replicas"] = true; }, "'replicas'",
       "not an unsigned integer"},
      {"replicas negative", [](json::object& o) { o["replicas"] = -3; }, "'replicas'",
       "not an unsigned integer"},
      {"replicas above 2^32-1", [](json::object& o) { o["replicas"] = uint64_t{1} << 32; },
       "'replicas' (4294967296)", "above 4294967295"},
  };
  for (const auto& c : cases) {
    json::object o = InfoReply();
    c.change(o);
    auto f = ParseReplicadInfo(o, "10.0.0.2:9500");
    ASSERT_FALSE(f.ok()) << c.what;
    EXPECT_EQ(f.status().kind(), ErrorKind::kProtocol) << c.what;
    EXPECT_EQ(f.status().sys_errno(), EPROTO) << c.what;
    const std::string& m = f.status().message();
    EXPECT_EQ(m.rfind("replicad at 10.0.0.2:9500: bad REPLICAD_INFO reply: field ", 0), 0u)
        << c.what << ": " << m.substr(0, 300);
    EXPECT_NE(m.find(c.field), std::string::npos) << c.what << ": " << m.substr(0, 300);
    EXPECT_NE(m.find(c.reason), std::string::npos) << c.what << ": " << m.substr(0, 300);
    EXPECT_LT(m.size(), 400u) << c.what;  // a hostile value is not echoed whole
  }
}

TEST(ReplicaClientInfoTest, AsksWithAnEmptyBodyAndParses) {
  SetLogLevel(LogLevel::kWarning);
  FakeReplicad fake;
  fake.info_reply = kInfoReply;
  auto f = ReplicaClient::Info(fake.target().address, Quick());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(fake.last_info(), "{} epoch 0");
  EXPECT_EQ(f->address, fake.target().address);
  EXPECT_EQ(f->host_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
  EXPECT_EQ(f->replicas, UINT32_MAX);

  fake.info_reply = R"({"host_id":"h","tags":[],"total_bytes":1,"free_bytes":2,)"
                    R"("provisioned_bytes":0,"replicas":0})";
  f = ReplicaClient::Info(fake.target().address, Quick());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().kind(), ErrorKind::kProtocol);
  EXPECT_NE(f.status().message().find("'free_bytes' (2) is above"), std::string::npos)
      << f.status().message();

  fake.info_reply = "[1]";
  f = ReplicaClient::Info(fake.target().address, Quick());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().kind(), ErrorKind::kProtocol) << f.status().ToString();
  EXPECT_NE(f.status().message().find("ask replicad at " + fake.target().address),
            std::string::npos)
      << f.status().message();
}

// A replicad older than REPLICAD_INFO closes the connection on the opcode:
// the error says what that means.
TEST(ReplicaClientInfoTest, AnOlderReplicadIsNamed) {
  SetLogLevel(LogLevel::kError);
  FakeReplicad fake;
  fake.close_on_info = true;
  auto f = ReplicaClient::Info(fake.target().address, Quick());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().sys_errno(), ECONNRESET) << f.status().ToString();
  EXPECT_NE(f.status().message().find("ask replicad at " + fake.target().address),
            std::string::npos)
      << f.status().message();
  EXPECT_NE(f.status().message().find("a replicad older than this fused"), std::string::npos)
      << f.status().message();
}

// Writes made while a SendBatch is open on the thread (a FUSE ring queue's
// wake-up) are held back and written when it closes, in order.
struct Completions {
  std::mutex mu;
  std::vector<Status> done;
  DoneCallback Callback() {
    return [this](Status s) {
      std::lock_guard lock(mu);
      done.push_back(std::move(s));
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return done.size();
  }
  bool WaitFor(size_t n) {
    for (int i = 0; i < 500 && count() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return count() >= n;
  }
};

std::string Pattern(char c, size_t n) { return std::string(n, c); }

class ReplicaClientBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    // As in the daemons (common/daemon_signals.h): a write to a connection
    // the replicad closed is an error, not the end of the process.
    ::signal(SIGPIPE, SIG_IGN);
  }
  void Open(int connections) {
    auto c = ReplicaClient::Open(fake_.target(), 1, connections, Quick());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }

  FakeReplicad fake_;
  Completions completions_, later_;  // outlive the client, which may still call them
  std::unique_ptr<ReplicaClient> client_;
};

TEST_F(ReplicaClientBatchTest, WritesWaitForTheBatchAndLeaveInOrder) {
  ASSERT_NO_FATAL_FAILURE(Open(1));
  std::vector<std::string> payloads;
  for (int i = 0; i < 8; ++i) payloads.push_back(Pattern(static_cast<char>('a' + i), 4096));
  {
    SendBatch batch;
    for (int i = 0; i < 8; ++i) {
      // A temporary copy: the client must not need it after the call.
      std::string data = payloads[i];
      client_->Write(i * 4096, wire::AsBytes(data), completions_.Callback());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(fake_.writes().size(), 0u) << "a write left before the batch closed";
    EXPECT_EQ(completions_.count(), 0u);
  }
  ASSERT_TRUE(completions_.WaitFor(8)) << completions_.count() << " of 8 writes answered";
  for (const Status& s : completions_.done) EXPECT_TRUE(s.ok()) << s.ToString();
  auto writes = fake_.writes();
  ASSERT_EQ(writes.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(writes[i].first, static_cast<uint64_t>(i) * 4096);
    EXPECT_EQ(writes[i].second, payloads[i]) << "write " << i;
  }
}

TEST_F(ReplicaClientBatchTest, ALargeWriteTakesTheHeldOnesAlongFirst) {
  ASSERT_NO_FATAL_FAILURE(Open(1));
  const std::string small = Pattern('s', 4096), large = Pattern('L', 256 << 10);
  {
    SendBatch batch;
    client_->Write(0, wire::AsBytes(small), completions_.Callback());
    client_->Write(1 << 20, wire::AsBytes(large), completions_.Callback());
    // Both are answered with the batch still open: the large one is written
    // at once, with the held small one before it.
    EXPECT_TRUE(completions_.WaitFor(2)) << completions_.count() << " of 2 writes answered";
  }
  for (const Status& s : completions_.done) EXPECT_TRUE(s.ok()) << s.ToString();
  auto writes = fake_.writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].first, 0u);
  EXPECT_EQ(writes[0].second, small);
  EXPECT_EQ(writes[1].first, uint64_t{1} << 20);
  EXPECT_EQ(writes[1].second, large);
}

// A replicad that stops reading fills its socket; what the same batch
// holds for another replica still leaves at once (before, its watchdog
// clock ran while the batch blocked on the stuck one).
TEST_F(ReplicaClientBatchTest, AStuckReplicaDoesNotHoldBackAnother) {
  ASSERT_NO_FATAL_FAILURE(Open(1));
  FakeReplicad stuck;
  stuck.stall_writes = true;
  Completions stuck_done;  // outlives the client below
  auto d = ReplicaClient::Open(stuck.target(), 1, 1, Quick());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const std::string big = Pattern('d', 60 << 10), small = Pattern('c', 4096);
  const auto start = std::chrono::steady_clock::now();
  std::thread closer([&] {
    SendBatch batch;
    // Far more than the socket buffers hold: the stuck one's flush blocks.
    for (int i = 0; i < 200; ++i) {
      (*d)->Write(uint64_t(i) * (64 << 10), wire::AsBytes(big), stuck_done.Callback());
    }
    client_->Write(0, wire::AsBytes(small), completions_.Callback());
  });
  const bool answered = completions_.WaitFor(1);
  const auto took = std::chrono::steady_clock::now() - start;
  closer.join();
  ASSERT_TRUE(answered);
  EXPECT_TRUE(completions_.done[0].ok()) << completions_.done[0].ToString();
  EXPECT_LT(took, std::chrono::milliseconds(1000))
      << "the healthy replica waited for the stuck one";
}

TEST_F(ReplicaClientBatchTest, AHeldWriteFailsWhenTheReplicaGoes) {
  ASSERT_NO_FATAL_FAILURE(Open(2));
  fake_.drop_on_write = true;
  const std::string data = Pattern('x', 4096);
  {
    SendBatch batch;
    for (int i = 0; i < 4; ++i)
      client_->Write(i * 4096, wire::AsBytes(data), completions_.Callback());
  }
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(completions_.WaitFor(4)) << completions_.count() << " of 4 writes answered";
  // They reached the replicad (which then went away), and failed on that,
  // not on the watchdog's timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, Quick().request / 2);
  EXPECT_FALSE(fake_.writes().empty());
  for (const Status& s : completions_.done) {
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.sys_errno(), ETIMEDOUT) << s.ToString();
  }
  EXPECT_TRUE(client_->failed());
  // Later writes, batched or not, fail at once.
  {
    SendBatch batch;
    client_->Write(0, wire::AsBytes(data), later_.Callback());
  }
  client_->Write(0, wire::AsBytes(data), later_.Callback());
  ASSERT_TRUE(later_.WaitFor(2));
  for (const Status& s : later_.done) EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace shorthorn::fused
