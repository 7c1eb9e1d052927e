// Design notes: the puller's steps, all on the rebuild thread:
//
//   connect ---> OPEN_REPLICA(source_epoch) ---> HELLO ---> LIST_LAYERS
//                                                              |
//      tree = every listed snapshot layer (all branches, removed|
//      ones included), parents first, in the source's order    v
//   for each layer of the tree:
//     create layer-<id>.img (sparse, volume size)
//     LAYER_EXTENTS pages -> for each extent, 1 MiB at a time:
//         token bucket -> READ_SNAPSHOT -> pwrite at the same offset
//     fdatasync; source checksum (poll LIST_LAYERS while "pending")
//     local checksum == source checksum, else fail naming the layer
//   fsync the directory; return the layers (the Replica links them)
//
// Copying the extents at the same offsets reproduces the source file's
// data extents exactly (every byte of an extent is written, zeros included,
// and nothing else), so the layer checksum, which covers the extents and
// their data, must come out equal: a mismatch means the source's data no
// longer matches what it checksummed (bit rot) or the copy went wrong.
//
// The whole tree is copied, not only the chain under `snapshot`: after a
// revert the snapshots taken after its target sit on another branch, and
// they stay readable and revert targets (doc/replica-format.md), so a
// rebuilt replica that lacked them would diverge from the others; and a
// removed snapshot kept because it has several children would find itself
// with one child and be merged away. Ids follow the source's creation order
// so that they keep growing with creation time.
//
// One request is in flight at a time; a 1 MiB read over loopback or a LAN
// is dominated by the copy itself, and the bandwidth limit, not latency,
// is what production rebuilds run at.
#include "replicad/rebuilder.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/names.h"
#include "replicad/layer_file.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

bool ValueUint(const json::value& v, uint64_t* out);

bool JsonUint(const json::object& o, std::string_view key, uint64_t* out) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && ValueUint(*v, out);
}

bool ValueUint(const json::value& v, uint64_t* out) {
  if (v.is_uint64()) {
    *out = v.as_uint64();
    return true;
  }
  if (v.is_int64() && v.as_int64() >= 0) {
    *out = static_cast<uint64_t>(v.as_int64());
    return true;
  }
  return false;
}

std::string JsonString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool JsonBool(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

}  // namespace

TokenBucket::TokenBucket(uint64_t rate, uint64_t burst)
    : rate_(rate),
      burst_(static_cast<double>(std::max<uint64_t>(burst, 1))),
      last_(std::chrono::steady_clock::now()) {}

bool TokenBucket::Acquire(uint64_t bytes) {
  std::unique_lock lock(mu_);
  if (cancelled_) return false;
  if (rate_ == 0) return true;
  auto now = std::chrono::steady_clock::now();
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() *
                                           static_cast<double>(rate_));
  last_ = now;
  // Take the bytes now (going into debt) and sleep the debt off: a request
  // larger than the burst still passes, at the configured rate.
  tokens_ -= static_cast<double>(bytes);
  if (tokens_ >= 0) return true;
  auto wait = std::chrono::duration<double>(-tokens_ / static_cast<double>(rate_));
  return !cv_.wait_for(lock, std::chrono::duration_cast<std::chrono::nanoseconds>(wait),
                       [this] { return cancelled_; });
}

void TokenBucket::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

struct Rebuilder::SourceLayer {
  std::string name;
  std::string parent;  // "" for the root
  std::string created;
  bool user_created = false;
  bool removed = false;
  uint64_t size_held = 0;
  std::string checksum;  // "" while pending
};

Rebuilder::Rebuilder(RebuildRequest request, RebuildTarget target, RebuildOptions options)
    : request_(std::move(request)),
      target_(std::move(target)),
      options_(options),
      bucket_(request_.bandwidth, std::max<uint64_t>(options.read_size, request_.bandwidth / 10)) {}

Rebuilder::~Rebuilder() = default;

std::string Rebuilder::Op() const {
  return "rebuild replica " + target_.replica + " from replica " + request_.source_replica +
         " at " + request_.source;
}

Status Rebuilder::Check() const {
  if (cancelled_.load()) return Status(ErrorKind::kUnavailable, Op() + ": cancelled", ECANCELED);
  return Status::Ok();
}

void Rebuilder::Cancel() {
  cancelled_ = true;
  bucket_.Cancel();
  std::lock_guard lock(mu_);
  if (client_) client_->Shutdown();
}

