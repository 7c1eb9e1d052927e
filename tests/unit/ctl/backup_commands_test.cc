// The backup commands ("backup create/list/show/delete", "volume restore")
// end to end over FakeStorageClient: parsing and usage errors, the table,
// details and JSON, --wait printing the new backup's URL, and the exit
// codes of the daemon's errors and of failed jobs. Also backup URLs, and DR
// standbys ("volume create-standby", "volume activate", what volume show and
// list say of a standby), with the clock fixed at 2025-01-02T03:07:17Z.
#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>

#include "dbus/ctl/backup_url.h"
#include "dbus/ctl/command_line.h"
#include "dbus/ctl/commands.h"
#include "dbus/ctl/exit_codes.h"
#include "dbus/ctl/output.h"
#include "tests/unit/ctl/run_ctl_fixture.h"

namespace shorthorn::ctl {
namespace {

constexpr char kDefaultTarget[] = "file:///var/lib/shorthorn/backups";
constexpr char kUrl1[] = "file:///var/lib/shorthorn/backups?volume=vol1&backup=backup-1";
constexpr char kJob1[] = "/org/shorthorn/Storage1/jobs/1";

TEST(BackupUrlTest, SplitsTargetVolumeAndName) {
  Result<BackupUrl> url = ParseBackupUrl(kUrl1);
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->target, kDefaultTarget);
  EXPECT_EQ(url->volume, "vol1");
  EXPECT_EQ(url->backup, "backup-1");
  url = ParseBackupUrl("s3://bucket/a/b?backup=backup-x&volume=db.1");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->target, "s3://bucket/a/b");
  EXPECT_EQ(url->volume, "db.1");
  EXPECT_EQ(url->backup, "backup-x");
}

TEST(BackupUrlTest, RejectsWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& c :
       {Case{"", "no '?'"}, Case{"file:///b", "no '?'"},
        Case{"?volume=v&backup=backup-1", "no target"}, Case{"file:///b?volume=v", "no backup="},
        Case{"file:///b?backup=backup-1", "no volume="},
        Case{"file:///b?volume=&backup=backup-1", "no volume="}}) {
    Result<BackupUrl> url = ParseBackupUrl(c.text);
    ASSERT_FALSE(url.ok()) << c.text;
    EXPECT_EQ(url.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(url.status().message().find("backup URL '" + std::string(c.text) + "': " + c.reason),
              std::string::npos)
        << url.status().message();
  }
}

TEST(BackupJsonTest, HasEveryField) {
  BackupInfo b{kUrl1, "backup-1", "vol1", "s1", "2025-01-02T03:04:05Z", 4096, 2};
  EXPECT_EQ(boost::json::serialize(BackupToJson(b)),
            std::string(R"({"url":")") + kUrl1 +
                R"(","name":"backup-1","volume":"vol1","snapshot":"s1",)"
                R"("created":"2025-01-02T03:04:05Z","size":4096,"blocks":2})");
}

