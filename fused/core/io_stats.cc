#include "fused/core/io_stats.h"

#include <cstdio>

#include "common/prometheus_text.h"

namespace shorthorn::fused {

const char* IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kRead:
      return "read";
    case IoOp::kWrite:
      return "write";
    case IoOp::kFlush:
      return "flush";
    case IoOp::kDiscard:
      return "discard";
  }
  return "?";
}

void IoStats::Record(IoOp op, uint64_t bytes, std::chrono::nanoseconds latency, bool ok) {
  Counters& c = ops_[static_cast<size_t>(op)];
  c.requests.fetch_add(1, std::memory_order_relaxed);
  if (ok) c.bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (!ok) c.errors.fetch_add(1, std::memory_order_relaxed);
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(latency.count(), 0));
  c.latency_ns.fetch_add(ns, std::memory_order_relaxed);
  const double seconds = static_cast<double>(ns) / 1e9;
  size_t b = 0;
  while (b < kLatencyBounds.size() && seconds > kLatencyBounds[b]) ++b;
  c.buckets[b].fetch_add(1, std::memory_order_relaxed);
}

IoFigures IoStats::Get(IoOp op) const {
  const Counters& c = ops_[static_cast<size_t>(op)];
  IoFigures f;
  f.requests = c.requests.load(std::memory_order_relaxed);
  f.bytes = c.bytes.load(std::memory_order_relaxed);
  f.errors = c.errors.load(std::memory_order_relaxed);
  f.latency_ns = c.latency_ns.load(std::memory_order_relaxed);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    f.buckets[i] = c.buckets[i].load(std::memory_order_relaxed);
  }
  return f;
}

namespace {

using prometheus::AppendHeader;
using prometheus::LabelValue;

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

}  // namespace

