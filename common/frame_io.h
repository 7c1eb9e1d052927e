// Reading and writing whole protocol frames on a blocking stream socket.
// Shared by replicad (server side) and fused (client side). ReadFrame
// validates the header with wire::DecodeHeader before allocating the payload,
// then verifies the payload checksum. A thread may read from one fd while
// another writes to it; concurrent writers must serialize themselves.
#pragma once

#include <span>
#include <vector>

#include "common/status.h"
#include "common/wire.h"

namespace shorthorn {

struct Frame {
  wire::Header header;
  std::vector<uint8_t> payload;
};

// Reads one frame. kUnavailable with "connection closed" on a clean EOF
// before the first byte; kProtocol for a malformed frame.
Result<Frame> ReadFrame(int fd);

// Writes header and payload with one writev (retried until complete).
Status WriteFrame(int fd, const wire::Header& header, std::span<const uint8_t> payload);

// Reads exactly buf.size() bytes; kUnavailable on EOF.
Status ReadFull(int fd, std::span<uint8_t> buf);

}  // namespace shorthorn
