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
#include "replicad/core/rebuilder.h"

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
#include "replicad/core/layer_file.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

// The source's LIST_LAYERS, decoded.
Result<msg::LayerList> ListLayers(PeerClient* client, uint64_t epoch, const std::string& op) {
  auto list = client->CallJson(wire::Op::kListLayers, epoch, {});
  if (!list.ok()) return list.status().WithContext(op);
  return msg::Decode<msg::LayerList>(*list, op + ": LIST_LAYERS reply");
}

}  // namespace

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

bool Rebuilder::Pace(uint64_t bytes) {
  std::unique_lock lock(pace_mu_);
  auto wait = bucket_.Take(bytes);
  return !cancel_cv_.wait_for(lock, wait, [this] { return cancelled_.load(); });
}

void Rebuilder::Cancel() {
  {
    std::lock_guard lock(pace_mu_);
    cancelled_ = true;
  }
  cancel_cv_.notify_all();
  std::lock_guard lock(mu_);
  if (client_) client_->Shutdown();
}

Result<std::vector<Rebuilder::SourceLayer>> Rebuilder::ListTree() {
  const std::string op = Op();
  auto list = ListLayers(client_.get(), request_.source_epoch, op);
  if (!list.ok()) return list.status();
  if (list->rebuilding) {
    return Status(ErrorKind::kInvalidArgument,
                  op + ": the source is itself rebuilding and cannot be a source", EINVAL);
  }
  if (list->size > target_.size) {
    return Status(ErrorKind::kInvalidArgument,
                  op + ": the source is " + std::to_string(list->size) +
                      " bytes, larger than this replica's " + std::to_string(target_.size),
                  EINVAL);
  }
  std::vector<SourceLayer> listed;
  std::set<std::string> names;
  for (const auto& s : list->snapshots) {
    SourceLayer l;
    l.name = s.name;
    l.parent = s.parent.value_or("");
    l.created = s.created;
    l.user_created = s.user_created;
    l.removed = s.removed;
    l.size_held = s.size_held;
    if (s.checksum_done) l.checksum = s.checksum;
    if (Status v = ValidateName("snapshot", l.name); !v.ok()) {
      return Status(ErrorKind::kProtocol, op + ": LIST_LAYERS: " + v.message(), EPROTO);
    }
    if (!names.insert(l.name).second) {
      return Status(ErrorKind::kProtocol, op + ": LIST_LAYERS lists snapshot " + l.name + " twice",
                    EPROTO);
    }
    listed.push_back(std::move(l));
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
    auto list = ListLayers(client_.get(), request_.source_epoch, Op());
    if (!list.ok()) return list.status();
    if (const msg::SnapshotLayer* s = list->Find(layer.name); s != nullptr && s->checksum_done) {
      return s->checksum;
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
  std::string name_json = json::serialize(json::value_from(msg::ReadSnapshotRequest{layer.name}));
  std::vector<uint8_t> buf;
  uint64_t from = 0;
  for (;;) {
    SH_RETURN_IF_ERROR(Check());
    auto reply = client_->CallJson(
        wire::Op::kLayerExtents, request_.source_epoch,
        msg::ToObject(msg::LayerExtentsRequest{layer.name, from, options_.extents_per_page}));
    if (!reply.ok()) return reply.status().WithContext(op);
    auto page = msg::Decode<msg::LayerExtentsReply>(*reply, op + ": LAYER_EXTENTS reply");
    if (!page.ok()) return page.status();
    for (const auto& e : page->extents) {
      const uint64_t offset = e.offset, length = e.length;
      if (offset + length < offset || offset + length > target_.size) {
        return Status(ErrorKind::kProtocol,
                      op + ": LAYER_EXTENTS gave a bad extent [" + std::to_string(offset) + "," +
                          std::to_string(length) + "]",
                      EPROTO);
      }
      for (uint64_t pos = offset; pos < offset + length;) {
        uint64_t n = std::min(options_.read_size, offset + length - pos);
        if (!Pace(n)) return Check();
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
    if (!page->next) break;
    if (*page->next <= from) {
      return Status(ErrorKind::kProtocol, op + ": LAYER_EXTENTS gave a bad 'next'", EPROTO);
    }
    from = *page->next;
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
  // No owner: opening the source must not claim it.
  msg::OpenReplicaRequest open{request_.source_volume, request_.source_replica,
                               request_.source_epoch, /*owner=*/"", /*take_over=*/false};
  msg::HelloRequest hello{request_.source_volume, request_.source_replica, request_.source_epoch};
  if (auto r =
          client_->CallJson(wire::Op::kOpenReplica, request_.source_epoch, msg::ToObject(open));
      !r.ok()) {
    return fail(r.status().WithContext(op));
  }
  if (auto r = client_->CallJson(wire::Op::kHello, request_.source_epoch, msg::ToObject(hello));
      !r.ok()) {
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
