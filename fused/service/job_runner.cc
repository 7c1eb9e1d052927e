// Design notes
//
//   Start ──► running ⇄ queued (SetQueued: waiting for its turn)
//             running ──(body returns OK)──────► completed ─┐
//                     ──(body returns error)───► failed    ─┼─ linger ──► removed
//                     ──(Cancel, body returns)─► cancelled ─┘
//
// Progress updates are published at most every 200 ms so a fast job does
// not flood the bus; the final state is always published.
#include "fused/service/job_runner.h"

#include <algorithm>

namespace shorthorn::fused {

struct JobRunner::Job : JobHandle {
  JobRunner* runner = nullptr;
  JobInfo info;  // guarded by runner->mutex_
  std::atomic<bool> cancel{false};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_publish{};
  std::string result;  // guarded by runner->mutex_

  void Update(uint64_t bytes, uint64_t total) override {
    JobInfo copy;
    {
      std::lock_guard lock(runner->mutex_);
      info.bytes = bytes;
      info.total_bytes = total;
      if (total > 0) info.progress = std::min(1.0, static_cast<double>(bytes) / total);
      auto now = std::chrono::steady_clock::now();
      double secs = std::chrono::duration<double>(now - started).count();
      if (secs > 0) info.rate = static_cast<uint64_t>(bytes / secs);
      if (now - last_publish < std::chrono::milliseconds(200)) return;
      last_publish = now;
      copy = info;
    }
    runner->Publish(copy, false, false);
  }
  void SetResult(const std::string& message) override {
    std::lock_guard lock(runner->mutex_);
    result = message;
  }
  void SetQueued(const std::string& why) override {
    JobInfo copy;
    {
      std::lock_guard lock(runner->mutex_);
      JobState state = why.empty() ? JobState::kRunning : JobState::kQueued;
      if (info.state == state && info.message == why) return;
      info.state = state;
      info.message = why;
      copy = info;
    }
    runner->Publish(copy, false, false);
  }
  bool cancelled() const override { return cancel.load(); }
  bool WaitCancelled(std::chrono::milliseconds d) override {
    std::unique_lock lock(runner->mutex_);
    runner->stop_cv_.wait_for(lock, d, [this] { return cancel.load(); });
    return cancel.load();
  }
};

JobRunner::JobRunner(std::chrono::milliseconds linger) : linger_(linger) {}

JobRunner::~JobRunner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [id, job] : jobs_) job->cancel = true;
  }
  stop_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void JobRunner::SetNotify(Notify notify) {
  std::lock_guard lock(mutex_);
  notify_ = std::move(notify);
}

void JobRunner::Publish(const JobInfo& info, bool added, bool removed) {
  Notify notify;
  {
    std::lock_guard lock(mutex_);
    notify = notify_;
  }
  if (notify) notify(info, added, removed);
}

uint64_t JobRunner::Start(const std::string& operation, const std::string& volume,
                          const std::string& target, bool cancellable, Body body) {
  auto job = std::make_shared<Job>();
  job->runner = this;
  JobInfo copy;
  {
    std::lock_guard lock(mutex_);
    job->info.id = next_id_++;
    job->info.operation = operation;
    job->info.volume = volume;
    job->info.target = target;
    job->info.state = JobState::kRunning;
    job->info.cancellable = cancellable;
    jobs_[job->info.id] = job;
    copy = job->info;
  }
  Publish(copy, true, false);
  std::lock_guard lock(mutex_);
  threads_.emplace_back([this, job, body = std::move(body)] { Run(job, body); });
  return copy.id;
}

void JobRunner::Run(std::shared_ptr<Job> job, Body body) {
  Status result = body(*job);
  JobInfo final_info;
  {
    std::lock_guard lock(mutex_);
    JobInfo& info = job->info;
    if (job->cancel && !result.ok()) {
      info.state = JobState::kCancelled;
    } else {
      info.state = result.ok() ? JobState::kCompleted : JobState::kFailed;
    }
    if (result.ok()) info.progress = 1.0;
    info.message = result.ok() ? job->result : result.message();
    final_info = info;
  }
  Publish(final_info, false, false);
  {
    std::unique_lock lock(mutex_);
    stop_cv_.wait_for(lock, linger_, [this] { return stopping_; });
    jobs_.erase(final_info.id);
  }
  Publish(final_info, false, true);
}

std::vector<JobInfo> JobRunner::List() const {
  std::lock_guard lock(mutex_);
  std::vector<JobInfo> out;
  for (const auto& [id, job] : jobs_) out.push_back(job->info);
  return out;
}

Result<JobInfo> JobRunner::Get(uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end())
    return Status(ErrorKind::kNotFound, "job " + std::to_string(id) + " does not exist");
  return it->second->info;
}

Status JobRunner::Cancel(uint64_t id) {
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) {
      return Status(ErrorKind::kNotFound,
                    "cancel job " + std::to_string(id) + ": it does not exist");
    }
    Job& job = *it->second;
    if (!job.info.cancellable) {
      return Status(ErrorKind::kInvalidArgument, "cancel job " + std::to_string(id) + " (" +
                                                     job.info.operation +
                                                     "): it cannot be cancelled");
    }
    if (!JobActive(job.info.state)) {
      return Status(ErrorKind::kInvalidArgument, "cancel job " + std::to_string(id) +
                                                     ": it already ended (" +
                                                     JobStateName(job.info.state) + ")");
    }
    job.cancel = true;
  }
  stop_cv_.notify_all();
  return Status::Ok();
}

bool JobRunner::Running(const std::string& volume, const std::string& operation) const {
  std::lock_guard lock(mutex_);
  for (const auto& [id, job] : jobs_) {
    if (job->info.volume == volume && job->info.operation == operation &&
        JobActive(job->info.state)) {
      return true;
    }
  }
  return false;
}

JobPacer::JobPacer(JobHandle& job, uint64_t rate) : job_(job), bucket_(rate, rate / 10) {}

bool JobPacer::Throttle(uint64_t done) {
  uint64_t bytes = done > done_ ? done - done_ : 0;
  done_ = std::max(done_, done);
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(bucket_.Take(bytes));
  // Under a millisecond goes on at once; the bucket keeps the debt.
  if (wait.count() <= 0) return job_.cancelled();
  return job_.WaitCancelled(wait);
}

}  // namespace shorthorn::fused
