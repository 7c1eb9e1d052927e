// Design notes: control ops run synchronously on the connection's reader
// thread (they are rare and fsync-bound), which also gives HELLO its
// in-order effect. Data ops are handed to the Replica and answered from its
// completion callback, so a connection has many in flight and replies leave
// in completion order. Buffers live in shared_ptrs captured by the callback
// (std::function needs copyable captures).
//
// A control payload that parses as JSON but lacks a field or has the wrong
// type is a bad request (EINVAL reply), not a broken stream: the connection
// stays open.
//
// LIST_REPLICAS answers from the replica.json files on disk (the store's
// lock keeps them from changing meanwhile), so replicas that are not open
// are listed too; its reply is capped in count and in bytes. REPLICAD_INFO
// walks the same files (every volume) for its count and provisioned bytes.
#include "replicad/request_handler.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>

#include "common/clock.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

std::vector<uint8_t> ToBytes(std::string_view s) { return {s.begin(), s.end()}; }

Status BadRequest(std::string_view op, const std::string& reason) {
  return Status(ErrorKind::kInvalidArgument, std::string(op) + " replica: " + reason, EINVAL);
}

Status GetString(std::string_view op, const json::object& o, std::string_view key,
                 std::string* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    return BadRequest(op, "field '" + std::string(key) + "' is missing or not a string");
  }
  *out = std::string(v->as_string());
  return Status::Ok();
}

Status GetUint(std::string_view op, const json::object& o, std::string_view key, uint64_t* out) {
  const json::value* v = o.if_contains(key);
  if (v != nullptr && v->is_uint64()) {
    *out = v->as_uint64();
    return Status::Ok();
  }
  if (v != nullptr && v->is_int64() && v->as_int64() >= 0) {
    *out = static_cast<uint64_t>(v->as_int64());
    return Status::Ok();
  }
  return BadRequest(op, "field '" + std::string(key) + "' is missing or not an unsigned integer");
}

Status GetOptionalBool(std::string_view op, const json::object& o, std::string_view key,
                       bool* out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_bool()) return BadRequest(op, "field '" + std::string(key) + "' is not a boolean");
  *out = v->as_bool();
  return Status::Ok();
}

// The optional "owner" of CREATE/OPEN/DELETE_REPLICA: absent leaves *out
// empty (not checked); present, it must be a valid owner. Errors name the
// replica: "open replica r1: owner ...".
Status GetOptionalOwner(std::string_view op, const std::string& replica, const json::object& o,
                        std::string* out) {
  const json::value* v = o.if_contains("owner");
  if (v == nullptr) return Status::Ok();
  Status s = v->is_string() ? ValidateOwner(v->as_string())
                            : Status(ErrorKind::kInvalidArgument, "field 'owner' is not a string");
  if (!s.ok()) {
    return Status(ErrorKind::kInvalidArgument,
                  std::string(op) + " replica " + replica + ": " + s.message(), EINVAL);
  }
  *out = std::string(v->as_string());
  return Status::Ok();
}

// LIST_REPLICAS lists at most this many replicas (the first by name).
constexpr size_t kMaxListedReplicas = 64;

json::object ReplicaSummaryJson(const ReplicaMeta& m) {
  json::array snapshots;
  for (const auto& l : m.layers) {  // id order: creation order
    if (l.is_snapshot() && !l.removed) snapshots.emplace_back(l.name);
  }
  return json::object{
      {"replica", m.replica}, {"volume", m.volume},         {"size", m.size},
      {"epoch", m.epoch},     {"generation", m.generation}, {"rebuilding", m.rebuilding},
      {"open", m.open},       {"owner", m.owner},           {"snapshots", std::move(snapshots)}};
}

// {"replicas":[...]} with "truncated": true when some were left out, by
// count or because the next one would not fit a control payload (64
// replicas of 250 long snapshot names each could).
std::string ReplicaListJson(const std::vector<ReplicaMeta>& metas) {
  constexpr std::string_view kHead = R"({"replicas":[)", kTail = "]}",
                             kTruncatedTail = R"(],"truncated":true})";
  std::string out(kHead);
  bool truncated = false;
  for (size_t i = 0; i < metas.size(); ++i) {
    std::string entry = json::serialize(ReplicaSummaryJson(metas[i]));
    if (i == kMaxListedReplicas ||
        out.size() + 1 + entry.size() + kTruncatedTail.size() > wire::kMaxControlPayload) {
      truncated = true;
      break;
    }
    if (i > 0) out += ',';
    out += entry;
  }
  out += truncated ? kTruncatedTail : kTail;
  return out;
}

