// The pure pieces of waiting for jobs: job references as users write them,
// counts, the progress bar and line, and the outcome of an ended job.
#include "dbus/ctl/progress.h"

#include <gtest/gtest.h>

#include "dbus/ctl/job_reference.h"
#include "dbus/ctl/job_wait.h"
#include "dbus/ctl/size.h"

namespace shorthorn::ctl {
namespace {

TEST(JobReferenceTest, NumbersAndPaths) {
  EXPECT_EQ(*ParseJobReference("7"), "/org/shorthorn/Storage1/jobs/7");
  EXPECT_EQ(*ParseJobReference("/org/shorthorn/Storage1/jobs/123"),
            "/org/shorthorn/Storage1/jobs/123");
  for (const char* bad : {"", "x", "-1", "07", "1.5", "7 ", "/org/shorthorn/Storage1/jobs/",
                          "/org/shorthorn/Storage1/jobs/a", "/org/shorthorn/Storage1/volumes/7",
                          "jobs/7", "123456789012345678901"}) {
    Result<std::string> r = ParseJobReference(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(r.status().message().find("job '" + std::string(bad) + "'"), std::string::npos);
  }
  EXPECT_EQ(JobIdOf("/org/shorthorn/Storage1/jobs/42"), "42");
  EXPECT_EQ(JobIdOf("/elsewhere"), "/elsewhere");
}

TEST(CountTest, WholeNumbersOnly) {
  EXPECT_EQ(*ParseCount("3"), 3u);
  EXPECT_EQ(*ParseCount("0"), 0u);
  EXPECT_EQ(*ParseCount("4294967295"), 4294967295u);
  for (const char* bad : {"", "-1", "2x", "1.0", "4294967296", " 3"}) {
    EXPECT_FALSE(ParseCount(bad).ok()) << bad;
  }
}

TEST(ProgressBarTest, FillsInProportionAndClamps) {
  EXPECT_EQ(ProgressBar(0, 10), "[..........]");
  EXPECT_EQ(ProgressBar(0.25, 10), "[##........]");
  EXPECT_EQ(ProgressBar(0.999, 10), "[#########.]");
  EXPECT_EQ(ProgressBar(1, 10), "[##########]");
  EXPECT_EQ(ProgressBar(7, 4), "[####]");
  EXPECT_EQ(ProgressBar(-1, 4), "[....]");
  EXPECT_EQ(ProgressBar(0.0 / 0.0, 4), "[....]");
}

JobInfo Job() {
  JobInfo j;
  j.id = "7";
  j.object_path = "/org/shorthorn/Storage1/jobs/7";
  j.operation = "delete-snapshot";
  j.volume = "vol1";
  j.target = "s1";
  j.state = "running";
  return j;
}

TEST(ProgressLineTest, PercentBytesAndRate) {
  JobInfo j = Job();
  j.progress = 0.25;
  j.bytes = 256 << 20;
  j.total_bytes = 1 << 30;
  j.rate = (25 << 20) / 2;
  EXPECT_EQ(ProgressLine(j),
            "job 7 delete-snapshot s1 of volume vol1 [#####...............]  25%  "
            "256 MiB / 1 GiB  12.5 MiB/s");
  j.progress = 1;
  j.bytes = j.total_bytes;
  j.rate = 0;
  EXPECT_EQ(ProgressLine(j),
            "job 7 delete-snapshot s1 of volume vol1 [####################] 100%  "
            "1 GiB / 1 GiB");
}

TEST(ProgressLineTest, UnknownTotalAndNoVolume) {
  JobInfo j = Job();
  j.volume.clear();
  j.target.clear();
  j.operation = "restore";
  EXPECT_EQ(ProgressLine(j), "job 7 restore [....................]   0%");
  j.bytes = 4096;
  EXPECT_EQ(ProgressLine(j), "job 7 restore [....................]   0%  4 KiB");
  EXPECT_EQ(JobLabel(Job()), "delete-snapshot s1 of volume vol1");
}

TEST(ProgressLineTest, AQueuedJobSaysWhy) {
  JobInfo j = Job();
  j.operation = "rebuild";
  j.target.clear();
  j.state = "queued";
  j.message = "replicad h1:9500 already runs 1 rebuild";
  EXPECT_EQ(ProgressLine(j),
            "job 7 rebuild of volume vol1 queued: replicad h1:9500 already runs 1 rebuild");
  j.message.clear();
  EXPECT_EQ(ProgressLine(j), "job 7 rebuild of volume vol1 queued");
  EXPECT_FALSE(JobEnded(j));
}

TEST(ProgressLineTest, ADrainNamesItsReplicad) {
  JobInfo j = Job();
  j.operation = "drain";
  j.volume.clear();
  j.target = "10.0.0.2:9500";
  j.progress = 0.5;
  EXPECT_EQ(JobLabel(j), "drain 10.0.0.2:9500");
  EXPECT_EQ(ProgressLine(j), "job 7 drain 10.0.0.2:9500 [##########..........]  50%");
}

TEST(JobOutcomeTest, OnlyCompletedSucceeds) {
  JobInfo j = Job();
  j.state = "completed";
  EXPECT_TRUE(JobEnded(j));
  EXPECT_TRUE(JobOutcome(j).ok());
  j.state = "failed";
  j.message = "verify volume vol1: layers no longer match their checksum: s2";
  EXPECT_EQ(JobOutcome(j).kind(), ErrorKind::kFailed);
  EXPECT_EQ(JobOutcome(j).message(), j.message);
  j.state = "cancelled";
  j.message = "";
  EXPECT_EQ(JobOutcome(j).message(), "job 7 delete-snapshot s1 of volume vol1: cancelled");
  j.state = "running";
  EXPECT_FALSE(JobEnded(j));
}

}  // namespace
}  // namespace shorthorn::ctl
