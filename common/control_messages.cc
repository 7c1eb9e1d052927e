// Design notes: each request is described once, by its table of fields
// (Fields below, common/json_mapping.h), which the one encoder and the one
// decoder at the end walk. A table lists the keys in the order replicad and
// fused have always sent them (peers do not depend on the order, but it
// keeps captures and fuzz seeds comparable); the decoder reads them in that
// order too, so the first bad field is the one an error names. The replies
// are described the same way in control_replies.cc.
#include "common/control_messages.h"

#include <boost/json.hpp>

#include <algorithm>
#include <concepts>
#include <tuple>
#include <utility>

#include "common/json_fields.h"
#include "common/json_mapping.h"

namespace shorthorn::msg {
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

namespace {

namespace json = boost::json;
using json_fields::FieldContext;
using json_mapping::Optional, json_mapping::ReadOnly, json_mapping::Required,
    json_mapping::SentIfSet, json_mapping::WriteOnly;

// The optional "owner" of CREATE/OPEN/DELETE_REPLICA, sent when set: when
// present it must be a valid owner, an error naming the replica ("open
// replica r1: owner ..."). It is sent right after "replica" but has always
// been read after the op's other required fields: WriteOnly{Owner{}} there,
// ReadOnly{Owner{}} where it is read.
struct Owner {
  template <typename T>
  void Write(const T& m, json::object& o) const {
    if (json_mapping::IsSet(m.owner)) o["owner"] = m.owner;
  }
  template <typename T>
  Status Read(const json::object& o, const FieldContext& ctx, T* m) const {
    const json::value* v = o.if_contains("owner");
    if (v == nullptr) return Status::Ok();
    Status s = v->is_string()
                   ? ValidateOwner(v->as_string())
                   : Status(ErrorKind::kInvalidArgument, "field 'owner' is not a string");
    if (!s.ok())
      return Status(ctx.kind,
                    ctx.what + " " + json_fields::Excerpt(m->replica) + ": " + s.message(),
                    ctx.sys_errno);
    m->owner = std::string(v->as_string());
    return Status::Ok();
  }
};

// ---- The requests' fields -------------------------------------------------

auto Fields(const CreateReplicaRequest&) {
  using M = CreateReplicaRequest;
  return std::make_tuple(Required("volume", &M::volume), Required("replica", &M::replica),
                         WriteOnly{Owner{}}, Required("size", &M::size),
                         SentIfSet("rebuilding", &M::rebuilding), ReadOnly{Owner{}});
}

auto Fields(const OpenReplicaRequest&) {
  using M = OpenReplicaRequest;
  return std::make_tuple(Required("volume", &M::volume), Required("replica", &M::replica),
                         WriteOnly{Owner{}}, Required("epoch", &M::epoch), ReadOnly{Owner{}},
                         SentIfSet("take_over", &M::take_over));
}

// HELLO and CLOSE_REPLICA: the same fields.
template <typename M>
requires std::same_as<M, HelloRequest> || std::same_as<M, CloseReplicaRequest>
auto Fields(const M&) {
  return std::make_tuple(Required("volume", &M::volume), Required("replica", &M::replica),
                         Required("epoch", &M::epoch));
}

auto Fields(const DeleteReplicaRequest&) {
  using M = DeleteReplicaRequest;
  return std::make_tuple(Required("volume", &M::volume), Required("replica", &M::replica),
                         WriteOnly{Owner{}}, Required("epoch", &M::epoch), ReadOnly{Owner{}});
}

auto Fields(const ListReplicasRequest&) {
  return std::make_tuple(Required("volume", &ListReplicasRequest::volume));
}

auto Fields(const SnapshotRequest&) {
  using M = SnapshotRequest;
  return std::make_tuple(Required("name", &M::name), SentIfSet("created", &M::created),
                         Optional("user_created", &M::user_created));
}

auto Fields(const SnapshotNameRequest&) {
  return std::make_tuple(Required("name", &SnapshotNameRequest::name));
}

auto Fields(const ExpandRequest&) {
  return std::make_tuple(Required("size", &ExpandRequest::size));
}

auto Fields(const SetGenerationRequest&) {
  return std::make_tuple(Required("generation", &SetGenerationRequest::generation));
}

auto Fields(const RebuildRequest&) {
  using M = RebuildRequest;
  return std::make_tuple(
      Required("source", &M::source), Required("source_volume", &M::source_volume),
      Required("source_replica", &M::source_replica), Required("source_epoch", &M::source_epoch),
      Required("snapshot", &M::snapshot), Optional("bandwidth", &M::bandwidth));
}

auto Fields(const LayerExtentsRequest&) {
  using M = LayerExtentsRequest;
  return std::make_tuple(Required("name", &M::name), SentIfSet("from", &M::from),
                         SentIfSet("max", &M::max));
}

auto Fields(const ChecksumRequest&) {
  using M = ChecksumRequest;
  return std::make_tuple(Required("offset", &M::offset), Required("length", &M::length),
                         Required("chunk", &M::chunk));
}

// The table of any request.
constexpr auto kFields = [](const auto& m) { return Fields(m); };

}  // namespace

json::object detail::EncodeRequest(In<Requests> m) { return json_mapping::WriteAny(m, kFields); }

Status detail::DecodeRequest(const json::object& o, Out<Requests> out, std::string_view context) {
  return json_mapping::ReadAny(o, json_fields::RequestContext(std::string(context)), out, kFields);
}

}  // namespace shorthorn::msg
