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
#include "replicad/request_handler.h"

#include <boost/json.hpp>

#include <cctype>
#include <string>
#include <utility>

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
  if (frame.header.is_reply()) {
    return Status(ErrorKind::kProtocol,
                  std::string(wire::OpName(static_cast<uint16_t>(frame.header.op))) +
                      " request carries the reply flag",
                  EPROTO);
  }
  if (wire::IsControlOp(frame.header.op)) return HandleControl(state, frame, reply);
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
        ReplyControl(reply, h, store_->Create(volume, replica, size));
      }
      break;
    case wire::Op::kOpenReplica:
      if (fields("open", true, false)) {
        auto r = store_->Open(volume, replica, epoch);
        if (!r.ok()) {
          ReplyControl(reply, h, r.status());
        } else {
          ReplyJson(reply, h, {{"size", (*r)->size()}, {"epoch", (*r)->epoch()}});
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
      if (fields("delete", false, false)) {
        ReplyControl(reply, h, store_->Delete(volume, replica));
      }
      break;
    default:
      return Status(ErrorKind::kProtocol, std::string(op_name) + " is not a control op", EPROTO);
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
  switch (h.op) {
    case wire::Op::kRead: {
      auto buf = std::make_shared<std::vector<uint8_t>>(h.length);  // <= kMaxIoLength
      replica->Read(h.epoch, h.offset, *buf, [reply, h, buf](Status s) {
        if (!s.ok()) return ReplyStatus(reply, h, s);
        reply(h, 0, std::move(*buf));
      });
      break;
    }
    case wire::Op::kWrite: {
      auto data = std::make_shared<std::vector<uint8_t>>(std::move(frame.payload));
      replica->Write(h.epoch, h.offset, *data, [done, data](Status s) { done(std::move(s)); });
      break;
    }
    case wire::Op::kUnmap:
      replica->Unmap(h.epoch, h.offset, h.length, done);
      break;
    case wire::Op::kFlush:
      replica->Flush(h.epoch, done);
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
