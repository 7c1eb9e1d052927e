// Design notes: fuzzes the replica protocol's frame decoding (doc/protocol.md)
// the way both daemons meet it, as bytes from a socket: wire::DecodeHeader
// on the first 64 bytes, then ReadFrame and FrameReader::Next over the whole
// input as a stream of frames (read from a memfd, so EOF comes where the
// input ends). The first input byte is not part of the stream: it picks the
// FrameReader's buffer size (so payloads take both the buffered and the
// read-into-place path) and whether WRITE payloads go to aligned buffers.
//
// Properties checked besides "no crash, no sanitizer report": a header that
// decodes re-encodes to the same 64 bytes; every frame returned has the
// payload its header announces and passes VerifyPayload; a reply built for
// it (MakeReply) decodes again.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "common/file_util.h"
#include "common/frame_io.h"
#include "common/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace shorthorn {
namespace {

void CheckHeader(std::span<const uint8_t> bytes) {
  auto h = wire::DecodeHeader(bytes);
  if (!h.ok()) return;
  uint8_t again[wire::kHeaderSize];
  wire::EncodeHeader(*h, again);
  fuzz::Check(std::memcmp(again, bytes.data(), wire::kHeaderSize) == 0,
              "a decoded header does not re-encode to the same bytes");
}

void CheckFrame(const Frame& f) {
  std::span<const uint8_t> payload = f.Payload();
  fuzz::Check(payload.size() == f.header.payload_length, "frame payload size != payload_length");
  fuzz::Check(wire::VerifyPayload(f.header, payload).ok(), "a returned frame fails VerifyPayload");
  if (!f.header.is_reply()) {
    // The reply replicad would send for an error: it must be a valid frame.
    const char kMessage[] = "bad request";
    auto message = wire::AsBytes(kMessage);
    wire::Header reply = wire::MakeReply(f.header, EINVAL, message);
    uint8_t raw[wire::kHeaderSize];
    wire::EncodeHeader(reply, raw);
    fuzz::Check(wire::DecodeHeader(raw).ok(), "an error reply to a valid request does not decode");
  }
}

// A memfd holding `bytes`, positioned at 0.
UniqueFd StreamOf(std::span<const uint8_t> bytes) {
  UniqueFd fd(::memfd_create("frames", MFD_CLOEXEC));
  if (!fd.valid()) fuzz::Fail("memfd_create");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) fuzz::Fail("write to memfd");
    done += static_cast<size_t>(n);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) fuzz::Fail("lseek memfd");
  return fd;
}

constexpr size_t kBufferSizes[4] = {128, 200, 4096, 256 << 10};
constexpr int kMaxFrames = 64;

}  // namespace
}  // namespace shorthorn

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::span<const uint8_t> stream(data + 1, size - 1);

  CheckHeader(stream);

  {
    UniqueFd fd = StreamOf(stream);
    for (int i = 0; i < kMaxFrames; ++i) {
      auto f = ReadFrame(fd.get());
      if (!f.ok()) break;
      CheckFrame(*f);
    }
  }
  {
    UniqueFd fd = StreamOf(stream);
    FrameReader reader(fd.get(), kBufferSizes[mode & 3], (mode & 4) != 0);
    for (int i = 0; i < kMaxFrames; ++i) {
      (void)reader.HasBufferedFrame();
      auto f = reader.Next();
      if (!f.ok()) break;
      CheckFrame(*f);
    }
  }
  return 0;
}
