// Design notes: writes the binary seeds of the fuzz corpus (wire frames,
// backup block objects, zero maps) with the product's own encoders, so they stay valid
// by construction; the text seeds (JSON, config files, URLs) are written by
// hand. Not part of any test: run it after a format change and commit what
// changed (doc/fuzzing.md):
//   cmake --build build --target fuzz_make_seeds
//   build/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "backup/block_codec.h"
#include "common/wire.h"
#include "replicad/core/zero_map.h"

namespace {

using namespace shorthorn;
using Bytes = std::vector<uint8_t>;

std::filesystem::path out_dir;

void Save(const std::string& target, const std::string& name, uint8_t mode, const Bytes& body) {
  std::filesystem::path dir = out_dir / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(mode));
  out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
}

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

void Append(Bytes* out, const wire::Header& h, const Bytes& payload) {
  uint8_t raw[wire::kHeaderSize];
  wire::EncodeHeader(h, raw);
  out->insert(out->end(), raw, raw + wire::kHeaderSize);
  out->insert(out->end(), payload.begin(), payload.end());
}

Bytes Frame(wire::Op op, uint64_t offset, uint64_t length, const Bytes& payload) {
  Bytes out;
  Append(&out, wire::MakeRequest(op, 1, 1, offset, length, payload), payload);
  return out;
}

void WireSeeds() {
  const std::string t = "wire_frame";
  Bytes hello = Text(R"({"volume":"vol","replica":"rep","epoch":1})");
  Save(t, "hello", 0x00, Frame(wire::Op::kHello, 0, 0, hello));
  // The handshake: a challenge and its reply (fixed payload sizes).
  Bytes nonce(32, 0x5a);
  Bytes auth = Frame(wire::Op::kAuthChallenge, 0, 0, nonce);
  Bytes answer(64, 0xa5);
  Append(&auth,
         wire::MakeReply(wire::MakeRequest(wire::Op::kAuthChallenge, 1, 0, 0, 0, nonce), 0, answer),
         answer);
  Append(&auth, wire::MakeRequest(wire::Op::kAuthProof, 2, 0, 0, 0, nonce), nonce);
  Save(t, "auth", 0x00, auth);

  Bytes data(4096, 'x');
  Bytes write_read = Frame(wire::Op::kWrite, 8192, data.size(), data);
  Append(&write_read, wire::MakeRequest(wire::Op::kRead, 2, 1, 8192, 4096, {}), {});
  Save(t, "write-read-aligned", 0x04, write_read);
  Save(t, "write-read-small-buffer", 0x00, write_read);

  wire::Header read = wire::MakeRequest(wire::Op::kRead, 3, 1, 0, 512, {});
  Bytes reply_data(512, 'r');
  Bytes read_reply;
  Append(&read_reply, wire::MakeReply(read, 0, reply_data), reply_data);
  Save(t, "read-reply", 0x02, read_reply);

  Bytes message = Text("write replica rep: epoch 1 is older than 2");
  Bytes error_reply;
  Append(&error_reply, wire::MakeReply(read, ESTALE, message), message);
  Save(t, "error-reply", 0x03, error_reply);

  Bytes many;
  Append(&many, wire::MakeRequest(wire::Op::kPing, 4, 1, 0, 0, {}), {});
  Append(&many, wire::MakeRequest(wire::Op::kFlush, 5, 1, 0, 0, {}), {});
  Append(&many, wire::MakeRequest(wire::Op::kUnmap, 6, 1, 4096, 65536, {}), {});
  Bytes layers = Text(R"({"size":65536,"generation":0,"snapshots":[]})");
  wire::Header list = wire::MakeRequest(wire::Op::kListLayers, 7, 1, 0, 0, Text("{}"));
  Append(&many, list, Text("{}"));
  Append(&many, wire::MakeReply(list, 0, layers), layers);
  Save(t, "many-small", 0x01, many);

  Bytes name = Text(R"({"name":"s1"})");
  wire::Header snap = wire::MakeRequest(wire::Op::kReadSnapshotView, 8, 1, 0, 1024, name);
  Bytes snap_data(1024, 's');
  Bytes snap_frames;
  Append(&snap_frames, snap, name);
  Append(&snap_frames, wire::MakeReply(snap, 0, snap_data), snap_data);
  Save(t, "read-snapshot-view", 0x06, snap_frames);

  // Near-valid: each breaks one rule DecodeHeader or ReadFrame checks.
  Bytes bad_sum = Frame(wire::Op::kHello, 0, 0, hello);
  bad_sum.back() ^= 1;  // payload no longer matches its checksum
  Save(t, "bad-checksum", 0x00, bad_sum);
  Bytes truncated = Frame(wire::Op::kWrite, 0, data.size(), data);
  truncated.resize(wire::kHeaderSize + 100);
  Save(t, "truncated-payload", 0x00, truncated);
  Bytes reserved = Frame(wire::Op::kPing, 0, 0, {});
  reserved[52] = 1;
  Save(t, "reserved-set", 0x00, reserved);
  Bytes unknown = Frame(wire::Op::kPing, 0, 0, {});
  unknown[6] = 99;
  Save(t, "unknown-op", 0x00, unknown);
  wire::Header long_write = wire::MakeRequest(wire::Op::kWrite, 9, 1, 0, 8192, data);
  Bytes mismatch;
  Append(&mismatch, long_write, data);
  Save(t, "write-length-mismatch", 0x00, mismatch);
  wire::Header huge = wire::MakeRequest(wire::Op::kRead, 10, 1, UINT64_MAX - 10, 4096, {});
  Bytes overflow;
  Append(&overflow, huge, {});
  Save(t, "offset-overflow", 0x00, overflow);
}

