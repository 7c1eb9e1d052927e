// The JSON control messages of the replica protocol (doc/protocol.md), one
// typed struct per request and per reply, with their JSON mapping in this
// one place, shared by replicad (which decodes requests and encodes
// replies) and fused (the reverse). The frame around them is common/wire.h.
//
// Encoding: `boost::json::value_from(m)` (tag_invoke below) gives the JSON
// object sent on the wire; the keys, types and which optional keys are sent
// are those of doc/protocol.md and of every Shorthorn release so far.
// Decoding: `Decode(object, &m, context)` is strict and never throws: a
// required field that is missing, a field of the wrong type or a value out
// of range is an error Status naming the context and the key (through
// common/json_fields.h). Request decoders give kInvalidArgument/EINVAL,
// which replicad answers with; their default context is what replicad's
// messages start with ("open replica: field 'epoch' is missing or not an
// unsigned integer"). Reply decoders give kProtocol/EPROTO; callers pass a
// context naming the peer. Unknown keys are ignored in both directions, so
// that newer peers may add fields.
//
// What the decoders check is only the message's shape, plus the few value
// rules every reader needs (an owner's characters, REPLICAD_INFO's host id
// and tags, CHECKSUM's hex hashes). Names, sizes and epochs are checked by
// the replica store, which owns those rules.
//
// Pure functions and plain values: callable from any thread.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/mp11.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace shorthorn::msg {

// An owner is the id of a fused: 1..kMaxOwnerLength characters of
// [0-9a-z-]. "" is refused: absence means "no owner" on the wire.
inline constexpr size_t kMaxOwnerLength = 64;
Status ValidateOwner(std::string_view owner);

// ---- Replica lifecycle (ops 1, 16-21; no HELLO needed) --------------------

// CREATE_REPLICA (16). Reply: {}.
struct CreateReplicaRequest {
  static constexpr std::string_view kDefaultContext = "create replica";
  std::string volume;   // required
  std::string replica;  // required
  uint64_t size = 0;    // required: bytes
  // Optional, default false; sent only when true: a rebuild target.
  bool rebuilding = false;
  // Optional: the creating fused's id; "" = not sent (not checked).
  std::string owner;
};

// OPEN_REPLICA (17).
struct OpenReplicaRequest {
  static constexpr std::string_view kDefaultContext = "open replica";
  std::string volume;   // required
  std::string replica;  // required
  uint64_t epoch = 0;   // required
  std::string owner;    // optional ("" = not sent)
  // Optional, default false; sent only when true: take the replica over
  // from the fused that owns it (an import).
  bool take_over = false;
};
// Every field is optional on decode (older replicads sent fewer) and,
// unlike every other message, a field of another type is taken as absent:
// fused has always read it so (an odd "clean" only makes the engine compare
// the replicas, the safe side). Absent ones keep these defaults. The
// encoder sends all of them.
struct OpenReplicaReply {
  uint64_t size = 0;
  uint64_t epoch = 0;
  uint64_t generation = 0;
  bool rebuilding = false;
  bool clean = false;  // the last session ended with CLOSE_REPLICA
  std::string owner;   // after the open; "" = none
};

// HELLO (1): binds the connection. Reply: HelloReply.
struct HelloRequest {
  static constexpr std::string_view kDefaultContext = "hello replica";
  std::string volume;   // required
  std::string replica;  // required
  uint64_t epoch = 0;   // required
};
struct HelloReply {
  uint64_t size = 0;  // optional on decode
};

// CLOSE_REPLICA (18). Reply: {}.
struct CloseReplicaRequest {
  static constexpr std::string_view kDefaultContext = "close replica";
  std::string volume;   // required
  std::string replica;  // required
  uint64_t epoch = 0;   // required
};

// DELETE_REPLICA (19). Reply: {}.
struct DeleteReplicaRequest {
  static constexpr std::string_view kDefaultContext = "delete replica";
  std::string volume;   // required
  std::string replica;  // required
  uint64_t epoch = 0;   // required
  std::string owner;    // optional ("" = not sent)
};

// LIST_REPLICAS (20).
struct ListReplicasRequest {
  static constexpr std::string_view kDefaultContext = "list replicas";
  std::string volume;  // required
};
// One replica of the reply (from its replica.json).
struct ReplicaSummary {
  std::string replica;                 // required
  std::string volume;                  // required
  uint64_t size = 0;                   // required
  uint64_t epoch = 0;                  // required
  uint64_t generation = 0;             // required
  bool rebuilding = false;             // required
  bool open = false;                   // required: its last session did not end with a close
  std::string owner;                   // optional on decode ("" = none; always sent)
  std::vector<std::string> snapshots;  // optional on decode; not removed, oldest first
};
// Decode: "<context>: no 'replicas' array", "<context>: a replica lacks
// replica, volume, size, epoch, generation, rebuilding or open".
struct ListReplicasReply {
  std::vector<ReplicaSummary> replicas;  // required
  bool truncated = false;                // optional; sent only when true (some were left out)
};
// The reply's text, the first replicas that fit: at most `max_count`, and
// no more than fit `max_bytes` with the closing bytes; "truncated": true
// when some were left out.
std::string EncodeListReplicasReply(const std::vector<ReplicaSummary>& replicas, size_t max_count,
                                    size_t max_bytes);

