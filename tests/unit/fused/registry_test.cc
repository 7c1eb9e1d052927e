#include "fused/core/registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace shorthorn::fused {
namespace {

TEST(RegistryTest, SavesAndLoadsEveryField) {
  char dir[] = "/tmp/shorthorn-registry-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/volumes.json";
  Registry a(path);
  ASSERT_TRUE(a.Load().ok());  // missing file: empty
  EXPECT_TRUE(a.volumes().empty());
  VolumeRecord rec;
  rec.name = "db";
  rec.size = 1ull << 30;
  rec.epoch = 7;
  rec.replicas = {{"127.0.0.1:9500", "db-1"}, {"[::1]:9501", "db-2"}};
  rec.actual_size = 12345;
  rec.snapshots.push_back({"s1", "", "2026-11-22T02:00:00Z", true, 4096, false});
  rec.snapshots.push_back({"s2", "s1", "2026-11-22T03:00:00Z", false, 0, true});
  rec.attach_frontend = "file";
  rec.recurring.push_back({"nightly", "backup", "0 2 * * *", 7, "file:///srv/b", 1700000000,
                           1700003600, true, "failed: Busy: x"});
  rec.recurring.push_back({"hourly", "snapshot", "@hourly", 24, "", 1700000001, 0, false, ""});
  rec.standby = StandbyRecord{
      "s3://b/p", "db-site-a", 60, "backup-20261206T000000Z-0a1b2c3d", "2026-12-06T00:00:00Z",
      1700000100};
  a.Put(rec);
  VolumeRecord plain;
  plain.name = "plain";
  plain.size = 1ull << 20;
  plain.epoch = 1;
  plain.replicas = {{"127.0.0.1:9500", "plain-1"}};
  plain.replica_count = 1;
  a.Put(plain);
  ASSERT_TRUE(a.Save().ok());
  Registry b(path);
  ASSERT_TRUE(b.Load().ok());
  const VolumeRecord* v = b.Find("db");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->size, 1ull << 30);
  EXPECT_EQ(v->epoch, 7u);
  ASSERT_EQ(v->replicas.size(), 2u);
  EXPECT_EQ(v->replicas[1].address, "[::1]:9501");
  EXPECT_EQ(v->replicas[1].name, "db-2");
  EXPECT_EQ(v->actual_size, 12345u);
  ASSERT_EQ(v->snapshots.size(), 2u);
  EXPECT_EQ(v->snapshots[1].parent, "s1");
  EXPECT_FALSE(v->snapshots[1].user_created);
  EXPECT_TRUE(v->snapshots[1].removed);
  EXPECT_EQ(v->snapshots[0].size_held, 4096u);
  EXPECT_EQ(v->attach_frontend, "file");
  ASSERT_EQ(v->recurring.size(), 2u);
  const RecurringJobRecord& nightly = v->recurring[0];
  EXPECT_EQ(nightly.name, "nightly");
  EXPECT_EQ(nightly.kind, "backup");
  EXPECT_EQ(nightly.schedule, "0 2 * * *");
  EXPECT_EQ(nightly.retain, 7u);
  EXPECT_EQ(nightly.target, "file:///srv/b");
  EXPECT_EQ(nightly.created, 1700000000u);
  EXPECT_EQ(nightly.last_run, 1700003600u);
  EXPECT_TRUE(nightly.last_failed);
  EXPECT_EQ(nightly.last_result, "failed: Busy: x");
  EXPECT_EQ(v->recurring[1].name, "hourly");
  EXPECT_FALSE(v->recurring[1].last_failed);
  ASSERT_TRUE(v->standby.has_value());
  EXPECT_EQ(v->standby->target, "s3://b/p");
  EXPECT_EQ(v->standby->source, "db-site-a");
  EXPECT_EQ(v->standby->interval, 60u);
  EXPECT_EQ(v->standby->last_backup, "backup-20261206T000000Z-0a1b2c3d");
  EXPECT_EQ(v->standby->last_backup_created, "2026-12-06T00:00:00Z");
  EXPECT_EQ(v->standby->last_restored_at, 1700000100u);
  EXPECT_FALSE(v->standby->activated);
  EXPECT_TRUE(IsStandby(*v));
  EXPECT_FALSE(b.Find("plain")->standby.has_value());
  ASSERT_NE(b.Find("plain"), nullptr);
  EXPECT_EQ(b.Find("plain")->attach_frontend, "");  // not written, read back as ""
  unlink(path.c_str());
  rmdir(dir);
}

TEST(RegistryTest, CorruptFileIsAnErrorNamingIt) {
  Registry r("/some/volumes.json");
  Status s = r.Decode("{\"format\": 1, \"volumes\": [{\"name\": 5}]}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/some/volumes.json"), std::string::npos);
  EXPECT_FALSE(r.Decode("not json").ok());
  EXPECT_FALSE(r.Decode("{\"format\": 2, \"volumes\": []}").ok());
  Status attach = r.Decode(
      "{\"format\": 1, \"volumes\": [{\"name\": \"v\", \"size\": 4096, \"epoch\": 1, "
      "\"replicas\": [], \"attach\": \"loop\"}]}");
  EXPECT_FALSE(attach.ok());
  EXPECT_NE(attach.message().find("volume v: attach \"loop\" is not block or file"),
            std::string::npos)
      << attach.message();
}

