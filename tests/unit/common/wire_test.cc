#include "common/wire.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "common/frame_io.h"

namespace shorthorn::wire {
namespace {

std::vector<uint8_t> Encode(const Header& h) {
  std::vector<uint8_t> out(kHeaderSize);
  EncodeHeader(h, out.data());
  return out;
}

TEST(WireTest, RoundTripsEveryField) {
  std::vector<uint8_t> data(4096, 0xab);
  Header h = MakeRequest(Op::kWrite, 0x1122334455667788ull, 7, 1ull << 40, data.size(), data);
  auto decoded = DecodeHeader(Encode(h));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->op, Op::kWrite);
  EXPECT_EQ(decoded->request_id, 0x1122334455667788ull);
  EXPECT_EQ(decoded->epoch, 7u);
  EXPECT_EQ(decoded->offset, 1ull << 40);
  EXPECT_EQ(decoded->length, 4096u);
  EXPECT_EQ(decoded->payload_length, 4096u);
  EXPECT_TRUE(VerifyPayload(*decoded, data).ok());
  data[100] ^= 1;
  EXPECT_EQ(VerifyPayload(*decoded, data).kind(), ErrorKind::kProtocol);
}

TEST(WireTest, RoundTripsReplies) {
  Header req = MakeRequest(Op::kRead, 9, 3, 8192, 512, {});
  std::vector<uint8_t> data(512, 1);
  Header reply = MakeReply(req, 0, data);
  auto decoded = DecodeHeader(Encode(reply));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->is_reply());
  EXPECT_EQ(decoded->request_id, 9u);
  Header err = MakeReply(req, ESTALE, AsBytes("epoch 3 is older than 4"));
  auto decoded_err = DecodeHeader(Encode(err));
  ASSERT_TRUE(decoded_err.ok());
  EXPECT_EQ(decoded_err->status, ESTALE);
}

TEST(WireTest, RejectsBadMagicVersionOpcodeAndFlags) {
  auto bytes = Encode(MakeRequest(Op::kPing, 1, 1, 0, 0, {}));
  auto bad = bytes;
  bad[0] ^= 0xff;
  EXPECT_EQ(DecodeHeader(bad).status().kind(), ErrorKind::kProtocol);
  bad = bytes;
  bad[4] = 1;  // both versions named
  EXPECT_NE(DecodeHeader(bad).status().message().find("version 1, this end speaks 2"),
            std::string::npos)
      << DecodeHeader(bad).status().message();
  bad = bytes;
  bad[6] = 99;
  EXPECT_NE(DecodeHeader(bad).status().message().find("opcode"), std::string::npos);
  bad = bytes;
  bad[9] = 1;
  EXPECT_NE(DecodeHeader(bad).status().message().find("flags"), std::string::npos);
  bad = bytes;
  bad[53] = 1;
  EXPECT_NE(DecodeHeader(bad).status().message().find("reserved"), std::string::npos);
}

TEST(WireTest, RejectsTruncatedHeader) {
  auto bytes = Encode(MakeRequest(Op::kPing, 1, 1, 0, 0, {}));
  bytes.resize(kHeaderSize - 1);
  EXPECT_EQ(DecodeHeader(bytes).status().kind(), ErrorKind::kProtocol);
}

TEST(WireTest, RejectsOversizedLengthsBeforeAllocation) {
  Header h = MakeRequest(Op::kWrite, 1, 1, 0, kMaxIoLength + 4096, {});
  h.payload_length = static_cast<uint32_t>(kMaxIoLength + 4096);
  EXPECT_NE(DecodeHeader(Encode(h)).status().message().find("exceeds the limit"),
            std::string::npos);
  Header r = MakeRequest(Op::kRead, 1, 1, 0, 1ull << 33, {});
  EXPECT_EQ(DecodeHeader(Encode(r)).status().kind(), ErrorKind::kProtocol);
  Header c = MakeRequest(Op::kOpenReplica, 1, 1, 0, 0, {});
  c.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(c)).status().kind(), ErrorKind::kProtocol);
  Header p = MakeRequest(Op::kPing, 1, 1, 0, 0, {});
  p.payload_length = 0xffffffffu;  // a PING carries nothing
  EXPECT_EQ(DecodeHeader(Encode(p)).status().kind(), ErrorKind::kProtocol);
}