void BlockSeeds() {
  const std::string t = "block_codec";
  Bytes pattern(6000);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>("shorthorn"[i % 9]);
  Bytes noise(300);
  uint32_t x = 12345;
  for (auto& b : noise) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);

  Bytes lz4 = backup::EncodeBlock(pattern, backup::BlockHash(pattern));
  Bytes raw = backup::EncodeBlock(noise, backup::BlockHash(noise));
  Save(t, "decode-lz4", 0x00, lz4);
  Save(t, "decode-raw", 0x00, raw);
  Save(t, "decode-lz4-other-hash", 0x02, lz4);

  Bytes short_payload = lz4;
  short_payload.resize(short_payload.size() - 7);
  Save(t, "decode-truncated", 0x00, short_payload);
  Bytes bad_codec = raw;
  bad_codec[6] = 7;
  Save(t, "decode-bad-codec", 0x00, bad_codec);
  Bytes flipped = lz4;
  flipped[backup::kBlockHeaderSize + 5] ^= 0x40;
  Save(t, "decode-flipped", 0x00, flipped);
  Bytes too_long = raw;
  too_long[8] = 0xff, too_long[9] = 0xff, too_long[10] = 0xff;  // data length > kBlockSize
  Save(t, "decode-too-long", 0x00, too_long);

  Save(t, "roundtrip-text", 0x01, Text("a block of volume data"));
  Save(t, "roundtrip-pattern", 0x01, pattern);
  Save(t, "roundtrip-noise", 0x01, noise);
}

Bytes FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Zero maps written by ZeroMap::Add; the mode byte is the layer's size in
// blocks, as 1 << (mode % 24).
void ZeroMapSeeds() {
  const std::string t = "zero_map";
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "shorthorn-zero-map-seeds";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    replicad::ZeroMap one, two;  // a map writes one file
    (void)one.Add(dir.string(), "one.zeros", {{10, 5}});
    (void)two.Add(dir.string(), "two.zeros", {{10, 5}, {100, 1}});
    (void)two.Add(dir.string(), "two.zeros", {{50, 10}});
  }
  const Bytes one = FileBytes(dir / "one.zeros"), two = FileBytes(dir / "two.zeros");
  const uint8_t k4096 = 12;  // 4096 blocks
  Save(t, "one-run", k4096, one);
  Save(t, "two-adds", k4096, two);
  Save(t, "header-only", k4096, Bytes(two.begin(), two.begin() + 8));
  Save(t, "torn-partial-record", k4096, Bytes(two.begin(), two.end() - 5));
  Bytes no_end = two;
  no_end[8 + 24 + 15] &= 0x7f;  // record 1 loses its end-of-Add mark
  Save(t, "no-end-mark", k4096, no_end);
  Bytes damaged = two;
  damaged[8 + 3] ^= 0x10;  // record 0, before a complete Add
  Save(t, "damaged-first-record", k4096, damaged);
  Bytes magic = two;
  magic[0] = 'X';
  Save(t, "bad-magic", k4096, magic);
  Save(t, "past-the-layer", 3, two);  // 8 blocks
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  WireSeeds();
  BlockSeeds();
  ZeroMapSeeds();
  return 0;
}
