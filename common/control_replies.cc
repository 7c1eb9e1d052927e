// The decoders of the replies (fused's side of the protocol, and the
// rebuild puller's): kProtocol/EPROTO errors naming the peer's context and
// the key. The encoders and the request decoders are in
// control_messages.cc; the header says what each field means.
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "common/control_messages.h"
#include "common/json_fields.h"
#include "common/names.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;
using namespace json_fields;  // NOLINT: the field readers, for this file

// REPLICAD_INFO's hostname: a DNS name is at most 253 characters.
constexpr size_t kMaxReplicadHostname = 255;

FieldContext Reply(std::string_view context) {
  return json_fields::ReplyContext(std::string(context));
}

// The optional "state" of LIST_LAYERS' verify or rebuild object: absent
// leaves *out; present, it must be one of the phase names.
template <typename Phase>
Status GetOptionalPhase(const json::object& o, const FieldContext& ctx,
                        std::optional<Phase> (*parse)(std::string_view), std::string_view names,
                        Phase* out) {
  std::optional<std::string> name;
  SH_RETURN_IF_ERROR(GetOptionalString(o, "state", ctx, &name));
  if (!name) return Status::Ok();
  std::optional<Phase> phase = parse(*name);
  if (!phase) return ctx.Error("field 'state' is not one of " + std::string(names));
  *out = *phase;
  return Status::Ok();
}

}  // namespace

Status Decode(const json::object& o, OpenReplicaReply* out, std::string_view /*context*/) {
  // Lenient on purpose (see the header): a field of another type counts as
  // absent, as fused has always read this reply.
  OpenReplicaReply m;
  auto uint = [&o](std::string_view key, uint64_t* x) {
    if (const json::value* v = o.if_contains(key)) (void)json_fields::AsUint64(*v, x);
  };
  auto boolean = [&o](std::string_view key, bool* x) {
    if (const json::value* v = o.if_contains(key); v != nullptr && v->is_bool()) *x = v->as_bool();
  };
  uint("size", &m.size);
  uint("epoch", &m.epoch);
  uint("generation", &m.generation);
  boolean("rebuilding", &m.rebuilding);
  boolean("clean", &m.clean);
  if (const json::value* v = o.if_contains("owner"); v != nullptr && v->is_string()) {
    m.owner = std::string(v->as_string());
  }
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, HelloReply* out, std::string_view context) {
  return GetOptionalUint64(o, "size", Reply(context), &out->size);
}