json::value NameOrNull(const std::optional<std::string>& name) {
  if (!name) return nullptr;
  return json::value(*name);
}

json::object LayerListJson(const LayerList& l) {
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
  json::array bad;
  for (const auto& b : l.verify.bad) bad.push_back(json::value(b));
  return json::object{{"size", l.size},
                      {"generation", l.generation},
                      {"rebuilding", l.rebuilding},
                      {"actual_size", l.actual_size},
                      {"head", json::object{{"parent", NameOrNull(l.head_parent)},
                                            {"size_held", l.head_size_held}}},
                      {"snapshots", std::move(snapshots)},
                      {"tasks", std::move(tasks)},
                      {"verify", json::object{{"state", l.verify.state},
                                              {"bad", std::move(bad)},
                                              {"checked", l.verify.checked}}},
                      {"rebuild", json::object{{"state", l.rebuild.state},
                                               {"message", l.rebuild.message},
                                               {"bytes", l.rebuild.bytes}}}};
}

void ReplyJson(const ReplyFn& reply, const wire::Header& h, const json::object& o) {
  reply(h, 0, ToBytes(json::serialize(o)));
}

void ReplyStatus(const ReplyFn& reply, const wire::Header& h, const Status& s) {
  if (s.ok()) {
    reply(h, 0, {});
  } else {
    reply(h, s.sys_errno(), ErrorPayload(s));
  }
}

// Control ops answer success with a JSON object, "{}" when there is nothing to say.
void ReplyControl(const ReplyFn& reply, const wire::Header& h, const Status& s) {
  if (s.ok()) {
    reply(h, 0, ToBytes("{}"));
  } else {
    ReplyStatus(reply, h, s);
  }
}

}  // namespace

std::vector<uint8_t> ErrorPayload(const Status& status) {
  std::string_view m = status.message();
  if (m.size() > wire::kMaxControlPayload) m = m.substr(0, wire::kMaxControlPayload);
  return ToBytes(m);
}

Status RequestHandler::Handle(ConnectionState* state, Frame frame, ReplyFn reply) {
  if (frame.header.op == wire::Op::kAuthChallenge || frame.header.op == wire::Op::kAuthProof) {
    return Status(ErrorKind::kProtocol,
                  std::string(wire::OpName(static_cast<uint16_t>(frame.header.op))) +
                      " on a connection that has authenticated already",
                  EPROTO);
  }
  if (frame.header.is_reply()) {
    return Status(ErrorKind::kProtocol,
                  std::string(wire::OpName(static_cast<uint16_t>(frame.header.op))) +
                      " request carries the reply flag",
                  EPROTO);
  }
  if (wire::IsControlOp(frame.header.op)) return HandleControl(state, frame, reply);
  if (wire::IsSnapshotRead(frame.header.op)) return HandleReadSnapshot(state, frame, reply);
  HandleData(state, std::move(frame), std::move(reply));
  return Status::Ok();
}

