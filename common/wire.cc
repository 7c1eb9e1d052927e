// Design notes: the header is encoded byte by byte (no struct casts), so the
// layout does not depend on the compiler's padding or the host's endianness.
// DecodeHeader is the one place that decides whether a frame's lengths are
// acceptable; both daemons read frames only through it.
#include "common/wire.h"

#include <xxhash.h>
#include <boost/endian/conversion.hpp>

#include <string>

namespace shorthorn::wire {
namespace {

namespace endian = boost::endian;

Status Malformed(const std::string& reason) {
  return Status(ErrorKind::kProtocol, "malformed frame: " + reason, EPROTO);
}

// Largest payload allowed for this opcode in this direction.
uint64_t PayloadLimit(const Header& h) {
  if (h.is_reply() && h.status != 0) return kMaxControlPayload;  // error message
  if (h.op == Op::kAuthChallenge) return h.is_reply() ? 64 : 32;
  if (h.op == Op::kAuthProof) return h.is_reply() ? 0 : 32;
  if (IsSnapshotRead(h.op)) return h.is_reply() ? kMaxIoLength : kMaxControlPayload;
  if (IsControlOp(h.op)) return kMaxControlPayload;
  if (h.op == Op::kWrite && !h.is_reply()) return kMaxIoLength;
  if (h.op == Op::kRead && h.is_reply()) return kMaxIoLength;
  return 0;
}

}  // namespace

std::string_view OpName(uint16_t op) {
  switch (static_cast<Op>(op)) {
    case Op::kHello:
      return "HELLO";
    case Op::kRead:
      return "READ";
    case Op::kWrite:
      return "WRITE";
    case Op::kFlush:
      return "FLUSH";
    case Op::kUnmap:
      return "UNMAP";
    case Op::kPing:
      return "PING";
    case Op::kAuthChallenge:
      return "AUTH_CHALLENGE";
    case Op::kAuthProof:
      return "AUTH_PROOF";
    case Op::kCreateReplica:
      return "CREATE_REPLICA";
    case Op::kOpenReplica:
      return "OPEN_REPLICA";
    case Op::kCloseReplica:
      return "CLOSE_REPLICA";
    case Op::kDeleteReplica:
      return "DELETE_REPLICA";
    case Op::kListReplicas:
      return "LIST_REPLICAS";
    case Op::kReplicadInfo:
      return "REPLICAD_INFO";
    case Op::kSnapshot:
      return "SNAPSHOT";
    case Op::kDeleteSnapshot:
      return "DELETE_SNAPSHOT";
    case Op::kRevert:
      return "REVERT";
    case Op::kExpand:
      return "EXPAND";
    case Op::kListLayers:
      return "LIST_LAYERS";
    case Op::kVerify:
      return "VERIFY";
    case Op::kSetGeneration:
      return "SET_GENERATION";
    case Op::kRebuild:
      return "REBUILD";
    case Op::kLayerExtents:
      return "LAYER_EXTENTS";
    case Op::kReadSnapshot:
      return "READ_SNAPSHOT";
    case Op::kReadSnapshotView:
      return "READ_SNAPSHOT_VIEW";
    case Op::kChecksum:
      return "CHECKSUM";
  }
  return "UNKNOWN";
}

bool IsKnownOp(uint16_t op) { return OpName(op) != "UNKNOWN"; }

bool IsControlOp(Op op) {
  switch (op) {
    case Op::kHello:
    case Op::kCreateReplica:
    case Op::kOpenReplica:
    case Op::kCloseReplica:
    case Op::kDeleteReplica:
    case Op::kListReplicas:
    case Op::kReplicadInfo:
      return true;
    default:
      return IsLayerOp(op);
  }
}

bool IsLayerOp(Op op) {
  switch (op) {
    case Op::kSnapshot:
    case Op::kDeleteSnapshot:
    case Op::kRevert:
    case Op::kExpand:
    case Op::kListLayers:
    case Op::kVerify:
    case Op::kSetGeneration:
    case Op::kRebuild:
    case Op::kLayerExtents:
    case Op::kChecksum:
      return true;
    default:
      return false;
  }
}

uint64_t PayloadChecksum(std::span<const uint8_t> payload) {
  if (payload.empty()) return 0;
  return XXH3_64bits(payload.data(), payload.size());
}

void EncodeHeader(const Header& h, uint8_t out[kHeaderSize]) {
  endian::store_little_u32(out + 0, kMagic);
  endian::store_little_u16(out + 4, h.version);
  endian::store_little_u16(out + 6, static_cast<uint16_t>(h.op));
  endian::store_little_u32(out + 8, h.flags);
  endian::store_little_u32(out + 12, static_cast<uint32_t>(h.status));
  endian::store_little_u64(out + 16, h.request_id);
  endian::store_little_u64(out + 24, h.epoch);
  endian::store_little_u64(out + 32, h.offset);
  endian::store_little_u64(out + 40, h.length);
  endian::store_little_u32(out + 48, h.payload_length);
  endian::store_little_u32(out + 52, 0);  // reserved
  endian::store_little_u64(out + 56, h.payload_checksum);
}

Result<Header> DecodeHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) {
    return Malformed("header is " + std::to_string(bytes.size()) + " bytes, expected " +
                     std::to_string(kHeaderSize));
  }
  const uint8_t* p = bytes.data();
  if (endian::load_little_u32(p) != kMagic) return Malformed("bad magic");
  Header h;
  h.version = endian::load_little_u16(p + 4);
  if (h.version != kVersion) {
    return Malformed("protocol version " + std::to_string(h.version) + ", this end speaks " +
                     std::to_string(kVersion));
  }
  uint16_t op = endian::load_little_u16(p + 6);
  if (!IsKnownOp(op)) return Malformed("unknown opcode " + std::to_string(op));
  h.op = static_cast<Op>(op);
  h.flags = endian::load_little_u32(p + 8);
  if ((h.flags & ~kKnownFlags) != 0) return Malformed("unknown flags");
  h.status = static_cast<int32_t>(endian::load_little_u32(p + 12));
  if (h.status < 0 || (!h.is_reply() && h.status != 0)) return Malformed("bad status field");
  h.request_id = endian::load_little_u64(p + 16);
  h.epoch = endian::load_little_u64(p + 24);
  h.offset = endian::load_little_u64(p + 32);
  h.length = endian::load_little_u64(p + 40);
  h.payload_length = endian::load_little_u32(p + 48);
  if (endian::load_little_u32(p + 52) != 0) return Malformed("reserved field is not zero");
  h.payload_checksum = endian::load_little_u64(p + 56);

  if (h.offset + h.length < h.offset) return Malformed("offset + length overflows");
  if ((h.op == Op::kRead || h.op == Op::kWrite || IsSnapshotRead(h.op)) &&
      h.length > kMaxIoLength) {
    return Malformed(std::string(OpName(op)) + " length " + std::to_string(h.length) +
                     " exceeds the limit of " + std::to_string(kMaxIoLength));
  }
  uint64_t limit = PayloadLimit(h);
  if (h.payload_length > limit) {
    return Malformed(std::string(OpName(op)) + " payload of " + std::to_string(h.payload_length) +
                     " bytes exceeds the limit of " + std::to_string(limit));
  }
  bool carries_data =
      (h.op == Op::kWrite && !h.is_reply()) ||
      ((h.op == Op::kRead || IsSnapshotRead(h.op)) && h.is_reply() && h.status == 0);
  if (carries_data && h.payload_length != h.length) {
    return Malformed(std::string(OpName(op)) + " payload length " +
                     std::to_string(h.payload_length) + " differs from length " +
                     std::to_string(h.length));
  }
  bool fixed_size =
      (h.op == Op::kAuthChallenge || h.op == Op::kAuthProof) && (!h.is_reply() || h.status == 0);
  if (fixed_size && h.payload_length != limit) {
    return Malformed(std::string(OpName(op)) + " payload of " + std::to_string(h.payload_length) +
                     " bytes, expected " + std::to_string(limit));
  }
  if (h.payload_length == 0 && h.payload_checksum != 0) {
    return Malformed("checksum set on an empty payload");
  }
  return h;
}

