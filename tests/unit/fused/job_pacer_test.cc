// JobPacer (fused/service/job_runner.h): a job's pieces paced to its rate
// through the job's handle, so a cancel ends the wait.
#include <gtest/gtest.h>

#include "fused/service/job_runner.h"

namespace shorthorn::fused {
namespace {

// A handle that records the waits it is asked for and does not sleep.
class RecordingHandle : public JobHandle {
 public:
  void Update(uint64_t, uint64_t) override {}
  void SetResult(const std::string&) override {}
  void SetQueued(const std::string&) override {}
  bool cancelled() const override { return cancel; }
  bool WaitCancelled(std::chrono::milliseconds d) override {
    waits.push_back(d);
    return cancel;
  }
  bool cancel = false;
  std::vector<std::chrono::milliseconds> waits;
};

TEST(JobPacerTest, UnlimitedNeverWaits) {
  RecordingHandle job;
  JobPacer pacer(job, 0);
  EXPECT_FALSE(pacer.Throttle(1ull << 40));
  EXPECT_FALSE(pacer.Throttle(1ull << 41));
  EXPECT_TRUE(job.waits.empty());
}

TEST(JobPacerTest, WaitsForTheNewBytesOnly) {
  RecordingHandle job;
  JobPacer pacer(job, 1 << 20);  // 1 MiB/s
  EXPECT_FALSE(pacer.Throttle(10 << 20));
  ASSERT_EQ(job.waits.size(), 1u);
  EXPECT_GT(job.waits[0].count(), 9900) << "10 MiB at 1 MiB/s: about 10 s";
  EXPECT_LE(job.waits[0].count(), 10000);
  // The handle did not sleep, so the debt of those 10 s is still owed: the
  // next 1 MiB waits for it and for itself.
  EXPECT_FALSE(pacer.Throttle(11 << 20));
  ASSERT_EQ(job.waits.size(), 2u);
  EXPECT_GT(job.waits[1].count(), 10900);
  EXPECT_LE(job.waits[1].count(), 11000);
  // The same total again moves nothing new; it still owes the debt.
  EXPECT_FALSE(pacer.Throttle(11 << 20));
  ASSERT_EQ(job.waits.size(), 3u);
  EXPECT_LE(job.waits[2].count(), 11000);
}

TEST(JobPacerTest, ReportsCancel) {
  RecordingHandle job;
  JobPacer pacer(job, 1 << 20);
  job.cancel = true;
  EXPECT_TRUE(pacer.Throttle(1 << 20)) << "cancelled during the wait";
  ASSERT_EQ(job.waits.size(), 1u);
  JobPacer unlimited(job, 0);
  EXPECT_TRUE(unlimited.Throttle(1)) << "a cancelled job stops without waiting too";
  EXPECT_EQ(job.waits.size(), 1u);
}

}  // namespace
}  // namespace shorthorn::fused
