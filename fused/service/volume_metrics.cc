// Design notes: the figures VolumeService shows: Statistics (a volume's I/O
// counters, for D-Bus) and the metrics file (MetricsLoop writes
// CollectMetrics every metrics-interval, atomically, for the node
// exporter's textfile collector).
#include <sys/stat.h>

#include "common/clock.h"
#include "common/file_util.h"
#include "common/log.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {

std::map<std::string, uint64_t> VolumeService::Statistics(const std::string& name) {
  std::map<std::string, uint64_t> out;
  auto stats = fuse_.Stats(name);
  if (!stats) return out;
  for (size_t op = 0; op < kIoOps; ++op) {
    const IoFigures f = stats->Get(static_cast<IoOp>(op));
    const std::string prefix = IoOpName(static_cast<IoOp>(op));
    out[prefix + "_requests"] = f.requests;
    out[prefix + "_bytes"] = f.bytes;
    out[prefix + "_errors"] = f.errors;
    out[prefix + "_latency_us"] = f.latency_ns / 1000;
  }
  return out;
}

std::string VolumeService::CollectMetrics() {
  std::vector<VolumeFigures> volumes;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, record] : registry_.volumes()) {
      VolumeFigures v;
      v.name = name;
      v.size = record.size;
      for (const auto& j : record.recurring) {
        v.recurring.push_back({j.name, j.kind, j.last_run, j.last_failed});
      }
      if (IsStandby(record)) {
        v.standby = true;
        v.recovery_point = ParseRfc3339(record.standby->last_backup_created).value_or(0);
        if (record.standby->last_backup.empty()) v.recovery_point = 0;
        v.standby_failing = standby_errors_.count(name) != 0;
      }
      auto it = attached_.find(name);
      v.attached = it != attached_.end();
      if (v.attached) {
        for (const auto& r : it->second.engine->Replicas()) {
          v.replicas.emplace_back(r.name, ReplicaModeName(r.mode));
        }
      }
      volumes.push_back(std::move(v));
    }
  }
  for (auto& v : volumes) {
    if (auto stats = fuse_.Stats(v.name)) {
      for (size_t op = 0; op < kIoOps; ++op) v.io[op] = stats->Get(static_cast<IoOp>(op));
    }
  }
  std::vector<JobFigures> jobs;
  for (const auto& j : jobs_.List()) {
    if (j.state == JobState::kRunning)
      jobs.push_back({j.id, j.operation, j.volume, j.bytes, j.total_bytes});
  }
  return FormatMetrics(volumes, jobs, {fuse_.UsesRing(), fuse_.RingRequests()});
}

void VolumeService::MetricsLoop() {
  const std::string& path = settings_.metrics_file;
  const std::string dir = path.substr(0, path.rfind('/'));
  bool warned = false;
  std::unique_lock lock(metrics_mutex_);
  while (!metrics_stopping_) {
    lock.unlock();
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      if (!warned) {
        LogInfo("metrics: " + dir + " does not exist (is prometheus-node-exporter installed?); " +
                "metrics-file " + path + " is written once it does");
      }
      warned = true;
    } else {
      Status s = WriteFileAtomic(path, CollectMetrics());
      if (!s.ok() && !warned) LogWarning("metrics: " + s.message());
      warned = !s.ok();
    }
    lock.lock();
    metrics_cv_.wait_for(lock, settings_.metrics_interval, [this] { return metrics_stopping_; });
  }
}

}  // namespace shorthorn::fused
