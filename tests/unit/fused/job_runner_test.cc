// JobRunner: the life of a job as the D-Bus Job objects show it (running,
// queued, completed, failed, cancelled, then forgotten after the linger),
// what Cancel accepts and refuses, and that the destructor stops bodies that
// wait. The notifications are recorded and checked in order.
#include "fused/service/job_runner.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace shorthorn::fused {
namespace {

using namespace std::chrono_literals;

// Records every notification as "<event> <state> <message>".
class Recorder {
 public:
  JobRunner::Notify Notify() {
    return [this](const JobInfo& info, bool added, bool removed) {
      std::lock_guard lock(mutex_);
      events_.push_back(std::string(added     ? "added"
                                    : removed ? "removed"
                                              : "changed") +
                        " " + JobStateName(info.state) + " " + info.message);
      cv_.notify_all();
    };
  }
  // Waits until `event` has been recorded; false after 10 s.
  bool WaitFor(const std::string& event) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 10s, [&] {
      for (const auto& e : events_) {
        if (e == event) return true;
      }
      return false;
    });
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

TEST(JobRunnerTest, CompletedJobPublishesItsResultThenIsForgotten) {
  Recorder recorder;
  JobRunner runner(50ms);
  runner.SetNotify(recorder.Notify());
  uint64_t id = runner.Start("verify", "vol1", "", false, [](JobHandle& job) {
    job.Update(512, 1024);
    job.SetResult("all layers intact");
    return Status::Ok();
  });
  EXPECT_EQ(id, 1u);
  ASSERT_TRUE(recorder.WaitFor("removed completed all layers intact"));
  std::vector<std::string> events = recorder.events();
  EXPECT_EQ(events.front(), "added running ");
  EXPECT_EQ(events.back(), "removed completed all layers intact");
  EXPECT_EQ(runner.Get(id).status().kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(runner.List().empty());
}

TEST(JobRunnerTest, FinishedJobIsVisibleDuringTheLinger) {
  Recorder recorder;
  JobRunner runner(10s);
  runner.SetNotify(recorder.Notify());
  uint64_t id = runner.Start("delete-snapshot", "vol1", "s1", false, [](JobHandle& job) {
    job.Update(1024, 1024);
    return Status::Ok();
  });
  ASSERT_TRUE(recorder.WaitFor("changed completed "));
  Result<JobInfo> info = runner.Get(id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->operation, "delete-snapshot");
  EXPECT_EQ(info->volume, "vol1");
  EXPECT_EQ(info->target, "s1");
  EXPECT_EQ(info->state, JobState::kCompleted);
  EXPECT_DOUBLE_EQ(info->progress, 1.0);
  EXPECT_EQ(info->bytes, 1024u);
  EXPECT_FALSE(runner.Running("vol1", "delete-snapshot"));
  ASSERT_EQ(runner.List().size(), 1u);
}

TEST(JobRunnerTest, FailedJobCarriesTheError) {
  Recorder recorder;
  JobRunner runner(10s);
  runner.SetNotify(recorder.Notify());
  uint64_t id = runner.Start("rebuild", "vol1", "", true, [](JobHandle&) {
    return Status(ErrorKind::kIoError, "replica r2: read failed");
  });
  ASSERT_TRUE(recorder.WaitFor("changed failed replica r2: read failed"));
  EXPECT_EQ(runner.Get(id)->state, JobState::kFailed);
  // An ended job cannot be cancelled, and says why.
  Status s = runner.Cancel(id);
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(s.message().find("already ended (failed)"), std::string::npos) << s.message();
}

TEST(JobRunnerTest, CancelStopsAWaitingBody) {
  Recorder recorder;
  JobRunner runner(10s);
  runner.SetNotify(recorder.Notify());
  uint64_t id = runner.Start("backup", "vol1", "s1", true, [](JobHandle& job) {
    if (job.WaitCancelled(30s)) return Status(ErrorKind::kFailed, "backup cancelled");
    return Status::Ok();
  });
  EXPECT_TRUE(runner.Running("vol1", "backup"));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner.Cancel(id).ok());
  ASSERT_TRUE(recorder.WaitFor("changed cancelled backup cancelled"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(runner.Get(id)->state, JobState::kCancelled);
}

TEST(JobRunnerTest, CancelRefusesUnknownAndUncancellableJobs) {
  JobRunner runner(10s);
  EXPECT_EQ(runner.Cancel(42).kind(), ErrorKind::kNotFound);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  uint64_t id = runner.Start("verify", "vol1", "", false, [released](JobHandle&) {
    released.wait();
    return Status::Ok();
  });
  Status s = runner.Cancel(id);
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(s.message().find("cannot be cancelled"), std::string::npos) << s.message();
  release.set_value();
}

// A job waiting for its turn (a limit on concurrent rebuilds) shows
// "queued" with the reason, counts as running, and can be cancelled.
TEST(JobRunnerTest, QueuedJobShowsWhyAndCanBeCancelled) {
  Recorder recorder;
  JobRunner runner(10s);
  runner.SetNotify(recorder.Notify());
  uint64_t id = runner.Start("rebuild", "vol1", "", true, [](JobHandle& job) {
    job.SetQueued("waiting for a rebuild slot on 127.0.0.1:9501");
    while (!job.WaitCancelled(20ms)) {
    }
    return Status(ErrorKind::kFailed, "rebuild cancelled while queued");
  });
  ASSERT_TRUE(recorder.WaitFor("changed queued waiting for a rebuild slot on 127.0.0.1:9501"));
  EXPECT_EQ(runner.Get(id)->state, JobState::kQueued);
  EXPECT_TRUE(runner.Running("vol1", "rebuild"));
  Status s = runner.Cancel(id);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(recorder.WaitFor("changed cancelled rebuild cancelled while queued"));
}

TEST(JobRunnerTest, QueuedJobReturnsToRunning) {
  Recorder recorder;
  JobRunner runner(10s);
  runner.SetNotify(recorder.Notify());
  runner.Start("rebuild", "vol1", "", true, [](JobHandle& job) {
    job.SetQueued("waiting");
    job.SetQueued("waiting");  // unchanged: not published again
    job.SetQueued("");
    return Status::Ok();
  });
  ASSERT_TRUE(recorder.WaitFor("changed completed "));
  std::vector<std::string> events = recorder.events();
  std::vector<std::string> want = {"added running ", "changed queued waiting", "changed running ",
                                   "changed completed "};
  EXPECT_EQ(events, want);
}

TEST(JobRunnerTest, IdsGrowAndJobsAreListed) {
  JobRunner runner(10s);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto body = [released](JobHandle&) {
    released.wait();
    return Status::Ok();
  };
  uint64_t a = runner.Start("verify", "vol1", "", false, body);
  uint64_t b = runner.Start("verify", "vol2", "", false, body);
  EXPECT_EQ(b, a + 1);
  EXPECT_EQ(runner.List().size(), 2u);
  EXPECT_TRUE(runner.Running("vol2", "verify"));
  EXPECT_FALSE(runner.Running("vol2", "backup"));
  EXPECT_FALSE(runner.Running("vol3", "verify"));
  release.set_value();
}

TEST(JobRunnerTest, DestructorCancelsRunningJobs) {
  std::atomic<bool> saw_cancel{false};
  auto t0 = std::chrono::steady_clock::now();
  {
    JobRunner runner(60s);
    runner.Start("backup", "vol1", "", true, [&](JobHandle& job) {
      saw_cancel = job.WaitCancelled(60s);
      return Status(ErrorKind::kFailed, "stopped");
    });
  }
  EXPECT_TRUE(saw_cancel);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

}  // namespace
}  // namespace shorthorn::fused
