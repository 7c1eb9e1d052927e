// Block objects: round trips of every kind of data, and the decoder against
// damaged and lying objects (it must say "damaged", never crash or return
// data that is not the named block).
#include "backup/block_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "backup/format.h"
#include "tests/unit/backup/core_fakes.h"

namespace shorthorn::backup {
namespace {

using fakes::CompressibleBytes;
using fakes::RandomBytes;

void Put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
}
uint32_t Get32(const std::vector<uint8_t>& v, size_t at) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i) x |= static_cast<uint32_t>(v[at + i]) << (8 * i);
  return x;
}

std::vector<uint8_t> Encode(const std::vector<uint8_t>& data) {
  return EncodeBlock(data, BlockHash(data));
}

void ExpectRoundTrip(const std::vector<uint8_t>& data) {
  std::string hash = BlockHash(data);
  std::vector<uint8_t> object = EncodeBlock(data, hash);
  auto back = DecodeBlock(object, hash, "block x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->size(), data.size());
  EXPECT_TRUE(*back == data) << "decoded data differs";
}

void ExpectDamaged(const std::vector<uint8_t>& object, const std::string& hash,
                   const std::string& why) {
  auto r = DecodeBlock(object, hash, "block x");
  ASSERT_FALSE(r.ok()) << why << ": accepted";
  EXPECT_EQ(r.status().kind(), ErrorKind::kIoError) << why << ": " << r.status().ToString();
  EXPECT_NE(r.status().message().find("block x: damaged"), std::string::npos)
      << why << ": " << r.status().message();
}

TEST(BlockCodecTest, HashIsXxh3_128InHex) {
  // XXH3-128 of nothing (xxHash's own test vector), high half first.
  EXPECT_EQ(BlockHash({}), "99aa06d3014798d86001c324468d497f");
  auto a = RandomBytes(1000, 1);
  auto b = a;
  b[999] ^= 1;
  EXPECT_TRUE(IsBlockHash(BlockHash(a)));
  EXPECT_EQ(BlockHash(a), BlockHash(a));
  EXPECT_NE(BlockHash(a), BlockHash(b));
}

TEST(BlockCodecTest, CompressibleRoundTrip) {
  auto data = CompressibleBytes(kBlockSize, 7);
  ExpectRoundTrip(data);
  auto object = Encode(data);
  EXPECT_LT(object.size(), data.size() / 2) << "lz4 should shrink runs";
  EXPECT_EQ(std::memcmp(object.data(), "SHBK", 4), 0);
  EXPECT_EQ(Get32(object, 8), kBlockSize);
  EXPECT_EQ(Get32(object, 12), object.size() - kBlockHeaderSize);
}

TEST(BlockCodecTest, IncompressibleRoundTripIsStoredRaw) {
  auto data = RandomBytes(kBlockSize, 8);
  ExpectRoundTrip(data);
  auto object = Encode(data);
  EXPECT_EQ(object.size(), kBlockHeaderSize + data.size());
  EXPECT_EQ(object[6] | object[7] << 8, 0) << "codec raw";
  EXPECT_EQ(std::memcmp(object.data() + kBlockHeaderSize, data.data(), data.size()), 0);
}

TEST(BlockCodecTest, ShortBlocksRoundTrip) {
  // The last block of a volume whose size is not a multiple of 2 MiB.
  ExpectRoundTrip(RandomBytes(1, 9));
  ExpectRoundTrip(RandomBytes(4096, 10));
  ExpectRoundTrip(RandomBytes(12345, 11));
  ExpectRoundTrip(CompressibleBytes(kBlockSize - 1, 12));
  ExpectRoundTrip(CompressibleBytes(777, 13));
  std::vector<uint8_t> mostly_zero(kBlockSize / 2 + 4096);
  mostly_zero[100] = 1;
  ExpectRoundTrip(mostly_zero);
}

TEST(BlockCodecTest, RejectsTruncatedHeader) {
  auto data = CompressibleBytes(5000, 1);
  auto object = Encode(data);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4}, size_t{16}, kBlockHeaderSize - 1}) {
    std::vector<uint8_t> cut(object.begin(), object.begin() + n);
    ExpectDamaged(cut, BlockHash(data), "header of " + std::to_string(n) + " bytes");
  }
}

TEST(BlockCodecTest, RejectsBadMagicFormatAndCodec) {
  auto data = CompressibleBytes(5000, 2);
  std::string hash = BlockHash(data);
  auto object = Encode(data);
  auto bad = object;
  bad[0] = 'X';
  ExpectDamaged(bad, hash, "magic");
  bad = object;
  bad[4] = 2;
  ExpectDamaged(bad, hash, "format 2");
  bad = object;
  bad[6] = 7;
  ExpectDamaged(bad, hash, "codec 7");
  // A compressed payload declared raw, and a raw payload declared lz4.
  bad = object;
  bad[6] = 0;
  ExpectDamaged(bad, hash, "lz4 payload marked raw");
  auto random = RandomBytes(5000, 3);
  auto raw = Encode(random);
  ASSERT_EQ(raw[6], 0);
  raw[6] = 1;
  ExpectDamaged(raw, BlockHash(random), "raw payload marked lz4");
}

