// Design notes: fuzzes replicad's control path (RequestHandler, ops 1,
// 16-21 and 32-43 of doc/protocol.md) in-process, with no socket: each input is one
// request frame handled against a fresh ReplicaStore in a scratch
// directory, so runs do not depend on each other. Before the request the
// store holds replica "rep" of volume "vol" (64 KiB, owner "fused-a"), open
// at epoch 1, with data in two snapshots ("s1", "s2") and in the head, and
// the connection has said HELLO (unless the input asks for an unbound one).
//
// Input: byte 0 picks the op (low 5 bits, modulo the 19 ops with JSON
// requests; a new op goes last, so that every seed keeps its op) and the
// header (bit 5: a connection without HELLO; bits 6-7: offset and length of
// a READ_SNAPSHOT[_VIEW]); the rest is the JSON body.
//
// REBUILD makes the replica connect to its "source": a source that passes
// the daemon's own host:port check is replaced by a local port that refuses
// connections, so fuzzing never reaches the network or another replicad.
//
// Properties checked besides "no crash, no sanitizer report", from
// request_handler.h: a frame is either refused (kProtocol, no reply) or
// answered exactly once before Handle returns; a reply carries an errno
// (never negative), a control reply with status 0 is a JSON object, a data
// reply has the length asked for, and every reply is a frame the peer
// accepts (its header decodes). A successful REPLICAD_INFO counts the one
// replica of the store with its size.
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/peer_client.h"
#include "common/wire.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/io_engine.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

constexpr wire::Op kOps[] = {
    wire::Op::kHello,          wire::Op::kCreateReplica,    wire::Op::kOpenReplica,
    wire::Op::kCloseReplica,   wire::Op::kDeleteReplica,    wire::Op::kSnapshot,
    wire::Op::kDeleteSnapshot, wire::Op::kRevert,           wire::Op::kExpand,
    wire::Op::kListLayers,     wire::Op::kVerify,           wire::Op::kSetGeneration,
    wire::Op::kRebuild,        wire::Op::kLayerExtents,     wire::Op::kChecksum,
    wire::Op::kReadSnapshot,   wire::Op::kReadSnapshotView, wire::Op::kListReplicas,
    wire::Op::kReplicadInfo,
};
constexpr size_t kOpCount = sizeof(kOps) / sizeof(kOps[0]);
constexpr uint64_t kSize = 64 << 10;
constexpr uint64_t kEpoch = 1;

// Runs every I/O inline on the caller's thread (deterministic).
class InlineEngine : public IoEngine {
 public:
  std::string_view name() const override { return "inline"; }
  void Submit(const IoRequest& request, IoCallback done) override { done(RunIoBlocking(request)); }
};

// A TCP port on 127.0.0.1 that is bound but never listens: a connect there
// is refused at once, and nothing else can take the port while we hold it.
std::string RefusingAddress() {
  static const std::string address = [] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      fuzz::Fail("bind a refusing port on 127.0.0.1");
    }
    return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));  // fd kept for the process
  }();
  return address;
}

// The body of a REBUILD with a connectable "source" pointed at RefusingAddress.
std::string Defused(std::string body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return body;
  json::object& o = v.as_object();
  json::value* source = o.if_contains("source");
  if (source == nullptr || !source->is_string()) return body;
  std::string host, port;
  if (!SplitHostPort(std::string(source->as_string()), &host, &port).ok()) return body;
  *source = RefusingAddress();
  return json::serialize(v);
}