Result<std::vector<Rebuilder::SourceLayer>> Rebuilder::ListTree() {
  const std::string op = Op();
  auto list = client_->CallJson(wire::Op::kListLayers, request_.source_epoch, {});
  if (!list.ok()) return list.status().WithContext(op);
  if (JsonBool(*list, "rebuilding")) {
    return Status(ErrorKind::kInvalidArgument,
                  op + ": the source is itself rebuilding and cannot be a source", EINVAL);
  }
  uint64_t source_size = 0;
  if (JsonUint(*list, "size", &source_size) && source_size > target_.size) {
    return Status(ErrorKind::kInvalidArgument,
                  op + ": the source is " + std::to_string(source_size) +
                      " bytes, larger than this replica's " + std::to_string(target_.size),
                  EINVAL);
  }
  std::vector<SourceLayer> listed;
  std::set<std::string> names;
  if (const json::value* snaps = list->if_contains("snapshots"); snaps && snaps->is_array()) {
    for (const auto& v : snaps->as_array()) {
      if (!v.is_object()) continue;
      const json::object& o = v.as_object();
      SourceLayer l;
      l.name = JsonString(o, "name");
      l.parent = JsonString(o, "parent");
      l.created = JsonString(o, "created");
      l.user_created = JsonBool(o, "user_created");
      l.removed = JsonBool(o, "removed");
      (void)JsonUint(o, "size_held", &l.size_held);
      if (JsonString(o, "checksum_state") == "done") l.checksum = JsonString(o, "checksum");
      if (Status s = ValidateName("snapshot", l.name); !s.ok()) {
        return Status(ErrorKind::kProtocol, op + ": LIST_LAYERS: " + s.message(), EPROTO);
      }
      if (!names.insert(l.name).second) {
        return Status(ErrorKind::kProtocol,
                      op + ": LIST_LAYERS lists snapshot " + l.name + " twice", EPROTO);
      }
      listed.push_back(std::move(l));
    }
  }
  if (names.count(request_.snapshot) == 0) {
    return Status(ErrorKind::kNotFound, op + ": the source has no snapshot " + request_.snapshot,
                  ENOENT);
  }
  // Parents first, otherwise in the source's (creation) order; a parent
  // always predates its children, so this is normally one pass.
  std::vector<SourceLayer> tree;
  std::set<std::string> placed;
  std::vector<bool> taken(listed.size(), false);
  while (tree.size() < listed.size()) {
    size_t before = tree.size();
    for (size_t i = 0; i < listed.size(); ++i) {
      const SourceLayer& l = listed[i];
      if (taken[i] || (!l.parent.empty() && placed.count(l.parent) == 0)) continue;
      taken[i] = true;
      placed.insert(l.name);
      tree.push_back(l);
    }
    if (tree.size() == before) {
      for (size_t i = 0; i < listed.size(); ++i) {
        if (taken[i]) continue;
        return Status(ErrorKind::kProtocol,
                      op + ": LIST_LAYERS: the parent " + listed[i].parent + " of snapshot " +
                          listed[i].name + " is not a listed snapshot (or the parents loop)",
                      EPROTO);
      }
    }
  }
  return tree;
}

Result<std::string> Rebuilder::SourceChecksum(const SourceLayer& layer) {
  if (!layer.checksum.empty()) return layer.checksum;
  auto deadline = std::chrono::steady_clock::now() + options_.checksum_wait;
  for (;;) {
    SH_RETURN_IF_ERROR(Check());
    auto list = client_->CallJson(wire::Op::kListLayers, request_.source_epoch, {});
    if (!list.ok()) return list.status().WithContext(Op());
    if (const json::value* snaps = list->if_contains("snapshots"); snaps && snaps->is_array()) {
      for (const auto& v : snaps->as_array()) {
        if (!v.is_object() || JsonString(v.as_object(), "name") != layer.name) continue;
        if (JsonString(v.as_object(), "checksum_state") == "done") {
          return JsonString(v.as_object(), "checksum");
        }
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(ErrorKind::kUnavailable,
                    Op() + ": layer " + layer.name + ": the source's checksum is still pending",
                    ETIMEDOUT);
    }
    std::this_thread::sleep_for(options_.checksum_poll);
  }
}

Status Rebuilder::CopyLayer(const SourceLayer& layer, LayerMeta* meta) {
  const LayerMeta& local = *meta;
  const std::string op = Op() + ": layer " + layer.name;
  std::string path = target_.dir + "/" + local.file;
  ::unlink(path.c_str());  // a leftover of an earlier attempt (never referenced)
  SH_RETURN_IF_ERROR(CreateLayerFile(path, target_.size).WithContext(op));
  made_.push_back(path);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, op + ": open " + path);
  std::string name_json = json::serialize(json::object{{"name", layer.name}});
  std::vector<uint8_t> buf;
  uint64_t from = 0;
  for (;;) {
    SH_RETURN_IF_ERROR(Check());
    auto page = client_->CallJson(
        wire::Op::kLayerExtents, request_.source_epoch,
        {{"name", layer.name}, {"from", from}, {"max", options_.extents_per_page}});
    if (!page.ok()) return page.status().WithContext(op);
    const json::value* extents = page->if_contains("extents");
    const json::value* next = page->if_contains("next");
    if (extents == nullptr || !extents->is_array() || next == nullptr) {
      return Status(ErrorKind::kProtocol, op + ": LAYER_EXTENTS reply lacks its fields", EPROTO);
    }
    for (const auto& e : extents->as_array()) {
      const json::array* pair = e.if_array();
      uint64_t offset = 0, length = 0;
      bool good = pair != nullptr && pair->size() == 2 && ValueUint((*pair)[0], &offset) &&
                  ValueUint((*pair)[1], &length);
      if (!good || offset + length < offset || offset + length > target_.size) {
        return Status(ErrorKind::kProtocol,
                      op + ": LAYER_EXTENTS gave a bad extent " + json::serialize(e), EPROTO);
      }
      for (uint64_t pos = offset; pos < offset + length;) {
        uint64_t n = std::min(options_.read_size, offset + length - pos);
        if (!bucket_.Acquire(n)) return Check();
        SH_RETURN_IF_ERROR(Check());
        auto data = client_->Call(wire::Op::kReadSnapshot, request_.source_epoch, pos, n,
                                  wire::AsBytes(name_json));
        if (!data.ok()) return data.status().WithContext(op);
        if (data->size() != n) {
          return Status(ErrorKind::kProtocol, op + ": READ_SNAPSHOT returned a short read", EPROTO);
        }
        if (int err = target_.fail_io ? target_.fail_io("rebuild-write") : 0; err != 0) {
          return ErrnoStatus(err, op + ": pwrite " + local.file);
        }
        SH_RETURN_IF_ERROR(PwriteFull(fd.get(), data->data(), n, pos, local.file).WithContext(op));
        pos += n;
        done_ += n;
        total_ = std::max(total_, done_);
        if (target_.progress) target_.progress(done_, total_);
      }
    }
    if (next->is_null()) break;
    uint64_t next_from = 0;
    if (!ValueUint(*next, &next_from) || next_from <= from) {
      return Status(ErrorKind::kProtocol, op + ": LAYER_EXTENTS gave a bad 'next'", EPROTO);
    }
    from = next_from;
  }
  if (::fdatasync(fd.get()) != 0) return ErrnoStatus(errno, op + ": fdatasync " + local.file);
  auto expected = SourceChecksum(layer);
  if (!expected.ok()) return expected.status();
  auto actual = LayerChecksum(fd.get(), local.file, [this](uint64_t) { return !cancelled_; });
  if (!actual.ok()) {
    SH_RETURN_IF_ERROR(Check());
    return actual.status().WithContext(op);
  }
  if (*actual != *expected) {
    return Status(ErrorKind::kIoError,
                  op + ": checksum mismatch: the copy's checksum is " + *actual +
                      ", the source's is " + *expected +
                      " (the source's layer is damaged, or changed during the copy)",
                  EIO);
  }
  meta->checksum = *actual;
  return Status::Ok();
}