// A recurring job in the file is checked as AddRecurringJob checks one: a
// damaged entry is refused naming the volume and the reason.
TEST(RegistryTest, DamagedRecurringJobsAreRefused) {
  Registry r("/some/volumes.json");
  auto doc = [](const std::string& jobs) {
    return "{\"format\": 1, \"volumes\": [{\"name\": \"v\", \"size\": 4096, \"epoch\": 1, "
           "\"replicas\": [], \"recurring\": [" +
           jobs + "]}]}";
  };
  auto job = [](const std::string& name, const std::string& kind, const std::string& schedule,
                int retain, const std::string& target) {
    return "{\"name\": \"" + name + "\", \"kind\": \"" + kind + "\", \"schedule\": \"" + schedule +
           "\", \"retain\": " + std::to_string(retain) + ", \"target\": \"" + target +
           "\", \"created\": 1, \"last_run\": 0, \"last_failed\": false, \"last_result\": \"\"}";
  };
  ASSERT_TRUE(r.Decode(doc(job("a", "snapshot", "@daily", 3, ""))).ok());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {job("a", "clone", "@daily", 3, ""), "kind \"clone\" is not snapshot or backup"},
      {job("a", "snapshot", "61 * * * *", 3, ""), "schedule '61 * * * *'"},
      {job("a", "snapshot", "@daily", 0, ""), "retain 0 is not in 1..100"},
      {job("a", "snapshot", "@daily", 101, ""), "retain 101 is not in 1..100"},
      {job("a", "snapshot", "@daily", 1, "file:///x"), "a target is only for a backup job"},
      {job("../a", "snapshot", "@daily", 1, ""), "recurring job"},
      {job(std::string(47, 'j'), "snapshot", "@daily", 1, ""), "longer than 46 characters"},
      {job("a", "snapshot", "@daily", 1, "") + "," + job("a", "backup", "@daily", 1, ""),
       "recurring job a twice"},
  };
  for (const auto& [jobs, why] : bad) {
    Status s = r.Decode(doc(jobs));
    EXPECT_FALSE(s.ok()) << jobs;
    EXPECT_NE(s.message().find("volume v"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(why), std::string::npos) << s.message();
  }
  std::string seventeen;
  for (int i = 0; i < 17; ++i) {
    seventeen += (i ? "," : "") + job("j" + std::to_string(i), "snapshot", "@daily", 1, "");
  }
  EXPECT_NE(r.Decode(doc(seventeen)).message().find("more than 16 recurring jobs"),
            std::string::npos);
}

TEST(RegistryTest, DamagedStandbyIsRefused) {
  Registry r("/some/volumes.json");
  auto doc = [](const std::string& source, int interval) {
    return "{\"format\": 1, \"volumes\": [{\"name\": \"v\", \"size\": 4096, \"epoch\": 1, "
           "\"replicas\": [], \"standby\": {\"target\": \"file:///b\", \"source\": \"" +
           source + "\", \"interval\": " + std::to_string(interval) +
           ", \"last_backup\": \"\", \"last_backup_created\": \"\", \"last_restored_at\": 0}}]}";
  };
  EXPECT_TRUE(r.Decode(doc("src", 300)).ok());
  ASSERT_NE(r.Find("v"), nullptr);
  EXPECT_TRUE(IsStandby(*r.Find("v")));
  EXPECT_NE(r.Decode(doc("src", 0)).message().find("standby interval 0 is out of range"),
            std::string::npos);
  EXPECT_NE(r.Decode(doc("../x", 300)).message().find("standby source"), std::string::npos);
}

TEST(RegistryTest, ReplicaTagsAndDrainingRoundTripAndAreChecked) {
  char dir[] = "/tmp/shorthorn-registry-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/volumes.json";
  Registry a(path);
  VolumeRecord rec;
  rec.name = "db";
  rec.size = 4096;
  rec.replica_tags = {"ssd", "zone=a"};
  a.Put(rec);
  a.draining_mutable().push_back("10.0.0.2:9500");
  ASSERT_TRUE(a.Save().ok());
  Registry b(path);
  ASSERT_TRUE(b.Load().ok());
  ASSERT_NE(b.Find("db"), nullptr);
  EXPECT_EQ(b.Find("db")->replica_tags, (std::vector<std::string>{"ssd", "zone=a"}));
  EXPECT_EQ(b.draining(), (std::vector<std::string>{"10.0.0.2:9500"}));

  auto doc = [](const std::string& tags, const std::string& draining) {
    return "{\"format\": 1, \"volumes\": [{\"name\": \"v\", \"size\": 4096, \"epoch\": 1, "
           "\"replicas\": [], \"replica_tags\": [" +
           tags + "]}], \"draining\": [" + draining + "]}";
  };
  Registry r("/some/volumes.json");
  EXPECT_TRUE(r.Decode(doc("\"ssd\"", "\"h:1\"")).ok());
  EXPECT_NE(r.Decode(doc("\"no space\"", "")).message().find("replica_tags"), std::string::npos);
  EXPECT_NE(r.Decode(doc("7", "")).message().find("read registry"), std::string::npos);
  EXPECT_NE(r.Decode(doc("", "\"nohostport\"")).message().find("draining"), std::string::npos);
  // An empty list: nothing draining.
  EXPECT_TRUE(r.Decode(doc("", "")).ok());
  EXPECT_TRUE(r.draining().empty());
}

TEST(RegistryTest, ValidatesNewVolumes) {
  EXPECT_TRUE(ValidateNewVolume("v1", 1ull << 30).ok());
  EXPECT_NE(ValidateNewVolume("v1", 0).message().find("size is 0"), std::string::npos);
  EXPECT_NE(ValidateNewVolume("v1", 4097).message().find("multiple of 4096"), std::string::npos);
  EXPECT_EQ(ValidateNewVolume("", 4096).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateNewVolume("a/b", 4096).kind(), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace shorthorn::fused
