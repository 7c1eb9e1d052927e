// Design notes: each reply (fused's side of the protocol, and the rebuild
// puller's) is described once, by its table of fields (Fields below,
// common/json_mapping.h), which the one encoder and the one decoder at the
// end walk; decode errors are kProtocol/EPROTO naming the peer's context
// and the key. A table lists the keys in the order replicad has always
// sent them; value rules (Check rows) run where the old decoders ran them.
// The requests are in control_messages.cc; the header says what each field
// means.
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <tuple>
#include <utility>

#include "common/control_messages.h"
#include "common/json_fields.h"
#include "common/json_mapping.h"
#include "common/names.h"

namespace shorthorn::msg {
namespace {

namespace json = boost::json;
using json_fields::FieldContext;
using json_mapping::Array, json_mapping::Bool, json_mapping::Check, json_mapping::Group,
    json_mapping::Lenient, json_mapping::Nullable, json_mapping::Object, json_mapping::Optional,
    json_mapping::ReadOnly, json_mapping::Required, json_mapping::SentIfSet, json_mapping::Slot,
    json_mapping::String, json_mapping::StringElement, json_mapping::Uint64,
    json_mapping::WriteOnly;

// REPLICAD_INFO's hostname: a DNS name is at most 253 characters.
constexpr size_t kMaxReplicadHostname = 255;

// ---- Codecs of the odd fields ---------------------------------------------

// LIST_LAYERS' verify or rebuild "state": one of the phase names.
template <typename Phase>
struct PhaseCodec {
  std::optional<Phase> (*parse)(std::string_view);
  std::string_view names;  // for the error

  json::value Write(Phase p) const { return json::value(PhaseName(p)); }
  Status Read(const json::value* v, const Slot& at, Phase* out) const {
    std::string name;
    SH_RETURN_IF_ERROR(String{}.Read(v, at, &name));
    std::optional<Phase> phase = parse(name);
    if (!phase) return at.Error("field 'state' is not one of " + std::string(names));
    *out = *phase;
    return Status::Ok();
  }
};

// A snapshot's "checksum_state": "done" or "pending" (any other string:
// pending).
struct ChecksumState {
  json::value Write(bool done) const { return json::value(done ? "done" : "pending"); }
  Status Read(const json::value* v, const Slot& at, bool* done) const {
    std::string state;
    SH_RETURN_IF_ERROR(String{}.Read(v, at, &state));
    *done = state == "done";
    return Status::Ok();
  }
};

// CHECKSUM's hashes: 16 lowercase hex digits each.
struct Hash {
  json::value Write(uint64_t x) const {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(x));
    return json::value(hex);
  }
  Status ReadElement(const json::value& v, size_t index, const Slot& at, uint64_t* out) const {
    const json::string* hex = v.if_string();
    bool ok = hex != nullptr && hex->size() == 16 &&
              std::all_of(hex->begin(), hex->end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    if (ok)
      ok = std::from_chars(hex->data(), hex->data() + hex->size(), *out, 16).ec == std::errc();
    if (!ok) return at.Error("hash " + std::to_string(index) + " is not 16 lowercase hex digits");
    return Status::Ok();
  }
};

// LAYER_EXTENTS' extents: [offset, length] pairs.
struct ExtentPair {
  json::value Write(const Extent& e) const { return json::array{e.offset, e.length}; }
  Status ReadElement(const json::value& v, size_t, const Slot& at, Extent* out) const {
    const json::array* pair = v.if_array();
    if (pair == nullptr || pair->size() != 2 || !json_fields::AsUint64((*pair)[0], &out->offset) ||
        !json_fields::AsUint64((*pair)[1], &out->length)) {
      return at.Error("a malformed extent " + json_fields::Excerpt(json::serialize(v)));
    }
    return Status::Ok();
  }
};

// Reads nothing: the value is an array (its elements are read later).
struct AnArray {
  template <typename T>
  Status Read(const json::value* v, const Slot& at, T*) const {
    return v != nullptr && v->is_array() ? Status::Ok() : at.WrongType("an array");
  }
};

// REPLICAD_INFO's tags: at most kMaxTags, each ValidateTag, distinct, at
// most one zone=.
struct Tags {
  json::value Write(const std::vector<std::string>& tags) const {
    return json_mapping::Strings{}.Write(tags);
  }
  Status Read(const json::value* v, const Slot& at, std::vector<std::string>* out) const {
    if (v == nullptr || !v->is_array()) return at.WrongType("an array");
    const json::array& tags = v->as_array();
    if (tags.size() > kMaxTags) {
      return at.Error("field 'tags' holds " + std::to_string(tags.size()) + " tags, more than " +
                      std::to_string(kMaxTags));
    }
    std::vector<std::string> m;
    std::string zone;
    for (const auto& t : tags) {
      if (!t.is_string()) return at.Error("field 'tags': a tag is not a string");
      std::string tag(t.as_string());
      if (Status s = ValidateTag(tag); !s.ok()) return at.Error("field 'tags': " + s.message());
      if (std::find(m.begin(), m.end(), tag) != m.end()) {
        return at.Error("field 'tags': tag '" + tag + "' is given twice");
      }
      if (tag.rfind("zone=", 0) == 0) {
        if (!zone.empty()) {
          return at.Error("field 'tags': two zones, '" + zone + "' and '" + tag + "'");
        }
        zone = tag;
      }
      m.push_back(std::move(tag));
    }
    *out = std::move(m);
    return Status::Ok();
  }
};

// ---- REPLICAD_INFO's value rules ------------------------------------------

Status CheckHostId(const ReplicadInfoReply& m, const FieldContext& ctx) {
  Status s = ValidateHostId(m.host_id);
  return s.ok() ? s : ctx.Error("field 'host_id': " + s.message());
}

// Only for messages, but it ends up in logs and D-Bus replies.
Status CheckHostname(const ReplicadInfoReply& m, const FieldContext& ctx) {
  if (m.hostname.size() > kMaxReplicadHostname) {
    return ctx.Error("field 'hostname' is longer than " + std::to_string(kMaxReplicadHostname) +
                     " characters");
  }
  for (char c : m.hostname) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return ctx.Error("field 'hostname' holds a control character");
    }
  }
  return Status::Ok();
}