Result<std::vector<LayerMeta>> Rebuilder::Run(bool* crashed) {
  *crashed = false;
  const std::string op = Op();
  auto fail = [this](Status s) -> Result<std::vector<LayerMeta>> {
    RemoveFiles();
    if (cancelled_.load()) return Status(ErrorKind::kUnavailable, Op() + ": cancelled", ECANCELED);
    return s;
  };
  {
    auto client =
        PeerClient::Connect(request_.source, options_.io_timeout_ms, options_.cluster_key.get());
    if (!client.ok()) return fail(client.status().WithContext(op));
    std::lock_guard lock(mu_);
    client_ = std::move(*client);
    if (cancelled_.load()) client_->Shutdown();
  }
  json::object who{{"volume", request_.source_volume},
                   {"replica", request_.source_replica},
                   {"epoch", request_.source_epoch}};
  if (auto r = client_->CallJson(wire::Op::kOpenReplica, request_.source_epoch, who); !r.ok()) {
    return fail(r.status().WithContext(op));
  }
  if (auto r = client_->CallJson(wire::Op::kHello, request_.source_epoch, who); !r.ok()) {
    return fail(r.status().WithContext(op));
  }
  auto tree = ListTree();
  if (!tree.ok()) return fail(tree.status());
  for (const auto& l : *tree) total_ += l.size_held;
  if (target_.progress) target_.progress(0, total_);
  std::vector<LayerMeta> out;
  std::map<std::string, uint64_t> ids;  // source name -> local id
  for (size_t i = 0; i < tree->size(); ++i) {
    const SourceLayer& src = (*tree)[i];
    LayerMeta local;
    local.id = target_.first_id + i;
    local.file = LayerFileName(local.id);
    if (!src.parent.empty()) local.parent = ids.at(src.parent);  // placed before it
    ids[src.name] = local.id;
    local.name = src.name;
    local.created = src.created;
    local.user_created = src.user_created;
    local.removed = src.removed;
    if (Status s = CopyLayer(src, &local); !s.ok()) return fail(s);
    out.push_back(std::move(local));
    LogInfo(op + ": layer " + src.name + " copied and verified");
    if (target_.crash_at && target_.crash_at("rebuild-layer")) {
      LogInfo(op + ": simulated crash after layer " + src.name);
      *crashed = true;
      return Status(ErrorKind::kFailed, op + ": simulated crash", EIO);
    }
  }
  if (Status s = SyncDirectory(target_.dir); !s.ok()) return fail(s.WithContext(op));
  return out;
}

void Rebuilder::RemoveFiles() {
  for (const auto& path : made_) ::unlink(path.c_str());
  if (!made_.empty()) (void)SyncDirectory(target_.dir);
  made_.clear();
}

}  // namespace shorthorn::replicad
