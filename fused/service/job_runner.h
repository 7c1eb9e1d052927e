// JobRunner: runs long operations (snapshot deletion, verify, later rebuild
// and backup) on their own threads and keeps their JobInfo, which the D-Bus
// adapter shows as /org/shorthorn/Storage1/jobs/<id>. A job's body reports
// progress through its JobHandle and ends by returning a Status; the runner
// publishes the final state, keeps the finished job visible for `linger`,
// then forgets it.
//
// Threads: any thread may Start, List, Get or Cancel. Listener calls come
// from job threads with no runner lock held. The destructor cancels every
// running job and joins its thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/token_bucket.h"
#include "fused/core/volume_manager.h"

namespace shorthorn::fused {

class JobHandle {
 public:
  // Progress: bytes done of total (total 0 when unknown).
  virtual void Update(uint64_t bytes, uint64_t total) = 0;
  // The message of a job that completes (e.g. the URL of the backup it
  // made); a failed job's message is its error.
  virtual void SetResult(const std::string& message) = 0;
  // While the job waits for its turn (a limit on concurrent rebuilds):
  // State "queued" with Message `why`; "" makes it "running" again.
  virtual void SetQueued(const std::string& why) = 0;
  virtual bool cancelled() const = 0;
  // Sleeps up to `d`; returns early (true) when the job is cancelled.
  virtual bool WaitCancelled(std::chrono::milliseconds d) = 0;

 protected:
  ~JobHandle() = default;
};

class JobRunner {
 public:
  using Body = std::function<Status(JobHandle&)>;
  using Notify = std::function<void(const JobInfo&, bool added, bool removed)>;

  explicit JobRunner(std::chrono::milliseconds linger = std::chrono::seconds(60));
  ~JobRunner();

  // Called on every change; set before the first Start.
  void SetNotify(Notify notify);

  // Starts `body` on a new thread; returns the job id.
  uint64_t Start(const std::string& operation, const std::string& volume, const std::string& target,
                 bool cancellable, Body body);
  std::vector<JobInfo> List() const;
  Result<JobInfo> Get(uint64_t id) const;
  Status Cancel(uint64_t id);
  // True while a job of `operation` on `volume` is running (or queued).
  bool Running(const std::string& volume, const std::string& operation) const;

 private:
  struct Job;
  void Run(std::shared_ptr<Job> job, Body body);
  void Publish(const JobInfo& info, bool added, bool removed);

  const std::chrono::milliseconds linger_;
  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;
  std::vector<std::thread> threads_;
  Notify notify_;
};

// Paces one job's data to `rate` bytes/s (0: unlimited) with a token bucket
// (common/token_bucket.h) holding at most a tenth of a second of credit.
// Throttle is told the job's bytes so far after each piece and sleeps the
// new ones off through the job's handle, so a cancel cuts the sleep short.
// One caller at a time.
class JobPacer {
 public:
  JobPacer(JobHandle& job, uint64_t rate);
  // `done`: bytes moved since the job started. True when the job was
  // cancelled.
  bool Throttle(uint64_t done);

 private:
  JobHandle& job_;
  TokenBucket bucket_;
  uint64_t done_ = 0;
};

}  // namespace shorthorn::fused
