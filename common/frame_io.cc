#include "common/frame_io.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "common/file_util.h"

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

namespace {

// writev until every byte of iov[0, count) is written (iov is consumed).
Status WriteAll(int fd, iovec* iov, size_t count) {
  while (count > 0) {
    ssize_t n = ::writev(fd, iov, static_cast<int>(std::min<size_t>(count, IOV_MAX)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write to socket");
    }
    size_t left = static_cast<size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return Status::Ok();
}

}  // namespace

// One frame, on every request fused sends: stack buffers, no allocation.
Status WriteFrame(int fd, const wire::Header& header, std::span<const uint8_t> payload) {
  uint8_t raw[wire::kHeaderSize];
  wire::EncodeHeader(header, raw);
  iovec iov[2] = {{raw, sizeof(raw)}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  return WriteAll(fd, iov, payload.empty() ? 1 : 2);
}

namespace {

// Headers encoded into `headers`, and the iovecs of every frame in order.
std::vector<iovec> FrameIovecs(std::span<const OutFrame> frames, std::vector<uint8_t>* headers) {
  headers->resize(frames.size() * wire::kHeaderSize);
  std::vector<iovec> iov;
  iov.reserve(frames.size() * 2);
  for (size_t i = 0; i < frames.size(); ++i) {
    uint8_t* raw = headers->data() + i * wire::kHeaderSize;
    wire::EncodeHeader(frames[i].header, raw);
    iov.push_back({raw, wire::kHeaderSize});
    if (!frames[i].payload.empty()) {
      iov.push_back({const_cast<uint8_t*>(frames[i].payload.data()), frames[i].payload.size()});
    }
  }
  return iov;
}

}  // namespace

Status WriteFrames(int fd, std::span<const OutFrame> frames) {
  std::vector<uint8_t> headers;
  std::vector<iovec> iov = FrameIovecs(frames, &headers);
  return WriteAll(fd, iov.data(), iov.size());
}

namespace {

// Sends iov[*first, end) without blocking; on return iov[*first, end) is
// what the socket did not take (the first of them trimmed).
Status SendIovecsNow(int fd, std::span<iovec> iov, size_t* first) {
  while (*first < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + *first;
    msg.msg_iovlen = std::min<size_t>(iov.size() - *first, IOV_MAX);
    ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ErrnoStatus(errno, "write to socket");
    }
    size_t left = static_cast<size_t>(n);
    while (*first < iov.size() && left >= iov[*first].iov_len) left -= iov[(*first)++].iov_len;
    if (*first < iov.size()) {
      iov[*first].iov_base = static_cast<uint8_t*>(iov[*first].iov_base) + left;
      iov[*first].iov_len -= left;
    }
  }
  return Status::Ok();
}

}  // namespace

Status WriteFramesNow(int fd, std::span<const OutFrame> frames, std::vector<uint8_t>* rest) {
  std::vector<uint8_t> headers;
  std::vector<iovec> iov = FrameIovecs(frames, &headers);
  size_t first = 0;  // iov[first, size) is left to write
  SH_RETURN_IF_ERROR(SendIovecsNow(fd, iov, &first));
  for (; first < iov.size(); ++first) {
    const auto* p = static_cast<const uint8_t*>(iov[first].iov_base);
    rest->insert(rest->end(), p, p + iov[first].iov_len);
  }
  return Status::Ok();
}

Result<size_t> SendNow(int fd, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return size_t{0};
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  size_t first = 0;
  SH_RETURN_IF_ERROR(SendIovecsNow(fd, {&iov, 1}, &first));
  return first == 1 ? bytes.size() : bytes.size() - iov.iov_len;
}

Status WriteBytes(int fd, std::span<const uint8_t> bytes) {
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  return WriteAll(fd, &iov, bytes.empty() ? 0 : 1);
}

FrameReader::FrameReader(int fd, size_t buffer_size, bool aligned_writes)
    : fd_(fd),
      aligned_writes_(aligned_writes),
      buf_(new uint8_t[std::max(buffer_size, 2 * wire::kHeaderSize)]),
      capacity_(std::max(buffer_size, 2 * wire::kHeaderSize)) {}

Status FrameReader::Fill(size_t want, bool mid_frame) {
  if (capacity_ - start_ < want) {  // compact: the frame must fit behind start_
    std::memmove(buf_.get(), buf_.get() + start_, buffered());
    end_ -= start_;
    start_ = 0;
  }
  while (buffered() < want) {
    ssize_t n = ::read(fd_, buf_.get() + end_, capacity_ - end_);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
    } else if (n == 0) {
      return Status(
          ErrorKind::kUnavailable,
          buffered() == 0 && !mid_frame ? "connection closed" : "connection closed mid-frame",
          ECONNRESET);
    } else if (errno != EINTR) {
      return ErrnoStatus(errno, "read from socket");
    }
  }
  return Status::Ok();
}

bool FrameReader::HasBufferedFrame() const {
  if (buffered() < wire::kHeaderSize) return false;
  auto header =
      wire::DecodeHeader(std::span<const uint8_t>(buf_.get() + start_, wire::kHeaderSize));
  // A bad header is "ready" too: Next() reports it without blocking.
  return !header.ok() || buffered() - wire::kHeaderSize >= header->payload_length;
}

Result<Frame> FrameReader::Next() {
  SH_RETURN_IF_ERROR(Fill(wire::kHeaderSize, false));
  auto header =
      wire::DecodeHeader(std::span<const uint8_t>(buf_.get() + start_, wire::kHeaderSize));
  if (!header.ok()) return header.status();
  start_ += wire::kHeaderSize;
  Frame frame;
  frame.header = *header;
  size_t length = frame.header.payload_length;  // bounded by DecodeHeader
  std::span<uint8_t> dst;
  if (aligned_writes_ && frame.header.op == wire::Op::kWrite && !frame.header.is_reply() &&
      length > 0) {
    frame.aligned_payload = AllocateDirectIoBuffer(length);
    if (!frame.aligned_payload) {
      return Status(ErrorKind::kUnavailable,
                    "frame: no memory for a " + std::to_string(length) + "-byte payload", ENOMEM);
    }
    dst = std::span<uint8_t>(frame.aligned_payload.get(), length);
  } else {
    frame.payload.resize(length);
    dst = frame.payload;
  }
  if (length > capacity_ / 2) {  // what is buffered is copied, the rest read into place
    size_t have = std::min(length, buffered());
    std::memcpy(dst.data(), buf_.get() + start_, have);
    start_ += have;
    SH_RETURN_IF_ERROR(ReadFull(fd_, dst.subspan(have)));
  } else {
    SH_RETURN_IF_ERROR(Fill(length, true));
    // An empty payload's dst.data() is null: memcpy(nullptr, ..., 0) is UB.
    if (length > 0) std::memcpy(dst.data(), buf_.get() + start_, length);
    start_ += length;
  }
  if (start_ == end_) start_ = end_ = 0;
  SH_RETURN_IF_ERROR(wire::VerifyPayload(frame.header, dst));
  return frame;
}

}  // namespace shorthorn