Status RequestHandler::HandleControl(ConnectionState* state, const Frame& frame,
                                     const ReplyFn& reply) {
  const wire::Header& h = frame.header;
  std::string_view op_name = wire::OpName(static_cast<uint16_t>(h.op));
  json::error_code ec;
  std::string_view text(reinterpret_cast<const char*>(frame.payload.data()), frame.payload.size());
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return Status(ErrorKind::kProtocol,
                  std::string(op_name) + " payload is not a JSON object" +
                      (ec ? ": " + ec.message() : std::string()),
                  EPROTO);
  }
  const json::object& o = v.as_object();
  std::string volume, replica;
  uint64_t size = 0, epoch = 0;
  // Reads the fields an op needs; replies EINVAL (and returns false) when one is bad.
  auto fields = [&](std::string_view op, bool with_epoch, bool with_size) {
    Status s = GetString(op, o, "volume", &volume);
    if (s.ok()) s = GetString(op, o, "replica", &replica);
    if (s.ok() && with_epoch) s = GetUint(op, o, "epoch", &epoch);
    if (s.ok() && with_size) s = GetUint(op, o, "size", &size);
    if (!s.ok()) ReplyControl(reply, h, s);
    return s.ok();
  };

  switch (h.op) {
    case wire::Op::kCreateReplica:
      if (fields("create", false, true)) {
        bool rebuilding = false;
        std::string owner;
        Status s = GetOptionalBool("create", o, "rebuilding", &rebuilding);
        if (s.ok()) s = GetOptionalOwner("create", replica, o, &owner);
        ReplyControl(reply, h,
                     s.ok() ? store_->Create(volume, replica, size, rebuilding, owner) : s);
      }
      break;
    case wire::Op::kOpenReplica:
      if (fields("open", true, false)) {
        OwnerClaim claim;
        Status s = GetOptionalOwner("open", replica, o, &claim.owner);
        if (s.ok()) s = GetOptionalBool("open", o, "take_over", &claim.take_over);
        if (!s.ok()) {
          ReplyControl(reply, h, s);
          break;
        }
        bool clean = false;
        auto r = store_->Open(volume, replica, epoch, &clean, claim);
        if (!r.ok()) {
          ReplyControl(reply, h, r.status());
        } else {
          ReplyJson(reply, h,
                    {{"size", (*r)->size()},
                     {"epoch", (*r)->epoch()},
                     {"generation", (*r)->generation()},
                     {"rebuilding", (*r)->rebuilding()},
                     {"clean", clean},
                     {"owner", (*r)->owner()}});
        }
      }
      break;
    case wire::Op::kHello:
      if (fields("hello", true, false)) {
        auto r = store_->Find(volume, replica);
        Status s = r.ok() ? (*r)->Check("hello", epoch) : r.status();
        if (!s.ok()) {
          ReplyControl(reply, h, s);
        } else {
          state->replica = *r;
          ReplyJson(reply, h, {{"size", (*r)->size()}});
        }
      }
      break;
    case wire::Op::kCloseReplica:
      if (fields("close", true, false)) {
        ReplyControl(reply, h, store_->Close(volume, replica, epoch));
      }
      break;
    case wire::Op::kDeleteReplica:
      if (fields("delete", true, false)) {
        std::string owner;
        Status s = GetOptionalOwner("delete", replica, o, &owner);
        ReplyControl(reply, h, s.ok() ? store_->Delete(volume, replica, epoch, owner) : s);
      }
      break;
    case wire::Op::kListReplicas: {
      // No replica field: not read through fields().
      const json::value* v = o.if_contains("volume");
      if (v == nullptr || !v->is_string()) {
        ReplyControl(reply, h,
                     Status(ErrorKind::kInvalidArgument,
                            "list replicas: field 'volume' is missing or not a string", EINVAL));
        break;
      }
      auto metas = store_->List(std::string(v->as_string()));
      if (!metas.ok()) {
        ReplyControl(reply, h, metas.status());
      } else {
        reply(h, 0, ToBytes(ReplicaListJson(*metas)));
      }
      break;
    }
    case wire::Op::kReplicadInfo: {
      // Needs no field: any other key is ignored like in every request.
      auto usage = store_->Usage();
      if (!usage.ok()) {
        ReplyControl(reply, h, usage.status());
        break;
      }
      json::array tags;
      for (const auto& t : identity_.tags) tags.emplace_back(t);
      ReplyJson(reply, h,
                {{"host_id", identity_.host_id},
                 {"hostname", identity_.hostname},
                 {"tags", std::move(tags)},
                 {"total_bytes", usage->total_bytes},
                 {"free_bytes", usage->free_bytes},
                 {"provisioned_bytes", usage->provisioned_bytes},
                 {"replicas", usage->replicas}});
      break;
    }
    default:
      if (wire::IsLayerOp(h.op)) {
        HandleLayerOp(state, h, o, reply);
        break;
      }
      return Status(ErrorKind::kProtocol, std::string(op_name) + " is not a control op", EPROTO);
  }
  return Status::Ok();
}

