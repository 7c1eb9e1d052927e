// The recurring job commands ("recurring add/list/remove") and the recurring
// jobs in "volume show", end to end over FakeStorageClient: what reaches the
// client, usage errors that never connect, the table with and without the
// TARGET column, JSON, and the exit codes of the daemon's errors.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "dbus/ctl/command_line.h"
#include "dbus/ctl/commands.h"
#include "dbus/ctl/exit_codes.h"
#include "dbus/ctl/output.h"
#include "tests/unit/ctl/run_ctl_fixture.h"

namespace shorthorn::ctl {
namespace {

TEST(RecurringJsonTest, HasEveryField) {
  RecurringJobInfo j{"nightly",      "backup",
                     "0 2 * * *",    7,
                     "s3://b/p",     "2025-01-02T02:00:00Z",
                     "ok: backup-3", "2025-01-03T02:00:00Z"};
  EXPECT_EQ(boost::json::serialize(RecurringJobToJson(j)),
            R"({"name":"nightly","kind":"backup","schedule":"0 2 * * *","retain":7,)"
            R"("target":"s3://b/p","last_run":"2025-01-02T02:00:00Z","last_result":"ok: backup-3",)"
            R"("next_run":"2025-01-03T02:00:00Z"})");
}

TEST(RecurringCommandLineTest, SynopsisNamesTheJobNotAJobNumber) {
  ParsedCommandLine p =
      ParseCommandLine(Commands(), {"recurring", "add", "vol1", "hourly", "--kind=snapshot",
                                    "--schedule", "@hourly", "--retain", "24"});
  ASSERT_EQ(p.action, ParsedCommandLine::Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.arguments, (std::vector<std::string>{"vol1", "hourly"}));
  EXPECT_EQ(CommandSynopsis(*p.invocation.command),
            "recurring add VOLUME NAME --kind KIND --schedule SPEC --retain N [--target URL]");
}

class RecurringCommandsTest : public testing::RunCtlTest {
 protected:
  void SetUp() override {
    (void)fake_.CreateVolume("vol1", 1 << 30, {"h1:9500", "h2:9500"}, {});
    fake_.calls.clear();
  }
};

TEST_F(RecurringCommandsTest, AddPassesEveryValue) {
  ASSERT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule",
                 "0 2 * * *", "--retain", "7"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.calls.back(), "AddRecurringJob vol1 nightly backup [0 2 * * *] 7");
  EXPECT_EQ(out_.str(),
            "Added recurring job nightly (backup, 0 2 * * *, retain 7) to volume vol1.\n");
  EXPECT_EQ(err_.str(), "");

