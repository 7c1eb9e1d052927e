#include "fused/service/backup_adapters.h"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <future>

#include "common/peer_client.h"

namespace shorthorn::fused {
namespace json = boost::json;
namespace {

// Boost.JSON keeps a non-negative integer as int64 when it fits.
bool IsU64(const json::value& v) { return v.is_uint64() || (v.is_int64() && v.as_int64() >= 0); }
uint64_t U64(const json::value& v) { return v.is_uint64() ? v.as_uint64() : v.as_int64(); }

std::string Str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

class ReplicaSnapshotReader : public backup::SnapshotReader {
 public:
  ReplicaSnapshotReader(std::unique_ptr<PeerClient> client, uint64_t epoch, std::string request,
                        std::string what)
      : client_(std::move(client)),
        epoch_(epoch),
        request_(std::move(request)),
        what_(std::move(what)) {}

  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    auto data = client_->Call(wire::Op::kReadSnapshotView, epoch_, offset, buf.size(),
                              wire::AsBytes(request_));
    if (!data.ok()) return data.status().WithContext(what_);
    if (data->size() != buf.size()) {
      return Status(ErrorKind::kProtocol,
                    what_ + ": the reply has " + std::to_string(data->size()) + " bytes, not " +
                        std::to_string(buf.size()),
                    EPROTO);
    }
    std::copy(data->begin(), data->end(), buf.begin());
    return Status::Ok();
  }

 private:
  std::unique_ptr<PeerClient> client_;
  const uint64_t epoch_;
  const std::string request_;
  const std::string what_;
};

}  // namespace

Result<std::unique_ptr<ReplicaSnapshotSource>> ReplicaSnapshotSource::Create(
    const ReplicaTarget& target, uint64_t epoch, const ClientOptions& options,
    const std::string& snapshot, const json::object& layers) {
  std::unique_ptr<ReplicaSnapshotSource> source(
      new ReplicaSnapshotSource(target, epoch, options, snapshot));
  const std::string what =
      "read snapshot " + snapshot + " of replica " + target.replica + " (" + target.address + ")";
  if (const json::value* v = layers.if_contains("size"); v != nullptr && IsU64(*v)) {
    source->size_ = U64(*v);
  }
  std::map<std::string, const json::object*> by_name;
  if (const json::value* v = layers.if_contains("snapshots"); v != nullptr && v->is_array()) {
    for (const auto& item : v->as_array()) {
      if (item.is_object()) by_name[Str(item.as_object(), "name")] = &item.as_object();
    }
  }
  auto it = by_name.find(snapshot);
  const json::value* removed = it == by_name.end() ? nullptr : it->second->if_contains("removed");
  if (it == by_name.end() || (removed != nullptr && removed->is_bool() && removed->as_bool())) {
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
    source->chain_.push_back({name, Str(*found->second, "created")});
    name = Str(*found->second, "parent");
  }
  std::reverse(source->chain_.begin(), source->chain_.end());
  return source;
}

Result<std::vector<backup::Extent>> ReplicaSnapshotSource::LayerExtents(const std::string& layer) {
  std::vector<backup::Extent> out;
  uint64_t from = 0;
  for (;;) {
    auto page = ReplicaClient::Call(target_, epoch_, wire::Op::kLayerExtents,
                                    {{"name", layer}, {"from", from}}, options_);
    if (!page.ok()) return page.status();
    const json::value* extents = page->if_contains("extents");
    if (extents == nullptr || !extents->is_array()) {
      return Status(ErrorKind::kProtocol,
                    "layer extents of " + layer + " on replica " + target_.replica +
                        ": no extents in the reply",
                    EPROTO);
    }
    for (const auto& e : extents->as_array()) {
      const json::array* pair = e.if_array();
      if (pair == nullptr || pair->size() != 2 || !IsU64((*pair)[0]) || !IsU64((*pair)[1])) {
        return Status(
            ErrorKind::kProtocol,
            "layer extents of " + layer + " on replica " + target_.replica + ": a malformed extent",
            EPROTO);
      }
      out.push_back({U64((*pair)[0]), U64((*pair)[1])});
    }
    const json::value* next = page->if_contains("next");
    if (next == nullptr || !IsU64(*next) || U64(*next) <= from) return out;
    from = U64(*next);
  }
}

Result<std::unique_ptr<backup::SnapshotReader>> ReplicaSnapshotSource::OpenReader() {
  auto fd = ReplicaClient::ConnectBound(target_, epoch_, options_);
  if (!fd.ok()) return fd.status();
  std::string request = json::serialize(json::object{{"name", snapshot_}});
  return std::unique_ptr<backup::SnapshotReader>(new ReplicaSnapshotReader(
      PeerClient::Adopt(std::move(*fd), target_.address), epoch_, std::move(request),
      "read snapshot " + snapshot_ + " of replica " + target_.replica));
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
