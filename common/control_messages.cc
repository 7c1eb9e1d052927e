// Design notes: one encoder and one decoder per message, next to each
// other, so that a field added on one side is seen on the other. The
// encoders build the objects with their keys in the order replicad and
// fused have always sent them (peers do not depend on the order, but it
// keeps captures and fuzz seeds comparable). The request decoders read the
// fields in the order replicad read them, so the first bad field named in
// an error is the one it named before.
#include "common/control_messages.h"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

#include "common/json_fields.h"
#include "common/names.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;
using namespace json_fields;  // NOLINT: the field readers, for this file

json::value NameOrNull(const std::optional<std::string>& name) {
  if (!name) return nullptr;
  return json::value(*name);
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  a.reserve(v.size());
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// The optional "owner" of CREATE/OPEN/DELETE_REPLICA: absent leaves *out
// empty; present, it must be a valid owner. Errors name the replica:
// "open replica r1: owner ...".
Status DecodeOwner(const json::object& o, std::string_view context, const std::string& replica,
                   std::string* out) {
  const json::value* v = o.if_contains("owner");
  if (v == nullptr) return Status::Ok();
  Status s = v->is_string() ? ValidateOwner(v->as_string())
                            : Status(ErrorKind::kInvalidArgument, "field 'owner' is not a string");
  if (!s.ok()) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(context) + " " + replica + ": " + s.message(), EINVAL);
  }
  *out = std::string(v->as_string());
  return Status::Ok();
}

// volume, replica and (when asked) epoch: the fields the replica ops share.
Status DecodeWho(const json::object& o, const FieldContext& ctx, std::string* volume,
                 std::string* replica, uint64_t* epoch) {
  SH_RETURN_IF_ERROR(GetString(o, "volume", ctx, volume));
  SH_RETURN_IF_ERROR(GetString(o, "replica", ctx, replica));
  if (epoch != nullptr) SH_RETURN_IF_ERROR(GetUint64(o, "epoch", ctx, epoch));
  return Status::Ok();
}

FieldContext Request(std::string_view context) {
  return json_fields::RequestContext(std::string(context));
}

}  // namespace

Status ValidateOwner(std::string_view owner) {
  auto bad = [](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, reason, EINVAL);
  };
  if (owner.empty()) return bad("owner is empty");
  // Not quoted when too long: the value may be anything a peer sent.
  if (owner.size() > kMaxOwnerLength) {
    return bad("owner is " + std::to_string(owner.size()) + " characters, more than " +
               std::to_string(kMaxOwnerLength));
  }
  bool ok = std::all_of(owner.begin(), owner.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-';
  });
  if (!ok) return bad("owner '" + std::string(owner) + "': only [0-9a-z-] are allowed");
  return Status::Ok();
}