  ASSERT_EQ(Run({"recurring", "add", "vol1", "weekly", "--kind=backup", "--schedule=@weekly",
                 "--retain=4", "--target", "s3://bucket/shorthorn"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.calls.back(),
            "AddRecurringJob vol1 weekly backup [@weekly] 4 s3://bucket/shorthorn");

  ASSERT_EQ(Run({"--json", "recurring", "add", "vol1", "hourly", "--kind", "snapshot", "--schedule",
                 "@every 1h", "--retain", "24"}),
            0);
  boost::json::value added = boost::json::parse(out_.str());
  EXPECT_EQ(added.at("volume").as_string(), "vol1");
  EXPECT_EQ(added.at("name").as_string(), "hourly");
  EXPECT_EQ(added.at("kind").as_string(), "snapshot");
  EXPECT_EQ(added.at("schedule").as_string(), "@every 1h");
  EXPECT_EQ(added.at("retain").to_number<uint32_t>(), 24u);
  EXPECT_EQ(added.at("target").as_string(), "");
  EXPECT_TRUE(added.at("added").as_bool());

  ASSERT_EQ(fake_.volumes["vol1"].recurring_jobs.size(), 3u);
  EXPECT_EQ(fake_.volumes["vol1"].recurring_jobs[1].target, "s3://bucket/shorthorn");
}

TEST_F(RecurringCommandsTest, UsageErrorsNeverConnect) {
  const std::vector<std::string> add = {"recurring", "add", "vol1", "nightly"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = add;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {{"recurring"}, "recurring: missing subcommand (add, list, remove)"},
           {{"recurring", "add", "vol1"}, "recurring add: missing NAME"},
           {with({"--schedule", "@daily", "--retain", "7"}),
            "recurring add: option --kind is required"},
           {with({"--kind", "backup", "--retain", "7"}),
            "recurring add: option --schedule is required"},
           {with({"--kind", "backup", "--schedule", "@daily"}),
            "recurring add: option --retain is required"},
           {with({"--kind", "backup", "--schedule", "@daily", "--retain", "seven"}),
            "recurring add: option --retain: count 'seven': not a whole number"},
           {with({"--kind", "backup", "--schedule", "@daily", "--retain", "-1"}),
            "recurring add: option --retain: count '-1': not a whole number"},
           {with({"--kind", "backup", "--schedule", "@daily", "--retain"}),
            "recurring add: option --retain needs a value (N)"},
           {{"recurring", "list", "vol1", "--kind", "backup"},
            "recurring list: unknown option --kind"},
           {{"recurring", "remove", "vol1"}, "recurring remove: missing NAME"},
       }) {
    EXPECT_EQ(Run(c.args), kExitUsage) << c.message;
    EXPECT_NE(err_.str().find(c.message), std::string::npos) << err_.str();
  }
  EXPECT_EQ(connects_, 0);
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(RecurringCommandsTest, DaemonErrorsKeepTheirExitCodes) {
  EXPECT_EQ(Run({"recurring", "add", "nope", "nightly", "--kind", "backup", "--schedule", "@daily",
                 "--retain", "7"}),
            3);
  EXPECT_EQ(err_.str(),
            "shorthornctl: add recurring job nightly to volume nope: it does not exist\n");
  EXPECT_EQ(Run({"recurring", "list", "nope"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: list recurring jobs of volume nope: it does not exist\n");
  EXPECT_EQ(Run({"recurring", "remove", "nope", "nightly"}), 3);
  EXPECT_EQ(err_.str(),
            "shorthornctl: remove recurring job nightly from volume nope: it does not exist\n");
  EXPECT_EQ(Run({"recurring", "remove", "vol1", "nightly"}), 3);
  EXPECT_EQ(err_.str(),
            "shorthornctl: remove recurring job nightly from volume vol1: no such job\n");

  // Values are the daemon's to judge: passed on, and its error kind kept.
  EXPECT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "clone", "--schedule", "@daily",
                 "--retain", "7"}),
            ExitCodeFor(ErrorKind::kInvalidArgument));
  EXPECT_EQ(fake_.calls.back(), "AddRecurringJob vol1 nightly clone [@daily] 7");
  fake_.fail_next = Status(ErrorKind::kInvalidArgument,
                           "add recurring job nightly to volume vol1: retain 0 is not 1 to 100");
  EXPECT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule", "@daily",
                 "--retain", "0"}),
            5);
  EXPECT_EQ(err_.str(),
            "shorthornctl: add recurring job nightly to volume vol1: retain 0 is not 1 to 100\n");

  const std::vector<std::string> nightly = {"recurring", "add",      "vol1",       "nightly",
                                            "--kind",    "snapshot", "--schedule", "@daily",
                                            "--retain",  "7"};
  ASSERT_EQ(Run(nightly), 0);
  EXPECT_EQ(Run(nightly), 4);
  EXPECT_EQ(err_.str(), "shorthornctl: add recurring job nightly to volume vol1: it exists\n");
  fake_.fail_next = Status(ErrorKind::kLimitExceeded,
                           "add recurring job nightly to volume vol1: it has 16 recurring jobs");
  EXPECT_EQ(Run({"--json", "recurring", "add", "vol1", "n17", "--kind", "snapshot", "--schedule",
                 "@daily", "--retain", "1"}),
            13);
  boost::json::value error = boost::json::parse(out_.str()).at("error");
  EXPECT_EQ(error.at("kind").as_string(), "LimitExceeded");
  EXPECT_EQ(error.at("exit_code").to_number<int>(), 13);
}

