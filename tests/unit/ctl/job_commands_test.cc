// RunCtl end to end over FakeStorageClient for the commands beyond the
// volume life cycle: snapshots, expand, verify, replicas and jobs, with and
// without --wait, on a terminal (progress lines on stderr) and off one
// (nothing until the end), and the exit status of a failed job.
#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>

#include "tests/unit/ctl/run_ctl_fixture.h"

namespace shorthorn::ctl {
namespace {

class JobCommandsTest : public testing::RunCtlTest {
 protected:
  void SetUp() override { (void)fake_.CreateVolume("vol1", 1 << 30, {"h1:9500", "h2:9500"}, {}); }
};

TEST_F(JobCommandsTest, SnapshotCreateListRevert) {
  ASSERT_EQ(Run({"snapshot", "create", "vol1", "s1"}), 0);
  EXPECT_EQ(out_.str(), "Created snapshot s1 of volume vol1.\n");
  ASSERT_EQ(Run({"snapshot", "create", "vol1", "s2", "--wait"}), 0);
  EXPECT_EQ(Run({"snapshot", "create", "vol1", "s2"}), 4);
  EXPECT_EQ(err_.str(), "shorthornctl: snapshot volume vol1: snapshot s2 exists\n");

  ASSERT_EQ(Run({"snapshot", "list", "vol1"}), 0);
  EXPECT_EQ(out_.str(),
            "NAME  PARENT  CREATED               HELD   TYPE  REMOVED\n"
            "s1    -       2025-01-02T03:04:05Z  1 MiB  user  no\n"
            "s2    s1      2025-01-02T03:04:05Z  1 MiB  user  no\n");
  fake_.volumes["vol1"].snapshots[0].removed = true;
  ASSERT_EQ(Run({"snapshot", "list", "vol1", "-q"}), 0);
  EXPECT_EQ(out_.str(), "s2\n");
  ASSERT_EQ(Run({"--json", "snapshot", "list", "vol1"}), 0);
  boost::json::array list = boost::json::parse(out_.str()).as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].at("parent").as_string(), "s1");
  EXPECT_EQ(list[1].at("size_held").to_number<uint64_t>(), 1u << 20);
  EXPECT_TRUE(list[0].at("removed").as_bool());
  EXPECT_TRUE(list[0].at("user_created").as_bool());