Status Decode(const json::object& o, ListReplicasReply* out, std::string_view context) {
  const FieldContext ctx = Reply(context);
  const json::value* list = o.if_contains("replicas");
  if (list == nullptr || !list->is_array()) return ctx.Error("no 'replicas' array");
  ListReplicasReply m;
  for (const auto& item : list->as_array()) {
    const json::object* r = item.if_object();
    if (r == nullptr) return ctx.Error("a replica is not an object");
    ReplicaSummary s;
    if (!GetString(*r, "replica", ctx, &s.replica).ok() ||
        !GetString(*r, "volume", ctx, &s.volume).ok() ||
        !GetUint64(*r, "size", ctx, &s.size).ok() || !GetUint64(*r, "epoch", ctx, &s.epoch).ok() ||
        !GetUint64(*r, "generation", ctx, &s.generation).ok() ||
        !GetBool(*r, "rebuilding", ctx, &s.rebuilding).ok() ||
        !GetBool(*r, "open", ctx, &s.open).ok()) {
      return ctx.Error(
          "a replica lacks replica, volume, size, epoch, generation, rebuilding or open");
    }
    SH_RETURN_IF_ERROR(GetOptionalString(*r, "owner", ctx, &s.owner));
    const json::array* snapshots = nullptr;
    SH_RETURN_IF_ERROR(GetOptionalArray(*r, "snapshots", ctx, &snapshots));
    if (snapshots != nullptr) {
      for (const auto& n : *snapshots) {
        if (!n.is_string()) return ctx.Error("a snapshot name is not a string");
        s.snapshots.emplace_back(n.as_string());
      }
    }
    m.replicas.push_back(std::move(s));
  }
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "truncated", ctx, &m.truncated));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, ReplicadInfoReply* out, std::string_view context) {
  const FieldContext ctx = Reply(context);
  ReplicadInfoReply m;
  SH_RETURN_IF_ERROR(GetString(o, "host_id", ctx, &m.host_id));
  if (Status s = ValidateHostId(m.host_id); !s.ok()) {
    return ctx.Error("field 'host_id': " + s.message());
  }
  // Only for messages, but it ends up in logs and D-Bus replies.
  SH_RETURN_IF_ERROR(GetOptionalString(o, "hostname", ctx, &m.hostname));
  if (m.hostname.size() > kMaxReplicadHostname) {
    return ctx.Error("field 'hostname' is longer than " + std::to_string(kMaxReplicadHostname) +
                     " characters");
  }
  for (char c : m.hostname) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return ctx.Error("field 'hostname' holds a control character");
    }
  }
  const json::array* tags = nullptr;
  SH_RETURN_IF_ERROR(GetArray(o, "tags", ctx, &tags));
  if (tags->size() > kMaxTags) {
    return ctx.Error("field 'tags' holds " + std::to_string(tags->size()) + " tags, more than " +
                     std::to_string(kMaxTags));
  }
  std::string zone;
  for (const auto& t : *tags) {
    if (!t.is_string()) return ctx.Error("field 'tags': a tag is not a string");
    std::string tag(t.as_string());
    if (Status s = ValidateTag(tag); !s.ok()) return ctx.Error("field 'tags': " + s.message());
    if (std::find(m.tags.begin(), m.tags.end(), tag) != m.tags.end()) {
      return ctx.Error("field 'tags': tag '" + tag + "' is given twice");
    }
    if (tag.rfind("zone=", 0) == 0) {
      if (!zone.empty())
        return ctx.Error("field 'tags': two zones, '" + zone + "' and '" + tag + "'");
      zone = tag;
    }
    m.tags.push_back(std::move(tag));
  }
  SH_RETURN_IF_ERROR(GetUint64(o, "total_bytes", ctx, &m.total_bytes));
  SH_RETURN_IF_ERROR(GetUint64(o, "free_bytes", ctx, &m.free_bytes));
  SH_RETURN_IF_ERROR(GetUint64(o, "provisioned_bytes", ctx, &m.provisioned_bytes));
  if (m.free_bytes > m.total_bytes) {
    return ctx.Error("field 'free_bytes' (" + std::to_string(m.free_bytes) +
                     ") is above 'total_bytes' (" + std::to_string(m.total_bytes) + ")");
  }
  SH_RETURN_IF_ERROR(GetUint64(o, "replicas", ctx, &m.replicas));
  if (m.replicas > std::numeric_limits<uint32_t>::max()) {
    return ctx.Error("field 'replicas' (" + std::to_string(m.replicas) + ") is above " +
                     std::to_string(std::numeric_limits<uint32_t>::max()));
  }
  *out = std::move(m);
  return Status::Ok();
}

namespace {

Status DecodeSnapshotLayer(const json::value& v, const FieldContext& list_ctx, SnapshotLayer* out) {
  if (!v.is_object()) return list_ctx.Error("a snapshot is not an object");
  const json::object& o = v.as_object();
  SH_RETURN_IF_ERROR(GetString(o, "name", list_ctx, &out->name));
  const FieldContext ctx{list_ctx.what + ": snapshot " + out->name, list_ctx.kind,
                         list_ctx.sys_errno};
  SH_RETURN_IF_ERROR(json_fields::GetNullableString(o, "parent", ctx, false, &out->parent));
  SH_RETURN_IF_ERROR(GetOptionalString(o, "created", ctx, &out->created));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "user_created", ctx, &out->user_created));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "size_held", ctx, &out->size_held));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "removed", ctx, &out->removed));
  SH_RETURN_IF_ERROR(GetOptionalString(o, "checksum", ctx, &out->checksum));
  std::string state;
  SH_RETURN_IF_ERROR(GetOptionalString(o, "checksum_state", ctx, &state));
  out->checksum_done = state == "done";
  return Status::Ok();
}

Status DecodeTask(const json::value& v, const FieldContext& ctx, LayerTask* out) {
  if (!v.is_object()) return ctx.Error("a task is not an object");
  const json::object& o = v.as_object();
  SH_RETURN_IF_ERROR(GetOptionalString(o, "op", ctx, &out->op));
  SH_RETURN_IF_ERROR(GetOptionalString(o, "name", ctx, &out->name));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "done_bytes", ctx, &out->done_bytes));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "total_bytes", ctx, &out->total_bytes));
  return Status::Ok();
}

}  // namespace

