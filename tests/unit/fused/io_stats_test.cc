#include "fused/core/io_stats.h"

#include <gtest/gtest.h>

#include <sstream>

namespace shorthorn::fused {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// The value of the sample `key` (name{labels}) in `text`, -1 if absent.
double Sample(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + " ", 0) == 0) return std::stod(line.substr(key.size() + 1));
  }
  return -1;
}

TEST(IoStatsTest, CountsBytesErrorsAndBuckets) {
  IoStats s;
  s.Record(IoOp::kWrite, 4096, microseconds(50), true);     // <= 100 us
  s.Record(IoOp::kWrite, 4096, microseconds(100), true);    // exactly the bound: same bucket
  s.Record(IoOp::kWrite, 8192, milliseconds(3), true);      // <= 5 ms
  s.Record(IoOp::kWrite, 4096, milliseconds(7000), false);  // beyond the last bound
  IoFigures f = s.Get(IoOp::kWrite);
  EXPECT_EQ(f.requests, 4u);
  EXPECT_EQ(f.bytes, 16384u);  // failed requests move no bytes
  EXPECT_EQ(f.errors, 1u);
  EXPECT_EQ(f.buckets[0], 2u);
  EXPECT_EQ(f.buckets[5], 1u);
  EXPECT_EQ(f.buckets.back(), 1u);
  EXPECT_EQ(f.latency_ns, 50'000u + 100'000u + 3'000'000u + 7'000'000'000u);
  EXPECT_EQ(s.Get(IoOp::kRead).requests, 0u);
}

TEST(IoStatsTest, FormatsCumulativeHistogramsAndEscapesLabels) {
  IoStats s;
  s.Record(IoOp::kRead, 4096, microseconds(80), true);
  s.Record(IoOp::kRead, 4096, milliseconds(20), true);
  VolumeFigures v;
  v.name = "db\"1";  // not a valid volume name, but labels must survive anything
  v.attached = true;
  v.size = 1 << 20;
  v.replicas = {{"db-a", "RW"}, {"db-b", "ERR"}};
  for (size_t op = 0; op < kIoOps; ++op) v.io[op] = s.Get(static_cast<IoOp>(op));
  std::string text = FormatMetrics({v}, {{7, "rebuild", "db\"1", 100, 400}});
  const std::string labels = "volume=\"db\\\"1\",op=\"read\"";
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_requests_total{" + labels + "}"), 2);
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_bytes_total{" + labels + "}"), 8192);
  EXPECT_EQ(
      Sample(text, "shorthorn_volume_io_latency_seconds_bucket{" + labels + ",le=\"0.0001\"}"), 1);
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_latency_seconds_bucket{" + labels + ",le=\"0.01\"}"),
            1);
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_latency_seconds_bucket{" + labels + ",le=\"0.025\"}"),
            2);
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_latency_seconds_bucket{" + labels + ",le=\"+Inf\"}"),
            2);
  EXPECT_EQ(Sample(text, "shorthorn_volume_io_latency_seconds_count{" + labels + "}"), 2);
  EXPECT_NEAR(Sample(text, "shorthorn_volume_io_latency_seconds_sum{" + labels + "}"), 0.02008,
              1e-9);
  EXPECT_EQ(Sample(text, "shorthorn_volume_attached{volume=\"db\\\"1\"}"), 1);
  EXPECT_EQ(Sample(text,
                   "shorthorn_volume_replica_mode{volume=\"db\\\"1\",replica=\"db-b\","
                   "mode=\"ERR\"}"),
            1);
  EXPECT_EQ(Sample(text,
                   "shorthorn_job_total_bytes{job=\"7\",operation=\"rebuild\","
                   "volume=\"db\\\"1\"}"),
            400);
  // Recurring jobs and standbys.
  VolumeFigures dr;
  dr.name = "dr";
  dr.recurring = {{"nightly", "backup", 1700000000, true}};
  dr.standby = true;
  dr.recovery_point = 1699999000;
  dr.standby_failing = true;
  // The FUSE connection's figures: off by default, then as given.
  EXPECT_EQ(Sample(text, "shorthorn_fuse_uring"), 0);
  EXPECT_EQ(Sample(text, "shorthorn_fuse_uring_requests_total"), 0);
  text = FormatMetrics({v, dr}, {}, {true, 12345});
  EXPECT_EQ(Sample(text, "shorthorn_fuse_uring"), 1);
  EXPECT_EQ(Sample(text, "shorthorn_fuse_uring_requests_total"), 12345);
  EXPECT_EQ(Sample(text,
                   "shorthorn_recurring_job_last_run_timestamp_seconds{volume=\"dr\","
                   "job=\"nightly\",kind=\"backup\"}"),
            1700000000);
  EXPECT_EQ(Sample(text,
                   "shorthorn_recurring_job_last_run_failed{volume=\"dr\",job=\"nightly\","
                   "kind=\"backup\"}"),
            1);
  EXPECT_EQ(Sample(text, "shorthorn_standby_recovery_point_timestamp_seconds{volume=\"dr\"}"),
            1699999000);
  EXPECT_EQ(Sample(text, "shorthorn_standby_poll_failing{volume=\"dr\"}"), 1);
  // Only standbys have standby samples.
  EXPECT_EQ(text.find("shorthorn_standby_poll_failing{volume=\"db"), std::string::npos);
  // Every sample's family was declared before it.
  EXPECT_LT(text.find("# TYPE shorthorn_volume_io_latency_seconds histogram"),
            text.find("shorthorn_volume_io_latency_seconds_bucket"));
}

}  // namespace
}  // namespace shorthorn::fused