template <typename Op>
Status Wait(Op op) {
  std::promise<Status> p;
  auto f = p.get_future();
  op([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

void MustOk(const Status& s, const char* what) {
  if (!s.ok()) fuzz::Fail(std::string("setup: ") + what + ": " + s.ToString());
}

void Write(Replica& r, uint64_t offset, uint64_t length, uint8_t byte) {
  std::vector<uint8_t> data(length, byte);
  MustOk(Wait([&](Replica::Done done) { r.Write(kEpoch, offset, data, done, true); }), "write");
}

struct Answer {
  int calls = 0;
  wire::Header header;
  int32_t status = 0;
  std::vector<uint8_t> payload;
};

void CheckAnswer(const wire::Header& request, const Status& handled, const Answer& a) {
  if (!handled.ok()) {
    fuzz::Check(handled.kind() == ErrorKind::kProtocol,
                "Handle failed with a kind other than kProtocol");
    fuzz::Check(a.calls == 0, "a refused frame was answered too");
    return;
  }
  fuzz::Check(a.calls == 1,
              "a control request was not answered exactly once before Handle returned");
  fuzz::Check(a.header.request_id == request.request_id, "the reply names another request");
  fuzz::Check(a.status >= 0, "a reply carries a negative status");
  if (a.status == 0 && wire::IsControlOp(request.op)) {
    json::error_code ec;
    json::value v = json::parse(fuzz::AsText(a.payload.data(), a.payload.size()), ec);
    fuzz::Check(!ec && v.is_object(), "a successful control reply is not a JSON object");
  }
  if (a.status == 0 && request.op == wire::Op::kReplicadInfo) {
    // The store holds one replica, "rep" of 64 KiB, whatever the request says.
    json::object o = json::parse(fuzz::AsText(a.payload.data(), a.payload.size())).as_object();
    fuzz::Check(
        o.at("host_id") == "fuzz-host" && o.at("replicas") == 1 &&
            o.at("provisioned_bytes") == kSize &&
            o.at("free_bytes").to_number<uint64_t>() <= o.at("total_bytes").to_number<uint64_t>(),
        "a REPLICAD_INFO reply does not describe the store");
  }
  if (a.status == 0 && wire::IsSnapshotRead(request.op)) {
    fuzz::Check(a.payload.size() == request.length, "a snapshot read reply has the wrong length");
  }
  wire::Header reply = wire::MakeReply(request, a.status, a.payload);
  uint8_t raw[wire::kHeaderSize];
  wire::EncodeHeader(reply, raw);
  auto decoded = wire::DecodeHeader(raw);
  fuzz::Check(decoded.ok(), "a reply is a frame the peer refuses: " +
                                (decoded.ok() ? std::string() : decoded.status().message()));
}

void RunOne(const uint8_t* data, size_t size) {
  const uint8_t mode = data[0];
  const wire::Op op = kOps[(mode & 31) % kOpCount];
  const bool unbound = (mode & 32) != 0;
  std::string body(fuzz::AsText(data + 1, size - 1));
  if (op == wire::Op::kRebuild) body = Defused(std::move(body));

  const std::string dir = fuzz::ScratchDir() + "/data";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);

  InlineEngine engine;
  ReplicaOptions options;
  options.direct_writes = false;
  options.rebuild.io_timeout_ms = 1000;
  options.rebuild.checksum_wait = std::chrono::milliseconds(100);
  {
    ReplicaStore store(dir, &engine, options);
    MustOk(store.Create("vol", "rep", kSize, false, "fused-a"), "create");
    auto r = store.Open("vol", "rep", kEpoch);
    MustOk(r.status(), "open");
    Replica& replica = **r;
    Write(replica, 0, 16 << 10, 'a');
    MustOk(replica.Snapshot("s1", "2026-01-01T00:00:00Z", true), "snapshot s1");
    Write(replica, 8 << 10, 8 << 10, 'b');
    MustOk(replica.Snapshot("s2", "2026-01-02T00:00:00Z", false), "snapshot s2");
    Write(replica, 4096, 100, 'c');  // unaligned: read-modify-write

    ConnectionState state;
    if (!unbound) state.replica = *r;

    Frame frame;
    frame.payload.assign(body.begin(), body.end());
    uint64_t offset = 0, length = 4096;
    switch (mode >> 6) {
      case 1:
        offset = 4096, length = 8192;
        break;
      case 2:
        offset = kSize - 4096;
        break;
      case 3:
        offset = kSize;  // past the end
        break;
    }
    if (!wire::IsSnapshotRead(op)) offset = length = 0;
    frame.header = wire::MakeRequest(op, 7, kEpoch, offset, length, frame.payload);
    const wire::Header request = frame.header;

    Answer answer;
    Status handled =
        RequestHandler(&store, {"fuzz-host", "fuzz.example", {"zone=a", "ssd"}})
            .Handle(&state, std::move(frame),
                    [&answer](const wire::Header& h, int32_t status, std::vector<uint8_t> payload) {
                      if (++answer.calls == 1) answer = {1, h, status, std::move(payload)};
                    });
    CheckAnswer(request, handled, answer);
    if (std::getenv("SHORTHORN_FUZZ_DEBUG") != nullptr) {  // what a seed reaches
      std::fprintf(stderr, "%s: %s status %d: %.200s\n",
                   std::string(wire::OpName(static_cast<uint16_t>(op))).c_str(),
                   handled.ok() ? "answered" : "refused", answer.status,
                   handled.ok() ? std::string(answer.payload.begin(), answer.payload.end()).c_str()
                                : handled.message().c_str());
    }
  }  // the store closes every replica (stops workers, rebuilds, unmap threads)
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace shorthorn::replicad

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shorthorn::SetLogLevel(shorthorn::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > shorthorn::wire::kMaxControlPayload) return 0;
  shorthorn::replicad::RunOne(data, size);
  return 0;
}