void RequestHandler::HandleLayerOp(ConnectionState* state, const wire::Header& h,
                                   const boost::json::object& o, const ReplyFn& reply) {
  std::string op(wire::OpName(static_cast<uint16_t>(h.op)));
  for (char& c : op)
    c = c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::shared_ptr<Replica> replica = state->replica;
  if (replica == nullptr) {
    return ReplyControl(reply, h,
                        Status(ErrorKind::kProtocol, op + ": no HELLO on this connection", EPROTO));
  }
  if (Status s = replica->Check(op, h.epoch); !s.ok()) return ReplyControl(reply, h, s);
  std::string name, created;
  bool user_created = true;
  uint64_t size = 0;
  Status s;
  switch (h.op) {
    case wire::Op::kSnapshot:
      s = GetString(op, o, "name", &name);
      if (s.ok() && o.contains("created")) s = GetString(op, o, "created", &created);
      if (s.ok()) s = GetOptionalBool(op, o, "user_created", &user_created);
      if (s.ok())
        s = replica->Snapshot(name, created.empty() ? NowRfc3339() : created, user_created);
      break;
    case wire::Op::kDeleteSnapshot:
      s = GetString(op, o, "name", &name);
      if (s.ok()) s = replica->DeleteSnapshot(name);
      break;
    case wire::Op::kRevert:
      s = GetString(op, o, "name", &name);
      if (s.ok()) s = replica->Revert(name);
      break;
    case wire::Op::kExpand:
      s = GetUint(op, o, "size", &size);
      if (s.ok()) s = replica->Expand(size);
      break;
    case wire::Op::kListLayers:
      return ReplyJson(reply, h, LayerListJson(replica->ListLayers()));
    case wire::Op::kVerify:
      s = replica->StartVerify();
      break;
    case wire::Op::kSetGeneration:
      s = GetUint(op, o, "generation", &size);
      if (s.ok()) s = replica->SetGeneration(size);
      break;
    case wire::Op::kRebuild: {
      RebuildRequest r;
      s = GetString(op, o, "source", &r.source);
      if (s.ok()) s = GetString(op, o, "source_volume", &r.source_volume);
      if (s.ok()) s = GetString(op, o, "source_replica", &r.source_replica);
      if (s.ok()) s = GetUint(op, o, "source_epoch", &r.source_epoch);
      if (s.ok()) s = GetString(op, o, "snapshot", &r.snapshot);
      if (s.ok() && o.contains("bandwidth")) s = GetUint(op, o, "bandwidth", &r.bandwidth);
      if (s.ok()) s = replica->StartRebuild(r);
      break;
    }
    case wire::Op::kLayerExtents: {
      uint64_t from = 0, max = kMaxExtentsPerPage;
      s = GetString(op, o, "name", &name);
      if (s.ok() && o.contains("from")) s = GetUint(op, o, "from", &from);
      if (s.ok() && o.contains("max")) s = GetUint(op, o, "max", &max);
      if (!s.ok()) break;
      auto page =
          replica->LayerExtents(name, from, std::clamp<uint64_t>(max, 1, kMaxExtentsPerPage));
      if (!page.ok()) {
        s = page.status();
        break;
      }
      json::array extents;
      for (const auto& e : page->extents) extents.push_back(json::array{e.offset, e.length});
      json::value next = nullptr;
      if (page->next) next = *page->next;
      return ReplyJson(reply, h, {{"extents", std::move(extents)}, {"next", next}});
    }
    case wire::Op::kChecksum: {
      uint64_t offset = 0, length = 0, chunk = 0;
      // Field errors name the replica too (a scrub asks many).
      auto field = [&](const char* key, uint64_t* out) {
        if (s.ok() && !GetUint(op, o, key, out).ok()) {
          s = Status(ErrorKind::kInvalidArgument,
                     op + " replica " + replica->name() + ": field '" + key +
                         "' is missing or not an unsigned integer",
                     EINVAL);
        }
      };
      field("offset", &offset);
      field("length", &length);
      field("chunk", &chunk);
      if (!s.ok()) break;
      auto sums = replica->Checksum(h.epoch, offset, length, chunk);
      if (!sums.ok()) {
        s = sums.status();
        break;
      }
      json::array hashes;
      hashes.reserve(sums->size());
      for (uint64_t x : *sums) {
        char hex[17];
        std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(x));
        hashes.emplace_back(hex);
      }
      return ReplyJson(reply, h, {{"chunk", chunk}, {"hashes", std::move(hashes)}});
    }
    default:
      break;
  }
  ReplyControl(reply, h, s);
}