TEST(WireTest, RejectsWritePayloadThatDiffersFromLength) {
  std::vector<uint8_t> data(4096);
  Header h = MakeRequest(Op::kWrite, 1, 1, 0, 8192, data);
  EXPECT_NE(DecodeHeader(Encode(h)).status().message().find("differs"), std::string::npos);
}

TEST(WireTest, ChecksumIsALayerOpWithJsonBothWays) {
  EXPECT_EQ(OpName(43), "CHECKSUM");
  EXPECT_TRUE(IsLayerOp(Op::kChecksum));
  EXPECT_TRUE(IsControlOp(Op::kChecksum));
  EXPECT_FALSE(IsSnapshotRead(Op::kChecksum));
  std::string json = R"({"offset":0,"length":4096,"chunk":4096})";
  Header h = MakeRequest(Op::kChecksum, 1, 1, 0, 0, AsBytes(json));
  ASSERT_TRUE(DecodeHeader(Encode(h)).ok());
  Header r = MakeReply(h, 0, AsBytes(json));
  r.payload_length = kMaxControlPayload;  // ~300 KiB of hashes at most
  ASSERT_TRUE(DecodeHeader(Encode(r)).ok());
  r.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(r)).status().kind(), ErrorKind::kProtocol);
  // The largest reply (16384 hashes) fits a control payload.
  EXPECT_LT(kMaxChecksumLength / kMinChecksumChunk * 19 + 64, kMaxControlPayload);
}

// LIST_REPLICAS (a fused importing a volume) is a control op that needs no
// HELLO: JSON both ways, up to a control payload.
TEST(WireTest, ListReplicasIsAControlOpWithoutHello) {
  EXPECT_EQ(static_cast<uint16_t>(Op::kListReplicas), 20);
  EXPECT_EQ(OpName(20), "LIST_REPLICAS");
  EXPECT_TRUE(IsKnownOp(20));
  EXPECT_TRUE(IsControlOp(Op::kListReplicas));
  EXPECT_FALSE(IsLayerOp(Op::kListReplicas));
  EXPECT_FALSE(IsSnapshotRead(Op::kListReplicas));
  std::string json = R"({"volume":"vol1"})";
  Header h = MakeRequest(Op::kListReplicas, 1, 0, 0, 0, AsBytes(json));
  auto decoded = DecodeHeader(Encode(h));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->op, Op::kListReplicas);
  h.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(h)).status().kind(), ErrorKind::kProtocol);
  Header r = MakeReply(h, 0, AsBytes(json));
  r.payload_length = kMaxControlPayload;
  EXPECT_TRUE(DecodeHeader(Encode(r)).ok());
  r.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(r)).status().kind(), ErrorKind::kProtocol);
}