TEST(BlockCodecTest, RejectsFlippedBytes) {
  for (bool compressible : {true, false}) {
    auto data = compressible ? CompressibleBytes(kBlockSize, 4) : RandomBytes(kBlockSize, 4);
    std::string hash = BlockHash(data);
    auto object = Encode(data);
    for (size_t at :
         {kBlockHeaderSize, kBlockHeaderSize + 1, object.size() / 2, object.size() - 1}) {
      auto bad = object;
      bad[at] ^= 0x40;
      ExpectDamaged(bad, hash, "payload byte " + std::to_string(at) + " flipped");
    }
    // The hash in the header.
    for (size_t at : {size_t{16}, size_t{23}, size_t{24}, size_t{31}}) {
      auto bad = object;
      bad[at] ^= 1;
      ExpectDamaged(bad, hash, "header hash byte " + std::to_string(at) + " flipped");
    }
  }
}

TEST(BlockCodecTest, RejectsWrongExpectedHash) {
  auto data = CompressibleBytes(9000, 5);
  auto object = Encode(data);
  auto other = CompressibleBytes(9000, 6);
  ExpectDamaged(object, BlockHash(other), "another block's hash");
  ExpectDamaged(object, "00000000000000000000000000000000", "zero hash");
  ExpectDamaged(object, "", "empty hash");
  // A well-formed object of other data, stored under this block's name.
  ExpectDamaged(Encode(other), BlockHash(data), "object of other data");
}

TEST(BlockCodecTest, RejectsLyingLengths) {
  for (bool compressible : {true, false}) {
    auto data = compressible ? CompressibleBytes(100000, 14) : RandomBytes(100000, 14);
    std::string hash = BlockHash(data);
    auto object = Encode(data);
    uint32_t stored = Get32(object, 12);
    for (uint32_t length : {uint32_t{0}, static_cast<uint32_t>(kBlockSize + 1), 0xffffffffu}) {
      auto bad = object;
      Put32(bad, 8, length);
      ExpectDamaged(bad, hash, "data length " + std::to_string(length));
    }
    for (uint32_t length :
         {uint32_t{1}, uint32_t{99999}, uint32_t{100001}, static_cast<uint32_t>(kBlockSize)}) {
      auto bad = object;
      Put32(bad, 8, length);
      ExpectDamaged(bad, hash, "data length " + std::to_string(length) + " (plausible)");
    }
    for (uint32_t payload : {uint32_t{0}, stored - 1, stored + 1, 0xffffffffu}) {
      auto bad = object;
      Put32(bad, 12, payload);
      ExpectDamaged(bad, hash, "payload length " + std::to_string(payload));
    }
    // The object cut short or grown, with its header unchanged.
    auto cut = object;
    cut.pop_back();
    ExpectDamaged(cut, hash, "one byte short");
    auto grown = object;
    grown.push_back(0);
    ExpectDamaged(grown, hash, "one byte long");
    ExpectDamaged({object.begin(), object.begin() + kBlockHeaderSize}, hash, "header only");
  }
}

// Random damage anywhere: the decoder either rejects the object or returns
// exactly the original data (a flip that does not matter), and never crashes.
TEST(BlockCodecTest, SurvivesRandomDamage) {
  std::mt19937_64 gen(42);
  for (bool compressible : {true, false}) {
    auto data = compressible ? CompressibleBytes(50000, 15) : RandomBytes(50000, 15);
    std::string hash = BlockHash(data);
    auto object = Encode(data);
    for (int i = 0; i < 300; ++i) {
      auto bad = object;
      int flips = 1 + gen() % 4;
      for (int f = 0; f < flips; ++f)
        bad[gen() % bad.size()] ^= static_cast<uint8_t>(1 + gen() % 255);
      if (gen() % 4 == 0) bad.resize(gen() % bad.size());
      auto r = DecodeBlock(bad, hash, "block x");
      if (r.ok()) {
        EXPECT_TRUE(*r == data) << "iteration " << i << " decoded to other data";
      } else {
        EXPECT_EQ(r.status().kind(), ErrorKind::kIoError) << r.status().ToString();
      }
    }
  }
}

TEST(BlockCodecTest, AllZeroDetection) {
  EXPECT_TRUE(IsAllZero({}));
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{4096}, size_t{4099},
                   size_t{kBlockSize}}) {
    std::vector<uint8_t> zeros(n);
    EXPECT_TRUE(IsAllZero(zeros)) << n;
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      auto one = zeros;
      one[at] = 0x80;
      EXPECT_FALSE(IsAllZero(one)) << n << " with a byte at " << at;
    }
  }
  // Every position of a short buffer: the word loop and the tail loop.
  for (size_t at = 0; at < 23; ++at) {
    std::vector<uint8_t> v(23);
    v[at] = 1;
    EXPECT_FALSE(IsAllZero(v)) << at;
  }
}

}  // namespace
}  // namespace shorthorn::backup