  ASSERT_EQ(Run({"snapshot", "revert", "vol1", "s2"}), 0);
  EXPECT_EQ(fake_.calls.back(), "RevertSnapshot vol1 s2");
  EXPECT_EQ(out_.str(), "Reverted volume vol1 to snapshot s2.\n");
  EXPECT_EQ(Run({"snapshot", "list", "nope"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: list snapshots of volume nope: it does not exist\n");
}

TEST_F(JobCommandsTest, DeleteWithoutWaitPrintsTheJob) {
  (void)fake_.CreateSnapshot("vol1", "s1");
  ASSERT_EQ(Run({"snapshot", "delete", "vol1", "s1"}), 0);
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/1\n");
  EXPECT_EQ(fake_.watches, 0);
  (void)fake_.CreateSnapshot("vol1", "s2");
  ASSERT_EQ(Run({"--json", "snapshot", "delete", "vol1", "s2"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/2");
  EXPECT_EQ(v.at("snapshot").as_string(), "s2");
}

TEST_F(JobCommandsTest, DeleteWaitOffATerminalPrintsOnlyTheEnd) {
  (void)fake_.CreateSnapshot("vol1", "s1");
  ASSERT_EQ(Run({"snapshot", "delete", "vol1", "s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Deleted snapshot s1 of volume vol1.\n");
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(fake_.watches, 2);
}

TEST_F(JobCommandsTest, DeleteWaitOnATerminalRedrawsProgress) {
  err_is_terminal_ = true;
  (void)fake_.CreateSnapshot("vol1", "s1");
  ASSERT_EQ(Run({"snapshot", "delete", "vol1", "s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Deleted snapshot s1 of volume vol1.\n");
  const std::string label = "job 1 delete-snapshot s1 of volume vol1 ";
  EXPECT_EQ(err_.str(),
            "\r" + label + "[....................]   0%  0 B / 8 MiB\033[K" +  //
                "\r" + label + "[##########..........]  50%  4 MiB / 8 MiB  8 MiB/s\033[K" + "\r" +
                label + "[####################] 100%  8 MiB / 8 MiB  8 MiB/s\033[K" + "\n");
}

TEST_F(JobCommandsTest, FailedJobIsExitOneWithItsMessage) {
  fake_.next_job_state = "failed";
  fake_.next_job_message = "verify volume vol1: layers no longer match their checksum: s2";
  EXPECT_EQ(Run({"volume", "verify", "vol1", "--wait"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
  EXPECT_EQ(Run({"--json", "volume", "verify", "vol1", "--wait"}), 1);
  boost::json::value error = boost::json::parse(out_.str()).at("error");
  EXPECT_EQ(error.at("message").as_string(), fake_.next_job_message);
  EXPECT_EQ(error.at("exit_code").to_number<int>(), 1);
  // Without --wait the start is what counts.
  EXPECT_EQ(Run({"volume", "verify", "vol1"}), 0);
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/3\n");
}

TEST_F(JobCommandsTest, VerifyWaitJson) {
  ASSERT_EQ(Run({"--json", "volume", "verify", "vol1", "--wait"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("volume").as_string(), "vol1");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
  EXPECT_EQ(v.at("job").at("operation").as_string(), "verify");
  EXPECT_EQ(v.at("job").at("id").as_string(), "1");
  ASSERT_EQ(Run({"volume", "verify", "vol1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Verified volume vol1: every snapshot layer matches its checksum.\n");
}

TEST_F(JobCommandsTest, ScrubWaitsAndNamesTheReplicaThatDiffered) {
  ASSERT_EQ(Run({"volume", "scrub", "vol1", "--wait"}), 0);
  EXPECT_NE(std::find(fake_.calls.begin(), fake_.calls.end(), "Scrub vol1"), fake_.calls.end());
  EXPECT_EQ(out_.str(), "Scrubbed volume vol1: its replicas hold the same data.\n");
  fake_.next_job_state = "failed";
  fake_.next_job_message = "scrub volume vol1: replica r2 differed in 1 MiB";
  EXPECT_EQ(Run({"volume", "scrub", "vol1", "--wait"}), 1);
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
  EXPECT_EQ(Run({"volume", "scrub", "nosuch"}), 3);
}

TEST_F(JobCommandsTest, ExpandAndReplicas) {
  ASSERT_EQ(Run({"volume", "expand", "vol1", "2G"}), 0);
  EXPECT_EQ(fake_.calls.back(), "Expand vol1 2147483648");
  EXPECT_EQ(out_.str(),
            "Expanded volume vol1 to 2 GiB; grow its file system to match (e.g. resize2fs).\n");
  EXPECT_EQ(Run({"volume", "expand", "vol1", "1G"}), 5);

  ASSERT_EQ(Run({"replica", "set-count", "vol1", "3"}), 0);
  EXPECT_EQ(fake_.calls.back(), "SetReplicaCount vol1 3");
  fake_.volumes["vol1"].robustness = "degraded";
  ASSERT_EQ(Run({"replica", "list", "vol1"}), 0);
  EXPECT_EQ(out_.str(),
            "Replica count: 3\n"
            "Robustness:    degraded\n"
            "ADDRESS  HOST  FREE  REPLICA  MODE\n"
            "h1:9500  -     -     r-vol1   -\n"
            "h2:9500  -     -     r-vol1   -\n");
  ASSERT_EQ(Run({"--json", "replica", "list", "vol1"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("replica_count").to_number<int>(), 3);
  EXPECT_EQ(v.at("robustness").as_string(), "degraded");
  EXPECT_EQ(v.at("replicas").as_array().size(), 2u);
  fake_.fail_next = Status(ErrorKind::kInvalidArgument, "set replica count: 9 is outside 1..5");
  EXPECT_EQ(Run({"replica", "set-count", "vol1", "9"}), 5);
}

TEST_F(JobCommandsTest, JobListShowWaitCancel) {
  std::string verify = fake_.StartJob("verify", "vol1", "", false, 4096);
  std::string rebuild = fake_.StartJob("rebuild", "vol1", "", true, 4096);
  ASSERT_EQ(Run({"job", "list"}), 0);
  EXPECT_EQ(out_.str(),
            "ID  OPERATION  VOLUME  TARGET  STATE    PROGRESS  MESSAGE\n"
            "1   verify     vol1    -       running  0%        -\n"
            "2   rebuild    vol1    -       running  0%        -\n");
  ASSERT_EQ(Run({"job", "list", "--quiet"}), 0);
  EXPECT_EQ(out_.str(), "1\n2\n");

  ASSERT_EQ(Run({"job", "show", "1"}), 0);
  EXPECT_EQ(fake_.calls.back(), "GetJob show " + verify);
  EXPECT_NE(out_.str().find("Operation:     verify\n"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("Cancellable:   no\n"), std::string::npos) << out_.str();
  ASSERT_EQ(Run({"--json", "job", "show", verify}), 0);
  EXPECT_EQ(boost::json::parse(out_.str()).at("object_path").as_string(), verify);

  EXPECT_EQ(Run({"job", "cancel", "1"}), 5);
  EXPECT_EQ(err_.str(), "shorthornctl: cancel job 1: cannot be cancelled\n");
  ASSERT_EQ(Run({"job", "cancel", "2", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Job 2 (rebuild of volume vol1) cancelled.\n");
  EXPECT_EQ(Run({"job", "wait", rebuild}), 1);
  EXPECT_EQ(err_.str(), "shorthornctl: cancelled\n");

  ASSERT_EQ(Run({"job", "wait", "1"}), 0);
  EXPECT_EQ(out_.str(), "Job 1 (verify of volume vol1) completed.\n");
  EXPECT_EQ(Run({"job", "show", "99"}), 3);
  EXPECT_EQ(Run({"job", "wait", "99"}), 3);
  EXPECT_EQ(Run({"job", "show", "x"}), 2);
}

}  // namespace
}  // namespace shorthorn::ctl