// REPLICAD_INFO (fused placing replicas) is a control op that needs no
// HELLO, like LIST_REPLICAS: JSON both ways, up to a control payload.
TEST(WireTest, ReplicadInfoIsAControlOpWithoutHello) {
  EXPECT_EQ(static_cast<uint16_t>(Op::kReplicadInfo), 21);
  EXPECT_EQ(OpName(21), "REPLICAD_INFO");
  EXPECT_TRUE(IsKnownOp(21));
  EXPECT_FALSE(IsKnownOp(22));
  EXPECT_TRUE(IsControlOp(Op::kReplicadInfo));
  EXPECT_FALSE(IsLayerOp(Op::kReplicadInfo));
  EXPECT_FALSE(IsSnapshotRead(Op::kReplicadInfo));
  std::string json = "{}";
  Header h = MakeRequest(Op::kReplicadInfo, 1, 0, 0, 0, AsBytes(json));
  auto decoded = DecodeHeader(Encode(h));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->op, Op::kReplicadInfo);
  h.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(h)).status().kind(), ErrorKind::kProtocol);
  std::string reply = R"({"host_id":"h1","hostname":"a","tags":[],"total_bytes":1,)"
                      R"("free_bytes":1,"provisioned_bytes":0,"replicas":0})";
  Header r = MakeReply(h, 0, AsBytes(reply));
  EXPECT_TRUE(DecodeHeader(Encode(r)).ok());
  r.payload_length = kMaxControlPayload + 1;
  EXPECT_EQ(DecodeHeader(Encode(r)).status().kind(), ErrorKind::kProtocol);
}

TEST(WireTest, RejectsOverflowingRange) {
  Header h = MakeRequest(Op::kUnmap, 1, 1, ~0ull - 10, 4096, {});
  EXPECT_NE(DecodeHeader(Encode(h)).status().message().find("overflows"), std::string::npos);
}

TEST(FrameIoTest, ReadsWhatWasWrittenAndStopsAtTruncation) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::vector<uint8_t> data(8192, 0x5a);
  ASSERT_TRUE(WriteFrame(sv[0], MakeRequest(Op::kWrite, 5, 2, 4096, data.size(), data), data).ok());
  auto frame = ReadFrame(sv[1]);
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->payload, data);
  // A header promising a payload that never comes: the reader reports EOF.
  uint8_t raw[kHeaderSize];
  EncodeHeader(MakeRequest(Op::kWrite, 6, 2, 0, data.size(), data), raw);
  ASSERT_EQ(write(sv[0], raw, sizeof(raw)), static_cast<ssize_t>(sizeof(raw)));
  close(sv[0]);
  auto truncated = ReadFrame(sv[1]);
  EXPECT_EQ(truncated.status().kind(), ErrorKind::kUnavailable);
  close(sv[1]);
}