Status RequestHandler::HandleReadSnapshot(ConnectionState* state, const Frame& frame,
                                          const ReplyFn& reply) {
  const wire::Header& h = frame.header;
  const bool view = h.op == wire::Op::kReadSnapshotView;
  const std::string op = view ? "read snapshot view" : "read snapshot";
  json::error_code ec;
  std::string_view text(reinterpret_cast<const char*>(frame.payload.data()), frame.payload.size());
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return Status(
        ErrorKind::kProtocol,
        std::string(wire::OpName(static_cast<uint16_t>(h.op))) + " payload is not a JSON object",
        EPROTO);
  }
  std::shared_ptr<Replica> replica = state->replica;
  if (replica == nullptr) {
    ReplyStatus(reply, h,
                Status(ErrorKind::kProtocol, op + ": no HELLO on this connection", EPROTO));
    return Status::Ok();
  }
  std::string name;
  Status s = replica->Check(op, h.epoch);
  if (s.ok()) s = GetString(op, v.as_object(), "name", &name);
  std::vector<uint8_t> buf;
  if (s.ok()) {
    buf.resize(h.length);  // <= kMaxIoLength (DecodeHeader)
    s = view ? replica->ReadSnapshot(name, h.offset, buf) : replica->ReadLayer(name, h.offset, buf);
  }
  if (!s.ok()) {
    ReplyStatus(reply, h, s);
  } else {
    reply(h, 0, std::move(buf));
  }
  return Status::Ok();
}

void RequestHandler::HandleData(ConnectionState* state, Frame frame, ReplyFn reply) {
  const wire::Header h = frame.header;
  std::string op(wire::OpName(static_cast<uint16_t>(h.op)));
  for (char& c : op) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::shared_ptr<Replica> replica = state->replica;
  if (replica == nullptr) {
    if (h.op == wire::Op::kPing) return reply(h, 0, {});
    return ReplyStatus(reply, h,
                       Status(ErrorKind::kProtocol, op + ": no HELLO on this connection", EPROTO));
  }
  auto done = [reply, h](Status s) { ReplyStatus(reply, h, s); };
  // Records the answer in the replica's figures before `next` sends it (so a
  // client that saw the reply sees it counted). The callback keeps the
  // replica alive.
  auto counted = [&replica](ReplicaIoOp op, uint64_t bytes, auto next) {
    return [replica, op, bytes, next = std::move(next)](Status s) {
      replica->io_stats().Record(op, bytes, s.ok());
      next(std::move(s));
    };
  };
  switch (h.op) {
    case wire::Op::kRead: {
      auto buf = std::make_shared<std::vector<uint8_t>>(h.length);  // <= kMaxIoLength
      replica->Read(h.epoch, h.offset, *buf,
                    counted(ReplicaIoOp::kRead, h.length,
                            [reply, h, buf](Status s) {
                              if (!s.ok()) return ReplyStatus(reply, h, s);
                              reply(h, 0, std::move(*buf));
                            }),
                    state->nothing_queued);
      break;
    }
    case wire::Op::kWrite: {
      // The connection's reader put the data in an aligned buffer, which
      // replicad's O_DIRECT writes take without another copy.
      std::span<const uint8_t> data = frame.Payload();
      std::shared_ptr<const void> owner = std::move(frame.aligned_payload);
      if (!owner) {
        auto v = std::make_shared<std::vector<uint8_t>>(std::move(frame.payload));
        data = *v;
        owner = std::move(v);
      }
      replica->Write(h.epoch, h.offset, data,
                     counted(ReplicaIoOp::kWrite, data.size(),
                             [done, owner](Status s) { done(std::move(s)); }),
                     state->nothing_queued);
      break;
    }
    case wire::Op::kUnmap:
      replica->Unmap(h.epoch, h.offset, h.length, counted(ReplicaIoOp::kUnmap, h.length, done));
      break;
    case wire::Op::kFlush:
      replica->Flush(h.epoch, counted(ReplicaIoOp::kFlush, 0, done));
      break;
    case wire::Op::kPing:
      done(replica->Check("ping", h.epoch));
      break;
    default:
      done(Status(ErrorKind::kProtocol, op + ": not a data op", EPROTO));
      break;
  }
}

}  // namespace shorthorn::replicad
