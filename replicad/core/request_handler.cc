// Design notes: control ops run synchronously on the connection's reader
// thread (they are rare and fsync-bound), which also gives HELLO its
// in-order effect. Data ops are handed to the Replica and answered from its
// completion callback, so a connection has many in flight and replies leave
// in completion order. Buffers live in shared_ptrs captured by the callback
// (std::function needs copyable captures).
//
// A control payload that parses as JSON but lacks a field or has the wrong
// type is a bad request (EINVAL reply), not a broken stream: the connection
// stays open. The payloads' shapes (and those error messages) are
// common/control_messages.h's; this file only maps them onto the store.
//
// LIST_REPLICAS answers from the replica.json files on disk (the store's
// lock keeps them from changing meanwhile), so replicas that are not open
// are listed too; its reply is capped in count and in bytes. REPLICAD_INFO
// walks the same files (every volume) for its count and provisioned bytes.
#include "replicad/core/request_handler.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/control_messages.h"
#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {
namespace {

namespace json = boost::json;

std::vector<uint8_t> ToBytes(std::string_view s) { return {s.begin(), s.end()}; }

// LIST_REPLICAS lists at most this many replicas (the first by name).
constexpr size_t kMaxListedReplicas = 64;

msg::ReplicaSummary Summary(const ReplicaMeta& m) {
  msg::ReplicaSummary s{m.replica,    m.volume, m.size,  m.epoch, m.generation,
                        m.rebuilding, m.open,   m.owner, {}};
  for (const auto& l : m.layers) {  // id order: creation order
    if (l.is_snapshot() && !l.removed) s.snapshots.push_back(l.name);
  }
  return s;
}

template <typename T>
void ReplyJson(const ReplyFn& reply, const wire::Header& h, const T& message) {
  reply(h, 0, ToBytes(json::serialize(json::value_from(message))));
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
  // Only READ, WRITE, FLUSH and PING may leave requests held in the
  // thread's SubmitBatch behind them: the rest may wait for the ops in
  // flight (a snapshot, a close, an unmap's range lock), so the held ones go
  // to the kernel first. (A FLUSH covers the writes acknowledged before it,
  // and none of those is held.)
  switch (frame.header.op) {
    case wire::Op::kRead:
    case wire::Op::kWrite:
    case wire::Op::kFlush:
    case wire::Op::kPing:
      break;
    default:
      SubmitBatch::Kick();
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
  // Decodes the request into *m; replies EINVAL (and returns false) when a
  // field is bad.
  auto decode = [&](auto* m) {
    Status s = msg::Decode(o, m);
    if (!s.ok()) ReplyControl(reply, h, s);
    return s.ok();
  };

  switch (h.op) {
    case wire::Op::kCreateReplica:
      if (msg::CreateReplicaRequest m; decode(&m)) {
        ReplyControl(reply, h, store_->Create(m.volume, m.replica, m.size, m.rebuilding, m.owner));
      }
      break;
    case wire::Op::kOpenReplica:
      if (msg::OpenReplicaRequest m; decode(&m)) {
        bool clean = false;
        auto r =
            store_->Open(m.volume, m.replica, m.epoch, &clean, OwnerClaim{m.owner, m.take_over});
        if (!r.ok()) {
          ReplyControl(reply, h, r.status());
        } else {
          ReplyJson(reply, h,
                    msg::OpenReplicaReply{(*r)->size(), (*r)->epoch(), (*r)->generation(),
                                          (*r)->rebuilding(), clean, (*r)->owner()});
        }
      }
      break;
    case wire::Op::kHello:
      if (msg::HelloRequest m; decode(&m)) {
        auto r = store_->Find(m.volume, m.replica);
        Status s = r.ok() ? (*r)->Check("hello", m.epoch) : r.status();
        if (!s.ok()) {
          ReplyControl(reply, h, s);
        } else {
          state->replica = *r;
          ReplyJson(reply, h, msg::HelloReply{(*r)->size()});
        }
      }
      break;
    case wire::Op::kCloseReplica:
      if (msg::CloseReplicaRequest m; decode(&m)) {
        ReplyControl(reply, h, store_->Close(m.volume, m.replica, m.epoch));
      }
      break;
    case wire::Op::kDeleteReplica:
      if (msg::DeleteReplicaRequest m; decode(&m)) {
        ReplyControl(reply, h, store_->Delete(m.volume, m.replica, m.epoch, m.owner));
      }
      break;
    case wire::Op::kListReplicas:
      if (msg::ListReplicasRequest m; decode(&m)) {
        auto metas = store_->List(m.volume);
        if (!metas.ok()) {
          ReplyControl(reply, h, metas.status());
          break;
        }
        // Capped in count and in bytes (64 replicas of 250 long snapshot
        // names each could exceed a control payload).
        std::vector<msg::ReplicaSummary> summaries;
        summaries.reserve(metas->size());
        for (const auto& meta : *metas) summaries.push_back(Summary(meta));
        reply(h, 0,
              ToBytes(msg::EncodeListReplicasReply(summaries, kMaxListedReplicas,
                                                   wire::kMaxControlPayload)));
      }
      break;
    case wire::Op::kReplicadInfo: {
      // Needs no field: any other key is ignored like in every request.
      auto usage = store_->Usage();
      if (!usage.ok()) {
        ReplyControl(reply, h, usage.status());
        break;
      }
      ReplyJson(reply, h,
                msg::ReplicadInfoReply{identity_.host_id, identity_.hostname, identity_.tags,
                                       usage->total_bytes, usage->free_bytes,
                                       usage->provisioned_bytes, usage->replicas});
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
  // Field errors read "<op> replica: field ...".
  const std::string context = op + " replica";
  Status s;
  switch (h.op) {
    case wire::Op::kSnapshot: {
      msg::SnapshotRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) {
        std::string created = m.created.value_or("");
        s = replica->Snapshot(m.name, created.empty() ? NowRfc3339() : created, m.user_created);
      }
      break;
    }
    case wire::Op::kDeleteSnapshot: {
      msg::DeleteSnapshotRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) s = replica->DeleteSnapshot(m.name);
      break;
    }
    case wire::Op::kRevert: {
      msg::RevertRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) s = replica->Revert(m.name);
      break;
    }
    case wire::Op::kExpand: {
      msg::ExpandRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) s = replica->Expand(m.size);
      break;
    }
    case wire::Op::kListLayers:
      return ReplyJson(reply, h, replica->ListLayers());
    case wire::Op::kVerify:
      s = replica->StartVerify();
      break;
    case wire::Op::kSetGeneration: {
      msg::SetGenerationRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) s = replica->SetGeneration(m.generation);
      break;
    }
    case wire::Op::kRebuild: {
      RebuildRequest m;
      s = msg::Decode(o, &m, context);
      if (s.ok()) s = replica->StartRebuild(m);
      break;
    }
    case wire::Op::kLayerExtents: {
      msg::LayerExtentsRequest m;
      s = msg::Decode(o, &m, context);
      if (!s.ok()) break;
      auto page = replica->LayerExtents(
          m.name, m.from.value_or(0),
          std::clamp<uint64_t>(m.max.value_or(kMaxExtentsPerPage), 1, kMaxExtentsPerPage));
      if (!page.ok()) {
        s = page.status();
        break;
      }
      msg::LayerExtentsReply out;
      out.extents.reserve(page->extents.size());
      for (const auto& e : page->extents) out.extents.push_back({e.offset, e.length});
      out.next = page->next;
      return ReplyJson(reply, h, out);
    }
    case wire::Op::kChecksum: {
      // Field errors name the replica too (a scrub asks many).
      msg::ChecksumRequest m;
      s = msg::Decode(o, &m, context + " " + replica->name());
      if (!s.ok()) break;
      auto sums = replica->Checksum(h.epoch, m.offset, m.length, m.chunk);
      if (!sums.ok()) {
        s = sums.status();
        break;
      }
      return ReplyJson(reply, h, msg::ChecksumReply{m.chunk, std::move(*sums)});
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
  msg::ReadSnapshotRequest m;
  Status s = replica->Check(op, h.epoch);
  if (s.ok()) s = msg::Decode(v.as_object(), &m, op + " replica");
  std::vector<uint8_t> buf;
  if (s.ok()) {
    buf.resize(h.length);  // <= kMaxIoLength (DecodeHeader)
    s = view ? replica->ReadSnapshot(m.name, h.offset, buf)
             : replica->ReadLayer(m.name, h.offset, buf);
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