Status CheckFreeBytes(const ReplicadInfoReply& m, const FieldContext& ctx) {
  if (m.free_bytes <= m.total_bytes) return Status::Ok();
  return ctx.Error("field 'free_bytes' (" + std::to_string(m.free_bytes) +
                   ") is above 'total_bytes' (" + std::to_string(m.total_bytes) + ")");
}

Status CheckReplicaCount(const ReplicadInfoReply& m, const FieldContext& ctx) {
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  if (m.replicas <= kMax) return Status::Ok();
  return ctx.Error("field 'replicas' (" + std::to_string(m.replicas) + ") is above " +
                   std::to_string(kMax));
}

// ---- The replies' fields --------------------------------------------------

// Every field lenient (see the header); all sent.
auto Fields(const OpenReplicaReply&) {
  using M = OpenReplicaReply;
  return std::make_tuple(Lenient("size", &M::size), Lenient("epoch", &M::epoch),
                         Lenient("generation", &M::generation),
                         Lenient("rebuilding", &M::rebuilding), Lenient("clean", &M::clean),
                         Lenient("owner", &M::owner));
}

auto Fields(const HelloReply&) { return std::make_tuple(Optional("size", &HelloReply::size)); }

// A listed replica: the fields every one must have (one error names them
// all), then the others.
auto RequiredFields(const ReplicaSummary&) {
  using M = ReplicaSummary;
  return std::make_tuple(Required("replica", &M::replica), Required("volume", &M::volume),
                         Required("size", &M::size), Required("epoch", &M::epoch),
                         Required("generation", &M::generation),
                         Required("rebuilding", &M::rebuilding), Required("open", &M::open));
}
auto OptionalFields(const ReplicaSummary&) {
  using M = ReplicaSummary;
  return std::make_tuple(
      Optional("owner", &M::owner),
      Optional("snapshots", &M::snapshots, json_mapping::Strings{{"a snapshot name"}, {}}));
}
auto Fields(const ReplicaSummary& m) {
  return std::tuple_cat(RequiredFields(m), OptionalFields(m));
}

struct Summary {
  json::value Write(const ReplicaSummary& s) const {
    return json_mapping::ToJsonObject(s, Fields(s));
  }
  Status ReadElement(const json::value& v, size_t, const Slot& at, ReplicaSummary* out) const {
    if (!v.is_object()) return at.Error("a replica is not an object");
    if (!json_mapping::ReadFields(v.as_object(), at.ctx, RequiredFields(*out), out).ok()) {
      return at.Error(
          "a replica lacks replica, volume, size, epoch, generation, rebuilding or open");
    }
    return json_mapping::ReadFields(v.as_object(), at.ctx, OptionalFields(*out), out);
  }
};

auto Fields(const ListReplicasReply&) {
  using M = ListReplicasReply;
  return std::make_tuple(
      Required("replicas", &M::replicas, Array<Summary>{{}, "no 'replicas' array"}),
      SentIfSet("truncated", &M::truncated));
}

auto Fields(const ReplicadInfoReply&) {
  using M = ReplicadInfoReply;
  return std::make_tuple(
      Required("host_id", &M::host_id), Check<M>{&CheckHostId}, Optional("hostname", &M::hostname),
      Check<M>{&CheckHostname}, Required("tags", &M::tags, Tags{}),
      Required("total_bytes", &M::total_bytes), Required("free_bytes", &M::free_bytes),
      Required("provisioned_bytes", &M::provisioned_bytes), Check<M>{&CheckFreeBytes},
      Required("replicas", &M::replicas), Check<M>{&CheckReplicaCount});
}

