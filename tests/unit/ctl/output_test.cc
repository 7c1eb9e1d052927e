// Table layout and the JSON shape of a volume (documented in shorthornctl(1)).
#include "dbus/ctl/output.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

namespace shorthorn::ctl {
namespace {

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
  VolumeInfo v{"vol1", "/p", 4096, "attached", {{"h:1", "r1", "RW"}},  "/run/x", "/dev/loop3", 0,
               0,      "",   "",   {},         {{"write_requests", 3}}};
  EXPECT_EQ(boost::json::serialize(VolumeToJson(v)),
            R"({"name":"vol1","object_path":"/p","size":4096,"state":"attached",)"
            R"("frontend_path":"/run/x","loop_device":"/dev/loop3",)"
            R"("replicas":[{"address":"h:1","name":"r1","mode":"RW"}],)"
            R"("actual_size":0,"replica_count":0,"robustness":"","state_reason":"",)"
            R"("statistics":{"write_requests":3}})");
}

TEST(VolumeDetailsTest, ShowsTheIoFigures) {
  VolumeInfo v{"vol1",
               "/p",
               1 << 20,
               "attached",
               {},
               "",
               "",
               0,
               0,
               "",
               "",
               {},
               {{"write_requests", 4},
                {"write_bytes", 16384},
                {"write_latency_us", 2000},
                {"read_requests", 0}}};
  const std::string text = VolumeDetails(v);
  EXPECT_NE(text.find("I/O write:     4 requests, 16 KiB, 0 errors, mean 0.50 ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("I/O read:      0 requests, 0 B, 0 errors, mean -\n"), std::string::npos)
      << text;
}

TEST(VolumeDetailsTest, ShowsDashesForEmptyValues) {
  VolumeInfo v{"vol1", "/p", 1 << 20, "detached", {}, "", "", 0, 0, "", "", {}, {}};
  EXPECT_EQ(VolumeDetails(v),
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
            "Replicas:      0\n");
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
