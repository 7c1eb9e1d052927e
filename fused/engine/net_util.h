// TCP helpers for the engine side: connect with a timeout, and a blocking
// request/reply exchange of one control frame (JSON payload), used while a
// connection has no reader thread yet (handshakes, CREATE/DELETE_REPLICA).
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "common/file_util.h"
#include "common/status.h"
#include "common/wire.h"

namespace shorthorn::fused {

// Connects to "host:port" within `timeout`; TCP_NODELAY set. The socket is
// blocking on return, with send/receive timeouts of `io_timeout`.
Result<UniqueFd> ConnectTcp(const std::string& address, std::chrono::milliseconds timeout,
                            std::chrono::milliseconds io_timeout);

// For "host:port" with a loopback host (127.0.0.0/8, ::1, localhost): the
// Unix socket path <socket_dir>/<port>.sock of a replicad on this host;
// otherwise (or with an empty socket_dir) "".
std::string LocalSocketPath(const std::string& address, const std::string& socket_dir);

// True when "host:port" names this host: a loopback address or one of this
// host's interface addresses (a replica there is preferred for reads).
bool IsLocalAddress(const std::string& address);

// Connects to the Unix stream socket `path` (a replicad on this host), with
// send/receive timeouts of `io_timeout`.
Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds io_timeout);

// Removes the receive timeout (for sockets served by a reader thread).
void ClearReceiveTimeout(int fd);

// Sends `op` with `body` and waits for its reply. A reply with a non-zero
// status becomes a Status of the errno's kind carrying the peer's message.
Result<boost::json::object> ControlCall(int fd, wire::Op op, const boost::json::object& body,
                                        uint64_t epoch);

// A Status for an error reply (status errno + message payload).
Status ReplyError(const wire::Header& reply, std::span<const uint8_t> payload);

}  // namespace shorthorn::fused
