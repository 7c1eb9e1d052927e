// Engine behaviour for replication: range ordering, WO widening, missed-range
// records, held acknowledgements, read choice.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "common/wire.h"
#include "fused/engine/engine.h"
#include "fused/engine/extent_set.h"
#include "fused/engine/range_lock.h"

namespace shorthorn::fused {
namespace {

// An in-memory replica recording the writes it got; can fail or hold.
class Recorder : public Backend {
 public:
  uint64_t Size() const override { return data.size(); }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override {
    reads++;
    if (fail) return done(Status(ErrorKind::kUnavailable, "down", ECONNRESET), {});
    done(Status::Ok(), {data.begin() + offset, data.begin() + offset + length});
  }
  void Write(uint64_t offset, std::span<const uint8_t> d, DoneCallback done) override {
    writes.emplace_back(offset, d.size());
    if (fail) return done(Status(ErrorKind::kUnavailable, "down", ECONNRESET));
    std::memcpy(data.data() + offset, d.data(), d.size());
    done(Status::Ok());
  }
  void WriteSummed(uint64_t offset, std::span<const uint8_t> d, uint64_t checksum,
                   DoneCallback done) override {
    sums.push_back(checksum == wire::PayloadChecksum(d));
    Write(offset, d, std::move(done));
  }
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override {
    std::memset(data.data() + offset, 0, length);
    done(Status::Ok());
  }
  void Flush(DoneCallback done) override { done(Status::Ok()); }
  Status Close() override { return Status::Ok(); }
  size_t Outstanding() const override { return outstanding; }

  std::vector<uint8_t> data = std::vector<uint8_t>(1 << 20, 0);
  std::vector<std::pair<uint64_t, uint64_t>> writes;
  std::vector<bool> sums;  // per WriteSummed: was the checksum the payload's
  bool fail = false;
  int reads = 0;
  size_t outstanding = 0;
};

TEST(RangeLockTest, OverlapsWaitInArrivalOrderOthersDoNot) {
  RangeLock lock;
  std::vector<int> order;
  uint64_t a = lock.TryAcquire(0, 100);
  ASSERT_NE(a, 0u);
  EXPECT_EQ(lock.TryAcquire(50, 60), 0u);
  uint64_t b = 0, c = 0;
  lock.Acquire(50, 150, [&](uint64_t t) {
    order.push_back(1);
    b = t;
  });
  lock.Acquire(120, 130, [&](uint64_t t) {
    order.push_back(2);
    c = t;
  });                                      // behind b
  uint64_t d = lock.TryAcquire(200, 300);  // disjoint: granted at once
  EXPECT_NE(d, 0u);
  EXPECT_TRUE(order.empty());
  lock.Release(a);
  ASSERT_EQ(order, std::vector<int>{1});
  lock.Release(b);
  ASSERT_EQ(order, (std::vector<int>{1, 2}));
  lock.Release(c);
  lock.Release(d);
  EXPECT_EQ(lock.size(), 0u);
}

TEST(ExtentSetTest, MergesOverlappingAndAdjacentRanges) {
  ExtentSet s;
  s.Add(0, 10);
  s.Add(20, 30);
  s.Add(10, 20);  // bridges both
  s.Add(100, 110);
  s.Add(105, 200);
  EXPECT_EQ(s.intervals(), 2u);
  EXPECT_EQ(s.bytes(), 30u + 100u);
  auto r = s.Ranges();
  EXPECT_EQ(r[0], (std::pair<uint64_t, uint64_t>{0, 30}));
  EXPECT_EQ(r[1], (std::pair<uint64_t, uint64_t>{100, 200}));
}

struct Two {
  Two() {
    std::vector<EngineReplica> rs;
    rs.push_back({"a", a, ReplicaMode::kRW, false});
    rs.push_back({"b", b, ReplicaMode::kRW, false});
    EngineCallbacks cb;
    cb.on_failure = [this](const std::string& name, const Status&) { failed.push_back(name); };
    engine = std::make_unique<Engine>("vol", 1 << 20, std::move(rs), cb);
  }
  Status Write(uint64_t off, size_t len, uint8_t v, bool* acked = nullptr) {
    std::vector<uint8_t> d(len, v);
    Status out(ErrorKind::kFailed, "not acknowledged");
    engine->Write(off, d, [&out, acked](Status s) {
      out = s;
      if (acked) *acked = true;
    });
    return out;
  }
  std::shared_ptr<Recorder> a = std::make_shared<Recorder>();
  std::shared_ptr<Recorder> b = std::make_shared<Recorder>();
  std::vector<std::string> failed;
  std::unique_ptr<Engine> engine;
};

TEST(EngineReplicationTest, AcksAreHeldUntilTheFailureIsRecorded) {
  Two t;
  t.b->fail = true;
  bool acked = false;
  (void)t.Write(0, 4096, 1, &acked);
  EXPECT_FALSE(acked);  // held: b failed and nobody recorded it yet
  ASSERT_EQ(t.failed, std::vector<std::string>{"b"});
  bool acked2 = false;
  (void)t.Write(8192, 4096, 2, &acked2);  // later writes are held too
  EXPECT_FALSE(acked2);
  t.engine->MembershipRecorded(Status::Ok());
  EXPECT_TRUE(acked);
  EXPECT_TRUE(acked2);
}

TEST(EngineReplicationTest, EveryReplicaGetsTheWritesPayloadChecksum) {
  Two t;
  ASSERT_TRUE(t.Write(4096, 8192, 7).ok());
  ASSERT_TRUE(t.Write(0, 512, 9).ok());  // unaligned, no WO replica: sent as is
  EXPECT_EQ(t.a->sums, (std::vector<bool>{true, true}));
  EXPECT_EQ(t.b->sums, (std::vector<bool>{true, true}));
}

TEST(EngineReplicationTest, FailedRecordingTurnsHeldAcksIntoErrors) {
  Two t;
  t.b->fail = true;
  Status out;
  std::vector<uint8_t> d(4096, 1);
  t.engine->Write(0, d, [&](Status s) { out = s; });
  t.engine->MembershipRecorded(Status(ErrorKind::kUnavailable, "no replica answered", EIO));
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.message().find("membership change not recorded"), std::string::npos);
}

TEST(EngineReplicationTest, RemembersWhatAnErrReplicaMissedAndCopiesIt) {
  Two t;
  t.b->fail = true;
  (void)t.Write(0, 4096, 1);
  t.engine->MembershipRecorded(Status::Ok());
  (void)t.Write(65536, 8192, 2);
  std::vector<uint8_t> z(100);
  t.engine->Unmap(200000, 100, [](Status) {});
  std::vector<std::pair<uint64_t, uint64_t>> missed;
  ASSERT_TRUE(t.engine->DirtyRanges("b", &missed));
  ASSERT_EQ(missed.size(), 3u);
  EXPECT_EQ(missed[0], (std::pair<uint64_t, uint64_t>{0, 4096}));
  EXPECT_EQ(missed[1], (std::pair<uint64_t, uint64_t>{65536, 65536 + 8192}));
  // b comes back: WO, catch up with only those ranges, then RW.
  t.b->fail = false;
  t.b->writes.clear();
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kWO).ok());
  for (auto [s, e] : missed) ASSERT_TRUE(t.engine->Copy("b", s, e - s).ok());
  EXPECT_EQ(t.b->writes.size(), 3u);
  EXPECT_EQ(t.b->data[65536], 2);
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kRW).ok());
  EXPECT_FALSE(t.engine->DirtyRanges("b", &missed));  // record dropped once back
  EXPECT_EQ(t.b->data, t.a->data);
}

