#include "common/frame_io.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace shorthorn {

Status ReadFull(int fd, std::span<uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      return Status(ErrorKind::kUnavailable,
                    done == 0 ? "connection closed" : "connection closed mid-frame", ECONNRESET);
    } else if (errno != EINTR) {
      return ErrnoStatus(errno, "read from socket");
    }
  }
  return Status::Ok();
}

Result<Frame> ReadFrame(int fd) {
  uint8_t raw[wire::kHeaderSize];
  SH_RETURN_IF_ERROR(ReadFull(fd, raw));
  auto header = wire::DecodeHeader(raw);
  if (!header.ok()) return header.status();
  Frame frame;
  frame.header = *header;
  frame.payload.resize(frame.header.payload_length);  // bounded by DecodeHeader
  SH_RETURN_IF_ERROR(ReadFull(fd, frame.payload));
  SH_RETURN_IF_ERROR(wire::VerifyPayload(frame.header, frame.payload));
  return frame;
}

Status WriteFrame(int fd, const wire::Header& header, std::span<const uint8_t> payload) {
  uint8_t raw[wire::kHeaderSize];
  wire::EncodeHeader(header, raw);
  iovec iov[2] = {{raw, sizeof(raw)}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  int iovcnt = payload.empty() ? 1 : 2;
  iovec* cur = iov;
  while (iovcnt > 0) {
    ssize_t n = ::writev(fd, cur, iovcnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write to socket");
    }
    size_t left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= cur->iov_len) {
      left -= cur->iov_len;
      ++cur;
      --iovcnt;
    }
    if (iovcnt > 0) {
      cur->iov_base = static_cast<uint8_t*>(cur->iov_base) + left;
      cur->iov_len -= left;
    }
  }
  return Status::Ok();
}

}  // namespace shorthorn