// REPLICAD_INFO (21). Request: {} (any key is ignored).
struct ReplicadInfoReply {
  std::string host_id;             // required, ValidateHostId
  std::string hostname;            // optional on decode: <= 255 characters, no control character
  std::vector<std::string> tags;   // required: <= kMaxTags, ValidateTag, distinct, one zone=
  uint64_t total_bytes = 0;        // required
  uint64_t free_bytes = 0;         // required, <= total_bytes
  uint64_t provisioned_bytes = 0;  // required
  uint64_t replicas = 0;           // required, <= UINT32_MAX
};

// ---- Layer ops (32-43; HELLO-bound, epoch in the header) ------------------

// SNAPSHOT (32). Reply: {}.
struct SnapshotRequest {
  static constexpr std::string_view kDefaultContext = "snapshot replica";
  std::string name;  // required
  // Optional (RFC 3339 UTC); absent or "": the replica's clock. Sent when set.
  std::optional<std::string> created;
  bool user_created = true;  // optional, default true; always sent
};

// DELETE_SNAPSHOT (33), REVERT (34); READ_SNAPSHOT (41) and
// READ_SNAPSHOT_VIEW (42), whose reply is data. Reply: {}.
struct SnapshotNameRequest {
  std::string name;  // required
};
using DeleteSnapshotRequest = SnapshotNameRequest;
using RevertRequest = SnapshotNameRequest;
using ReadSnapshotRequest = SnapshotNameRequest;

// EXPAND (35). Reply: {}.
struct ExpandRequest {
  static constexpr std::string_view kDefaultContext = "expand replica";
  uint64_t size = 0;  // required: the new size in bytes
};

// SET_GENERATION (38). Reply: {}.
struct SetGenerationRequest {
  static constexpr std::string_view kDefaultContext = "set generation replica";
  uint64_t generation = 0;  // required
};

// LIST_LAYERS (36) and VERIFY (37) take {} (any key is ignored).
// LIST_LAYERS reply. Every field is optional on decode (absent: the
// default); the encoder sends all of them.
struct SnapshotLayer {
  std::string name;                   // required in a listed snapshot
  std::optional<std::string> parent;  // null: the root
  std::string created;
  bool user_created = false;
  uint64_t size_held = 0;
  bool removed = false;        // deleted (merge pending) or kept for its children
  std::string checksum;        // "" while pending
  bool checksum_done = false;  // "checksum_state": "done" | "pending"
};
struct LayerTask {
  std::string op;  // "delete_snapshot" | "verify" | "rebuild"
  std::string name;
  uint64_t done_bytes = 0;
  uint64_t total_bytes = 0;
};
// The phases of VERIFY and of REBUILD. Inside Shorthorn they are these
// enums; on the wire they are the strings PhaseName gives ("state": "idle",
// ...), and a decoder refuses any other string (an error naming the field).
enum class VerifyPhase : uint8_t { kIdle, kRunning, kDone };
enum class RebuildPhase : uint8_t { kIdle, kRunning, kDone, kFailed };
// "idle" | "running" | "done".
std::string_view PhaseName(VerifyPhase phase);
// "idle" | "running" | "done" | "failed".
std::string_view PhaseName(RebuildPhase phase);
// The phase named `name`; nullopt for any other string.
std::optional<VerifyPhase> ParseVerifyPhase(std::string_view name);
std::optional<RebuildPhase> ParseRebuildPhase(std::string_view name);

struct VerifyState {
  VerifyPhase state = VerifyPhase::kIdle;
  std::vector<std::string> bad;
  uint64_t checked = 0;
};
struct RebuildState {
  RebuildPhase state = RebuildPhase::kIdle;
  std::string message;
  uint64_t bytes = 0;
};
struct LayerList {
  uint64_t size = 0;
  uint64_t generation = 0;
  bool rebuilding = false;
  uint64_t actual_size = 0;
  std::optional<std::string> head_parent;  // "head": {"parent", "size_held"}
  uint64_t head_size_held = 0;
  std::vector<SnapshotLayer> snapshots;  // creation order
  std::vector<LayerTask> tasks;
  VerifyState verify;
  RebuildState rebuild;

  // The listed snapshot `name` (removed ones included), or nullptr.
  const SnapshotLayer* Find(std::string_view name) const;
};

