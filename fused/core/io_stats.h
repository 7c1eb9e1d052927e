// IoStats: what a volume's I/O looked like from the kernel's side: per
// operation (read, write, flush, discard) the requests completed, their
// bytes, the failed ones, and a latency histogram from the moment the
// request reached fused to its answer (time spent waiting for a takeover
// or a paused engine included). Lock-free counters; any thread records,
// any thread reads. Counters start at zero with each fused process.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shorthorn::fused {

enum class IoOp { kRead = 0, kWrite, kFlush, kDiscard };
inline constexpr size_t kIoOps = 4;
const char* IoOpName(IoOp op);

// Upper bounds of the latency buckets, seconds (a last bucket holds the rest).
inline constexpr std::array<double, 14> kLatencyBounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

struct IoFigures {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t latency_ns = 0;                                    // sum
  std::array<uint64_t, kLatencyBounds.size() + 1> buckets{};  // not cumulative
};

class IoStats {
 public:
  void Record(IoOp op, uint64_t bytes, std::chrono::nanoseconds latency, bool ok);
  IoFigures Get(IoOp op) const;

 private:
  struct Counters {
    std::atomic<uint64_t> requests{0}, bytes{0}, errors{0}, latency_ns{0};
    std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> buckets{};
  };
  std::array<Counters, kIoOps> ops_;
};

// One volume's figures for the metrics file.
// A recurring job's last run, for alerts on failed or missing runs.
struct RecurringFigures {
  std::string job, kind;
  uint64_t last_run = 0;  // unix seconds; 0 never
  bool last_failed = false;
};

struct VolumeFigures {
  std::string name;
  bool attached = false;
  uint64_t size = 0;
  std::vector<std::pair<std::string, std::string>> replicas;  // name, mode
  std::array<IoFigures, kIoOps> io{};
  std::vector<RecurringFigures> recurring;
  // DR standby: the creation time (unix seconds) of the backup it holds,
  // 0 when none is whole; whether its last poll failed. Only for a standby.
  bool standby = false;
  uint64_t recovery_point = 0;
  bool standby_failing = false;
};

struct JobFigures {
  uint64_t id = 0;
  std::string operation, volume;
  uint64_t bytes = 0, total_bytes = 0;
};

// The FUSE connection's: whether requests come through FUSE over io_uring,
// and how many did.
struct FuseFigures {
  bool uring = false;
  uint64_t ring_requests = 0;
};

// The Prometheus text exposition format (version 0.0.4) of the figures,
// metric names shorthorn_*; label values escaped.
std::string FormatMetrics(const std::vector<VolumeFigures>& volumes,
                          const std::vector<JobFigures>& jobs, const FuseFigures& fuse = {});

}  // namespace shorthorn::fused
