// The replica wire protocol, version 2: frame layout, opcodes and limits, and
// the pure codec (bytes <-> Header). doc/protocol.md is the prose version of
// this file; change both together.
//
// A frame is a 64-byte little-endian header followed by `payload_length`
// bytes of payload. Every length is checked against the limits below by
// DecodeHeader before the caller allocates anything. Pure functions: callable
// from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::wire {

inline constexpr uint32_t kMagic = 0x4E524853;  // bytes "SHRN"
// Version 2 added authentication (common/auth.h): AUTH_CHALLENGE and
// AUTH_PROOF come first on every connection.
inline constexpr uint16_t kVersion = 2;
inline constexpr size_t kHeaderSize = 64;

// Largest READ or WRITE (the FUSE frontend sends at most 1 MiB).
inline constexpr uint64_t kMaxIoLength = 4u << 20;
// Largest JSON payload of a control op, and of an error message (a layer
// list of 250 snapshots with checksums is ~60 KiB).
inline constexpr uint32_t kMaxControlPayload = 1u << 20;
// CHECKSUM: a chunk is a multiple of 4 KiB in [kMinChecksumChunk,
// kMaxChecksumChunk]; one request covers at most kMaxChecksumLength bytes
// (16384 hashes, ~300 KiB of JSON).
inline constexpr uint64_t kMinChecksumChunk = 4u << 10;
inline constexpr uint64_t kMaxChecksumChunk = 4u << 20;
inline constexpr uint64_t kMaxChecksumLength = 64u << 20;

enum class Op : uint16_t {
  kHello = 1,  // bind this connection to an open replica at an epoch
  kRead = 2,
  kWrite = 3,
  kFlush = 4,
  kUnmap = 5,
  kPing = 6,
  // The handshake (common/auth.h), the first two requests on a connection
  // and never again: binary payloads of fixed sizes.
  kAuthChallenge = 7,  // request: client nonce (32); reply: server nonce + proof (64)
  kAuthProof = 8,      // request: client proof (32); reply: empty
  kCreateReplica = 16,
  kOpenReplica = 17,
  kCloseReplica = 18,
  kDeleteReplica = 19,
  // The replicas of one volume in the data directory, open or not (JSON
  // both ways; no HELLO: a fused importing a volume finds them with it).
  kListReplicas = 20,
  // The replicad itself: host id, tags, free space and what it holds (JSON
  // both ways; no HELLO: fused asks it to place replicas).
  kReplicadInfo = 21,
  // Layer ops: JSON payloads, on a connection bound by HELLO, epoch-checked
  // like data ops.
  kSnapshot = 32,
  kDeleteSnapshot = 33,
  kRevert = 34,
  kExpand = 35,
  kListLayers = 36,
  kVerify = 37,
  kSetGeneration = 38,
  kRebuild = 39,       // on the target: pull layers from a source replicad
  kLayerExtents = 40,  // on the source: allocated extents of one layer file
  // On the source: one layer file's own bytes. The request payload is JSON
  // ({"name"}), the reply payload is `length` bytes of data (not JSON).
  kReadSnapshot = 41,
  // On a replica: the content of a snapshot as the volume saw it (its
  // chain), for backups. JSON request ({"name"}), data reply, as op 41.
  kReadSnapshotView = 42,
  // Layer op: XXH3-64 of each chunk of a range of the live data (scrub,
  // resync after an unclean close). JSON request and reply.
  kChecksum = 43,
};

// Ops whose request is JSON and whose reply is `length` bytes of data.
inline bool IsSnapshotRead(Op op) { return op == Op::kReadSnapshot || op == Op::kReadSnapshotView; }

inline constexpr uint32_t kFlagReply = 1u << 0;
inline constexpr uint32_t kKnownFlags = kFlagReply;

// Opcode name for logs ("READ", "OPEN_REPLICA"); "UNKNOWN" otherwise.
std::string_view OpName(uint16_t op);
bool IsKnownOp(uint16_t op);
// True for ops whose payloads (request and reply) are JSON objects.
// READ_SNAPSHOT is not one: its request is JSON but its reply is data.
bool IsControlOp(Op op);
// True for the control ops that need a HELLO-bound connection (ops 32-40, 43).
bool IsLayerOp(Op op);

struct Header {
  uint16_t version = kVersion;
  Op op = Op::kPing;
  uint32_t flags = 0;
  int32_t status = 0;  // replies: 0 or a positive errno
  uint64_t request_id = 0;
  uint64_t epoch = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t payload_length = 0;
  uint64_t payload_checksum = 0;

  bool is_reply() const { return (flags & kFlagReply) != 0; }
};

// XXH3-64 of the payload; 0 for an empty payload.
uint64_t PayloadChecksum(std::span<const uint8_t> payload);

// Writes the 64 header bytes. The caller fills payload_length and
// payload_checksum (MakeRequest/MakeReply do).
void EncodeHeader(const Header& header, uint8_t out[kHeaderSize]);

// Parses and validates 64 header bytes: magic, version, known opcode and
// flags, zero reserved field, and every length against its limit for that
// opcode and direction. Never allocates. Errors are kProtocol with the reason.
Result<Header> DecodeHeader(std::span<const uint8_t> bytes);

// Checks the payload against header.payload_checksum.
Status VerifyPayload(const Header& header, std::span<const uint8_t> payload);

// A request header for `op`, with payload length and checksum filled in.
Header MakeRequest(Op op, uint64_t request_id, uint64_t epoch, uint64_t offset, uint64_t length,
                   std::span<const uint8_t> payload);
// The same with the payload's checksum already computed (PayloadChecksum).
Header MakeRequest(Op op, uint64_t request_id, uint64_t epoch, uint64_t offset, uint64_t length,
                   std::span<const uint8_t> payload, uint64_t payload_checksum);
// A reply to `request`; status is 0 or an errno, payload is the data (READ),
// JSON (control ops) or an error message (status != 0).
Header MakeReply(const Header& request, int32_t status, std::span<const uint8_t> payload);

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace shorthorn::wire