// Issue 15, hole 1: a replica that fails may have lost everything it
// acknowledged since its last successful flush (a power cut, a replicad
// restart after a failed fdatasync), so what it missed starts there, not
// at the failure.
TEST(EngineReplicationTest, MissedRecordStartsAtTheLastFlush) {
  Two t;
  ASSERT_TRUE(t.Write(0, 4096, 1).ok());  // A: flushed below
  Status flushed(ErrorKind::kFailed, "not called");
  t.engine->Flush([&](Status s) { flushed = s; });
  ASSERT_TRUE(flushed.ok()) << flushed.ToString();
  ASSERT_TRUE(t.Write(65536, 4096, 2).ok());  // B: acknowledged, never flushed
  t.engine->FailReplica("b", Status(ErrorKind::kUnavailable, "power cut", EIO));
  t.engine->MembershipRecorded(Status::Ok());
  ASSERT_TRUE(t.Write(131072, 4096, 3).ok());  // C: while b is ERR
  std::vector<std::pair<uint64_t, uint64_t>> missed;
  ASSERT_TRUE(t.engine->DirtyRanges("b", &missed));
  std::vector<std::pair<uint64_t, uint64_t>> want{{65536, 65536 + 4096}, {131072, 131072 + 4096}};
  EXPECT_EQ(missed, want);
}

// Issue 15, hole 2: a catch-up's copy must not run while the engine is
// paused for a snapshot (the snapshot would capture a half-copied head).
TEST(EngineReplicationTest, CopyWaitsWhileThePauseHolds) {
  Two t;
  ASSERT_TRUE(t.Write(0, 4096, 5).ok());
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kWO).ok());
  t.b->writes.clear();
  ASSERT_TRUE(t.engine->Pause().ok());
  std::promise<Status> copied;
  std::thread copier([&] { copied.set_value(t.engine->Copy("b", 0, 4096)); });
  auto result = copied.get_future();
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_TRUE(t.b->writes.empty());  // nothing reached b while paused
  t.engine->Resume();
  EXPECT_TRUE(result.get().ok());
  copier.join();
  EXPECT_EQ(t.b->writes.size(), 1u);
  EXPECT_EQ(t.b->data[0], 5);
}

