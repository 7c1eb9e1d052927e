// RunCtl end to end over FakeStorageClient: human and JSON output of each
// volume command, the exit code of every error kind, the daemon's message
// passed on as is, and that help, version and usage errors never connect;
// volume create's options, and clones (--from-snapshot): the copy job found,
// printed or followed with --wait, however far it has got. Also checks that the bash completion and
// the man page know every command and option of the table.
#include "dbus/ctl/commands.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "dbus/ctl/exit_codes.h"
#include "tests/unit/ctl/run_ctl_fixture.h"

namespace shorthorn::ctl {
namespace {

using testing::RunCtlTest;

TEST_F(RunCtlTest, CreateListShowAttachDetachDelete) {
  ASSERT_EQ(Run({"volume", "create", "vol1", "--size", "10G", "-r", "h1:9500", "-r", "h2:9500"}),
            0);
  EXPECT_EQ(fake_.calls.back(), "CreateVolume vol1 10737418240 h1:9500,h2:9500");
  EXPECT_EQ(out_.str(), "Created volume vol1: 10 GiB, 2 replicas, detached.\n");
  EXPECT_EQ(err_.str(), "");

  ASSERT_EQ(Run({"volume", "attach", "vol1"}), 0);
  EXPECT_EQ(out_.str(), "/dev/loop7\n");
  ASSERT_EQ(Run({"volume", "list"}), 0);
  EXPECT_EQ(out_.str(),
            "NAME  SIZE    STATE     REPLICAS  DEVICE\n"
            "vol1  10 GiB  attached  2         /dev/loop7\n");
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_NE(out_.str().find("Size:          10 GiB (10737418240 bytes)\n"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("Loop device:   /dev/loop7\n"), std::string::npos);
  EXPECT_NE(out_.str().find("  ADDRESS  REPLICA  MODE\n  h1:9500  r-vol1   -\n"), std::string::npos)
      << out_.str();

  ASSERT_EQ(Run({"volume", "detach", "vol1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Detached volume vol1.\n");
  ASSERT_EQ(Run({"volume", "delete", "vol1", "--force"}), 0);
  EXPECT_EQ(fake_.calls.back(), "DeleteVolume vol1 force");
  ASSERT_EQ(Run({"volume", "list", "--quiet"}), 0);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(RunCtlTest, CreatePassesTheReplicaCount) {
  ASSERT_EQ(Run({"--json", "volume", "create", "v", "--size", "1G", "--replica-count", "3"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateVolume v 1073741824 - count=3");
  EXPECT_EQ(boost::json::parse(out_.str()).at("replica_count").to_number<int>(), 3);
  // --wait means nothing without --from-snapshot: no job is looked for.
  ASSERT_EQ(Run({"volume", "create", "w", "-s", "1G", "-r", "h:1", "--wait"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateVolume w 1073741824 h:1");
  EXPECT_EQ(out_.str(), "Created volume w: 1 GiB, 1 replica, detached.\n");
}

// A volume db1 with snapshot s1 to clone, and helpers to read the fake.
class CloneTest : public RunCtlTest {
 protected:
  void SetUp() override {
    (void)fake_.CreateVolume("db1", 1 << 30, {"h1:9500", "h2:9500"}, {});
    (void)fake_.CreateSnapshot("db1", "s1");
    fake_.calls.clear();
  }
  bool Called(const std::string& call) const {
    return std::find(fake_.calls.begin(), fake_.calls.end(), call) != fake_.calls.end();
  }
};

TEST_F(CloneTest, SizeIsOptionalOnlyWithFromSnapshot) {
  EXPECT_EQ(Run({"volume", "create", "db2", "-r", "h1:9500"}), kExitUsage);
  EXPECT_NE(err_.str().find("option --size is required without --from-snapshot"), std::string::npos)
      << err_.str();
  EXPECT_EQ(connects_, 0);

  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--replica-count", "2"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.calls.front(), "CreateVolume db2 0 - count=2 from=db1/s1");
  EXPECT_EQ(fake_.volumes.at("db2").size, 1u << 30);  // the snapshot's
  ASSERT_EQ(Run({"volume", "create", "db3", "--size", "2G", "--from-snapshot", "db1/s1", "-r",
                 "h3:9500"}),
            0);
  EXPECT_TRUE(Called("CreateVolume db3 2147483648 h3:9500 from=db1/s1"));
}

TEST_F(CloneTest, WithoutWaitPrintsTheVolumeAndItsJob) {
  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "Created volume db2 from snapshot db1/s1; copying in job "
            "/org/shorthorn/Storage1/jobs/1.\n");
  EXPECT_EQ(fake_.watches, 0);
  const JobInfo& job = fake_.jobs.at("/org/shorthorn/Storage1/jobs/1").front();
  EXPECT_EQ(job.operation, "clone");
  EXPECT_EQ(job.volume, "db2");
  EXPECT_EQ(job.target, "db1/s1");

  ASSERT_EQ(Run({"--json", "volume", "create", "db3", "--from-snapshot", "db1/s1"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "db3");
  EXPECT_EQ(v.at("size").to_number<uint64_t>(), 1u << 30);
  EXPECT_EQ(v.at("state").as_string(), "detached");
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/2");
}

TEST_F(CloneTest, WaitFollowsTheCloneJob) {
  ASSERT_EQ(
      Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "-r", "h1:9500", "--wait"}), 0)
      << err_.str();
  EXPECT_EQ(out_.str(), "Created volume db2 from snapshot db1/s1: 1 GiB, 1 replica, detached.\n");
  EXPECT_EQ(err_.str(), "");
  EXPECT_TRUE(Called("GetJob wait for /org/shorthorn/Storage1/jobs/1"));
  EXPECT_EQ(fake_.watches, 2);

  ASSERT_EQ(Run({"--json", "volume", "create", "db3", "--from-snapshot", "db1/s1", "--wait"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "db3");
  EXPECT_EQ(v.at("job").at("operation").as_string(), "clone");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
  EXPECT_EQ(v.at("job").at("target").as_string(), "db1/s1");
  EXPECT_TRUE(Called("GetVolume show db3"));
}

TEST_F(CloneTest, WaitOnATerminalRedrawsProgress) {
  err_is_terminal_ = true;
  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--wait"}), 0);
  const std::string label = "\rjob 1 clone db1/s1 of volume db2 ";
  EXPECT_EQ(err_.str(), label + "[....................]   0%  0 B / 1 GiB\033[K" + label +
                            "[##########..........]  50%  512 MiB / 1 GiB  1 GiB/s\033[K" + label +
                            "[####################] 100%  1 GiB / 1 GiB  1 GiB/s\033[K\n");
}

TEST_F(CloneTest, FailedCopyIsExitOneWithItsMessage) {
  fake_.next_job_state = "failed";
  fake_.next_job_message =
      "create volume db2 from snapshot db1/s1: read from replica r-db1: Input/output error";
  EXPECT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--wait"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
  EXPECT_EQ(Run({"--json", "volume", "create", "db3", "--from-snapshot", "db1/s1", "--wait"}), 1);
  boost::json::value error = boost::json::parse(out_.str()).at("error");
  EXPECT_EQ(error.at("message").as_string(), fake_.next_job_message);
  EXPECT_EQ(error.at("exit_code").to_number<int>(), 1);
  // Without --wait the start is what counts.
  EXPECT_EQ(Run({"volume", "create", "db4", "--from-snapshot", "db1/s1"}), 0);
}

TEST_F(CloneTest, PicksTheNewestCloneJobOfTheVolume) {
  // Jobs 1..8: earlier clones of a db2 that failed; 9 another job of db2.
  // The fake lists them by path, so jobs/10 comes before jobs/2.
  for (int i = 0; i < 8; ++i) (void)fake_.StartJob("clone", "db2", "db1/s0", true, 4096);
  (void)fake_.StartJob("verify", "db2", "", false, 4096);
  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "Created volume db2 from snapshot db1/s1; copying in job "
            "/org/shorthorn/Storage1/jobs/10.\n");
  ASSERT_EQ(Run({"volume", "create", "db3", "--from-snapshot", "db1/s1", "--wait"}), 0);
  EXPECT_TRUE(Called("GetJob wait for /org/shorthorn/Storage1/jobs/11"));  // not db2's 10
}

TEST_F(CloneTest, AJobThatHasAlreadyEndedIsReportedAsEnded) {
  fake_.clone_job = "ended";
  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Created volume db2 from snapshot db1/s1: 1 GiB, 0 replicas, detached.\n");
  EXPECT_EQ(fake_.watches, 0);
  fake_.next_job_state = "failed";
  fake_.next_job_message = "create volume db3 from snapshot db1/s1: no space";
  EXPECT_EQ(Run({"volume", "create", "db3", "--from-snapshot", "db1/s1", "--wait"}), 1);
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
}

TEST_F(CloneTest, AForgottenJobIsJudgedByTheVolume) {
  fake_.clone_job = "forgotten";
  ASSERT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "Created volume db2 from snapshot db1/s1: 1 GiB, 0 replicas, detached.\n"
            "Its copy job has already ended; shorthorn-fused no longer lists it.\n");
  ASSERT_EQ(Run({"--json", "volume", "create", "db3", "--from-snapshot", "db1/s1", "--wait"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "db3");
  EXPECT_TRUE(v.at("job").is_null());
  // A failed copy deleted the volume.
  fake_.next_job_state = "failed";
  EXPECT_EQ(Run({"volume", "create", "db4", "--from-snapshot", "db1/s1", "--wait"}), 1);
  EXPECT_EQ(
      err_.str(),
      "shorthornctl: create volume db4 from snapshot db1/s1: the copy job has ended and is "
      "forgotten, and the volume is gone: the copy failed (shorthorn-fused's log says why)\n");
}

TEST_F(CloneTest, DaemonErrorsKeepTheirKind) {
  EXPECT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/nope"}), 3);
  EXPECT_EQ(err_.str(),
            "shorthornctl: create volume db2 from snapshot db1/nope: volume db1 has no snapshot "
            "nope\n");
  EXPECT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1"}), 5);
  EXPECT_EQ(Run({"volume", "create", "db2", "--from-snapshot", "db1/s1", "--size", "1M"}), 5);
  EXPECT_EQ(Run({"volume", "create", "db1", "--from-snapshot", "db1/s1"}), 4);
  EXPECT_FALSE(Called("ListJobs"));
}

TEST_F(RunCtlTest, ImportNamesEveryReplicad) {
  ASSERT_EQ(Run({"volume", "import", "db", "-r", "h1:9500", "--replicad", "h2:9500"}), 0);
  EXPECT_EQ(fake_.calls.back(), "ImportVolume db h1:9500,h2:9500");
  EXPECT_EQ(out_.str(),
            "Imported volume db: 1 GiB, 2 current replicas, detached. Its previous fused is "
            "fenced.\n");
  // At least one replicad is required.
  EXPECT_EQ(Run({"volume", "import", "db2"}), kExitUsage);
  fake_.fail_next =
      Status(ErrorKind::kAlreadyExists, "import volume db: a volume of that name exists here");
  EXPECT_EQ(Run({"volume", "import", "db", "-r", "h1:9500"}), 4);
  EXPECT_EQ(err_.str(), "shorthornctl: import volume db: a volume of that name exists here\n");
}

TEST_F(RunCtlTest, JsonOutput) {
  ASSERT_EQ(Run({"--json", "volume", "create", "db", "--size", "1M", "-r", "h:1"}), 0);
  boost::json::value created = boost::json::parse(out_.str());
  EXPECT_EQ(created.at("name").as_string(), "db");
  EXPECT_EQ(created.at("size").to_number<uint64_t>(), 1u << 20);
  EXPECT_EQ(created.at("state").as_string(), "detached");
  EXPECT_EQ(created.at("replicas").as_array().at(0).at("address").as_string(), "h:1");

  ASSERT_EQ(Run({"volume", "attach", "db", "--file", "--json"}), 0);
  EXPECT_EQ(fake_.calls.back(), "Attach db file");
  boost::json::value attached = boost::json::parse(out_.str());
  EXPECT_EQ(attached.at("device").as_string(), "/run/shorthorn/volumes/db");
  EXPECT_EQ(attached.at("frontend").as_string(), "file");

  ASSERT_EQ(Run({"volume", "list", "--json"}), 0);
  boost::json::value list = boost::json::parse(out_.str());
  ASSERT_EQ(list.as_array().size(), 1u);
  EXPECT_EQ(list.as_array()[0].at("frontend_path").as_string(), "/run/shorthorn/volumes/db");
  EXPECT_EQ(list.as_array()[0].at("loop_device").as_string(), "");

  ASSERT_EQ(Run({"volume", "detach", "db", "--json"}), 0);
  EXPECT_EQ(boost::json::parse(out_.str()).at("state").as_string(), "detached");
  ASSERT_EQ(Run({"volume", "delete", "db", "--json"}), 0);
  EXPECT_TRUE(boost::json::parse(out_.str()).at("deleted").as_bool());
}

TEST_F(RunCtlTest, EveryErrorKindHasItsExitCodeAndTheMessageAsIs) {
  (void)fake_.CreateVolume("v", 1 << 20, {}, {});
  const std::vector<std::pair<ErrorKind, int>> expected = {
      {ErrorKind::kFailed, 1},          {ErrorKind::kNotFound, 3},  {ErrorKind::kAlreadyExists, 4},
      {ErrorKind::kInvalidArgument, 5}, {ErrorKind::kBusy, 6},      {ErrorKind::kNotAuthorized, 7},
      {ErrorKind::kUnavailable, 8},     {ErrorKind::kStale, 9},     {ErrorKind::kNoSpace, 10},
      {ErrorKind::kIoError, 11},        {ErrorKind::kProtocol, 12}, {ErrorKind::kLimitExceeded, 13},
      {ErrorKind::kMoved, 14},
  };
  for (const auto& [kind, code] : expected) {
    std::string message = "detach volume v: the daemon says " + std::string(ErrorKindName(kind));
    fake_.fail_next = Status(kind, message);
    EXPECT_EQ(Run({"volume", "detach", "v"}), code) << ErrorKindName(kind);
    EXPECT_EQ(err_.str(), "shorthornctl: " + message + "\n");
    EXPECT_EQ(out_.str(), "");
    EXPECT_EQ(ExitCodeFor(kind), code);
  }
  fake_.fail_next = Status(ErrorKind::kBusy, "detach volume v: /dev/loop7 is in use");
  EXPECT_EQ(Run({"--json", "volume", "detach", "v"}), 6);
  boost::json::value error = boost::json::parse(out_.str()).at("error");
  EXPECT_EQ(error.at("kind").as_string(), "Busy");
  EXPECT_EQ(error.at("message").as_string(), "detach volume v: /dev/loop7 is in use");
  EXPECT_EQ(error.at("exit_code").to_number<int>(), 6);
}

TEST_F(RunCtlTest, MissingVolumeIsNotFound) {
  EXPECT_EQ(Run({"volume", "show", "nope"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: show volume nope: it does not exist\n");
}

TEST_F(RunCtlTest, NoBusIsUnavailable) {
  connect_error_ = Status(ErrorKind::kUnavailable, "connect to the system bus: no such file");
  EXPECT_EQ(Run({"volume", "list"}), 8);
  EXPECT_EQ(err_.str(), "shorthornctl: connect to the system bus: no such file\n");
}

TEST_F(RunCtlTest, HelpVersionAndUsageNeverConnect) {
  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_NE(out_.str().find("Usage: shorthornctl"), std::string::npos);
  EXPECT_EQ(Run({"--version"}), 0);
  EXPECT_EQ(out_.str(), std::string("shorthornctl ") + SHORTHORN_VERSION + "\n");
  EXPECT_EQ(Run({"volume", "create", "x", "--size", "ten"}), kExitUsage);
  EXPECT_NE(err_.str().find("shorthornctl: volume create: option --size: size 'ten'"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"volume", "attach"}), kExitUsage);
  EXPECT_EQ(connects_, 0);
}

TEST(ExitCodesTest, DbusErrorNames) {
  EXPECT_EQ(KindForDbusError("org.shorthorn.Storage1.Error.NotFound"), ErrorKind::kNotFound);
  EXPECT_EQ(KindForDbusError("org.shorthorn.Storage1.Error.IOError"), ErrorKind::kIoError);
  EXPECT_EQ(KindForDbusError("org.shorthorn.Storage1.Error.Busy"), ErrorKind::kBusy);
  EXPECT_EQ(KindForDbusError("org.shorthorn.Storage1.Error.LimitExceeded"),
            ErrorKind::kLimitExceeded);
  EXPECT_EQ(KindForDbusError("org.shorthorn.Storage1.Error.Whatever"), ErrorKind::kFailed);
  EXPECT_EQ(KindForDbusError("org.freedesktop.DBus.Error.ServiceUnknown"), ErrorKind::kUnavailable);
  EXPECT_EQ(KindForDbusError("org.freedesktop.DBus.Error.AccessDenied"), ErrorKind::kNotAuthorized);
  EXPECT_EQ(KindForDbusError("org.freedesktop.DBus.Error.UnknownObject"), ErrorKind::kNotFound);
  EXPECT_EQ(KindForDbusError("com.example.Other"), ErrorKind::kFailed);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The completion and the man page are written by hand; keep them in step
// with the table.
TEST(DocsTest, CompletionAndManPageKnowEveryCommandAndOption) {
  std::string completion = ReadFile(SHORTHORN_SOURCE_DIR "/dbus/ctl/shorthornctl.bash-completion");
  std::string man = ReadFile(SHORTHORN_SOURCE_DIR "/doc/man/shorthornctl.1");
  ASSERT_FALSE(completion.empty());
  ASSERT_FALSE(man.empty());
  // The man page writes a hyphen in a name as "\-" ("set\-count",
  // "\-\-replica\-count").
  std::string man_text = man;
  for (size_t at; (at = man_text.find("\\-")) != std::string::npos;) man_text.erase(at, 1);
  for (const CommandSpec& c : Commands()) {
    std::string key = "[" + std::string(c.group) + " " + std::string(c.verb) + "]";
    EXPECT_NE(completion.find(key), std::string::npos) << key;
    EXPECT_NE(man_text.find(std::string(c.group) + " " + std::string(c.verb)), std::string::npos)
        << c.group << " " << c.verb;
    for (const OptionSpec& o : c.options) {
      EXPECT_NE(completion.find("--" + std::string(o.name)), std::string::npos) << o.name;
      EXPECT_NE(man_text.find("--" + std::string(o.name)), std::string::npos) << o.name;
    }
  }
}

}  // namespace
}  // namespace shorthorn::ctl
