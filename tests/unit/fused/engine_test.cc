#include "fused/engine/engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>

namespace shorthorn::fused {
namespace {

// An in-memory replica that can be told to fail; answers synchronously.
class MemoryBackend : public Backend {
 public:
  explicit MemoryBackend(uint64_t size) : data_(size, 0) {}
  uint64_t Size() const override { return data_.size(); }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override {
    reads++;
    if (fail) return done(Status(ErrorKind::kUnavailable, "down", ECONNRESET), {});
    done(Status::Ok(), {data_.begin() + offset, data_.begin() + offset + length});
  }
  void Write(uint64_t offset, std::span<const uint8_t> d, DoneCallback done) override {
    if (fail) return done(Status(ErrorKind::kUnavailable, "down", ECONNRESET));
    std::memcpy(data_.data() + offset, d.data(), d.size());
    done(Status::Ok());
  }
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override {
    if (fail) return done(Status(ErrorKind::kIoError, "disk", EIO));
    std::memset(data_.data() + offset, 0, length);
    done(Status::Ok());
  }
  void Flush(DoneCallback done) override {
    flushes++;
    done(fail ? Status(ErrorKind::kIoError, "fsync failed", EIO) : Status::Ok());
  }
  Status Close() override { return Status::Ok(); }

  bool fail = false;
  int reads = 0;
  int flushes = 0;
  std::vector<uint8_t> data_;
};

struct Fixture {
  explicit Fixture(int n) {
    std::vector<EngineReplica> replicas;
    for (int i = 0; i < n; ++i) {
      auto b = std::make_unique<MemoryBackend>(1 << 20);
      backends.push_back(b.get());
      replicas.push_back({"r" + std::to_string(i), std::move(b), ReplicaMode::kRW});
    }
    EngineCallbacks cb;
    cb.on_change = [this] { changes++; };
    engine = std::make_unique<Engine>("vol", 1 << 20, std::move(replicas), cb);
  }
  Status Write(uint64_t off, std::vector<uint8_t> d) {
    Status out(ErrorKind::kFailed, "not called");
    engine->Write(off, d, [&](Status s) { out = s; });
    return out;
  }
  Status Read(uint64_t off, uint32_t len, std::vector<uint8_t>* d) {
    Status out(ErrorKind::kFailed, "not called");
    engine->Read(off, len, [&](Status s, std::vector<uint8_t> got) {
      out = s;
      *d = std::move(got);
    });
    return out;
  }
  std::vector<MemoryBackend*> backends;
  std::unique_ptr<Engine> engine;
  int changes = 0;
};

TEST(EngineTest, WriteReachesEveryReplica) {
  Fixture f(3);
  ASSERT_TRUE(f.Write(4096, std::vector<uint8_t>(4096, 7)).ok());
  for (auto* b : f.backends) EXPECT_EQ(b->data_[4096 + 100], 7);
}

TEST(EngineTest, FailedReplicaIsDroppedAndIoGoesOn) {
  Fixture f(2);
  f.backends[0]->fail = true;
  ASSERT_TRUE(f.Write(0, std::vector<uint8_t>(512, 9)).ok());
  EXPECT_EQ(f.engine->Replicas()[0].mode, ReplicaMode::kERR);
  EXPECT_EQ(f.engine->Replicas()[1].mode, ReplicaMode::kRW);
  EXPECT_EQ(f.changes, 1);
  std::vector<uint8_t> got;
  ASSERT_TRUE(f.Read(0, 512, &got).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(512, 9));
  EXPECT_EQ(f.backends[0]->reads, 0);  // ERR replicas are not read
}

TEST(EngineTest, ReadFailsOverToTheNextReplica) {
  Fixture f(2);
  ASSERT_TRUE(f.Write(0, std::vector<uint8_t>(4096, 3)).ok());
  f.backends[0]->fail = true;
  std::vector<uint8_t> got;
  ASSERT_TRUE(f.Read(0, 4096, &got).ok());
  EXPECT_EQ(got[0], 3);
  EXPECT_EQ(f.engine->Replicas()[0].mode, ReplicaMode::kERR);
}

TEST(EngineTest, NoReplicaLeftIsEio) {
  Fixture f(1);
  f.backends[0]->fail = true;
  Status s = f.Write(0, std::vector<uint8_t>(4096, 1));
  EXPECT_EQ(s.sys_errno(), ECONNRESET);
  s = f.Write(0, std::vector<uint8_t>(4096, 1));
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_NE(s.message().find("volume vol"), std::string::npos);
  std::vector<uint8_t> got;
  EXPECT_EQ(f.Read(0, 16, &got).sys_errno(), EIO);
}

TEST(EngineTest, FlushFailureFailsTheReplica) {
  Fixture f(2);
  f.backends[1]->fail = true;
  Status out;
  f.engine->Flush([&](Status s) { out = s; });
  EXPECT_TRUE(out.ok());  // replica 0 made it durable
  EXPECT_EQ(f.engine->Replicas()[1].mode, ReplicaMode::kERR);
  f.engine->Flush([&](Status s) { out = s; });
  EXPECT_EQ(f.backends[1]->flushes, 1);  // not retried on the failed replica
}

TEST(EngineTest, UnmapZeroesOnEveryReplica) {
  Fixture f(2);
  ASSERT_TRUE(f.Write(0, std::vector<uint8_t>(8192, 5)).ok());
  Status out;
  f.engine->Unmap(0, 4096, [&](Status s) { out = s; });
  ASSERT_TRUE(out.ok());
  for (auto* b : f.backends) {
    EXPECT_EQ(b->data_[0], 0);
    EXPECT_EQ(b->data_[4096], 5);
  }
}

TEST(EngineTest, CloseFailsLaterIo) {
  Fixture f(1);
  ASSERT_TRUE(f.engine->Close().ok());
  EXPECT_EQ(f.Write(0, std::vector<uint8_t>(16, 1)).sys_errno(), EIO);
}

}  // namespace
}  // namespace shorthorn::fused

