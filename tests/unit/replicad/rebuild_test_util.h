// Helpers for the rebuild tests: a replicad "node" (data directory, store,
// handler and a TCP server on 127.0.0.1, port 0) and an engine-like client
// bound to one of its replicas. Test-only.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/peer_client.h"
#include "replicad/core/replica_store.h"
#include "replicad/core/request_handler.h"
#include "replicad/io/sync_io_engine.h"
#include "replicad/net/server.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad::testing {

class Node {
 public:
  explicit Node(ReplicaOptions options = {})
      : tmp_(/*in_memory=*/true),
        store_(tmp_.path(), &engine_, WithTestKey(std::move(options))),
        handler_(&store_),
        server_(&handler_, TestServerOptions()) {
    Status s = server_.Start("127.0.0.1", 0);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~Node() { server_.Stop(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  ReplicaStore& store() { return store_; }
  std::shared_ptr<Replica> Find(const std::string& replica) {
    auto r = store_.Find("vol", replica);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }
  std::string dir(const std::string& replica) const { return tmp_.path() + "/" + replica; }

 private:
  TempDir tmp_;
  SyncIoEngine engine_{4};
  ReplicaStore store_;
  RequestHandler handler_;
  Server server_;
};

struct Answer {
  int status = 0;
  std::string payload;
};

// An engine's connection to one replica: OPEN_REPLICA at `epoch`, HELLO.
class EngineClient {
 public:
  EngineClient(const std::string& address, const std::string& replica, uint64_t epoch)
      : epoch_(epoch) {
    auto c = PeerClient::Connect(address, 10000, TestKey().get());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return;
    client_ = std::move(*c);
    boost::json::object who{{"volume", "vol"}, {"replica", replica}, {"epoch", epoch}};
    auto opened = client_->CallJson(wire::Op::kOpenReplica, epoch, who);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    auto hello = client_->CallJson(wire::Op::kHello, epoch, who);
    EXPECT_TRUE(hello.ok()) << hello.status().ToString();
  }

  Answer Call(wire::Op op, uint64_t offset, uint64_t length, std::string_view payload) {
    auto r = client_->Call(op, epoch_, offset, length, wire::AsBytes(payload));
    if (!r.ok()) return {r.status().sys_errno(), r.status().message()};
    return {0, std::string(r->begin(), r->end())};
  }
  Answer Write(uint64_t offset, const std::vector<uint8_t>& data) {
    std::string_view d(reinterpret_cast<const char*>(data.data()), data.size());
    return Call(wire::Op::kWrite, offset, data.size(), d);
  }
  Answer Unmap(uint64_t offset, uint64_t length) {
    return Call(wire::Op::kUnmap, offset, length, {});
  }
  Answer Control(wire::Op op, const boost::json::object& o) {
    return Call(op, 0, 0, boost::json::serialize(o));
  }
  boost::json::object List() {
    Answer a = Control(wire::Op::kListLayers, {});
    EXPECT_EQ(a.status, 0) << a.payload;
    return a.status == 0 ? boost::json::parse(a.payload).as_object() : boost::json::object{};
  }
  // Polls LIST_LAYERS until the rebuild is no longer running; its state.
  boost::json::object WaitRebuild() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      boost::json::object l = List();
      const auto* rb = l.if_contains("rebuild");
      if (rb == nullptr || rb->as_object().at("state") != "running" ||
          std::chrono::steady_clock::now() > deadline) {
        return rb ? rb->as_object() : boost::json::object{};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  uint64_t epoch_;
  std::unique_ptr<PeerClient> client_;
};

// Reads a replica's whole live view, or snapshot `name`'s content.
inline std::vector<uint8_t> ReadAll(Replica& r, uint64_t epoch) {
  std::vector<uint8_t> out(r.size());
  Status s = Wait([&](auto done) { r.Read(epoch, 0, out, done); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}
inline std::vector<uint8_t> ReadSnap(Replica& r, const std::string& name) {
  std::vector<uint8_t> out(r.size());
  Status s = r.ReadSnapshot(name, 0, out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

}  // namespace shorthorn::replicad::testing