TEST(BackupCommandLineTest, OptionsAnywhere) {
  using Action = ParsedCommandLine::Action;
  ParsedCommandLine p = ParseCommandLine(
      Commands(), {"backup", "create", "--target", "s3://b/p", "vol1", "--wait", "s1"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.arguments, (std::vector<std::string>{"vol1", "s1"}));
  EXPECT_EQ(p.invocation.Value("target"), "s3://b/p");
  EXPECT_TRUE(p.invocation.Has("wait"));

  p = ParseCommandLine(Commands(), {"volume", "restore", "v2", kUrl1, "-r", "a:1", "--replica=b:2",
                                    "--replica-count=3", "--json"});
  ASSERT_EQ(p.action, Action::kRun) << p.text;
  EXPECT_EQ(p.invocation.Values("replica"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(p.invocation.Value("replica-count"), "3");
  EXPECT_TRUE(p.invocation.json);
  EXPECT_EQ(CommandSynopsis(*p.invocation.command),
            "volume restore NAME BACKUP-URL [--replica HOST:PORT]... [--replica-count COUNT] "
            "[--replica-tags TAGS] [--wait]");
}

class BackupCommandsTest : public testing::RunCtlTest {
 protected:
  void SetUp() override {
    (void)fake_.CreateVolume("vol1", 1 << 30, {"h1:9500", "h2:9500"}, {});
    (void)fake_.CreateSnapshot("vol1", "s1");
    (void)fake_.CreateSnapshot("vol1", "s2");
    fake_.calls.clear();
  }
};

TEST_F(BackupCommandsTest, UsageErrorsNeverConnect) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {{"backup"}, "backup: missing subcommand (create, list, show, delete)"},
           {{"backup", "create", "vol1"}, "backup create: missing SNAPSHOT"},
           {{"backup", "create", "vol1", "s1", "--target"},
            "backup create: option --target needs a value (URL)"},
           {{"backup", "list", "vol1", "--wait"}, "backup list: unknown option --wait"},
           {{"backup", "show", "vol1"}, "backup show: backup URL 'vol1': no '?'"},
           {{"backup", "show", kUrl1, "--target", "file:///x"},
            "backup show: unknown option --target"},
           {{"backup", "delete", "file:///b?volume=vol1"}, "backup delete: backup URL"},
           {{"volume", "restore", "v2"}, "volume restore: missing BACKUP-URL"},
           {{"volume", "restore", "v2", kUrl1, "--replica-count", "two"},
            "volume restore: option --replica-count: count 'two': not a whole"},
           {{"volume", "restore", "v2", kUrl1, "--replica-count", "2", "--replica-count", "3"},
            "option --replica-count is given more than once"},
       }) {
    EXPECT_EQ(Run(c.args), kExitUsage) << c.message;
    EXPECT_NE(err_.str().find(c.message), std::string::npos) << err_.str();
  }
  EXPECT_EQ(connects_, 0);
}