namespace {

// The wire names of the phases, indexed by the enums' values.
constexpr std::string_view kVerifyPhaseNames[] = {"idle", "running", "done"};
constexpr std::string_view kRebuildPhaseNames[] = {"idle", "running", "done", "failed"};

template <typename Phase, size_t N>
std::optional<Phase> ParsePhase(std::string_view name, const std::string_view (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Phase>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view PhaseName(VerifyPhase phase) {
  return kVerifyPhaseNames[static_cast<size_t>(phase)];
}

std::string_view PhaseName(RebuildPhase phase) {
  return kRebuildPhaseNames[static_cast<size_t>(phase)];
}

std::optional<VerifyPhase> ParseVerifyPhase(std::string_view name) {
  return ParsePhase<VerifyPhase>(name, kVerifyPhaseNames);
}

std::optional<RebuildPhase> ParseRebuildPhase(std::string_view name) {
  return ParsePhase<RebuildPhase>(name, kRebuildPhaseNames);
}

const SnapshotLayer* LayerList::Find(std::string_view name) const {
  for (const auto& s : snapshots) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// ---- Encoding -------------------------------------------------------------

void tag_invoke(const json::value_from_tag&, json::value& jv, const CreateReplicaRequest& m) {
  json::object o{{"volume", m.volume}, {"replica", m.replica}};
  if (!m.owner.empty()) o["owner"] = m.owner;
  o["size"] = m.size;
  if (m.rebuilding) o["rebuilding"] = true;
  jv = std::move(o);
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const OpenReplicaRequest& m) {
  json::object o{{"volume", m.volume}, {"replica", m.replica}};
  if (!m.owner.empty()) o["owner"] = m.owner;
  o["epoch"] = m.epoch;
  if (m.take_over) o["take_over"] = true;
  jv = std::move(o);
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const OpenReplicaReply& m) {
  jv = json::object{{"size", m.size},
                    {"epoch", m.epoch},
                    {"generation", m.generation},
                    {"rebuilding", m.rebuilding},
                    {"clean", m.clean},
                    {"owner", m.owner}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const HelloRequest& m) {
  jv = json::object{{"volume", m.volume}, {"replica", m.replica}, {"epoch", m.epoch}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const HelloReply& m) {
  jv = json::object{{"size", m.size}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const CloseReplicaRequest& m) {
  jv = json::object{{"volume", m.volume}, {"replica", m.replica}, {"epoch", m.epoch}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const DeleteReplicaRequest& m) {
  json::object o{{"volume", m.volume}, {"replica", m.replica}};
  if (!m.owner.empty()) o["owner"] = m.owner;
  o["epoch"] = m.epoch;
  jv = std::move(o);
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ListReplicasRequest& m) {
  jv = json::object{{"volume", m.volume}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ReplicaSummary& m) {
  jv = json::object{
      {"replica", m.replica}, {"volume", m.volume},         {"size", m.size},
      {"epoch", m.epoch},     {"generation", m.generation}, {"rebuilding", m.rebuilding},
      {"open", m.open},       {"owner", m.owner},           {"snapshots", Strings(m.snapshots)}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ListReplicasReply& m) {
  json::array replicas;
  for (const auto& r : m.replicas) replicas.push_back(json::value_from(r));
  json::object o{{"replicas", std::move(replicas)}};
  if (m.truncated) o["truncated"] = true;
  jv = std::move(o);
}

std::string EncodeListReplicasReply(const std::vector<ReplicaSummary>& replicas, size_t max_count,
                                    size_t max_bytes) {
  constexpr std::string_view kHead = R"({"replicas":[)", kTail = "]}",
                             kTruncatedTail = R"(],"truncated":true})";
  std::string out(kHead);
  bool truncated = false;
  for (size_t i = 0; i < replicas.size(); ++i) {
    std::string entry = json::serialize(json::value_from(replicas[i]));
    if (i == max_count || out.size() + 1 + entry.size() + kTruncatedTail.size() > max_bytes) {
      truncated = true;
      break;
    }
    if (i > 0) out += ',';
    out += entry;
  }
  out += truncated ? kTruncatedTail : kTail;
  return out;
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ReplicadInfoReply& m) {
  jv = json::object{{"host_id", m.host_id},       {"hostname", m.hostname},
                    {"tags", Strings(m.tags)},    {"total_bytes", m.total_bytes},
                    {"free_bytes", m.free_bytes}, {"provisioned_bytes", m.provisioned_bytes},
                    {"replicas", m.replicas}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const SnapshotRequest& m) {
  json::object o{{"name", m.name}};
  if (m.created) o["created"] = *m.created;
  o["user_created"] = m.user_created;
  jv = std::move(o);
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const SnapshotNameRequest& m) {
  jv = json::object{{"name", m.name}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ExpandRequest& m) {
  jv = json::object{{"size", m.size}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const SetGenerationRequest& m) {
  jv = json::object{{"generation", m.generation}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const LayerList& l) {
  json::array snapshots;
  for (const auto& s : l.snapshots) {
    snapshots.push_back(json::object{{"name", s.name},
                                     {"parent", NameOrNull(s.parent)},
                                     {"created", s.created},
                                     {"user_created", s.user_created},
                                     {"size_held", s.size_held},
                                     {"removed", s.removed},
                                     {"checksum", s.checksum},
                                     {"checksum_state", s.checksum_done ? "done" : "pending"}});
  }
  json::array tasks;
  for (const auto& t : l.tasks) {
    tasks.push_back(json::object{{"op", t.op},
                                 {"name", t.name},
                                 {"done_bytes", t.done_bytes},
                                 {"total_bytes", t.total_bytes}});
  }
  jv = json::object{{"size", l.size},
                    {"generation", l.generation},
                    {"rebuilding", l.rebuilding},
                    {"actual_size", l.actual_size},
                    {"head", json::object{{"parent", NameOrNull(l.head_parent)},
                                          {"size_held", l.head_size_held}}},
                    {"snapshots", std::move(snapshots)},
                    {"tasks", std::move(tasks)},
                    {"verify", json::object{{"state", PhaseName(l.verify.state)},
                                            {"bad", Strings(l.verify.bad)},
                                            {"checked", l.verify.checked}}},
                    {"rebuild", json::object{{"state", PhaseName(l.rebuild.state)},
                                             {"message", l.rebuild.message},
                                             {"bytes", l.rebuild.bytes}}}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const RebuildRequest& m) {
  jv = json::object{{"source", m.source},
                    {"source_volume", m.source_volume},
                    {"source_replica", m.source_replica},
                    {"source_epoch", m.source_epoch},
                    {"snapshot", m.snapshot},
                    {"bandwidth", m.bandwidth}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const LayerExtentsRequest& m) {
  json::object o{{"name", m.name}};
  if (m.from) o["from"] = *m.from;
  if (m.max) o["max"] = *m.max;
  jv = std::move(o);
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const LayerExtentsReply& m) {
  json::array extents;
  extents.reserve(m.extents.size());
  for (const auto& e : m.extents) extents.push_back(json::array{e.offset, e.length});
  json::value next = nullptr;
  if (m.next) next = *m.next;
  jv = json::object{{"extents", std::move(extents)}, {"next", std::move(next)}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ChecksumRequest& m) {
  jv = json::object{{"offset", m.offset}, {"length", m.length}, {"chunk", m.chunk}};
}

void tag_invoke(const json::value_from_tag&, json::value& jv, const ChecksumReply& m) {
  json::array hashes;
  hashes.reserve(m.hashes.size());
  for (uint64_t x : m.hashes) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(x));
    hashes.emplace_back(hex);
  }
  jv = json::object{{"chunk", m.chunk}, {"hashes", std::move(hashes)}};
}

// ---- Request decoders -----------------------------------------------------

Status Decode(const json::object& o, CreateReplicaRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  CreateReplicaRequest m;
  SH_RETURN_IF_ERROR(DecodeWho(o, ctx, &m.volume, &m.replica, nullptr));
  SH_RETURN_IF_ERROR(GetUint64(o, "size", ctx, &m.size));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "rebuilding", ctx, &m.rebuilding));
  SH_RETURN_IF_ERROR(DecodeOwner(o, context, m.replica, &m.owner));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, OpenReplicaRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  OpenReplicaRequest m;
  SH_RETURN_IF_ERROR(DecodeWho(o, ctx, &m.volume, &m.replica, &m.epoch));
  SH_RETURN_IF_ERROR(DecodeOwner(o, context, m.replica, &m.owner));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "take_over", ctx, &m.take_over));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, HelloRequest* out, std::string_view context) {
  HelloRequest m;
  SH_RETURN_IF_ERROR(DecodeWho(o, Request(context), &m.volume, &m.replica, &m.epoch));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, CloseReplicaRequest* out, std::string_view context) {
  CloseReplicaRequest m;
  SH_RETURN_IF_ERROR(DecodeWho(o, Request(context), &m.volume, &m.replica, &m.epoch));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, DeleteReplicaRequest* out, std::string_view context) {
  DeleteReplicaRequest m;
  SH_RETURN_IF_ERROR(DecodeWho(o, Request(context), &m.volume, &m.replica, &m.epoch));
  SH_RETURN_IF_ERROR(DecodeOwner(o, context, m.replica, &m.owner));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, ListReplicasRequest* out, std::string_view context) {
  return GetString(o, "volume", Request(context), &out->volume);
}

Status Decode(const json::object& o, SnapshotRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  SnapshotRequest m;
  SH_RETURN_IF_ERROR(GetString(o, "name", ctx, &m.name));
  SH_RETURN_IF_ERROR(GetOptionalString(o, "created", ctx, &m.created));
  SH_RETURN_IF_ERROR(GetOptionalBool(o, "user_created", ctx, &m.user_created));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, SnapshotNameRequest* out, std::string_view context) {
  return GetString(o, "name", Request(context), &out->name);
}

Status Decode(const json::object& o, ExpandRequest* out, std::string_view context) {
  return GetUint64(o, "size", Request(context), &out->size);
}

Status Decode(const json::object& o, SetGenerationRequest* out, std::string_view context) {
  return GetUint64(o, "generation", Request(context), &out->generation);
}

Status Decode(const json::object& o, RebuildRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  RebuildRequest m;
  SH_RETURN_IF_ERROR(GetString(o, "source", ctx, &m.source));
  SH_RETURN_IF_ERROR(GetString(o, "source_volume", ctx, &m.source_volume));
  SH_RETURN_IF_ERROR(GetString(o, "source_replica", ctx, &m.source_replica));
  SH_RETURN_IF_ERROR(GetUint64(o, "source_epoch", ctx, &m.source_epoch));
  SH_RETURN_IF_ERROR(GetString(o, "snapshot", ctx, &m.snapshot));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "bandwidth", ctx, &m.bandwidth));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, LayerExtentsRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  LayerExtentsRequest m;
  SH_RETURN_IF_ERROR(GetString(o, "name", ctx, &m.name));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "from", ctx, &m.from));
  SH_RETURN_IF_ERROR(GetOptionalUint64(o, "max", ctx, &m.max));
  *out = std::move(m);
  return Status::Ok();
}

Status Decode(const json::object& o, ChecksumRequest* out, std::string_view context) {
  const FieldContext ctx = Request(context);
  ChecksumRequest m;
  SH_RETURN_IF_ERROR(GetUint64(o, "offset", ctx, &m.offset));
  SH_RETURN_IF_ERROR(GetUint64(o, "length", ctx, &m.length));
  SH_RETURN_IF_ERROR(GetUint64(o, "chunk", ctx, &m.chunk));
  *out = m;
  return Status::Ok();
}

}  // namespace shorthorn::msg
