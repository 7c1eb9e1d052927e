// Design notes: Boost.JSON builds and parses the object; a field that is
// missing or of the wrong type makes the whole file corrupt (EIO), because a
// guessed default (an epoch of 0, a missing parent) would defeat fencing or
// serve wrong data. Format 1 files decode into a one-layer tree whose head
// keeps its file name head.img; formats 1 and 2 get generation 0 and no
// rebuilding flag; `upgraded` tells Open to rewrite them as format 3.
// `open` is the one optional field: replicads before it never recorded a
// close, so a file without it may come from a session that crashed; it
// decodes as open (the engine then compares the replica before trusting
// it), never as a guessed clean close. `owner` is optional too (files
// before it had none) and written only when set, so a replica nobody
// claimed keeps the exact bytes older replicads wrote.
#include "replicad/core/replica_meta.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>

#include "common/json_fields.h"
#include "common/names.h"
#include "replicad/core/layer_chain.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

Status Corrupt(const std::string& path, const std::string& reason) {
  return Status(ErrorKind::kIoError, "read " + path + ": " + reason, EIO);
}

// replica.json's fields through the common readers (common/json_fields.h);
// the messages stay this file's ("read <path>: missing or bad 'size'"),
// which name the key too, so only success matters here.
json_fields::FieldContext File() { return json_fields::FileContext("replica.json"); }

bool GetUint(const json::object& o, std::string_view key, uint64_t* out) {
  return json_fields::GetUint64(o, key, File(), out).ok();
}

bool GetString(const json::object& o, std::string_view key, std::string* out) {
  return json_fields::GetString(o, key, File(), out).ok();
}

bool GetBool(const json::object& o, std::string_view key, bool* out) {
  return json_fields::GetBool(o, key, File(), out).ok();
}

Status DecodeLayer(const json::value& v, uint64_t format, const std::string& path, LayerMeta* l) {
  if (!v.is_object()) return Corrupt(path, "a layer is not an object");
  const json::object& o = v.as_object();
  if (!GetUint(o, "id", &l->id)) return Corrupt(path, "layer without a good 'id'");
  std::string what = "layer " + std::to_string(l->id);
  if (!GetString(o, "file", &l->file)) return Corrupt(path, what + ": missing or bad 'file'");
  const json::value* parent = o.if_contains("parent");
  if (parent == nullptr) return Corrupt(path, what + ": missing 'parent'");
  if (!parent->is_null()) {
    uint64_t p = 0;
    if (!GetUint(o, "parent", &p)) return Corrupt(path, what + ": bad 'parent'");
    l->parent = p;
  }
  if (!GetString(o, "name", &l->name) || !GetString(o, "created", &l->created) ||
      !GetBool(o, "user_created", &l->user_created) || !GetBool(o, "removed", &l->removed) ||
      !GetString(o, "checksum", &l->checksum)) {
    return Corrupt(path, what + ": missing or bad snapshot fields");
  }
  if (o.contains("zero_map") && !GetBool(o, "zero_map", &l->zero_map)) {
    return Corrupt(path, what + ": bad 'zero_map'");
  }
  if (l->zero_map && format < kReplicaFormatZeroMaps) {
    return Corrupt(path,
                   what + ": 'zero_map' needs format " + std::to_string(kReplicaFormatZeroMaps));
  }
  return Status::Ok();
}

}  // namespace

std::string ReplicaDir(const std::string& data_dir, std::string_view replica) {
  return data_dir + "/" + std::string(replica);
}

std::string MetaPath(const std::string& replica_dir) {
  return replica_dir + "/" + std::string(kMetaFileName);
}

std::string LayerFileName(uint64_t id) { return "layer-" + std::to_string(id) + ".img"; }

