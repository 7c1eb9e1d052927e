#include "replicad/core/replica_metrics.h"

#include "common/prometheus_text.h"

namespace shorthorn::replicad {

const char* ReplicaIoOpName(ReplicaIoOp op) {
  switch (op) {
    case ReplicaIoOp::kRead:
      return "read";
    case ReplicaIoOp::kWrite:
      return "write";
    case ReplicaIoOp::kFlush:
      return "flush";
    case ReplicaIoOp::kUnmap:
      return "unmap";
  }
  return "?";
}

ReplicaIoFigures ReplicaIoStats::Get(ReplicaIoOp op) const {
  const Counters& c = ops_[static_cast<size_t>(op)];
  ReplicaIoFigures f;
  f.requests = c.requests.load(std::memory_order_relaxed);
  f.bytes = c.bytes.load(std::memory_order_relaxed);
  f.errors = c.errors.load(std::memory_order_relaxed);
  return f;
}

namespace {

using prometheus::AppendHeader;
using prometheus::LabelValue;

std::string Labels(const ReplicaFigures& r) {
  return "replica=\"" + LabelValue(r.name) + "\",volume=\"" + LabelValue(r.volume) + "\"";
}

}  // namespace

std::string FormatReplicaMetrics(const std::vector<ReplicaFigures>& replicas) {
  std::string out;
  AppendHeader(out, "shorthorn_replica_open", "gauge", "1 for each replica open in this replicad.");
  for (const auto& r : replicas) out += "shorthorn_replica_open{" + Labels(r) + "} 1\n";
  struct Gauge {
    const char* name;
    const char* help;
    uint64_t ReplicaFigures::*field;
  };
  const Gauge gauges[] = {
      {"shorthorn_replica_size_bytes", "Size of the replica (its volume's size).",
       &ReplicaFigures::size},
      {"shorthorn_replica_epoch", "Epoch the replica was last opened with.",
       &ReplicaFigures::epoch},
      {"shorthorn_replica_generation", "Generation recorded in the replica.",
       &ReplicaFigures::generation},
  };
  for (const auto& g : gauges) {
    AppendHeader(out, g.name, "gauge", g.help);
    for (const auto& r : replicas) {
      out += std::string(g.name) + "{" + Labels(r) + "} " + std::to_string(r.*g.field) + "\n";
    }
  }
  struct Counter {
    const char* name;
    const char* help;
    uint64_t ReplicaIoFigures::*field;
  };
  const Counter counters[] = {
      {"shorthorn_replica_io_requests_total",
       "Data requests answered since the replica was opened, by operation.",
       &ReplicaIoFigures::requests},
      {"shorthorn_replica_io_bytes_total",
       "Bytes read, written or unmapped by successful requests, by operation.",
       &ReplicaIoFigures::bytes},
      {"shorthorn_replica_io_errors_total", "Data requests answered with an error, by operation.",
       &ReplicaIoFigures::errors},
  };
  for (const auto& c : counters) {
    AppendHeader(out, c.name, "counter", c.help);
    for (const auto& r : replicas) {
      for (size_t op = 0; op < kReplicaIoOps; ++op) {
        out += std::string(c.name) + "{" + Labels(r) + ",op=\"" +
               ReplicaIoOpName(static_cast<ReplicaIoOp>(op)) + "\"} " +
               std::to_string(r.io[op].*c.field) + "\n";
      }
    }
  }
  return out;
}

}  // namespace shorthorn::replicad
