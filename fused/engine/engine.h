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

  uint64_t Size() const override { return size_; }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override;
  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override;
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override;
  void Flush(DoneCallback done) override;

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

  const std::string volume_;
  const uint64_t size_;
  std::function<void()> on_change_;
  mutable std::mutex mutex_;  // guards modes in replicas_ (not the vector itself)
  std::vector<EngineReplica> replicas_;
};

}  // namespace shorthorn::fused