// REBUILD (39), sent to the target. Reply: {}.
struct RebuildRequest {
  static constexpr std::string_view kDefaultContext = "rebuild replica";
  std::string source;          // required: host:port of the source replicad
  std::string source_volume;   // required
  std::string source_replica;  // required
  uint64_t source_epoch = 0;   // required
  std::string snapshot;        // required: the layer the head goes on
  uint64_t bandwidth = 0;      // optional: bytes per second, 0 = unlimited; always sent
};

// LAYER_EXTENTS (40), asked of a source.
struct LayerExtentsRequest {
  static constexpr std::string_view kDefaultContext = "layer extents replica";
  std::string name;              // required
  std::optional<uint64_t> from;  // optional (replicad: 0); sent when set
  std::optional<uint64_t> max;   // optional (replicad: and cap 4096); sent when set
};
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};
struct LayerExtentsReply {
  // Required: [[offset, length], ...], each a pair of unsigned integers.
  std::vector<Extent> extents;
  std::optional<uint64_t> next;  // required key: the next "from", or null after the last page
};

// CHECKSUM (43).
struct ChecksumRequest {
  static constexpr std::string_view kDefaultContext = "checksum replica";
  uint64_t offset = 0;  // required
  uint64_t length = 0;  // required
  uint64_t chunk = 0;   // required
};
struct ChecksumReply {
  uint64_t chunk = 0;  // optional on decode
  // Required: XXH3-64 of each chunk, each 16 lowercase hex digits on the
  // wire ("<context>: hash N is not 16 lowercase hex digits").
  std::vector<uint64_t> hashes;
};

// ---- Encoding and decoding ------------------------------------------------
// Each message's fields are described once, in a table (json_mapping.h) in
// control_messages.cc (requests) or control_replies.cc (replies); one
// encoder and one decoder walk the tables.

namespace detail {
using Requests =
    boost::mp11::mp_list<CreateReplicaRequest, OpenReplicaRequest, HelloRequest,
                         CloseReplicaRequest, DeleteReplicaRequest, ListReplicasRequest,
                         SnapshotRequest, SnapshotNameRequest, ExpandRequest, SetGenerationRequest,
                         RebuildRequest, LayerExtentsRequest, ChecksumRequest>;
using Replies =
    boost::mp11::mp_list<OpenReplicaReply, HelloReply, ReplicaSummary, ListReplicasReply,
                         ReplicadInfoReply, LayerList, LayerExtentsReply, ChecksumReply>;
template <typename T>
inline constexpr bool kIsRequest = boost::mp11::mp_contains<Requests, T>::value;
template <typename T>
inline constexpr bool kIsReply = boost::mp11::mp_contains<Replies, T>::value;

// A pointer to any message of `List`.
template <typename T>
using ConstPtr = const T*;
template <typename T>
using Ptr = T*;
template <typename List>
using In = boost::mp11::mp_rename<boost::mp11::mp_transform<ConstPtr, List>, std::variant>;
template <typename List>
using Out = boost::mp11::mp_rename<boost::mp11::mp_transform<Ptr, List>, std::variant>;

boost::json::object EncodeRequest(In<Requests> m);
boost::json::object EncodeReply(In<Replies> m);
Status DecodeRequest(const boost::json::object& o, Out<Requests> out, std::string_view context);
Status DecodeReply(const boost::json::object& o, Out<Replies> out, std::string_view context);
}  // namespace detail

// The structs above that are whole JSON objects on the wire.
template <typename T>
concept Message = detail::kIsRequest<T> || detail::kIsReply<T>;

// `boost::json::value_from(m)`: the JSON object sent on the wire.
template <Message T>
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const T& m) {
  if constexpr (detail::kIsRequest<T>) {
    jv = detail::EncodeRequest(&m);
  } else {
    jv = detail::EncodeReply(&m);
  }
}

// The message as the JSON object sent on the wire.
template <typename T>
boost::json::object ToObject(const T& m) {
  return std::move(boost::json::value_from(m).as_object());
}

// Decodes `o` into *out (unchanged on error). Requests: `context` starts
// each message; a request's kDefaultContext (replicad's) is used when it is
// not given. Replies: `context` names the peer and the op ("replicad at X:
// bad REPLICAD_INFO reply").
template <Message T>
Status Decode(const boost::json::object& o, T* out, std::string_view context) {
  if constexpr (detail::kIsRequest<T>) {
    return detail::DecodeRequest(o, out, context);
  } else {
    return detail::DecodeReply(o, out, context);
  }
}
template <Message T>
requires requires { T::kDefaultContext; }
Status Decode(const boost::json::object& o, T* out) { return Decode(o, out, T::kDefaultContext); }

// Decodes into a new T: Decode<msg::LayerList>(o, "...").
template <typename T, typename... Context>
Result<T> Decode(const boost::json::object& o, Context... context) {
  T out;
  SH_RETURN_IF_ERROR(Decode(o, &out, context...));
  return out;
}

}  // namespace shorthorn::msg