namespace shorthorn::fused {
namespace {

// Holds every write until Release(); counts flushes.
class HeldBackend : public Backend {
 public:
  uint64_t Size() const override { return 1 << 20; }
  void Read(uint64_t, uint32_t length, ReadCallback done) override {
    done(Status::Ok(), std::vector<uint8_t>(length));
  }
  void Write(uint64_t offset, std::span<const uint8_t>, DoneCallback done) override {
    std::lock_guard lock(mutex);
    order.push_back(offset);
    held.push_back(std::move(done));
  }
  void Unmap(uint64_t, uint64_t, DoneCallback done) override { done(Status::Ok()); }
  void Flush(DoneCallback done) override {
    flushes++;
    done(Status::Ok());
  }
  Status Close() override { return Status::Ok(); }
  void Release() {
    std::vector<DoneCallback> now;
    {
      std::lock_guard lock(mutex);
      now.swap(held);
    }
    for (auto& d : now) d(Status::Ok());
  }
  std::mutex mutex;
  std::vector<DoneCallback> held;
  std::vector<uint64_t> order;
  std::atomic<int> flushes{0};
};

TEST(EngineGateTest, PauseWaitsForInFlightAndDefersNewRequests) {
  auto owned = std::make_unique<HeldBackend>();
  HeldBackend* b = owned.get();
  std::vector<EngineReplica> replicas;
  replicas.push_back({"r0", std::move(owned), ReplicaMode::kRW});
  Engine engine("vol", 1 << 20, std::move(replicas));
  std::vector<uint8_t> data(4096, 1);
  std::atomic<int> completed{0};
  engine.Write(0, data, [&](Status s) { completed++; });
  std::atomic<bool> paused{false};
  std::thread pauser([&] {
    EXPECT_TRUE(engine.Pause().ok());
    paused = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(paused);  // a write is still in flight
  b->Release();
  pauser.join();
  EXPECT_TRUE(paused);
  EXPECT_EQ(b->flushes, 1);  // Pause flushed after draining
  engine.Write(8192, data, [&](Status s) { completed++; });
  EXPECT_EQ(b->order.size(), 1u);  // deferred while paused
  engine.Resume();
  ASSERT_EQ(b->order.size(), 2u);
  EXPECT_EQ(b->order[1], 8192u);
  b->Release();
  EXPECT_EQ(completed, 2);
}

// Issue 15, hole 5: a loop device sends discards of up to about 4 GiB; a
// replica may have to write zeros over such a range (during a rebuild, or
// where a snapshot holds data), which takes longer than the replica
// timeout. The engine sends large unmaps in pieces of at most
// Engine::kUnmapPiece, one after another, each its own request.
class RecordingBackend : public Backend {
 public:
  uint64_t Size() const override { return uint64_t{1} << 40; }
  void Read(uint64_t, uint32_t length, ReadCallback done) override {
    done(Status::Ok(), std::vector<uint8_t>(length));
  }
  void Write(uint64_t, std::span<const uint8_t>, DoneCallback done) override { done(Status::Ok()); }
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override {
    unmaps.emplace_back(offset, length);
    if (fail_at != 0 && unmaps.size() == fail_at) {
      return done(Status(ErrorKind::kIoError, "disk", EIO));
    }
    done(Status::Ok());
  }
  void Flush(DoneCallback done) override { done(Status::Ok()); }
  Status Close() override { return Status::Ok(); }

  std::vector<std::pair<uint64_t, uint64_t>> unmaps;
  size_t fail_at = 0;  // 1-based: this unmap fails
};

TEST(EngineTest, LargeUnmapGoesInPieces) {
  auto owned = std::make_unique<RecordingBackend>();
  RecordingBackend* b = owned.get();
  std::vector<EngineReplica> replicas;
  replicas.push_back({"r0", std::move(owned), ReplicaMode::kRW});
  Engine engine("vol", uint64_t{1} << 40, std::move(replicas));
  const uint64_t offset = 3 * 4096, length = uint64_t{5} << 30;  // 5 GiB
  int calls = 0;
  Status out(ErrorKind::kFailed, "not called");
  engine.Unmap(offset, length, [&](Status s) {
    calls++;
    out = s;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(out.ok()) << out.ToString();
  ASSERT_GT(b->unmaps.size(), 1u);
  uint64_t next = offset;
  for (const auto& [o, l] : b->unmaps) {
    EXPECT_EQ(o, next);
    EXPECT_LE(l, Engine::kUnmapPiece);
    next = o + l;
  }
  EXPECT_EQ(next, offset + length);

  // A piece that fails fails the unmap, and no later piece is sent.
  b->unmaps.clear();
  b->fail_at = 2;
  calls = 0;
  engine.Unmap(0, length, [&](Status s) {
    calls++;
    out = s;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(b->unmaps.size(), 2u);
}

}  // namespace
}  // namespace shorthorn::fused
