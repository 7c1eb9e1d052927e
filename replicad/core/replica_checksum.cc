// Design notes: CHECKSUM hashes the live data chunk by chunk, for a scrub
// that compares replicas and for the resync after an unclean close. Each
// chunk is one admitted op (Begin/End, so Snapshot, SetEpoch and Close wait
// for at most one chunk, and a new epoch fences the rest) and is read with
// ReadChainBlocking, the chain lookup the data path uses for its own reads,
// under the range lock of its blocks: a write into the chunk either
// finished before the read or starts after it, never half-seen. Admission
// comes before the range lock, as for writes, so a Pause never waits on a
// chunk that waits on it.
//
// The request is validated as a whole before any read, so a bad one costs
// nothing. A rebuilding replica is refused: its head has no parent, so its
// reads are not the volume's data.
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/wire.h"
#include "replicad/core/replica.h"

namespace shorthorn::replicad {

Result<std::vector<uint64_t>> Replica::Checksum(uint64_t epoch, uint64_t offset, uint64_t length,
                                                uint64_t chunk) {
  const std::string op = "checksum " + Object();
  auto invalid = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, op + ": " + reason, EINVAL);
  };
  if (chunk < wire::kMinChecksumChunk || chunk > wire::kMaxChecksumChunk ||
      chunk % kSectorSize != 0) {
    return invalid("chunk " + std::to_string(chunk) + " is not a multiple of " +
                   std::to_string(kSectorSize) + " from " +
                   std::to_string(wire::kMinChecksumChunk) + " to " +
                   std::to_string(wire::kMaxChecksumChunk));
  }
  if (offset % kSectorSize != 0) {
    return invalid("offset " + std::to_string(offset) + " is not a multiple of " +
                   std::to_string(kSectorSize));
  }
  if (length == 0 || length > wire::kMaxChecksumLength) {
    return invalid("length " + std::to_string(length) + " is not from 1 to " +
                   std::to_string(wire::kMaxChecksumLength));
  }
  const uint64_t size = this->size();
  if (offset > size || length > size - offset) {
    return invalid("range " + std::to_string(offset) + "+" + std::to_string(length) +
                   " is beyond the size " + std::to_string(size));
  }
  auto busy = [&] {
    std::string why = Object() + " is rebuilding; its data is complete only after the rebuild";
    return Status(ErrorKind::kBusy, op + ": " + why, EBUSY);
  };
  if (rebuilding_.load()) return busy();

  const uint64_t end = offset + length;
  std::vector<uint64_t> hashes;
  hashes.reserve((length + chunk - 1) / chunk);
  // Whole blocks: a short last chunk ends inside a block of the volume.
  std::vector<uint8_t> buf(std::min(chunk, (length + kSectorSize - 1) / kSectorSize * kSectorSize));
  for (uint64_t pos = offset; pos < end; pos += chunk) {
    const uint64_t n = std::min(chunk, end - pos);
    const uint64_t first = pos / kSectorSize;
    const uint64_t last = (pos + n + kSectorSize - 1) / kSectorSize;
    SH_RETURN_IF_ERROR(Begin("checksum", epoch, pos, n));
    // Changes only while data ops are held back: stable until End().
    if (rebuilding_.load()) {
      End();
      return busy();
    }
    Status s;
    {
      RangeLock::Guard guard = range_lock_.Lock(first, last);
      s = ReadChainBlocking(first, last - first, buf.data());
    }
    End();
    if (!s.ok()) return s.WithContext(op);
    hashes.push_back(XXH3_64bits(buf.data(), n));
  }
  return hashes;
}

}  // namespace shorthorn::replicad