bool IsLayerFileName(std::string_view name) {
  if (name == kLegacyHeadFileName) return true;
  constexpr std::string_view kPrefix = "layer-", kSuffix = ".img";
  if (name.size() <= kPrefix.size() + kSuffix.size()) return false;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  std::string_view digits =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

ReplicaMeta NewReplicaMeta(std::string volume, std::string replica, uint64_t size,
                           std::string owner) {
  ReplicaMeta meta;
  meta.volume = std::move(volume);
  meta.replica = std::move(replica);
  meta.size = size;
  meta.owner = std::move(owner);
  LayerMeta head;
  head.id = meta.next_layer_id++;
  head.file = LayerFileName(head.id);
  meta.layers.push_back(head);
  meta.head = head.id;
  return meta;
}

Status CheckOwner(std::string_view op, const std::string& replica, const std::string& volume,
                  const std::string& owner, const std::string& claimant) {
  if (claimant.empty() || owner.empty() || owner == claimant) return Status::Ok();
  return Status(ErrorKind::kMoved,
                std::string(op) + " replica " + replica + " of volume " + volume +
                    ": it belongs to fused " + owner +
                    " now (the volume was imported there); this fused (" + claimant + ") is fenced",
                EXDEV);
}

bool SizeAboveGib(uint64_t size, uint64_t limit_gib) {
  // A limit of 2^34 GiB or more is 2^64 bytes or more: nothing is above it.
  return limit_gib < (uint64_t{1} << 34) && size > (limit_gib << 30);
}

Status CheckMaxVolumeSize(const std::string& context, uint64_t size, uint64_t limit_gib) {
  if (!SizeAboveGib(size, limit_gib)) return Status::Ok();
  return Status(ErrorKind::kInvalidArgument,
                context + ": size " + std::to_string(size) + " bytes exceeds max-volume-size " +
                    std::to_string(limit_gib) + " GiB",
                EINVAL);
}

std::string EncodeReplicaMeta(const ReplicaMeta& meta) {
  json::object o;
  const bool zero_maps = std::any_of(meta.layers.begin(), meta.layers.end(),
                                     [](const LayerMeta& l) { return l.zero_map; });
  o["format"] = zero_maps ? kReplicaFormatZeroMaps : kReplicaFormat;
  o["volume"] = meta.volume;
  o["replica"] = meta.replica;
  o["size"] = meta.size;
  o["epoch"] = meta.epoch;
  o["generation"] = meta.generation;
  o["rebuilding"] = meta.rebuilding;
  o["open"] = meta.open;
  if (!meta.owner.empty()) o["owner"] = meta.owner;
  o["head"] = meta.head;
  o["next_layer_id"] = meta.next_layer_id;
  json::array layers;
  for (const auto& l : meta.layers) {
    json::object lo;
    lo["id"] = l.id;
    lo["file"] = l.file;
    if (l.parent) {
      lo["parent"] = *l.parent;
    } else {
      lo["parent"] = nullptr;
    }
    lo["name"] = l.name;
    lo["created"] = l.created;
    lo["user_created"] = l.user_created;
    lo["removed"] = l.removed;
    lo["checksum"] = l.checksum;
    if (l.zero_map) lo["zero_map"] = true;
    layers.push_back(std::move(lo));
  }
  o["layers"] = std::move(layers);
  return json::serialize(o) + "\n";
}

Result<ReplicaMeta> DecodeReplicaMeta(std::string_view text, const std::string& path) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Corrupt(path, "not JSON: " + ec.message());
  if (!v.is_object()) return Corrupt(path, "not a JSON object");
  const json::object& o = v.as_object();
  uint64_t format = 0;
  if (!GetUint(o, "format", &format)) return Corrupt(path, "missing or bad 'format'");
  if (format < 1 || format > kReplicaFormatZeroMaps) {
    return Corrupt(path, "unsupported format " + std::to_string(format));
  }
  ReplicaMeta meta;
  if (!GetString(o, "volume", &meta.volume)) return Corrupt(path, "missing or bad 'volume'");
  if (!GetString(o, "replica", &meta.replica)) return Corrupt(path, "missing or bad 'replica'");
  if (!GetUint(o, "size", &meta.size)) return Corrupt(path, "missing or bad 'size'");
  if (!GetUint(o, "epoch", &meta.epoch)) return Corrupt(path, "missing or bad 'epoch'");
  if (format >= 3) {
    if (!GetUint(o, "generation", &meta.generation)) {
      return Corrupt(path, "missing or bad 'generation'");
    }
    if (!GetBool(o, "rebuilding", &meta.rebuilding)) {
      return Corrupt(path, "missing or bad 'rebuilding'");
    }
  } else {
    meta.upgraded = true;
  }
  meta.open = true;
  if (o.contains("open") && !GetBool(o, "open", &meta.open)) {
    return Corrupt(path, "bad 'open'");
  }
  if (o.contains("owner")) {
    if (!GetString(o, "owner", &meta.owner)) return Corrupt(path, "bad 'owner'");
    if (!meta.owner.empty()) {
      if (Status s = ValidateOwner(meta.owner); !s.ok()) return Corrupt(path, s.message());
    }
  }
  if (format == 1) {
    LayerMeta head;
    head.id = 1;
    if (!GetString(o, "head", &head.file)) return Corrupt(path, "missing or bad 'head'");
    meta.layers.push_back(head);
    meta.head = 1;
    meta.next_layer_id = 2;
    meta.upgraded = true;
  } else {
    if (!GetUint(o, "head", &meta.head)) return Corrupt(path, "missing or bad 'head'");
    if (!GetUint(o, "next_layer_id", &meta.next_layer_id)) {
      return Corrupt(path, "missing or bad 'next_layer_id'");
    }
    const json::value* layers = o.if_contains("layers");
    if (layers == nullptr || !layers->is_array()) return Corrupt(path, "missing or bad 'layers'");
    for (const auto& lv : layers->as_array()) {
      LayerMeta l;
      SH_RETURN_IF_ERROR(DecodeLayer(lv, format, path, &l));
      meta.layers.push_back(std::move(l));
    }
    std::sort(meta.layers.begin(), meta.layers.end(),
              [](const LayerMeta& a, const LayerMeta& b) { return a.id < b.id; });
  }
  if (Status s = ValidateName("volume", meta.volume); !s.ok()) return Corrupt(path, s.message());
  if (Status s = ValidateName("replica", meta.replica); !s.ok()) {
    return Corrupt(path, s.message());
  }
  if (meta.size == 0 || meta.size % kSectorSize != 0) {
    return Corrupt(path, "size " + std::to_string(meta.size) + " is not a positive multiple of " +
                             std::to_string(kSectorSize));
  }
  // Whatever max-volume-size says, no replica that large exists: refused
  // here, before Open builds a block index for it.
  if (SizeAboveGib(meta.size, kMaxVolumeSizeCeilingGib)) {
    return Corrupt(path, "size " + std::to_string(meta.size) +
                             " bytes exceeds the largest max-volume-size, " +
                             std::to_string(kMaxVolumeSizeCeilingGib) + " GiB");
  }
  if (Status s = ValidateChain(meta); !s.ok()) return Corrupt(path, s.message());
  return meta;
}

}  // namespace shorthorn::replicad
