// Block objects: one backup block (at most kBlockSize bytes of volume
// data), compressed with lz4 when that saves space, with a header that
// carries its length and its XXH3-128 (doc/backup-format.md). Pure.
//
//   offset size field
//   0      4    magic "SHBK"
//   4      2    format (1)
//   6      2    codec: 0 raw, 1 lz4 block
//   8      4    data length (uncompressed), 1..kBlockSize
//   12     4    payload length (stored bytes after the header)
//   16     16   XXH3-128 of the data (high 64 bits, then low, little-endian)
//   32     ...  payload
//
// DecodeBlock treats its input as hostile: every length is checked before
// anything is allocated, lz4 decoding is bounded, and the data's hash must
// equal both the header's and the expected one.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace shorthorn::backup {

inline constexpr size_t kBlockHeaderSize = 32;

// 32 lowercase hex digits of XXH3-128 of `data`.
std::string BlockHash(std::span<const uint8_t> data);
bool IsAllZero(std::span<const uint8_t> data);
// The stored object for `data` (1..kBlockSize bytes); `hash` must be
// BlockHash(data) (the caller has it already).
std::vector<uint8_t> EncodeBlock(std::span<const uint8_t> data, const std::string& hash);
// The data of a stored block; kIoError ("damaged") for anything that does
// not decode to data whose hash is `expected_hash`. `what` names the object.
Result<std::vector<uint8_t>> DecodeBlock(std::span<const uint8_t> object,
                                         const std::string& expected_hash, const std::string& what);

}  // namespace shorthorn::backup
