// Reading and writing whole protocol frames on a blocking stream socket.
// Shared by replicad (server side) and fused (client side). ReadFrame
// validates the header with wire::DecodeHeader before allocating the payload,
// then verifies the payload checksum. A thread may read from one fd while
// another writes to it; concurrent writers must serialize themselves.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "common/wire.h"

namespace shorthorn {

struct Frame {
  wire::Header header;
  // The payload, unless it is in `aligned_payload`.
  std::vector<uint8_t> payload;
  // A WRITE's payload when the FrameReader was asked for aligned data
  // (header.payload_length bytes, 4096-byte aligned, so an O_DIRECT write
  // takes it as it is); `payload` is then empty.
  std::shared_ptr<uint8_t> aligned_payload;

  std::span<const uint8_t> Payload() const {
    return aligned_payload ? std::span<const uint8_t>(aligned_payload.get(), header.payload_length)
                           : std::span<const uint8_t>(payload);
  }
};

// Reads one frame. kUnavailable with "connection closed" on a clean EOF
// before the first byte; kProtocol for a malformed frame.
Result<Frame> ReadFrame(int fd);

// Writes header and payload with one writev (retried until complete).
Status WriteFrame(int fd, const wire::Header& header, std::span<const uint8_t> payload);

// One frame to send; the payload must stay valid during the call.
struct OutFrame {
  wire::Header header;
  std::span<const uint8_t> payload;
};
// Writes the frames back to back with as few writev calls as IOV_MAX
// allows (retried until complete): one syscall for many small replies.
Status WriteFrames(int fd, std::span<const OutFrame> frames);
// The same on a socket, but only what it takes without blocking (sendmsg
// with MSG_DONTWAIT | MSG_NOSIGNAL): the bytes left over, possibly all of
// them, are appended to *rest for a thread that may block to send with
// WriteBytes. Errors other than a full socket buffer are returned.
Status WriteFramesNow(int fd, std::span<const OutFrame> frames, std::vector<uint8_t>* rest);
// Writes every byte (retried until complete).
Status WriteBytes(int fd, std::span<const uint8_t> bytes);
// Sends what the socket takes of `bytes` without blocking (MSG_DONTWAIT |
// MSG_NOSIGNAL, EINTR retried) and returns how many that was, possibly 0;
// errors other than a full socket buffer are returned.
Result<size_t> SendNow(int fd, std::span<const uint8_t> bytes);

// Reads frames through a buffer, so one read() brings in every small frame
// the peer has sent so far instead of two read() calls per frame. A payload
// larger than half the buffer is read straight into the frame. Same results
// as ReadFrame. One reader per FrameReader; not thread-safe.
class FrameReader {
 public:
  // aligned_writes: WRITE payloads go into Frame::aligned_payload, one copy
  // from the socket's bytes to where the disk write takes them.
  explicit FrameReader(int fd, size_t buffer_size = 256 << 10, bool aligned_writes = false);
  Result<Frame> Next();
  // A whole frame is already buffered: Next() will not block.
  bool HasBufferedFrame() const;

 private:
  // Reads until at least `want` bytes are buffered (want <= buffer size).
  // mid_frame: part of the frame was consumed already (for the EOF message).
  Status Fill(size_t want, bool mid_frame);
  size_t buffered() const { return end_ - start_; }

  int fd_;
  bool aligned_writes_;
  // Not zero-filled: an idle connection's buffer costs no resident memory
  // beyond the pages its frames touched.
  std::unique_ptr<uint8_t[]> buf_;
  size_t capacity_;
  size_t start_ = 0, end_ = 0;  // the unread bytes are buf_[start_, end_)
};

// Reads exactly buf.size() bytes; kUnavailable on EOF.
Status ReadFull(int fd, std::span<uint8_t> buf);

}  // namespace shorthorn