std::string FormatMetrics(const std::vector<VolumeFigures>& volumes,
                          const std::vector<JobFigures>& jobs, const FuseFigures& fuse) {
  std::string out;
  AppendHeader(out, "shorthorn_fuse_uring", "gauge",
               "1 while FUSE requests come through io_uring (fused.conf fuse-uring), else 0.");
  out += std::string("shorthorn_fuse_uring ") + (fuse.uring ? "1" : "0") + "\n";
  AppendHeader(out, "shorthorn_fuse_uring_requests_total", "counter",
               "FUSE requests that came through io_uring.");
  out += "shorthorn_fuse_uring_requests_total " + std::to_string(fuse.ring_requests) + "\n";
  AppendHeader(out, "shorthorn_volume_attached", "gauge",
               "1 while the volume is attached on this host.");
  for (const auto& v : volumes) {
    out += "shorthorn_volume_attached{volume=\"" + LabelValue(v.name) + "\"} " +
           (v.attached ? "1" : "0") + "\n";
  }
  AppendHeader(out, "shorthorn_volume_size_bytes", "gauge", "Size of the volume.");
  for (const auto& v : volumes) {
    out += "shorthorn_volume_size_bytes{volume=\"" + LabelValue(v.name) + "\"} " +
           std::to_string(v.size) + "\n";
  }
  AppendHeader(out, "shorthorn_volume_replica_mode", "gauge",
               "1 for the mode each replica of an attached volume is in (RW, WO, ERR).");
  for (const auto& v : volumes) {
    for (const auto& [replica, mode] : v.replicas) {
      out += "shorthorn_volume_replica_mode{volume=\"" + LabelValue(v.name) + "\",replica=\"" +
             LabelValue(replica) + "\",mode=\"" + LabelValue(mode) + "\"} 1\n";
    }
  }
  struct Counter {
    const char* name;
    const char* help;
    uint64_t IoFigures::*field;
  };
  const Counter counters[] = {
      {"shorthorn_volume_io_requests_total", "I/O requests answered, by operation.",
       &IoFigures::requests},
      {"shorthorn_volume_io_bytes_total", "Bytes read or written (or discarded), by operation.",
       &IoFigures::bytes},
      {"shorthorn_volume_io_errors_total", "I/O requests answered with an error, by operation.",
       &IoFigures::errors},
  };
  for (const auto& c : counters) {
    AppendHeader(out, c.name, "counter", c.help);
    for (const auto& v : volumes) {
      for (size_t op = 0; op < kIoOps; ++op) {
        out += std::string(c.name) + "{volume=\"" + LabelValue(v.name) + "\",op=\"" +
               IoOpName(static_cast<IoOp>(op)) + "\"} " + std::to_string(v.io[op].*c.field) + "\n";
      }
    }
  }
  const char* hist = "shorthorn_volume_io_latency_seconds";
  AppendHeader(out, hist, "histogram",
               "Time from a request's arrival at fused to its answer, by operation.");
  for (const auto& v : volumes) {
    for (size_t op = 0; op < kIoOps; ++op) {
      const IoFigures& f = v.io[op];
      const std::string labels =
          "volume=\"" + LabelValue(v.name) + "\",op=\"" + IoOpName(static_cast<IoOp>(op)) + "\"";
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kLatencyBounds.size(); ++b) {
        cumulative += f.buckets[b];
        out += std::string(hist) + "_bucket{" + labels + ",le=\"" + Number(kLatencyBounds[b]) +
               "\"} " + std::to_string(cumulative) + "\n";
      }
      cumulative += f.buckets.back();
      out += std::string(hist) + "_bucket{" + labels + ",le=\"+Inf\"} " +
             std::to_string(cumulative) + "\n";
      out += std::string(hist) + "_sum{" + labels + "} " +
             Number(static_cast<double>(f.latency_ns) / 1e9) + "\n";
      out += std::string(hist) + "_count{" + labels + "} " + std::to_string(cumulative) + "\n";
    }
  }
  auto recurring = [&](const char* name, const char* help, auto value_of) {
    AppendHeader(out, name, "gauge", help);
    for (const auto& v : volumes) {
      for (const auto& r : v.recurring) {
        out += std::string(name) + "{volume=\"" + LabelValue(v.name) + "\",job=\"" +
               LabelValue(r.job) + "\",kind=\"" + LabelValue(r.kind) + "\"} " +
               std::to_string(value_of(r)) + "\n";
      }
    }
  };
  recurring("shorthorn_recurring_job_last_run_timestamp_seconds",
            "When the recurring job's last run started (0: never).",
            [](const RecurringFigures& r) { return r.last_run; });
  recurring("shorthorn_recurring_job_last_run_failed",
            "1 when the recurring job's last run failed.",
            [](const RecurringFigures& r) { return r.last_failed ? 1 : 0; });
  AppendHeader(out, "shorthorn_standby_recovery_point_timestamp_seconds", "gauge",
               "DR standby: when the backup it holds was created (its recovery point; 0: it "
               "holds no whole backup).");
  for (const auto& v : volumes) {
    if (!v.standby) continue;
    out += "shorthorn_standby_recovery_point_timestamp_seconds{volume=\"" + LabelValue(v.name) +
           "\"} " + std::to_string(v.recovery_point) + "\n";
  }
  AppendHeader(out, "shorthorn_standby_poll_failing", "gauge",
               "DR standby: 1 while its last poll of the source failed.");
  for (const auto& v : volumes) {
    if (!v.standby) continue;
    out += "shorthorn_standby_poll_failing{volume=\"" + LabelValue(v.name) + "\"} " +
           (v.standby_failing ? "1" : "0") + "\n";
  }
  AppendHeader(out, "shorthorn_job_bytes", "gauge", "Bytes a running job has processed.");
  for (const auto& j : jobs) {
    out += "shorthorn_job_bytes{job=\"" + std::to_string(j.id) + "\",operation=\"" +
           LabelValue(j.operation) + "\",volume=\"" + LabelValue(j.volume) + "\"} " +
           std::to_string(j.bytes) + "\n";
  }
  AppendHeader(out, "shorthorn_job_total_bytes", "gauge", "Bytes a running job has to process.");
  for (const auto& j : jobs) {
    out += "shorthorn_job_total_bytes{job=\"" + std::to_string(j.id) + "\",operation=\"" +
           LabelValue(j.operation) + "\",volume=\"" + LabelValue(j.volume) + "\"} " +
           std::to_string(j.total_bytes) + "\n";
  }
  return out;
}

}  // namespace shorthorn::fused
