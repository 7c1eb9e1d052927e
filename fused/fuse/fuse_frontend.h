// FuseFrontend: the FUSE file system under which each attached volume is one
// regular file (DESIGN §4). Low-level libfuse API; every open gets direct
// I/O; reads, writes, fsync and fallocate(PUNCH_HOLE) are handed to the
// volume's Backend and answered from its completion callback, so FUSE worker
// threads never wait for the network or a disk. Users cannot create, remove
// or rename anything (EPERM); volumes appear and disappear through
// AddVolume/RemoveVolume only.
//
// Threads: Start/Stop from one owner thread; AddVolume/RemoveVolume/Path from
// any thread; libfuse's worker threads call the request handlers.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "fused/engine/backend.h"

struct fuse_session;

namespace shorthorn::fused {

struct FuseSettings {
  std::string mount_point;
  uint32_t threads = 8;            // worker threads; the pool grows to 4x and keeps them
  uint32_t max_background = 256;   // async requests in flight
  uint32_t max_request = 1 << 20;  // largest read/write, bytes
};

class FuseFrontend {
 public:
  explicit FuseFrontend(FuseSettings settings);
  ~FuseFrontend();
  FuseFrontend(const FuseFrontend&) = delete;
  FuseFrontend& operator=(const FuseFrontend&) = delete;

  // Mounts (clearing a stale mount left by a killed daemon) and starts the
  // worker threads.
  Status Start();
  // Unmounts (lazily if busy) and joins the workers.
  void Stop();

  // Publishes `backend` as file <mount_point>/<name>; returns its path.
  Result<std::string> AddVolume(const std::string& name, std::shared_ptr<Backend> backend);
  // Removes the file. Requests already in flight complete normally.
  void RemoveVolume(const std::string& name);
  // Tells the kernel to forget the file's cached size (after an expand).
  void SizeChanged(const std::string& name);

  const std::string& mount_point() const { return settings_.mount_point; }

  // Request handlers, public for the C callback table in fuse_frontend.cc.
  struct Volume {
    std::string name;
    uint64_t ino;
    std::shared_ptr<Backend> backend;
  };
  std::shared_ptr<Volume> FindByIno(uint64_t ino);
  std::shared_ptr<Volume> FindByName(const std::string& name);
  std::map<std::string, std::shared_ptr<Volume>> Snapshot();
  const FuseSettings& settings() const { return settings_; }

 private:
  FuseSettings settings_;
  fuse_session* session_ = nullptr;
  std::thread loop_;
  std::atomic<bool> mounted_{false};
  std::mutex mutex_;
  uint64_t next_ino_ = 2;  // 1 is the root
  std::map<std::string, std::shared_ptr<Volume>> by_name_;
  std::map<uint64_t, std::shared_ptr<Volume>> by_ino_;
};

}  // namespace shorthorn::fused
