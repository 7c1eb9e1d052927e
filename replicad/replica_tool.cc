// replica_tool: a small test client of shorthorn-replicad, for the
// integration tests (not installed).
//
//   replica_tool run HOST:PORT VOLUME REPLICA STEP...
//     runs the steps in order on one connection, authenticated with the
//     key file $SHORTHORN_CLUSTER_KEY (default /etc/shorthorn/cluster.key);
//     a failed step prints the daemon's error and exits 1. Steps:
//       create:SIZE            CREATE_REPLICA
//       open:EPOCH             OPEN_REPLICA, then HELLO at EPOCH
//       write:OFF:LEN:SEED     WRITE pseudo-random bytes (1 MiB requests)
//       snapshot:NAME          SNAPSHOT
//       delete:NAME            DELETE_SNAPSHOT
//       list                   LIST_LAYERS, printed as JSON on one line
//       idle                   waits until LIST_LAYERS shows no task
//       close                  CLOSE_REPLICA
//       destroy[:EPOCH]        DELETE_REPLICA at EPOCH (default: that of the
//                              last open step)
//   replica_tool inspect REPLICA_DIR
//     opens the replica directory offline (the daemon must not hold it),
//     with Open's crash repair but without running the background worker,
//     and prints "<snapshot> <xxh3-64 of its content>" per snapshot,
//     "(live) <hash>" and "layer-files <n> layers <m>".
#include <dirent.h>
#include <unistd.h>
#include <xxhash.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/auth.h"
#include "common/log.h"
#include "common/peer_client.h"
#include "replicad/core/replica.h"
#include "replicad/io/sync_io_engine.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

int Fail(const std::string& what) {
  std::fprintf(stderr, "replica_tool: %s\n", what.c_str());
  return 1;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t c = s.find(':', pos);
    out.push_back(s.substr(pos, c - pos));
    if (c == std::string::npos) return out;
    pos = c + 1;
  }
}

// The steps' connection: a PeerClient without timeouts (a step may take as
// long as the daemon needs), requests at the epoch of the last open step.
class Client {
 public:
  Status Connect(const std::string& address) {
    const char* env = std::getenv("SHORTHORN_CLUSTER_KEY");
    auto key = auth::ClusterKey::Load(env != nullptr ? env : auth::kDefaultKeyFile);
    if (!key.ok()) return key.status();
    auto peer = PeerClient::Connect(address, /*timeout_ms=*/0, &*key);
    if (!peer.ok()) return peer.status();
    peer_ = std::move(*peer);
    return Status::Ok();
  }
  // One request, one reply; the reply payload on success.
  Result<std::string> Call(wire::Op op, const std::string& payload, uint64_t offset = 0,
                           uint64_t length = 0) {
    auto reply = peer_->Call(op, epoch_, offset, length, wire::AsBytes(payload));
    if (!reply.ok()) return reply.status();
    return std::string(reply->begin(), reply->end());
  }
  Result<std::string> Json(wire::Op op, const json::object& o) {
    return Call(op, json::serialize(o));
  }
  uint64_t epoch_ = 0;

 private:
  std::unique_ptr<PeerClient> peer_;
};

