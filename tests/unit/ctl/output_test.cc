// Table layout, the JSON shape of a volume (documented in shorthornctl(1)),
// a standby's fields in volume show, ages (RFC 3339 read, spans written),
// and the replicads: their table and JSON, and replicas joined with them.
#include "dbus/ctl/output.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

namespace shorthorn::ctl {
namespace {

// A volume with the fields every test sets; the rest as a daemon leaves them.
VolumeInfo Volume(const char* name, uint64_t size, const char* state) {
  VolumeInfo v;
  v.name = name;
  v.object_path = "/p";
  v.size = size;
  v.state = state;
  return v;
}

TEST(TableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table t({"NAME", "SIZE", "DEVICE"});
  t.AddRow({"a", "10 GiB", ""});
  t.AddRow({"longer-name", "1 KiB", "/dev/loop0"});
  EXPECT_EQ(t.Render(),
            "NAME         SIZE    DEVICE\n"
            "a            10 GiB  -\n"
            "longer-name  1 KiB   /dev/loop0\n");
}

TEST(VolumeJsonTest, HasEveryField) {
  VolumeInfo v = Volume("vol1", 4096, "attached");
  v.replicas = {{"h:1", "r1", "RW"}};
  v.frontend_path = "/run/x";
  v.loop_device = "/dev/loop3";
  v.statistics = {{"write_requests", 3}};
  EXPECT_EQ(boost::json::serialize(VolumeToJson(v)),
            R"({"name":"vol1","object_path":"/p","size":4096,"state":"attached",)"
            R"("frontend_path":"/run/x","loop_device":"/dev/loop3",)"
            R"("replicas":[{"address":"h:1","name":"r1","mode":"RW"}],)"
            R"("actual_size":0,"replica_count":0,"robustness":"","state_reason":"",)"
            R"("statistics":{"write_requests":3},"recurring_jobs":[],)"
            R"("standby":false,"standby_source":"","last_backup":"","last_backup_created":"",)"
            R"("last_restored_at":"","standby_error":"",)"
            R"("robustness_reason":"","replica_tags":[]})");
}

TEST(VolumeDetailsTest, ShowsTheIoFigures) {
  VolumeInfo v = Volume("vol1", 1 << 20, "attached");
  v.statistics = {{"write_requests", 4},
                  {"write_bytes", 16384},
                  {"write_latency_us", 2000},
                  {"read_requests", 0}};
  const std::string text = VolumeDetails(v, 0);
  EXPECT_NE(text.find("I/O write:     4 requests, 16 KiB, 0 errors, mean 0.50 ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("I/O read:      0 requests, 0 B, 0 errors, mean -\n"), std::string::npos)
      << text;
}

TEST(VolumeDetailsTest, ShowsDashesForEmptyValues) {
  VolumeInfo v = Volume("vol1", 1 << 20, "detached");
  EXPECT_EQ(VolumeDetails(v, 0),
            "Name:          vol1\n"
            "Object path:   /p\n"
            "Size:          1 MiB (1048576 bytes)\n"
            "Actual size:   0 B\n"
            "State:         detached\n"
            "Frontend path: -\n"
            "Loop device:   -\n"
            "Snapshots:     0\n"
            "Robustness:    -\n"
            "Replica count: 0\n"
            "Replicas:      0\n"
            "Recurring jobs: 0\n");
}

TEST(VolumeDetailsTest, ShowsAStandbysRecoveryPointAndItsAge) {
  VolumeInfo v = Volume("db1-dr", 1 << 20, "detached");
  v.standby = true;
  v.standby_source = "s3://bucket/prefix?volume=db1";
  v.last_backup = "backup-20261206T020000Z";
  v.last_backup_created = "2026-12-06T02:00:00Z";
  v.last_restored_at = "2026-12-06T02:03:10Z";
  const std::time_t now = *ParseRfc3339("2026-12-06T02:05:00Z");
  const std::string standby_section =
      "State:         detached\n"
      "Standby:       yes\n"
      "Source:        s3://bucket/prefix?volume=db1\n"
      "Last backup:   backup-20261206T020000Z\n"
      "Recovery point: 2026-12-06T02:00:00Z (5m ago)\n"
      "Last restored: 2026-12-06T02:03:10Z\n"
      "Frontend path: -\n";
  std::string text = VolumeDetails(v, now);
  EXPECT_NE(text.find(standby_section), std::string::npos) << text;
  EXPECT_EQ(text.find("Error:"), std::string::npos) << text;

  v.standby_error = "list backups of db1: connection refused";
  text = VolumeDetails(v, now);
  EXPECT_NE(text.find("Last restored: 2026-12-06T02:03:10Z\n"
                      "Error:         list backups of db1: connection refused\n"),
            std::string::npos)
      << text;
  // Not read yet: no age, and "-" for nothing.
  v.last_backup.clear();
  v.last_backup_created.clear();
  text = VolumeDetails(v, now);
  EXPECT_NE(text.find("Recovery point: -\n"), std::string::npos) << text;

  v.standby = false;
  EXPECT_EQ(VolumeDetails(v, now).find("Standby:"), std::string::npos);
}

TEST(VolumesTableTest, AStandbysStateIsStandby) {
  VolumeInfo ordinary = Volume("db1", 1 << 20, "attached");
  ordinary.loop_device = "/dev/loop1";
  VolumeInfo standby = Volume("db1-dr", 1 << 20, "detached");
  standby.standby = true;
  EXPECT_EQ(VolumesTable({ordinary, standby}),
            "NAME    SIZE   STATE     REPLICAS  DEVICE\n"
            "db1     1 MiB  attached  0         /dev/loop1\n"
            "db1-dr  1 MiB  standby   0         -\n");
}

TEST(AgeTest, ReadsRfc3339) {
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRfc3339("2025-01-02T03:07:17Z"), 1735787237);
  EXPECT_EQ(*ParseRfc3339("2025-01-02T03:07:17.250Z"), 1735787237);
  EXPECT_EQ(*ParseRfc3339("2025-01-02T05:07:17+02:00"), 1735787237);
  EXPECT_EQ(*ParseRfc3339("2025-01-02T01:07:17-02:00"), 1735787237);
  for (const char* bad :
       {"", "yesterday", "2025-01-02", "2025-01-02T03:07:17", "2025-01-02T03:07:17Zjunk",
        "2025-13-02T03:07:17Z", "2025-01-02T24:07:17Z", "2025-01-02T03:07:17+2"}) {
    Result<std::time_t> t = ParseRfc3339(bad);
    EXPECT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().kind(), ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(AgeTest, WritesTheTwoLargestUnits) {
  EXPECT_EQ(FormatAge(0), "0s");
  EXPECT_EQ(FormatAge(45), "45s");
  EXPECT_EQ(FormatAge(60), "1m");
  EXPECT_EQ(FormatAge(192), "3m12s");
  EXPECT_EQ(FormatAge(300), "5m");
  EXPECT_EQ(FormatAge(3600), "1h");
  EXPECT_EQ(FormatAge(7530), "2h5m");  // the 30 s are below the second unit
  EXPECT_EQ(FormatAge(86400 * 3 + 3600 * 4 + 59), "3d4h");
  EXPECT_EQ(FormatAge(86400 * 400), "400d");
  EXPECT_EQ(FormatAge(-12), "0s");  // the other site's clock is ahead
}

TEST(AgeTest, AgeSinceUsesTheClockItIsGiven) {
  const std::time_t now = 1735787237;  // 2025-01-02T03:07:17Z
  EXPECT_EQ(AgeSince("2025-01-02T03:04:05Z", now), "3m12s");
  EXPECT_EQ(AgeSince("2025-01-02T03:04:05Z", now + 3600), "1h3m");
  EXPECT_EQ(AgeSince("", now), "");
  EXPECT_EQ(AgeSince("soon", now), "");
}

TEST(VolumeDetailsTest, ShowsTheRobustnessReasonAndTagsOnlyWhenSet) {
  VolumeInfo v = Volume("vol1", 1 << 20, "attached");
  v.robustness = "degraded";
  v.replica_count = 3;
  std::string text = VolumeDetails(v, 0);
  EXPECT_NE(text.find("Robustness:    degraded\nReplica count: 3\nReplicas:"), std::string::npos)
      << text;
  v.robustness_reason = "rebuild queued: replicad h1:9500 already runs 1 rebuild";
  v.replica_tags = {"ssd", "zone=a"};
  text = VolumeDetails(v, 0);
  EXPECT_NE(text.find("Robustness:    degraded\n"
                      "Robustness reason: rebuild queued: replicad h1:9500 already runs 1 rebuild\n"
                      "Replica count: 3\n"
                      "Replica tags:  ssd,zone=a\n"
                      "Replicas:"),
            std::string::npos)
      << text;
}

ReplicadInfo Replicad(const char* address, const char* state, uint64_t free) {
  ReplicadInfo r;
  r.address = address;
  r.state = state;
  r.free_bytes = free;
  return r;
}

TEST(ReplicadsTableTest, OneRowPerReplicadWithSizesForPeople) {
  ReplicadInfo a = Replicad("10.0.0.2:9500", "up", uint64_t{3} << 39);  // 1.5 TiB
  a.host_id = "node-a";
  a.tags = {"ssd", "zone=a"};
  a.total_bytes = uint64_t{2} << 40;
  a.provisioned_bytes = uint64_t{5} << 39;
  a.replicas = 12;
  a.rebuilds = 2;
  ReplicadInfo b = Replicad("10.0.0.3:9500", "draining", 4096);
  b.host_id = "node-b";
  b.total_bytes = 8192;
  b.replicas = 1;
  b.message = "1 replica left: db1";
  ReplicadInfo c = Replicad("10.0.0.4:9500", "unreachable", 0);
  c.message = "connect: no route to host";
  EXPECT_EQ(
      ReplicadsTable({a, b, c}),
      "ADDRESS        STATE        HOST    TAGS        FREE     TOTAL  PROVISIONED  "
      "REPLICAS  REBUILDS  MESSAGE\n"
      "10.0.0.2:9500  up           node-a  ssd,zone=a  1.5 TiB  2 TiB  2.5 TiB      12        "
      "2         -\n"
      "10.0.0.3:9500  draining     node-b  -           4 KiB    8 KiB  0 B          1         "
      "0         1 replica left: db1\n"
      "10.0.0.4:9500  unreachable  -       -           -        -      -            -         "
      "0         connect: no route to host\n");
  EXPECT_EQ(ReplicadsTable({}),
            "ADDRESS  STATE  HOST  TAGS  FREE  TOTAL  PROVISIONED  REPLICAS  REBUILDS  MESSAGE\n");
}

TEST(ReplicadJsonTest, HasEveryField) {
  ReplicadInfo r = Replicad("h:1", "up", 10);
  r.host_id = "node-a";
  r.tags = {"ssd"};
  r.total_bytes = 20;
  r.provisioned_bytes = 5;
  r.replicas = 2;
  r.rebuilds = 1;
  EXPECT_EQ(boost::json::serialize(ReplicadToJson(r)),
            R"({"address":"h:1","state":"up","host_id":"node-a","tags":["ssd"],)"
            R"("total_bytes":20,"free_bytes":10,"provisioned_bytes":5,"replicas":2,)"
            R"("rebuilds":1,"message":""})");
}

TEST(ReplicasWithHostsTest, JoinsByAddressAndDashesWhatIsUnknown) {
  const std::vector<ReplicaInfo> replicas = {
      {"h1:1", "r1", "RW"}, {"h2:1", "r2", "ERR"}, {"h3:1", "r3", "WO"}};
  ReplicadInfo one = Replicad("h1:1", "up", 1 << 20);
  one.host_id = "node-a";
  const std::vector<ReplicadInfo> replicads = {one, Replicad("h2:1", "unreachable", 0)};
  EXPECT_EQ(ReplicasWithHostsTable(replicas, &replicads),
            "ADDRESS  HOST    FREE   REPLICA  MODE\n"
            "h1:1     node-a  1 MiB  r1       RW\n"
            "h2:1     -       -      r2       ERR\n"
            "h3:1     -       -      r3       WO\n");
  EXPECT_EQ(
      boost::json::serialize(ReplicasWithHostsToJson(replicas, &replicads)),
      R"([{"address":"h1:1","name":"r1","mode":"RW","host_id":"node-a","free_bytes":1048576},)"
      R"({"address":"h2:1","name":"r2","mode":"ERR","host_id":null,"free_bytes":null},)"
      R"({"address":"h3:1","name":"r3","mode":"WO","host_id":null,"free_bytes":null}])");
  // Not listed at all.
  EXPECT_EQ(ReplicasWithHostsTable(replicas, nullptr),
            "ADDRESS  HOST  FREE  REPLICA  MODE\n"
            "h1:1     -     -     r1       RW\n"
            "h2:1     -     -     r2       ERR\n"
            "h3:1     -     -     r3       WO\n");
}

TEST(JobJsonTest, HasEveryField) {
  JobInfo j{"/org/shorthorn/Storage1/jobs/3",
            "3",
            "verify",
            "v",
            "/org/shorthorn/Storage1/volumes/v",
            "",
            0.5,
            10,
            20,
            5,
            "running",
            "",
            false};
  EXPECT_EQ(boost::json::serialize(JobToJson(j)),
            R"({"id":"3","object_path":"/org/shorthorn/Storage1/jobs/3","operation":"verify",)"
            R"("volume":"v","volume_path":"/org/shorthorn/Storage1/volumes/v","target":"",)"
            R"("progress":5E-1,"bytes":10,"total_bytes":20,"rate":5,"state":"running",)"
            R"("message":"","cancellable":false})");
}

}  // namespace
}  // namespace shorthorn::ctl