// A listed snapshot: its name, then the rest, read in the context
// "<context>: snapshot <name>".
auto NameField(const SnapshotLayer&) {
  return std::make_tuple(Required("name", &SnapshotLayer::name));
}
auto OtherFields(const SnapshotLayer&) {
  using M = SnapshotLayer;
  return std::make_tuple(
      Optional("parent", &M::parent, Nullable<String>{}), Optional("created", &M::created),
      Optional("user_created", &M::user_created), Optional("size_held", &M::size_held),
      Optional("removed", &M::removed), Optional("checksum", &M::checksum),
      Optional("checksum_state", &M::checksum_done, ChecksumState{}));
}

struct Layer {
  json::value Write(const SnapshotLayer& s) const {
    return json_mapping::ToJsonObject(s, std::tuple_cat(NameField(s), OtherFields(s)));
  }
  Status ReadElement(const json::value& v, size_t, const Slot& at, SnapshotLayer* out) const {
    if (!v.is_object()) return at.Error("a snapshot is not an object");
    SH_RETURN_IF_ERROR(json_mapping::ReadFields(v.as_object(), at.ctx, NameField(*out), out));
    const FieldContext ctx{at.ctx.what + ": snapshot " + json_fields::Excerpt(out->name),
                           at.ctx.kind, at.ctx.sys_errno};
    return json_mapping::ReadFields(v.as_object(), ctx, OtherFields(*out), out);
  }
};

auto Fields(const LayerTask&) {
  using M = LayerTask;
  return std::make_tuple(Optional("op", &M::op), Optional("name", &M::name),
                         Optional("done_bytes", &M::done_bytes),
                         Optional("total_bytes", &M::total_bytes));
}

// A task, read in the context "<context>: tasks".
struct Task {
  json::value Write(const LayerTask& t) const { return json_mapping::ToJsonObject(t, Fields(t)); }
  Status ReadElement(const json::value& v, size_t, const Slot& at, LayerTask* out) const {
    const FieldContext ctx = at.Nested();
    if (!v.is_object()) return ctx.Error("a task is not an object");
    return json_mapping::ReadFields(v.as_object(), ctx, Fields(*out), out);
  }
};

// Every field optional (absent: the default); all sent.
auto Fields(const LayerList&) {
  using M = LayerList;
  auto head = std::make_tuple(Optional("parent", &M::head_parent, Nullable<String>{}),
                              Optional("size_held", &M::head_size_held));
  auto verify = std::make_tuple(
      Optional("state", &VerifyState::state,
               PhaseCodec<VerifyPhase>{&ParseVerifyPhase, "idle, running, done"}),
      Optional("bad", &VerifyState::bad), Optional("checked", &VerifyState::checked));
  auto rebuild = std::make_tuple(
      Optional("state", &RebuildState::state,
               PhaseCodec<RebuildPhase>{&ParseRebuildPhase, "idle, running, done, failed"}),
      Optional("message", &RebuildState::message), Optional("bytes", &RebuildState::bytes));
  return std::make_tuple(
      Optional("size", &M::size), Optional("generation", &M::generation),
      Optional("rebuilding", &M::rebuilding), Optional("actual_size", &M::actual_size),
      Group{"head", head}, Optional("snapshots", &M::snapshots, Array<Layer>{}),
      Optional("tasks", &M::tasks, Array<Task>{}), Optional("verify", &M::verify, Object{verify}),
      Optional("rebuild", &M::rebuild, Object{rebuild}));
}

// Read as it always was: "extents" an array, then "next", then each extent.
auto Fields(const LayerExtentsReply&) {
  using M = LayerExtentsReply;
  auto extents = Required("extents", &M::extents, Array<ExtentPair>{});
  return std::make_tuple(WriteOnly{extents}, ReadOnly{Required("extents", &M::extents, AnArray{})},
                         Required("next", &M::next, Nullable<Uint64>{}), ReadOnly{extents});
}

auto Fields(const ChecksumReply&) {
  using M = ChecksumReply;
  return std::make_tuple(Optional("chunk", &M::chunk),
                         Required("hashes", &M::hashes, Array<Hash>{{}, "no 'hashes' array"}));
}

// The table of any reply.
constexpr auto kFields = [](const auto& m) { return Fields(m); };

}  // namespace

json::object detail::EncodeReply(In<Replies> m) { return json_mapping::WriteAny(m, kFields); }

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

Status detail::DecodeReply(const json::object& o, Out<Replies> out, std::string_view context) {
  return json_mapping::ReadAny(o, json_fields::ReplyContext(std::string(context)), out, kFields);
}

}  // namespace shorthorn::msg
