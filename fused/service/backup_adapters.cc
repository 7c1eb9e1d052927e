#include "fused/service/backup_adapters.h"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <future>

namespace shorthorn::fused {
namespace {

class ReplicaSnapshotReader : public backup::SnapshotReader {
 public:
  ReplicaSnapshotReader(std::unique_ptr<SnapshotViewReader> view, std::string what)
      : view_(std::move(view)), what_(std::move(what)) {}

  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    Status s = view_->Read(offset, buf);
    return s.ok() ? s : s.WithContext(what_);
  }

 private:
  std::unique_ptr<SnapshotViewReader> view_;
  const std::string what_;
};

}  // namespace

Result<std::unique_ptr<ReplicaSnapshotSource>> ReplicaSnapshotSource::Create(
    const ReplicaTarget& target, uint64_t epoch, const ClientOptions& options,
    const std::string& snapshot, const msg::LayerList& layers) {
  std::unique_ptr<ReplicaSnapshotSource> source(
      new ReplicaSnapshotSource(target, epoch, options, snapshot));
  const std::string what =
      "read snapshot " + snapshot + " of replica " + target.replica + " (" + target.address + ")";
  source->size_ = layers.size;
  std::map<std::string, const msg::SnapshotLayer*> by_name;
  for (const auto& s : layers.snapshots) by_name[s.name] = &s;
  auto it = by_name.find(snapshot);
  if (it == by_name.end() || it->second->removed) {
    return Status(ErrorKind::kNotFound, what + ": the replica has no such snapshot", ENOENT);
  }
  // Walk to the root; a cycle or a missing parent is a broken reply.
  std::string name = snapshot;
  while (!name.empty()) {
    auto found = by_name.find(name);
    if (found == by_name.end() || source->chain_.size() > by_name.size()) {
      return Status(ErrorKind::kProtocol, what + ": LIST_LAYERS has a broken chain at " + name,
                    EPROTO);
    }
    source->chain_.push_back({name, found->second->created});
    name = found->second->parent.value_or("");
  }
  std::reverse(source->chain_.begin(), source->chain_.end());
  return source;
}

Result<std::vector<backup::Extent>> ReplicaSnapshotSource::LayerExtents(const std::string& layer) {
  std::vector<backup::Extent> out;
  uint64_t from = 0;
  for (;;) {
    auto page = ReplicaClient::LayerExtents(target_, epoch_, {layer, from, std::nullopt}, options_);
    if (!page.ok()) return page.status();
    for (const auto& e : page->extents) out.push_back({e.offset, e.length});
    if (!page->next || *page->next <= from) return out;
    from = *page->next;
  }
}

Result<std::unique_ptr<backup::SnapshotReader>> ReplicaSnapshotSource::OpenReader() {
  auto view = SnapshotViewReader::Open(target_, epoch_, snapshot_, options_);
  if (!view.ok()) return view.status();
  return std::unique_ptr<backup::SnapshotReader>(new ReplicaSnapshotReader(
      std::move(*view), "read snapshot " + snapshot_ + " of replica " + target_.replica));
}

Status EngineSink::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::promise<Status> done;
  auto future = done.get_future();
  engine_->Write(offset, data, [&done](Status s) { done.set_value(std::move(s)); });
  return future.get();
}

Status EngineSink::Flush() {
  std::promise<Status> done;
  auto future = done.get_future();
  engine_->Flush([&done](Status s) { done.set_value(std::move(s)); });
  return future.get();
}

namespace {

std::string Owner() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "unknown");
  return std::string("shorthorn-fused on ") + host + " pid " + std::to_string(getpid());
}

}  // namespace

// A job's options for the backup runners: progress into the job, and a
// cancelled job stops the run when `cancellable`.
backup::RunOptions RunOptionsFor(JobHandle& job, int workers, bool cancellable) {
  backup::RunOptions run;
  run.workers = workers;
  run.owner = Owner();
  run.progress = [&job, cancellable](uint64_t done, uint64_t total) {
    job.Update(done, total);
    return !(cancellable && job.cancelled());
  };
  return run;
}

Result<std::string> StringOption(const char* method, const Options& options, const char* key,
                                 const std::string& fallback) {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  const auto* s = std::get_if<std::string>(&it->second);
  if (s == nullptr) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(method) + ": option '" + key + "' must be a string");
  }
  return *s;
}

}  // namespace shorthorn::fused
