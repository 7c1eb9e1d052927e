// FuseFrontend: the FUSE file system under which each attached volume is one
// regular file (DESIGN §4). Low-level libfuse API; every open gets direct
// I/O; reads, writes, fsync and fallocate(PUNCH_HOLE) are handed to the
// volume's Backend and answered from its completion callback, so FUSE worker
// threads never wait for the network or a disk. Users cannot create, remove
// or rename anything (EPERM); volumes appear and disappear through
// AddVolume/RemoveVolume only.
//
// Restarts: the /dev/fuse descriptor is kept outside the process
// (FuseFdKeeper) and the session's state (the kernel's INIT request, each
// file's inode) in <state-dir>/fuse-session.json, so a new fused takes the
// connection over instead of mounting again. The files of the old process
// come back "waiting": their requests are held until the volume is attached
// again (AddVolume), and FUSE_NOTIFY_RESEND has the kernel send again the
// requests the old process read but never answered.
//
// Threads: Start/HandOver/Stop from one owner thread; AddVolume/RemoveVolume
// from any thread; libfuse's worker threads call the request handlers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "fused/core/fuse_session_state.h"
#include "fused/core/io_stats.h"
#include "fused/engine/backend.h"
#include "fused/fuse/fd_keeper.h"
#include "fused/fuse/fuse_ring.h"

struct fuse_session;
struct iovec;

namespace shorthorn::fused {

struct FuseSettings {
  std::string mount_point;
  uint32_t threads = 8;            // worker threads; the pool grows to 4x and keeps them
  uint32_t max_background = 256;   // async requests in flight
  uint32_t max_request = 1 << 20;  // largest read/write, bytes
  std::string state_dir;           // fuse-session.json and the holder's socket
  // FUSE over io_uring (fuse_ring.h) when the kernel offers it; such a
  // session is never handed over (HandOver returns false).
  bool uring = false;
  uint32_t uring_depth = 32;  // entries per CPU queue
  // With `uring`: set the fuse module's enable_uring to Y before mounting
  // when it is not (fused does; bench/fuse_floor leaves it to the caller).
  bool enable_kernel_uring = false;
};

class FuseFrontend {
 public:
  explicit FuseFrontend(FuseSettings settings);
  ~FuseFrontend();
  FuseFrontend(const FuseFrontend&) = delete;
  FuseFrontend& operator=(const FuseFrontend&) = delete;

  // Takes over the connection an earlier fused kept, or mounts (clearing a
  // dead mount left by a killed daemon whose connection was not kept), and
  // starts the worker threads.
  Status Start();
  // The files taken over from an earlier fused and not attached again yet.
  std::vector<std::string> Waiting();
  bool IsWaiting(const std::string& name);
  // A planned restart: from now on requests are left unanswered for the
  // next fused (the kernel resends them); returns once no handler is still
  // passing a request to a backend. False (and nothing changes) when the
  // kernel cannot resend requests.
  bool HandOver();
  // Ends the service. With files left (handed over: HandOver, then volumes
  // not removed) the connection and the state file stay for the next fused;
  // otherwise unmounts (lazily if busy), lets go of the kept descriptor and
  // joins the workers. Returns true when the connection was kept: the
  // caller then exits without further cleanup (worker threads still block
  // in read).
  bool Stop();

  // Publishes `backend` as file <mount_point>/<name>; returns its path. For a
  // waiting file (taken over) keeps its inode and serves its held requests.
  Result<std::string> AddVolume(const std::string& name, std::shared_ptr<Backend> backend);
  // Removes the file. Requests already in flight complete normally; held
  // requests of a waiting file fail with EIO.
  void RemoveVolume(const std::string& name);
  // Tells the kernel to forget the file's cached size (after an expand).
  void SizeChanged(const std::string& name);

  const std::string& mount_point() const { return settings_.mount_point; }

  // Request handlers, public for the C callback table in fuse_ops.cc.
  // Backend nullptr: the file went away.
  using Work = std::function<void(Backend*, const std::shared_ptr<IoStats>&)>;
  struct Volume {
    std::string name;
    uint64_t ino;
    uint64_t size;                     // while waiting (no backend yet)
    std::shared_ptr<Backend> backend;  // guarded by mutex_; null while waiting
    std::vector<Work> held;            // guarded by mutex_
    std::shared_ptr<IoStats> stats = std::make_shared<IoStats>();
  };
  // The I/O figures of the volume's file (null when it has none).
  std::shared_ptr<const IoStats> Stats(const std::string& name);
  std::shared_ptr<Volume> FindByIno(uint64_t ino);
  std::shared_ptr<Volume> FindByName(const std::string& name);
  std::map<std::string, std::shared_ptr<Volume>> Snapshot();
  const FuseSettings& settings() const { return settings_; }
  uint64_t SizeOf(const Volume& v);
  // Admits a request for inode `ino`: kRun with the backend (call Done()
  // after handing the request to it), kWait while the file waits to be
  // attached again (then Hold the request), kDrop during a HandOver.
  enum class Admission { kUnknown, kRun, kWait, kDrop };
  Admission Admit(uint64_t ino, std::shared_ptr<Volume>* v, std::shared_ptr<Backend>* backend);
  void Done() { dispatching_.fetch_sub(1); }
  void Hold(const std::shared_ptr<Volume>& v, Work work);
  // libfuse's I/O on the descriptor, with the first INIT request recorded.
  ssize_t ReadRequest(int fd, void* buf, size_t len);
  ssize_t WriteReply(int fd, const ::iovec* iov, int count);
  void Initialized();
  // Requests served through FUSE over io_uring so far (0 without it), and
  // whether the connection uses it.
  uint64_t RingRequests() const;
  bool UsesRing() const { return ring_ptr_.load(std::memory_order_acquire) != nullptr; }

 private:
  Status Mount();
  Status TakeOver(UniqueFd fd, const FuseSessionState& state);
  Status StartLoop();
  void SaveStateLocked();
  std::string state_path() const;
  // libfuse's INIT reply: with settings_.uring and the kernel's offer,
  // creates the ring, sets FUSE_OVER_IO_URING in the reply and starts it.
  ssize_t WriteInitReply(int fd, const ::iovec* iov, int count);

  FuseSettings settings_;
  FuseFdKeeper keeper_;
  fuse_session* session_ = nullptr;
  std::thread loop_;
  std::atomic<bool> mounted_{false};
  std::atomic<bool> dropping_{false};  // HandOver: leave requests unanswered
  std::atomic<int> dispatching_{0};    // handlers inside Serve
  std::mutex mutex_;
  FuseSessionState state_;                                  // guarded by mutex_
  bool init_recorded_ = false;                              // guarded by mutex_
  std::map<std::string, std::shared_ptr<Volume>> by_name_;  // guarded by mutex_
  std::map<uint64_t, std::shared_ptr<Volume>> by_ino_;      // guarded by mutex_
  std::atomic<uint64_t> init_unique_{0};                    // the first INIT request's
  std::atomic<bool> ring_used_{false};                      // set before the ring is advertised
  std::unique_ptr<FuseRing> ring_;                          // set once, before ring_ptr_
  std::atomic<FuseRing*> ring_ptr_{nullptr};
};

}  // namespace shorthorn::fused