Status VerifyPayload(const Header& header, std::span<const uint8_t> payload) {
  if (payload.size() != header.payload_length) return Malformed("payload length mismatch");
  if (PayloadChecksum(payload) != header.payload_checksum) {
    return Malformed(std::string(OpName(static_cast<uint16_t>(header.op))) +
                     " payload checksum mismatch");
  }
  return Status::Ok();
}

Header MakeRequest(Op op, uint64_t request_id, uint64_t epoch, uint64_t offset, uint64_t length,
                   std::span<const uint8_t> payload) {
  return MakeRequest(op, request_id, epoch, offset, length, payload, PayloadChecksum(payload));
}

Header MakeRequest(Op op, uint64_t request_id, uint64_t epoch, uint64_t offset, uint64_t length,
                   std::span<const uint8_t> payload, uint64_t payload_checksum) {
  Header h;
  h.op = op;
  h.request_id = request_id;
  h.epoch = epoch;
  h.offset = offset;
  h.length = length;
  h.payload_length = static_cast<uint32_t>(payload.size());
  h.payload_checksum = payload_checksum;
  return h;
}

Header MakeReply(const Header& request, int32_t status, std::span<const uint8_t> payload) {
  Header h = request;
  h.flags = kFlagReply;
  h.status = status;
  h.payload_length = static_cast<uint32_t>(payload.size());
  h.payload_checksum = PayloadChecksum(payload);
  return h;
}

}  // namespace shorthorn::wire