TEST(EngineReplicationTest, PauseWaitsForACopyInFlight) {
  Two t;
  std::atomic<bool> inside{false}, release{false};
  std::thread holder([&] {
    (void)t.engine->WithRangeHeld(0, 4096, [&] {
      inside = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return Status::Ok();
    });
  });
  while (!inside) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::promise<Status> paused;
  std::thread pauser([&] { paused.set_value(t.engine->Pause()); });
  auto result = paused.get_future();
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  release = true;
  EXPECT_TRUE(result.get().ok());
  t.engine->Resume();
  holder.join();
  pauser.join();
}

// A scrub that finds a replica different marks it ERR with the differing
// ranges added to what it must be given again.
TEST(EngineReplicationTest, FailReplicaAddsTheRangesItMustGetAgain) {
  Two t;
  t.engine->FailReplica("b", Status(ErrorKind::kFailed, "differs"), {{8192, 12288}});
  t.engine->MembershipRecorded(Status::Ok());
  std::vector<std::pair<uint64_t, uint64_t>> missed;
  ASSERT_TRUE(t.engine->DirtyRanges("b", &missed));
  EXPECT_EQ(missed, (std::vector<std::pair<uint64_t, uint64_t>>{{8192, 12288}}));
}

// A catch-up that ends after its replica failed again (a kill during the
// generation bump) must not make it RW: it missed writes.
TEST(EngineReplicationTest, AFailedReplicaCannotBecomeRw) {
  Two t;
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kWO).ok());
  t.engine->FailReplica("b", Status(ErrorKind::kUnavailable, "killed", ECONNRESET));
  t.engine->MembershipRecorded(Status::Ok());
  Status s = t.engine->SetMode("b", ReplicaMode::kRW);
  EXPECT_EQ(s.kind(), ErrorKind::kFailed) << s.ToString();
  EXPECT_EQ(t.engine->Count(ReplicaMode::kRW), 1u);
}

// A backend that answers on a thread of its own, like a ReplicaClient's
// reader, and that must not be destroyed there.
class ThreadedBackend : public Backend {
 public:
  explicit ThreadedBackend(std::atomic<int>* destroyed_on_own_thread, std::atomic<int>* destroyed)
      : on_own_(destroyed_on_own_thread), destroyed_(destroyed) {
    worker_ = std::thread([this] {
      std::unique_lock lock(mu_);
      for (;;) {
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        auto next = std::move(queue_.front());
        queue_.erase(queue_.begin());
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        next();
        lock.lock();
      }
    });
  }
  ~ThreadedBackend() override {
    if (OnOwnThread()) {
      (*on_own_)++;
      worker_.detach();  // joining would throw EDEADLK, as in ReplicaClient
    } else {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      worker_.join();
    }
    (*destroyed_)++;
  }
  bool OnOwnThread() const override { return std::this_thread::get_id() == worker_.get_id(); }
  uint64_t Size() const override { return 1 << 20; }
  void Read(uint64_t, uint32_t length, ReadCallback done) override {
    Post([done, length] { done(Status::Ok(), std::vector<uint8_t>(length)); });
  }
  void Write(uint64_t, std::span<const uint8_t>, DoneCallback done) override {
    Post([done] { done(Status(ErrorKind::kUnavailable, "gone", ECONNRESET)); });
  }
  void Unmap(uint64_t, uint64_t, DoneCallback done) override {
    Post([done] { done(Status::Ok()); });
  }
  void Flush(DoneCallback done) override {
    Post([done] { done(Status::Ok()); });
  }
  Status Close() override { return Status::Ok(); }

 private:
  void Post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
  }
  std::atomic<int>* on_own_;
  std::atomic<int>* destroyed_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread worker_;
};

