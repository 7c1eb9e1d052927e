// Engine: one attached volume's replica set, presented as a Backend. Writes,
// unmaps and flushes go to every RW replica in parallel and complete when all
// of them have answered; a replica that fails is marked ERR and dropped, and
// the operation succeeds while at least one RW replica answered it. Reads go
// to one RW replica, the next one on error. With no RW replica left, I/O
// fails with EIO.
//
// Pure logic over Backend: the replicas are ReplicaClients in fused, fakes in
// tests. Thread-safe; callbacks run on the replicas' completion threads.
// `on_change` is called (no lock held) when a replica's mode changes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fused/engine/backend.h"

namespace shorthorn::fused {

enum class ReplicaMode { kRW, kWO, kERR };
const char* ReplicaModeName(ReplicaMode mode);

struct EngineReplica {
  std::string name;  // for messages and properties
  std::unique_ptr<Backend> backend;
  ReplicaMode mode = ReplicaMode::kRW;
};

class Engine : public Backend {
 public:
  Engine(std::string volume, uint64_t size, std::vector<EngineReplica> replicas,
         std::function<void()> on_change = {});
  ~Engine() override;

  uint64_t Size() const override { return size_.load(); }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override;
  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override;
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override;
  void Flush(DoneCallback done) override;

  // Stops admitting I/O (new requests wait in a queue) and returns once
  // every request in flight has completed. For snapshot and expand, which
  // must see no write in flight. Blocking; not from a completion thread.
  // Then flushes every replica (bypassing the closed gate) and returns the
  // flush's status; the engine stays paused either way.
  Status Pause();
  // Admits I/O again, starting with the queued requests.
  void Resume();
  // The size after an expand; call while paused.
  void SetSize(uint64_t size) { size_ = size; }
  // Marks a replica ERR (a control operation failed on it).
  void FailReplica(const std::string& name, const Status& why);

  // Modes by replica name, in the order given at construction.
  std::vector<std::pair<std::string, ReplicaMode>> Modes() const;

  // Closes every replica (each flushes first); the engine then fails all
  // I/O. Returns the first error.
  Status Close() override;

 private:
  struct FanOut;
  // Runs `op` on every RW replica and completes `done` when all answered.
  void FanOutOp(const char* what, std::function<void(Backend&, DoneCallback)> op,
                DoneCallback done);
  void ReadFrom(size_t first, uint64_t offset, uint32_t length, ReadCallback done);
  void MarkFailed(size_t index, const Status& why);
  Status NoReplica(const char* what) const;
  std::vector<EngineReplica> Release();

  // The I/O gate: false when paused (the request is then deferred).
  bool TryEnter();
  void Leave();
  // Runs `retry` when the engine is resumed (at once if it is not paused).
  void Defer(std::function<void()> retry);
  DoneCallback Tracked(DoneCallback done);

  const std::string volume_;
  std::atomic<uint64_t> size_;
  std::mutex gate_mutex_;
  std::condition_variable gate_cv_;
  bool paused_ = false;
  uint64_t in_flight_ = 0;
  std::vector<std::function<void()>> deferred_;
  std::function<void()> on_change_;
  mutable std::mutex mutex_;  // guards modes in replicas_ (not the vector itself)
  std::vector<EngineReplica> replicas_;
};

}  // namespace shorthorn::fused