Status Decode(const json::object& o, LayerList* out, std::string_view context) {
  const FieldContext ctx = Reply(context);
  LayerList m;
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "size", ctx, &m.size));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "generation", ctx, &m.generation));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "rebuilding", ctx, &m.rebuilding));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "actual_size", ctx, &m.actual_size));
  const json::object* head = nullptr;
  SH_RETURN_IF_ERROR(GetOptionalObject(o, "head", ctx, &head));
  if (head != nullptr) {
    const FieldContext head_ctx{ctx.what + ": head", ctx.kind, ctx.sys_errno};
    SH_RETURN_IF_ERROR(
        json_fields::GetNullableString(*head, "parent", head_ctx, false, &m.head_parent));
    SH_RETURN_IF_ERROR(GetOptionalUint64(*head, "size_held", head_ctx, &m.head_size_held));
  }
  const json::array* snapshots = nullptr;
  SH_RETURN_IF_ERROR(GetOptionalArray(o, "snapshots", ctx, &snapshots));
  if (snapshots != nullptr) {
    for (const auto& v : *snapshots) {
      SnapshotLayer s;
      SH_RETURN_IF_ERROR(DecodeSnapshotLayer(v, ctx, &s));
      m.snapshots.push_back(std::move(s));
    }
  }
  const json::array* tasks = nullptr;
  SH_RETURN_IF_ERROR(GetOptionalArray(o, "tasks", ctx, &tasks));
  if (tasks != nullptr) {
    const FieldContext task_ctx{ctx.what + ": tasks", ctx.kind, ctx.sys_errno};
    for (const auto& v : *tasks) {
      LayerTask t;
      SH_RETURN_IF_ERROR(DecodeTask(v, task_ctx, &t));
      m.tasks.push_back(std::move(t));
    }
  }
  const json::object* verify = nullptr;
  SH_RETURN_IF_ERROR(GetOptionalObject(o, "verify", ctx, &verify));
  if (verify != nullptr) {
    const FieldContext verify_ctx{ctx.what + ": verify", ctx.kind, ctx.sys_errno};
    SH_RETURN_IF_ERROR(GetOptionalPhase(*verify, verify_ctx, &ParseVerifyPhase,
                                        "idle, running, done", &m.verify.state));
    SH_RETURN_IF_ERROR(
        json_fields::GetStringArray(*verify, "bad", verify_ctx, false, &m.verify.bad));
    SH_RETURN_IF_ERROR(GetOptionalUint64(*verify, "checked", verify_ctx, &m.verify.checked));
  }
  const json::object* rebuild = nullptr;
  SH_RETURN_IF_ERROR(GetOptionalObject(o, "rebuild", ctx, &rebuild));
  if (rebuild != nullptr) {
    const FieldContext rebuild_ctx{ctx.what + ": rebuild", ctx.kind, ctx.sys_errno};
    SH_RETURN_IF_ERROR(GetOptionalPhase(*rebuild, rebuild_ctx, &ParseRebuildPhase,
                                        "idle, running, done, failed", &m.rebuild.state));
    SH_RETURN_IF_ERROR(GetOptionalString(*rebuild, "message", rebuild_ctx, &m.rebuild.message));
    SH_RETURN_IF_ERROR(GetOptionalUint64(*rebuild, "bytes", rebuild_ctx, &m.rebuild.bytes));
  }
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, LayerExtentsReply* out, std::string_view context) {
  const FieldContext ctx = Reply(context);
  LayerExtentsReply m;
  const json::array* extents = nullptr;
  SH_RETURN_IF_ERROR(GetArray(o, "extents", ctx, &extents));
  const json::value* next = o.if_contains("next");
  if (next == nullptr) return ctx.Error("field 'next' is missing");
  if (!next->is_null()) {
    uint64_t n = 0;
    if (!json_fields::AsUint64(*next, &n)) {
      return ctx.Error("field 'next' is not an unsigned integer or null");
    }
    m.next = n;
  }
  m.extents.reserve(extents->size());
  for (const auto& e : *extents) {
    const json::array* pair = e.if_array();
    Extent x;
    if (pair == nullptr || pair->size() != 2 || !json_fields::AsUint64((*pair)[0], &x.offset) ||
        !json_fields::AsUint64((*pair)[1], &x.length)) {
      return ctx.Error("a malformed extent " + json::serialize(e));
    }
    m.extents.push_back(x);
  }
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, ChecksumReply* out, std::string_view context) {
  const FieldContext ctx = Reply(context);
  ChecksumReply m;
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "chunk", ctx, &m.chunk));
  const json::value* hashes = o.if_contains("hashes");
  if (hashes == nullptr || !hashes->is_array()) return ctx.Error("no 'hashes' array");
  m.hashes.reserve(hashes->as_array().size());
  for (const auto& v : hashes->as_array()) {
    const json::string* hex = v.if_string();
    bool ok = hex != nullptr && hex->size() == 16 &&
              std::all_of(hex->begin(), hex->end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    uint64_t x = 0;
    if (ok) {
      ok = std::from_chars(hex->data(), hex->data() + hex->size(), x, 16).ec == std::errc();
    }
    if (!ok) {
      return ctx.Error("hash " + std::to_string(m.hashes.size()) +
                       " is not 16 lowercase hex digits");
    }
    m.hashes.push_back(x);
  }
  *out = std::move(m);
  return Status::Ok();
}

}  // namespace shorthorn::msg
