// Per-replica figures for the metrics file (the metrics-file key): what the
// data path did to each open replica (requests, bytes and errors of READ,
// WRITE, FLUSH and UNMAP) and its size, epoch and generation, in the
// Prometheus text format that node-exporter's textfile collector reads.
// Lock-free counters; any thread records, any thread reads. They start at
// zero each time the replica is opened in this process.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shorthorn::replicad {

enum class ReplicaIoOp { kRead = 0, kWrite, kFlush, kUnmap };
inline constexpr size_t kReplicaIoOps = 4;
const char* ReplicaIoOpName(ReplicaIoOp op);

struct ReplicaIoFigures {
  uint64_t requests = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
};

class ReplicaIoStats {
 public:
  // One answered request; `bytes` count only when it succeeded.
  void Record(ReplicaIoOp op, uint64_t bytes, bool ok) {
    Counters& c = ops_[static_cast<size_t>(op)];
    c.requests.fetch_add(1, std::memory_order_relaxed);
    if (ok) {
      c.bytes.fetch_add(bytes, std::memory_order_relaxed);
    } else {
      c.errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  ReplicaIoFigures Get(ReplicaIoOp op) const;

 private:
  struct Counters {
    std::atomic<uint64_t> requests{0}, bytes{0}, errors{0};
  };
  std::array<Counters, kReplicaIoOps> ops_;
};

// One open replica's figures (ReplicaStore::Figures).
struct ReplicaFigures {
  std::string name;
  std::string volume;
  uint64_t size = 0;
  uint64_t epoch = 0;
  uint64_t generation = 0;
  std::array<ReplicaIoFigures, kReplicaIoOps> io{};
};

// The Prometheus text exposition format (version 0.0.4) of the figures,
// metric names shorthorn_replica_*, labels replica and volume (escaped).
// Every family has its # HELP and # TYPE lines, even with no replica open.
std::string FormatReplicaMetrics(const std::vector<ReplicaFigures>& replicas);

}  // namespace shorthorn::replicad
