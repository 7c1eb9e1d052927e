// Design notes: Boost.JSON builds and parses the object; a field that is
// missing or of the wrong type makes the whole file corrupt (EIO), because a
// guessed default (an epoch of 0, say) would defeat fencing.
#include "replicad/replica_meta.h"

#include <boost/json.hpp>

#include "common/names.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

Status Corrupt(const std::string& path, const std::string& reason) {
  return Status(ErrorKind::kIoError, "read " + path + ": " + reason, EIO);
}

bool GetUint(const json::object& o, std::string_view key, uint64_t* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return false;
  if (v->is_uint64()) {
    *out = v->as_uint64();
    return true;
  }
  if (v->is_int64() && v->as_int64() >= 0) {
    *out = static_cast<uint64_t>(v->as_int64());
    return true;
  }
  return false;
}

bool GetString(const json::object& o, std::string_view key, std::string* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return false;
  *out = std::string(v->as_string());
  return true;
}

}  // namespace

std::string ReplicaDir(const std::string& data_dir, std::string_view replica) {
  return data_dir + "/" + std::string(replica);
}

std::string MetaPath(const std::string& replica_dir) {
  return replica_dir + "/" + std::string(kMetaFileName);
}

std::string DataPath(const std::string& replica_dir, const ReplicaMeta& meta) {
  return replica_dir + "/" + meta.head;
}

std::string EncodeReplicaMeta(const ReplicaMeta& meta) {
  json::object o;
  o["format"] = kReplicaFormat;
  o["volume"] = meta.volume;
  o["replica"] = meta.replica;
  o["size"] = meta.size;
  o["epoch"] = meta.epoch;
  o["head"] = meta.head;
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
  if (format != kReplicaFormat) {
    return Corrupt(path, "unsupported format " + std::to_string(format));
  }
  ReplicaMeta meta;
  if (!GetString(o, "volume", &meta.volume)) return Corrupt(path, "missing or bad 'volume'");
  if (!GetString(o, "replica", &meta.replica)) return Corrupt(path, "missing or bad 'replica'");
  if (!GetUint(o, "size", &meta.size)) return Corrupt(path, "missing or bad 'size'");
  if (!GetUint(o, "epoch", &meta.epoch)) return Corrupt(path, "missing or bad 'epoch'");
  if (!GetString(o, "head", &meta.head)) return Corrupt(path, "missing or bad 'head'");
  if (Status s = ValidateName("volume", meta.volume); !s.ok()) return Corrupt(path, s.message());
  if (Status s = ValidateName("replica", meta.replica); !s.ok()) {
    return Corrupt(path, s.message());
  }
  if (Status s = ValidateName("head file", meta.head); !s.ok()) {
    return Corrupt(path, s.message());
  }
  if (meta.size == 0 || meta.size % kSectorSize != 0) {
    return Corrupt(path, "size " + std::to_string(meta.size) + " is not a positive multiple of " +
                             std::to_string(kSectorSize));
  }
  return meta;
}

}  // namespace shorthorn::replicad
