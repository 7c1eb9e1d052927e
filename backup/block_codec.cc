// Design notes: lz4's block format (LZ4_compress_default /
// LZ4_decompress_safe) is enough: a block is at most 2 MiB, so no framing
// or streaming is needed, and LZ4_decompress_safe never writes past the
// buffer it is given. Data lz4 cannot shrink is stored raw, so
// incompressible volumes pay one failed compression attempt and no
// decompression on restore.
#include "backup/block_codec.h"

#include <lz4.h>
#include <xxhash.h>
#include <boost/endian/conversion.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backup/format.h"

namespace shorthorn::backup {
namespace {

constexpr uint8_t kMagic[4] = {'S', 'H', 'B', 'K'};
constexpr uint16_t kCodecRaw = 0;
constexpr uint16_t kCodecLz4 = 1;

namespace endian = boost::endian;

XXH128_hash_t Hash128(std::span<const uint8_t> data) {
  return XXH3_128bits(data.data(), data.size());
}

std::string Hex(XXH128_hash_t h) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

}  // namespace

std::string BlockHash(std::span<const uint8_t> data) { return Hex(Hash128(data)); }

bool IsAllZero(std::span<const uint8_t> data) {
  // Compare 8 bytes at a time; memcmp against the shifted buffer itself
  // would be shorter but slower.
  const uint8_t* p = data.data();
  size_t n = data.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

std::vector<uint8_t> EncodeBlock(std::span<const uint8_t> data, const std::string& hash) {
  std::vector<uint8_t> out(kBlockHeaderSize + LZ4_compressBound(static_cast<int>(data.size())));
  int n = LZ4_compress_default(reinterpret_cast<const char*>(data.data()),
                               reinterpret_cast<char*>(out.data() + kBlockHeaderSize),
                               static_cast<int>(data.size()),
                               static_cast<int>(out.size() - kBlockHeaderSize));
  uint16_t codec = kCodecLz4;
  if (n <= 0 || static_cast<size_t>(n) >= data.size()) {
    codec = kCodecRaw;
    n = static_cast<int>(data.size());
    std::memcpy(out.data() + kBlockHeaderSize, data.data(), data.size());
  }
  out.resize(kBlockHeaderSize + n);
  uint8_t* h = out.data();
  std::memcpy(h, kMagic, 4);
  endian::store_little_u16(h + 4, 1);
  endian::store_little_u16(h + 6, codec);
  endian::store_little_u32(h + 8, static_cast<uint32_t>(data.size()));
  endian::store_little_u32(h + 12, static_cast<uint32_t>(n));
  // The header carries the hash the block is named by (hex, big-endian
  // reading), as two little-endian halves.
  endian::store_little_u64(h + 16, std::strtoull(hash.substr(0, 16).c_str(), nullptr, 16));
  endian::store_little_u64(h + 24, std::strtoull(hash.substr(16, 16).c_str(), nullptr, 16));
  return out;
}

Result<std::vector<uint8_t>> DecodeBlock(std::span<const uint8_t> object,
                                         const std::string& expected_hash,
                                         const std::string& what) {
  auto damaged = [&](const std::string& why) {
    return Status(ErrorKind::kIoError, what + ": damaged: " + why, EIO);
  };
  if (object.size() < kBlockHeaderSize) return damaged("shorter than its header");
  const uint8_t* h = object.data();
  if (std::memcmp(h, kMagic, 4) != 0) return damaged("bad magic");
  if (endian::load_little_u16(h + 4) != 1)
    return damaged("unknown block format " + std::to_string(endian::load_little_u16(h + 4)));
  uint64_t codec = endian::load_little_u16(h + 6);
  uint64_t length = endian::load_little_u32(h + 8);
  uint64_t stored = endian::load_little_u32(h + 12);
  if (length == 0 || length > kBlockSize) {
    return damaged("data length " + std::to_string(length) + " is out of range");
  }
  if (stored != object.size() - kBlockHeaderSize) {
    return damaged("payload length " + std::to_string(stored) + " does not match the object's " +
                   std::to_string(object.size() - kBlockHeaderSize) + " bytes");
  }
  std::span<const uint8_t> payload = object.subspan(kBlockHeaderSize);
  std::vector<uint8_t> data(length);
  if (codec == kCodecRaw) {
    if (stored != length) return damaged("raw payload length differs from the data length");
    std::memcpy(data.data(), payload.data(), length);
  } else if (codec == kCodecLz4) {
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(payload.data()),
                                reinterpret_cast<char*>(data.data()), static_cast<int>(stored),
                                static_cast<int>(length));
    if (n < 0 || static_cast<uint64_t>(n) != length) return damaged("lz4 data does not decode");
  } else {
    return damaged("unknown codec " + std::to_string(codec));
  }
  XXH128_hash_t x = Hash128(data);
  if (x.high64 != endian::load_little_u64(h + 16) || x.low64 != endian::load_little_u64(h + 24)) {
    return damaged("the data does not match the checksum in its header");
  }
  std::string actual = Hex(x);
  if (actual != expected_hash) {
    return damaged("its checksum is " + actual + ", the backup expects " + expected_hash);
  }
  return data;
}

}  // namespace shorthorn::backup
