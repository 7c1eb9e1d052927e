// SyncIoEngine: the IoEngine fallback on plain syscalls (pread, pwrite,
// fdatasync, fallocate) run by a small pool of worker threads. With zero
// threads every request runs inline on the submitting thread, which tests use
// for determinism. Thread-safe; the destructor finishes queued requests and
// joins the workers.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "replicad/io/io_engine.h"

namespace shorthorn::replicad {

class SyncIoEngine : public IoEngine {
 public:
  explicit SyncIoEngine(int threads);
  ~SyncIoEngine() override;
  SyncIoEngine(const SyncIoEngine&) = delete;
  SyncIoEngine& operator=(const SyncIoEngine&) = delete;

  std::string_view name() const override { return "sync"; }
  void Submit(const IoRequest& request, IoCallback done) override;

 private:
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<IoRequest, IoCallback>> queue_;  // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace shorthorn::replicad
