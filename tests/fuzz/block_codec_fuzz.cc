// Design notes: fuzzes the backup block codec (backup/block_codec.h), whose
// decoder reads objects from a backup target and must treat them as
// hostile. Byte 0 picks the test:
//   bit 0 clear: the rest is a stored block object, decoded against the
//     hash its own header names (so a consistent block passes) or, with bit
//     1 set, against a fixed hash; a block that decodes must re-encode to an
//     object that decodes to the same data;
//   bit 0 set: the rest (1..kBlockSize bytes) is volume data: EncodeBlock
//     then DecodeBlock must give it back, raw or lz4.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "backup/block_codec.h"
#include "backup/format.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn::backup {
namespace {

// The hash a block object's header names, as BlockHash spells it.
std::string HeaderHash(std::span<const uint8_t> object) {
  if (object.size() < kBlockHeaderSize) return std::string(32, '0');
  auto get = [&](size_t at) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(object[at + i]) << (8 * i);
    return v;
  };
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(get(16)),
                static_cast<unsigned long long>(get(24)));
  return buf;
}

void Decode(std::span<const uint8_t> object, bool fixed_hash) {
  std::string expected = fixed_hash ? std::string(32, 'a') : HeaderHash(object);
  auto data = DecodeBlock(object, expected, "fuzz.blk");
  if (!data.ok()) {
    fuzz::Check(data.status().kind() == ErrorKind::kIoError, "a block error that is not kIoError");
    return;
  }
  fuzz::Check(!data->empty() && data->size() <= kBlockSize, "decoded data of a bad length");
  fuzz::Check(BlockHash(*data) == expected, "decoded data that does not match its hash");
  std::vector<uint8_t> again = EncodeBlock(*data, expected);
  auto back = DecodeBlock(again, expected, "fuzz.blk");
  fuzz::Check(back.ok() && *back == *data, "a decoded block does not re-encode");
}

void RoundTrip(std::span<const uint8_t> data) {
  if (data.empty() || data.size() > kBlockSize) return;
  std::string hash = BlockHash(data);
  std::vector<uint8_t> object = EncodeBlock(data, hash);
  auto back = DecodeBlock(object, hash, "fuzz.blk");
  fuzz::Check(back.ok(), "an encoded block does not decode: " +
                             (back.ok() ? std::string() : back.status().message()));
  fuzz::Check(std::equal(back->begin(), back->end(), data.begin(), data.end()),
              "a block decodes to other data");
}

}  // namespace
}  // namespace shorthorn::backup

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> rest(data + 1, size - 1);
  if (data[0] & 1) {
    shorthorn::backup::RoundTrip(rest);
  } else {
    shorthorn::backup::Decode(rest, (data[0] & 2) != 0);
  }
  return 0;
}