TEST_F(BackupCommandsTest, CreateWithoutWaitPrintsTheJob) {
  ASSERT_EQ(Run({"backup", "create", "vol1", "s1"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateBackup vol1 s1");
  EXPECT_EQ(out_.str(), std::string(kJob1) + "\n");
  ASSERT_EQ(Run({"--json", "backup", "create", "vol1", "s2", "--target", "s3://bucket/p"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateBackup vol1 s2 s3://bucket/p");
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("volume").as_string(), "vol1");
  EXPECT_EQ(v.at("snapshot").as_string(), "s2");
  EXPECT_EQ(v.at("target").as_string(), "s3://bucket/p");
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/2");
}

TEST_F(BackupCommandsTest, CreateWaitPrintsOnlyTheUrl) {
  ASSERT_EQ(Run({"backup", "create", "vol1", "s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), std::string(kUrl1) + "\n");
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(fake_.watches, 2);

  ASSERT_EQ(Run({"backup", "create", "vol1", "s2", "--target=s3://bucket/p", "--wait", "--json"}),
            0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("url").as_string(), "s3://bucket/p?volume=vol1&backup=backup-2");
  EXPECT_EQ(v.at("target").as_string(), "s3://bucket/p");
  EXPECT_EQ(v.at("job").at("operation").as_string(), "backup");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
  EXPECT_EQ(v.at("job").at("message").as_string(), v.at("url").as_string());
}

TEST_F(BackupCommandsTest, CreateWaitOnATerminalKeepsStdoutClean) {
  err_is_terminal_ = true;
  ASSERT_EQ(Run({"backup", "create", "vol1", "s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(), std::string(kUrl1) + "\n");
  EXPECT_NE(err_.str().find("\rjob 1 backup s1 of volume vol1 [####################] 100%"),
            std::string::npos)
      << err_.str();
}

TEST_F(BackupCommandsTest, CreateWaitWithoutAUrlSaysWhereToLook) {
  fake_.backup_job_reports_url = false;
  ASSERT_EQ(Run({"backup", "create", "vol1", "s1", "--wait"}), 0);
  EXPECT_EQ(out_.str(),
            "Backed up snapshot s1 of volume vol1; shorthorn-fused did not say its URL "
            "(shorthornctl backup list vol1 shows it).\n");
}

TEST_F(BackupCommandsTest, CreateErrors) {
  EXPECT_EQ(Run({"backup", "create", "vol1", "nope"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: back up snapshot nope of volume vol1: no such snapshot\n");
  EXPECT_EQ(Run({"backup", "create", "vol9", "s1"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: back up volume vol9: it does not exist\n");
  fake_.fail_next = Status(ErrorKind::kBusy,
                           "back up volume vol1: a backup of this volume is "
                           "running; wait for it to end");
  EXPECT_EQ(Run({"backup", "create", "vol1", "s1"}), 6);
  fake_.fail_next = Status(ErrorKind::kInvalidArgument, "backup target 'ftp://x': unknown scheme");
  EXPECT_EQ(Run({"backup", "create", "vol1", "s1", "--target", "ftp://x"}), 5);
  EXPECT_EQ(err_.str(), "shorthornctl: backup target 'ftp://x': unknown scheme\n");

  fake_.next_job_state = "failed";
  fake_.next_job_message = "back up snapshot s1 of volume vol1: upload block 7: 503 SlowDown";
  EXPECT_EQ(Run({"backup", "create", "vol1", "s1", "--wait"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
  EXPECT_TRUE(fake_.backups.empty());
}

TEST_F(BackupCommandsTest, ListTableAndJson) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  (void)fake_.CreateBackup("vol1", "s2", "");
  (void)fake_.CreateBackup("vol1", "s2", "s3://bucket/p");
  ASSERT_EQ(Run({"backup", "list", "vol1"}), 0);
  EXPECT_EQ(fake_.calls.back(), "ListBackups - vol1");
  EXPECT_EQ(out_.str(),
            "NAME      SNAPSHOT  CREATED               SIZE   BLOCKS  URL\n"
            "backup-1  s1        2025-01-02T03:04:01Z  1 GiB  3       " +
                std::string(kUrl1) +
                "\n"
                "backup-2  s2        2025-01-02T03:04:02Z  1 GiB  3       " +
                kDefaultTarget + "?volume=vol1&backup=backup-2\n");

  ASSERT_EQ(Run({"--json", "backup", "list", "vol1", "--target", "s3://bucket/p"}), 0);
  EXPECT_EQ(fake_.calls.back(), "ListBackups s3://bucket/p vol1");
  boost::json::array list = boost::json::parse(out_.str()).as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("name").as_string(), "backup-3");
  EXPECT_EQ(list[0].at("snapshot").as_string(), "s2");
  EXPECT_EQ(list[0].at("created").as_string(), "2025-01-02T03:04:03Z");
  EXPECT_EQ(list[0].at("size").to_number<uint64_t>(), 1u << 30);
  EXPECT_EQ(list[0].at("blocks").to_number<uint64_t>(), 3u);
  EXPECT_EQ(list[0].at("url").as_string(), "s3://bucket/p?volume=vol1&backup=backup-3");
  EXPECT_EQ(list[0].at("volume").as_string(), "vol1");
}

TEST_F(BackupCommandsTest, ListOfAVolumeWithoutBackupsIsNotFound) {
  EXPECT_EQ(Run({"backup", "list", "vol1"}), 3);
  EXPECT_EQ(err_.str(), std::string("shorthornctl: list backups of volume vol1 on ") +
                            kDefaultTarget + ": there are none\n");
  EXPECT_EQ(Run({"--json", "backup", "list", "vol1"}), 3);
  boost::json::value error = boost::json::parse(out_.str()).at("error");
  EXPECT_EQ(error.at("kind").as_string(), "NotFound");
  EXPECT_EQ(error.at("exit_code").to_number<int>(), 3);
  fake_.fail_next = Status(ErrorKind::kUnavailable, "list backups: s3://b unreachable");
  EXPECT_EQ(Run({"backup", "list", "vol1", "--target", "s3://b"}), 8);
}

TEST_F(BackupCommandsTest, ShowFindsTheBackupThroughItsTarget) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  (void)fake_.CreateBackup("vol1", "s2", "s3://bucket/p");
  const std::string url = "s3://bucket/p?volume=vol1&backup=backup-2";
  ASSERT_EQ(Run({"backup", "show", url}), 0);
  EXPECT_EQ(fake_.calls.back(), "ListBackups s3://bucket/p vol1");
  EXPECT_EQ(out_.str(),
            "Backup:        backup-2\n"
            "URL:           " +
                url +
                "\n"
                "Volume:        vol1\n"
                "Snapshot:      s2\n"
                "Created:       2025-01-02T03:04:02Z\n"
                "Size:          1 GiB (1073741824 bytes)\n"
                "Blocks:        3 of 2 MiB\n");
  ASSERT_EQ(Run({"--json", "backup", "show", kUrl1}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "backup-1");
  EXPECT_EQ(v.at("url").as_string(), kUrl1);
}

TEST_F(BackupCommandsTest, ShowOfAnUnknownBackupIsNotFound) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  EXPECT_EQ(Run({"backup", "show", std::string(kDefaultTarget) + "?volume=vol1&backup=backup-9"}),
            3);
  EXPECT_EQ(err_.str(), std::string("shorthornctl: show backup ") + kDefaultTarget +
                            "?volume=vol1&backup=backup-9: volume vol1 has no backup backup-9 in " +
                            kDefaultTarget + " (shorthornctl backup list vol1 --target " +
                            kDefaultTarget + " shows those it has)\n");
  // No backups of the volume at all: the daemon's NotFound, as is.
  EXPECT_EQ(Run({"backup", "show", "s3://other?volume=vol1&backup=backup-1"}), 3);
  EXPECT_EQ(err_.str(),
            "shorthornctl: list backups of volume vol1 on s3://other: there are none\n");
}

TEST_F(BackupCommandsTest, Delete) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  (void)fake_.CreateBackup("vol1", "s2", "");
  ASSERT_EQ(Run({"backup", "delete", kUrl1}), 0);
  EXPECT_EQ(fake_.calls.back(), std::string("DeleteBackup ") + kUrl1);
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/3\n");
  const std::string url2 = std::string(kDefaultTarget) + "?volume=vol1&backup=backup-2";
  ASSERT_EQ(Run({"backup", "delete", url2, "--wait"}), 0);
  EXPECT_EQ(out_.str(), "Deleted backup backup-2 of volume vol1.\n");
  EXPECT_TRUE(fake_.backups.empty());

  // The daemon takes any well-formed URL; the job finds out.
  EXPECT_EQ(Run({"backup", "delete", kUrl1, "--wait"}), 1);
  EXPECT_EQ(err_.str(), "shorthornctl: delete backup backup-1 of volume vol1: no such backup\n");
  EXPECT_EQ(Run({"--json", "backup", "delete", kUrl1}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("backup").as_string(), kUrl1);
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/6");
  fake_.fail_next = Status(ErrorKind::kNotAuthorized, "delete backup: not root or shorthorn");
  EXPECT_EQ(Run({"backup", "delete", kUrl1}), 7);
}

TEST_F(BackupCommandsTest, Restore) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  ASSERT_EQ(Run({"volume", "restore", "vol2", kUrl1, "-r", "h3:9500", "--replica", "h4:9500",
                 "--replica-count", "3", "--wait"}),
            0);
  const std::string call = std::string("RestoreVolume vol2 ") + kUrl1 + " h3:9500,h4:9500 3";
  EXPECT_NE(std::find(fake_.calls.begin(), fake_.calls.end(), call), fake_.calls.end());
  EXPECT_EQ(out_.str(), "Restored volume vol2 from backup backup-1 of volume vol1.\n");
  EXPECT_EQ(fake_.volumes.at("vol2").size, 1u << 30);

  ASSERT_EQ(Run({"volume", "restore", "vol3", kUrl1}), 0);
  EXPECT_EQ(fake_.calls.back(), std::string("RestoreVolume vol3 ") + kUrl1 + " - -");
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/3\n");

  ASSERT_EQ(Run({"--json", "volume", "restore", "vol4", kUrl1, "--wait"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "vol4");
  EXPECT_EQ(v.at("backup").as_string(), kUrl1);
  EXPECT_EQ(v.at("job").at("operation").as_string(), "restore");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
}

TEST_F(BackupCommandsTest, RestoreErrors) {
  (void)fake_.CreateBackup("vol1", "s1", "");
  EXPECT_EQ(Run({"volume", "restore", "vol1", kUrl1}), 4);
  EXPECT_EQ(err_.str(), std::string("shorthornctl: restore volume vol1 from ") + kUrl1 +
                            ": volume vol1 already exists\n");
  fake_.fail_next = Status(ErrorKind::kInvalidArgument, "restore volume v/2: bad name");
  EXPECT_EQ(Run({"volume", "restore", "v/2", kUrl1}), 5);
  const std::string missing = std::string(kDefaultTarget) + "?volume=vol1&backup=backup-9";
  EXPECT_EQ(Run({"volume", "restore", "vol2", missing, "--wait"}), 1);
  EXPECT_EQ(err_.str(), "shorthornctl: restore volume vol2 from " + missing + ": no such backup\n");
}

// Volume vol1 with two backups in the default target (backup-2 created
// 2025-01-02T03:04:02Z, 3m15s before the fixture's clock).
class StandbyTest : public testing::RunCtlTest {
 protected:
  static constexpr char kSource[] = "file:///var/lib/shorthorn/backups?volume=vol1";
  void SetUp() override {
    (void)fake_.CreateVolume("vol1", 1 << 30, {"h1:9500"}, {});
    (void)fake_.CreateSnapshot("vol1", "s1");
    (void)fake_.CreateBackup("vol1", "s1", "");
    (void)fake_.CreateSnapshot("vol1", "s2");
    (void)fake_.CreateBackup("vol1", "s2", "");
    fake_.jobs.clear();
    fake_.calls.clear();
  }
  bool Called(const std::string& call) const {
    return std::find(fake_.calls.begin(), fake_.calls.end(), call) != fake_.calls.end();
  }
};

TEST(StandbySourceTest, IsATargetAndAVolumeWithoutABackup) {
  Result<BackupUrl> url = ParseStandbySource("s3://bucket/prefix?volume=db1");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->target, "s3://bucket/prefix");
  EXPECT_EQ(url->volume, "db1");
  EXPECT_EQ(url->backup, "");
  EXPECT_FALSE(ParseStandbySource("s3://bucket/prefix").ok());
  EXPECT_FALSE(ParseStandbySource("?volume=db1").ok());
  EXPECT_FALSE(ParseStandbySource("s3://bucket?volume=").ok());
  Result<BackupUrl> one = ParseStandbySource(kUrl1);
  EXPECT_EQ(one.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(one.status().message().find("backup= given"), std::string::npos)
      << one.status().message();
}

TEST_F(StandbyTest, CreatePassesEveryArgumentAndPrintsTheJob) {
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource, "-r", "h3:9500", "--replica",
                 "h4:9500", "--replica-count", "3", "--poll-interval", "60"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.calls.back(),
            std::string("CreateStandbyVolume db1-dr ") + kSource + " h3:9500,h4:9500 3 60");
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/3\n");  // after the two backups' jobs
  EXPECT_EQ(fake_.watches, 0);
  EXPECT_TRUE(fake_.volumes.at("db1-dr").standby);

  ASSERT_EQ(Run({"--json", "volume", "create-standby", "db2-dr", kSource}), 0);
  EXPECT_EQ(fake_.calls.back(), std::string("CreateStandbyVolume db2-dr ") + kSource + " - - -");
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "db2-dr");
  EXPECT_EQ(v.at("source").as_string(), kSource);
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/4");
}

TEST_F(StandbyTest, CreateWaitFollowsTheRestoreJob) {
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource, "--wait"}), 0) << err_.str();
  EXPECT_GT(fake_.watches, 0);
  EXPECT_EQ(out_.str(), std::string("Created standby volume db1-dr of ") + kSource +
                            ": it holds backup backup-2 (created 2025-01-02T03:04:02Z).\n");

  ASSERT_EQ(Run({"--json", "volume", "create-standby", "db2-dr", kSource, "--wait"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("job").at("operation").as_string(), "restore");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
  EXPECT_TRUE(v.at("volume").at("standby").as_bool());
  EXPECT_EQ(v.at("volume").at("standby_source").as_string(), kSource);
  EXPECT_EQ(v.at("volume").at("last_backup").as_string(), "backup-2");
  EXPECT_EQ(v.at("volume").at("last_backup_created").as_string(), "2025-01-02T03:04:02Z");
}

TEST_F(StandbyTest, CreateErrorsKeepTheirExitCodes) {
  // Usage errors never reach the daemon.
  EXPECT_EQ(Run({"volume", "create-standby", "db1-dr", kUrl1}), kExitUsage);
  EXPECT_NE(err_.str().find("backup= given"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"volume", "create-standby", "db1-dr", "s3://bucket"}), kExitUsage);
  EXPECT_EQ(Run({"volume", "create-standby", "db1-dr", kSource, "--poll-interval", "5m"}),
            kExitUsage);
  EXPECT_EQ(Run({"volume", "create-standby", "db1-dr"}), kExitUsage);
  EXPECT_EQ(connects_, 0);

  EXPECT_EQ(Run({"volume", "create-standby", "vol1", kSource}), 4);
  EXPECT_EQ(err_.str(), std::string("shorthornctl: create standby volume vol1 of ") + kSource +
                            ": volume vol1 already exists\n");
  fake_.fail_next = Status(ErrorKind::kInvalidArgument,
                           "create standby volume x: option 'poll-interval' must be a number of "
                           "seconds in 1..86400");
  EXPECT_EQ(Run({"volume", "create-standby", "x", kSource, "--poll-interval", "0"}), 5);
  EXPECT_EQ(err_.str(),
            "shorthornctl: create standby volume x: option 'poll-interval' must be a number of "
            "seconds in 1..86400\n");
  fake_.fail_next = Status(ErrorKind::kNotAuthorized, "create standby volume x: not root");
  EXPECT_EQ(Run({"volume", "create-standby", "x", kSource}), 7);
  // The job fails when the source has no backup: exit 1 with its message.
  const std::string empty = std::string(kDefaultTarget) + "?volume=nothing";
  EXPECT_EQ(Run({"volume", "create-standby", "x", empty, "--wait"}), 1);
  EXPECT_EQ(err_.str(),
            "shorthornctl: create standby volume x of " + empty + ": the source has no backups\n");
}

TEST_F(StandbyTest, ShowAndListSayItIsAStandby) {
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource}), 0);
  ASSERT_EQ(Run({"volume", "show", "db1-dr"}), 0);
  EXPECT_NE(out_.str().find(std::string("Standby:       yes\n"
                                        "Source:        ") +
                            kSource +
                            "\n"
                            "Last backup:   backup-2\n"
                            "Recovery point: 2025-01-02T03:04:02Z (3m15s ago)\n"
                            "Last restored: 2025-01-02T03:05:00Z\n"),
            std::string::npos)
      << out_.str();
  EXPECT_EQ(out_.str().find("Error:"), std::string::npos);
  fake_.volumes.at("db1-dr").standby_error = "list backups of vol1: connection refused";
  now_ += 3600;
  ASSERT_EQ(Run({"volume", "show", "db1-dr"}), 0);
  EXPECT_NE(out_.str().find("Recovery point: 2025-01-02T03:04:02Z (1h3m ago)\n"), std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("Error:         list backups of vol1: connection refused\n"),
            std::string::npos)
      << out_.str();
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_EQ(out_.str().find("Standby:"), std::string::npos) << out_.str();

  ASSERT_EQ(Run({"volume", "list"}), 0);
  EXPECT_NE(out_.str().find("db1-dr  1 GiB  standby "), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("vol1    1 GiB  detached"), std::string::npos) << out_.str();

  ASSERT_EQ(Run({"--json", "volume", "show", "db1-dr"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_TRUE(v.at("standby").as_bool());
  EXPECT_EQ(v.at("standby_source").as_string(), kSource);
  EXPECT_EQ(v.at("last_backup").as_string(), "backup-2");
  EXPECT_EQ(v.at("last_backup_created").as_string(), "2025-01-02T03:04:02Z");
  EXPECT_EQ(v.at("last_restored_at").as_string(), "2025-01-02T03:05:00Z");
  EXPECT_EQ(v.at("standby_error").as_string(), "list backups of vol1: connection refused");
}

TEST_F(StandbyTest, ActivatePrintsTheBackupAndTheRpo) {
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource}), 0);
  fake_.activate_keeps_backup = true;
  ASSERT_EQ(Run({"volume", "activate", "db1-dr"}), 0) << err_.str();
  EXPECT_TRUE(Called("GetVolume activate db1-dr"));
  EXPECT_TRUE(Called("Activate db1-dr"));
  EXPECT_EQ(fake_.calls.back(), "GetVolume show db1-dr");
  EXPECT_EQ(out_.str(),
            "Activated volume db1-dr: it holds backup backup-2 (created 2025-01-02T03:04:02Z, "
            "RPO at activation: 3m15s).\n");
  EXPECT_FALSE(fake_.volumes.at("db1-dr").standby);
}

TEST_F(StandbyTest, ActivateFallsBackToTheBackupReadBefore) {
  // The contract: an ordinary volume reports LastBackup* as "", so the
  // text names what the standby held and says a newer one may have come.
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource}), 0);
  ASSERT_EQ(Run({"volume", "activate", "db1-dr", "--force"}), 0) << err_.str();
  EXPECT_TRUE(Called("Activate db1-dr force"));
  EXPECT_EQ(out_.str(),
            "Activated volume db1-dr: it holds backup backup-2 (created 2025-01-02T03:04:02Z, "
            "RPO at activation: 3m15s), unless activation applied a newer one "
            "(shorthorn-fused's log names it).\n");
}

TEST_F(StandbyTest, ActivateJsonIsTheVolumeAfter) {
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource}), 0);
  ASSERT_EQ(Run({"--json", "volume", "activate", "db1-dr"}), 0) << err_.str();
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "db1-dr");
  EXPECT_FALSE(v.at("standby").as_bool());
  EXPECT_EQ(v.at("standby_source").as_string(), "");
  EXPECT_EQ(v.at("state").as_string(), "detached");
}

TEST_F(StandbyTest, ActivateErrorsKeepTheirExitCodes) {
  EXPECT_EQ(Run({"volume", "activate", "nope"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: activate volume nope: it does not exist\n");
  EXPECT_FALSE(Called("Activate nope"));
  EXPECT_EQ(Run({"volume", "activate", "vol1"}), 5);
  EXPECT_EQ(err_.str(), "shorthornctl: activate volume vol1: it is not a DR standby\n");
  EXPECT_EQ(Run({"volume", "activate"}), kExitUsage);

  // An interrupted apply: Failed without --force; with it, no recovery point.
  ASSERT_EQ(Run({"volume", "create-standby", "db1-dr", kSource}), 0);
  fake_.volumes.at("db1-dr").last_backup.clear();
  fake_.volumes.at("db1-dr").last_backup_created.clear();
  EXPECT_EQ(Run({"--json", "volume", "activate", "db1-dr"}), 1);
  EXPECT_EQ(boost::json::parse(out_.str()).at("error").at("kind").as_string(), "Failed");
  EXPECT_TRUE(fake_.volumes.at("db1-dr").standby);
  ASSERT_EQ(Run({"volume", "activate", "db1-dr", "-f"}), 0);
  EXPECT_EQ(out_.str(),
            "Activated volume db1-dr: shorthorn-fused reports no backup it holds "
            "(LastBackupCreated is empty), so its recovery point is unknown.\n");
}

}  // namespace
}  // namespace shorthorn::ctl