int RunSteps(int argc, char** argv) {
  if (argc < 6) return Fail("usage: replica_tool run HOST:PORT VOLUME REPLICA STEP...");
  std::string volume = argv[3], replica = argv[4];
  Client c;
  if (Status s = c.Connect(argv[2]); !s.ok()) return Fail(s.message());
  for (int i = 5; i < argc; ++i) {
    std::vector<std::string> a = Split(argv[i]);
    Result<std::string> r = std::string();
    const std::string& op = a[0];
    if (op == "create" && a.size() == 2) {
      r = c.Json(wire::Op::kCreateReplica,
                 {{"volume", volume}, {"replica", replica}, {"size", std::stoull(a[1])}});
    } else if (op == "open" && a.size() == 2) {
      uint64_t epoch = std::stoull(a[1]);
      r = c.Json(wire::Op::kOpenReplica,
                 {{"volume", volume}, {"replica", replica}, {"epoch", epoch}});
      if (r.ok()) {
        r = c.Json(wire::Op::kHello, {{"volume", volume}, {"replica", replica}, {"epoch", epoch}});
      }
      c.epoch_ = epoch;
    } else if (op == "write" && a.size() == 4) {
      uint64_t off = std::stoull(a[1]), len = std::stoull(a[2]);
      std::mt19937_64 rng(std::stoull(a[3]));
      std::string buf;
      for (uint64_t done = 0; done < len && r.ok(); done += buf.size()) {
        buf.resize(std::min<uint64_t>(1 << 20, len - done));
        for (auto& ch : buf) ch = static_cast<char>(rng());
        r = c.Call(wire::Op::kWrite, buf, off + done, buf.size());
      }
    } else if (op == "snapshot" && a.size() == 2) {
      r = c.Json(wire::Op::kSnapshot, {{"name", a[1]}, {"user_created", true}});
    } else if (op == "delete" && a.size() == 2) {
      r = c.Json(wire::Op::kDeleteSnapshot, {{"name", a[1]}});
    } else if (op == "list") {
      r = c.Json(wire::Op::kListLayers, {});
      if (r.ok()) std::printf("%s\n", r->c_str());
    } else if (op == "idle") {
      for (int n = 0; n < 6000 && r.ok(); ++n) {
        r = c.Json(wire::Op::kListLayers, {});
        if (r.ok() && json::parse(*r).at("tasks").as_array().empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    } else if (op == "close") {
      r = c.Json(wire::Op::kCloseReplica,
                 {{"volume", volume}, {"replica", replica}, {"epoch", c.epoch_}});
    } else if (op == "destroy" && a.size() <= 2) {
      uint64_t epoch = a.size() == 2 ? std::stoull(a[1]) : c.epoch_;
      r = c.Json(wire::Op::kDeleteReplica,
                 {{"volume", volume}, {"replica", replica}, {"epoch", epoch}});
    } else {
      return Fail("unknown step " + std::string(argv[i]));
    }
    if (!r.ok()) return Fail(std::string(argv[i]) + ": " + r.status().message());
  }
  return 0;
}

int Inspect(const std::string& dir) {
  SyncIoEngine engine(0);
  ReplicaOptions options;
  options.crash_at = [](std::string_view) { return true; };  // the worker does nothing
  auto r = Replica::Open(dir, &engine, options);
  if (!r.ok()) return Fail(r.status().message());
  // Hashed in pieces (XXH3 streamed equals XXH3 of the whole): volumes of
  // many GiB need no buffer of their size.
  const uint64_t size = (*r)->size();
  std::vector<uint8_t> buf(std::min<uint64_t>(size, 64 << 20));
  auto hash = [&](const std::function<Status(uint64_t, std::span<uint8_t>)>& read,
                  uint64_t* out) -> Status {
    XXH3_state_t* state = XXH3_createState();
    XXH3_64bits_reset(state);
    Status st;
    for (uint64_t off = 0; off < size && st.ok(); off += buf.size()) {
      std::span<uint8_t> piece(buf.data(), std::min<uint64_t>(buf.size(), size - off));
      st = read(off, piece);
      if (st.ok()) XXH3_64bits_update(state, piece.data(), piece.size());
    }
    *out = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return st;
  };
  msg::LayerList list = (*r)->ListLayers();
  uint64_t h = 0;
  for (const auto& s : list.snapshots) {
    Status st =
        hash([&](uint64_t off,
                 std::span<uint8_t> piece) { return (*r)->ReadSnapshot(s.name, off, piece); },
             &h);
    if (!st.ok()) return Fail(st.message());
    std::printf("%s %016llx\n", s.name.c_str(), static_cast<unsigned long long>(h));
  }
  Status st = hash(
      [&](uint64_t off, std::span<uint8_t> piece) {
        std::promise<Status> p;
        (*r)->Read((*r)->epoch(), off, piece, [&p](Status s) { p.set_value(std::move(s)); });
        return p.get_future().get();
      },
      &h);
  if (!st.ok()) return Fail(st.message());
  std::printf("(live) %016llx\n", static_cast<unsigned long long>(h));
  size_t files = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) files += IsLayerFileName(e->d_name) ? 1 : 0;
    ::closedir(d);
  }
  std::printf("layer-files %zu layers %zu\n", files, list.snapshots.size() + 1);
  (void)(*r)->Close();
  return 0;
}

int Main(int argc, char** argv) {
  SetLogLevel(LogLevel::kWarning);
  if (argc >= 2 && std::strcmp(argv[1], "run") == 0) return RunSteps(argc, argv);
  if (argc == 3 && std::strcmp(argv[1], "inspect") == 0) return Inspect(argv[2]);
  return Fail("usage: replica_tool run HOST:PORT VOLUME REPLICA STEP... | inspect REPLICA_DIR");
}

}  // namespace
}  // namespace shorthorn::replicad

int main(int argc, char** argv) { return shorthorn::replicad::Main(argc, argv); }