// Many frames written with one WriteFrames come back one by one through a
// FrameReader whose buffer is small, so frames straddle refills and big
// payloads take the direct path; a truncated frame and a bad header are
// reported like ReadFrame does.
TEST(FrameIoTest, BufferedReaderSplitsBatches) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t i = 0; i < 40; ++i) {
    size_t n = (i % 5 == 0) ? 0 : (i % 7 == 0 ? 3000 : 100 + i * 13);
    payloads.emplace_back(n, static_cast<uint8_t>(i + 1));
  }
  std::vector<OutFrame> out;
  for (size_t i = 0; i < payloads.size(); ++i) {
    out.push_back({MakeRequest(Op::kWrite, i, 1, 0, payloads[i].size(), payloads[i]), payloads[i]});
  }
  std::thread writer([&] { ASSERT_TRUE(WriteFrames(sv[0], out).ok()); });
  FrameReader reader(sv[1], 1024);
  for (size_t i = 0; i < payloads.size(); ++i) {
    auto frame = reader.Next();
    ASSERT_TRUE(frame.ok()) << i << ": " << frame.status().ToString();
    EXPECT_EQ(frame->header.request_id, i);
    EXPECT_EQ(frame->payload, payloads[i]) << i;
  }
  writer.join();
  EXPECT_FALSE(reader.HasBufferedFrame());
  // Header only, payload never sent.
  uint8_t raw[kHeaderSize];
  EncodeHeader(MakeRequest(Op::kWrite, 99, 1, 0, payloads[1].size(), payloads[1]), raw);
  ASSERT_EQ(write(sv[0], raw, sizeof(raw)), static_cast<ssize_t>(sizeof(raw)));
  close(sv[0]);
  auto truncated = reader.Next();
  EXPECT_EQ(truncated.status().kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(truncated.status().message(), "connection closed mid-frame");
  close(sv[1]);

  // A malformed header is an error, not a wait.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::vector<uint8_t> junk(kHeaderSize, 0xee);
  ASSERT_EQ(write(sv[0], junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  FrameReader bad(sv[1]);
  auto frame = bad.Next();
  EXPECT_EQ(frame.status().kind(), ErrorKind::kProtocol);
  close(sv[0]);
  close(sv[1]);
}

// A reader asked for aligned writes puts each WRITE request's payload in a
// 4096-byte aligned buffer (small ones copied from its buffer, big ones
// partly read straight into place), the other frames' in `payload`; the
// checksum is still verified.
TEST(FrameIoTest, AlignedWritesLandInAlignedBuffers) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::vector<size_t> sizes = {4096, 128 << 10, 3000, 512, 1 << 20, 8192};
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint8_t> p(sizes[i]);
    for (size_t j = 0; j < p.size(); ++j) p[j] = static_cast<uint8_t>(j * 31 + i);
    payloads.push_back(std::move(p));
  }
  const std::string json = R"({"name":"s1"})";
  const std::vector<uint8_t> control(json.begin(), json.end());
  std::vector<OutFrame> out;
  for (size_t i = 0; i < payloads.size(); ++i) {
    out.push_back(
        {MakeRequest(Op::kWrite, i, 1, i << 20, payloads[i].size(), payloads[i]), payloads[i]});
    out.push_back({MakeRequest(Op::kSnapshot, 100 + i, 1, 0, 0, control), control});
  }
  std::thread writer([&] { ASSERT_TRUE(WriteFrames(sv[0], out).ok()); });
  FrameReader reader(sv[1], 64 << 10, /*aligned_writes=*/true);
  for (size_t i = 0; i < payloads.size(); ++i) {
    auto frame = reader.Next();
    ASSERT_TRUE(frame.ok()) << i << ": " << frame.status().ToString();
    ASSERT_NE(frame->aligned_payload, nullptr) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(frame->aligned_payload.get()) % 4096, 0u) << i;
    EXPECT_TRUE(frame->payload.empty()) << i;
    auto got = frame->Payload();
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), payloads[i]) << i;
    auto snap = reader.Next();
    ASSERT_TRUE(snap.ok()) << i << ": " << snap.status().ToString();
    EXPECT_EQ(snap->aligned_payload, nullptr);
    EXPECT_EQ(snap->payload, control);
  }
  writer.join();

  // A WRITE whose payload does not match its checksum is refused.
  std::vector<uint8_t> data(4096, 0x5a);
  Header h = MakeRequest(Op::kWrite, 7, 1, 0, data.size(), data);
  data[100] ^= 1;
  ASSERT_TRUE(WriteFrame(sv[0], h, data).ok());
  auto bad = reader.Next();
  EXPECT_EQ(bad.status().kind(), ErrorKind::kProtocol) << bad.status().ToString();
  close(sv[0]);
  close(sv[1]);
}

// SendNow never blocks: it sends what the socket takes and says how much,
// sends nothing to a full socket, and reports a broken one.
TEST(FrameIoTest, SendNowSendsWhatTheSocketTakesWithoutBlocking) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 4096;
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  auto n = SendNow(sv[0], big);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_GT(*n, 0u);
  EXPECT_LT(*n, big.size());
  auto none = SendNow(sv[0], std::span<const uint8_t>(big).subspan(*n));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);  // full: nothing, at once
  std::vector<uint8_t> got(*n);
  ASSERT_TRUE(ReadFull(sv[1], got).ok());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), big.begin()));
  auto empty = SendNow(sv[0], {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 0u);
  close(sv[1]);
  auto broken = SendNow(sv[0], big);
  EXPECT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().sys_errno(), EPIPE);
  close(sv[0]);
}

}  // namespace
}  // namespace shorthorn::wire