TEST_F(RecurringCommandsTest, ListTableQuietAndJson) {
  ASSERT_EQ(Run({"recurring", "list", "vol1"}), 0);
  EXPECT_EQ(out_.str(), "NAME  KIND  SCHEDULE  RETAIN  LAST-RUN  RESULT  NEXT-RUN\n");

  ASSERT_EQ(Run({"recurring", "add", "vol1", "hourly", "--kind", "snapshot", "--schedule",
                 "@hourly", "--retain", "24"}),
            0);
  auto& jobs = fake_.volumes["vol1"].recurring_jobs;
  jobs[0].last_run = "2025-01-02T01:00:00Z";
  jobs[0].last_result = "ok: hourly-20250102T010000Z";
  ASSERT_EQ(Run({"recurring", "list", "vol1"}), 0);
  EXPECT_EQ(
      out_.str(),
      "NAME    KIND      SCHEDULE  RETAIN  LAST-RUN              RESULT                       "
      "NEXT-RUN\n"
      "hourly  snapshot  @hourly   24      2025-01-02T01:00:00Z  ok: hourly-20250102T010000Z  "
      "2025-01-03T02:00:00Z\n");

  // A TARGET column, last, once a job names one.
  ASSERT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule",
                 "0 2 * * *", "--retain", "7", "--target", "file:///srv/b"}),
            0);
  ASSERT_EQ(Run({"recurring", "list", "vol1"}), 0);
  EXPECT_EQ(
      out_.str(),
      "NAME     KIND      SCHEDULE   RETAIN  LAST-RUN              RESULT                       "
      "NEXT-RUN              TARGET\n"
      "hourly   snapshot  @hourly    24      2025-01-02T01:00:00Z  ok: hourly-20250102T010000Z  "
      "2025-01-03T02:00:00Z  -\n"
      "nightly  backup    0 2 * * *  7       -                     -                            "
      "2025-01-03T02:00:00Z  file:///srv/b\n");

  ASSERT_EQ(Run({"recurring", "list", "vol1", "-q"}), 0);
  EXPECT_EQ(out_.str(), "hourly\nnightly\n");

  ASSERT_EQ(Run({"recurring", "list", "vol1", "--json"}), 0);
  boost::json::array list = boost::json::parse(out_.str()).as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(boost::json::serialize(list[1]),
            R"({"name":"nightly","kind":"backup","schedule":"0 2 * * *","retain":7,)"
            R"("target":"file:///srv/b","last_run":"","last_result":"",)"
            R"("next_run":"2025-01-03T02:00:00Z"})");
  EXPECT_EQ(list[0].at("last_result").as_string(), "ok: hourly-20250102T010000Z");
}

TEST_F(RecurringCommandsTest, Remove) {
  ASSERT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule", "@daily",
                 "--retain", "7"}),
            0);
  ASSERT_EQ(Run({"recurring", "remove", "vol1", "nightly"}), 0);
  EXPECT_EQ(fake_.calls.back(), "RemoveRecurringJob vol1 nightly");
  EXPECT_EQ(out_.str(), "Removed recurring job nightly from volume vol1.\n");
  EXPECT_TRUE(fake_.volumes["vol1"].recurring_jobs.empty());

  ASSERT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule", "@daily",
                 "--retain", "7"}),
            0);
  ASSERT_EQ(Run({"--json", "recurring", "remove", "vol1", "nightly"}), 0);
  boost::json::value removed = boost::json::parse(out_.str());
  EXPECT_EQ(removed.at("volume").as_string(), "vol1");
  EXPECT_EQ(removed.at("name").as_string(), "nightly");
  EXPECT_TRUE(removed.at("removed").as_bool());
}

TEST_F(RecurringCommandsTest, VolumeShowListsTheJobs) {
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_NE(out_.str().find("Recurring jobs: 0\n"), std::string::npos) << out_.str();
  EXPECT_EQ(out_.str().find("NAME"), std::string::npos) << out_.str();

  ASSERT_EQ(Run({"recurring", "add", "vol1", "nightly", "--kind", "backup", "--schedule",
                 "0 2 * * *", "--retain", "7"}),
            0);
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_NE(out_.str().find("Recurring jobs: 1\n"
                            "  NAME     KIND    SCHEDULE   RETAIN  LAST-RUN  RESULT  NEXT-RUN\n"
                            "  nightly  backup  0 2 * * *  7       -         -       "
                            "2025-01-03T02:00:00Z\n"),
            std::string::npos)
      << out_.str();

  ASSERT_EQ(Run({"--json", "volume", "show", "vol1"}), 0);
  boost::json::array jobs = boost::json::parse(out_.str()).at("recurring_jobs").as_array();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].at("name").as_string(), "nightly");
  EXPECT_EQ(jobs[0].at("schedule").as_string(), "0 2 * * *");
  EXPECT_EQ(jobs[0].at("retain").to_number<uint32_t>(), 7u);
  EXPECT_EQ(jobs[0].at("next_run").as_string(), "2025-01-03T02:00:00Z");

  ASSERT_EQ(Run({"--json", "volume", "list"}), 0);
  EXPECT_EQ(boost::json::parse(out_.str()).as_array()[0].at("recurring_jobs").as_array().size(),
            1u);
}

}  // namespace
}  // namespace shorthorn::ctl