// Found by the randomized schedule: a rebuild gave up on a new replica that
// had failed and removed it while its failed write was still being
// answered; the last reference went with that answer, on the replica's own
// thread, and ~ReplicaClient's join threw EDEADLK (fused terminated).
TEST(EngineReplicationTest, ABackendIsNeverDestroyedOnItsOwnThread) {
  std::atomic<int> on_own{0}, destroyed{0};
  {
    auto a = std::make_shared<Recorder>();
    std::vector<EngineReplica> rs;
    rs.push_back({"a", a, ReplicaMode::kRW, false});
    rs.push_back(
        {"b", std::make_shared<ThreadedBackend>(&on_own, &destroyed), ReplicaMode::kWO, false});
    Engine engine("vol", 1 << 20, std::move(rs));
    std::vector<uint8_t> d(4096, 1);
    std::promise<Status> written;
    engine.Write(0, d, [&](Status s) { written.set_value(s); });
    // Removed while its write is in flight; the caller drops what it got.
    (void)engine.RemoveReplica("b");
    EXPECT_TRUE(written.get_future().get().ok());  // a answered
    for (int i = 0; i < 100 && destroyed.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(on_own.load(), 0) << "destroyed on its own thread";
}

TEST(EngineReplicationTest, SnapshotInvalidatesTheMissedRecord) {
  Two t;
  t.b->fail = true;
  (void)t.Write(0, 4096, 1);
  t.engine->MembershipRecorded(Status::Ok());
  t.engine->InvalidateDirty();
  std::vector<std::pair<uint64_t, uint64_t>> missed;
  EXPECT_FALSE(t.engine->DirtyRanges("b", &missed));
}

TEST(EngineReplicationTest, UnalignedWritesAreWidenedForWoReplicas) {
  Two t;
  (void)t.Write(0, 8192, 7);
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kWO).ok());
  std::fill(t.b->data.begin(), t.b->data.end(), 0);  // b knows nothing yet
  t.a->writes.clear();
  t.b->writes.clear();
  std::vector<uint8_t> d(512, 9);
  Status out(ErrorKind::kFailed, "x");
  t.engine->Write(4096 + 512, d, [&](Status s) { out = s; });
  ASSERT_TRUE(out.ok()) << out.ToString();
  ASSERT_EQ(t.b->writes.size(), 1u);
  EXPECT_EQ(t.b->writes[0], (std::pair<uint64_t, uint64_t>{4096, 4096}));
  EXPECT_EQ(t.b->data[4096], 7);        // from a, not zeros
  EXPECT_EQ(t.b->data[4096 + 512], 9);  // the new bytes
  EXPECT_EQ(t.b->data[4096 + 1024], 7);
  EXPECT_EQ(t.a->data[4096 + 512], 9);
  EXPECT_EQ(t.b->reads, 0);  // never read from a WO replica
}

TEST(EngineReplicationTest, UnalignedUnmapsBecomeWholeBlocksForWoReplicas) {
  Two t;
  (void)t.Write(0, 5 * 4096, 7);
  ASSERT_TRUE(t.engine->SetMode("b", ReplicaMode::kWO).ok());
  t.b->data = t.a->data;
  t.b->writes.clear();
  Status out(ErrorKind::kFailed, "x");
  t.engine->Unmap(4096 + 512, 2 * 4096, [&](Status s) { out = s; });  // [4608, 12800)
  ASSERT_TRUE(out.ok()) << out.ToString();
  // Head edge [4608, 8192) and tail edge [12288, 12800) as whole-block
  // writes, the middle block unmapped.
  ASSERT_EQ(t.b->writes.size(), 2u);
  EXPECT_EQ(t.b->writes[0], (std::pair<uint64_t, uint64_t>{4096, 4096}));
  EXPECT_EQ(t.b->writes[1], (std::pair<uint64_t, uint64_t>{12288, 4096}));
  for (uint64_t i = 0; i < 5 * 4096; ++i) {
    uint8_t want = (i >= 4608 && i < 12800) ? 0 : 7;
    ASSERT_EQ(t.b->data[i], want) << i;
    ASSERT_EQ(t.a->data[i], want) << i;
  }
}

TEST(EngineReplicationTest, ReadsPreferLocalThenLeastOutstanding) {
  auto a = std::make_shared<Recorder>(), b = std::make_shared<Recorder>(),
       c = std::make_shared<Recorder>();
  a->outstanding = 5;
  b->outstanding = 1;
  c->outstanding = 9;
  std::vector<EngineReplica> rs = {{"a", a, ReplicaMode::kRW, false},
                                   {"b", b, ReplicaMode::kRW, false},
                                   {"c", c, ReplicaMode::kRW, false}};
  Engine e("vol", 1 << 20, rs);
  e.Read(0, 512, [](Status, std::vector<uint8_t>) {});
  EXPECT_EQ(b->reads, 1);
  std::vector<EngineReplica> rs2 = {{"a", a, ReplicaMode::kRW, false},
                                    {"c", c, ReplicaMode::kRW, true}};
  Engine e2("vol", 1 << 20, rs2);
  e2.Read(0, 512, [](Status, std::vector<uint8_t>) {});
  EXPECT_EQ(c->reads, 1);  // local wins despite more outstanding
}

}  // namespace
}  // namespace shorthorn::fused
