// The network side of the replica protocol, in one place: replica addresses
// ("host:port", "[v6]:port"), which of them are this host, the Unix socket
// a replicad serves next to its TCP port, connecting (TCP or Unix), and the
// blocking exchange of one request for its reply. fused (the engine's
// replica clients), replicad (the listener, the rebuild puller's
// PeerClient), replica_tool and the tests all use these; nothing else
// parses an address or connects.
//
// Errors: a Status whose message names the address (or socket path, or
// peer) and the reason: "connect to replicad 10.0.0.7:9500: Connection
// refused". A malformed address is kInvalidArgument (EINVAL); a peer that
// cannot be reached, closes, or does not answer in time is kUnavailable; a
// malformed frame or reply is kProtocol (EPROTO).
//
// Timeouts: every socket returned here is blocking, with send and receive
// timeouts (SO_SNDTIMEO / SO_RCVTIMEO) of the `io_timeout` given; a zero
// timeout means none (wait as long as the kernel does).
//
// Threads: every function may be called from any thread. Exchange and
// ControlCall read and write `fd`: one caller per fd at a time.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "common/frame_io.h"
#include "common/status.h"
#include "common/wire.h"

namespace shorthorn {

// ---------------------------------------------------------------- addresses

// A parsed replica address. `host` is a name, an IPv4 address or an IPv6
// address without its brackets.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Parses "host:port" or "[v6-address]:port" (an IPv6 address without
// brackets also parses: the port follows the last ':'). The host must not
// be empty, the port is 1..65535. kInvalidArgument (EINVAL) naming the
// address otherwise.
Result<HostPort> ParseHostPort(const std::string& address);

// ParseHostPort with the port as text (for getaddrinfo and old callers).
Status SplitHostPort(const std::string& address, std::string* host, std::string* port);

// The one loopback rule: "localhost", an IPv4 address in 127.0.0.0/8, or
// the IPv6 address ::1 (host without brackets). A name is not resolved.
bool IsLoopbackHost(const std::string& host);

// True when "host:port" names this host: a loopback host, or one of this
// host's interface addresses (a replica there is preferred for reads).
// False for a malformed address. Reads the interface list (getifaddrs).
bool IsLocalAddress(const std::string& address);

// The Unix socket a replicad listening on TCP `port` serves in
// `socket_dir`: "<socket_dir>/<port>.sock". replicad binds it, fused
// connects to it: the name is made only here.
std::string ReplicadSocketPath(const std::string& socket_dir, uint16_t port);

// For "host:port" with a loopback host: ReplicadSocketPath(socket_dir,
// port); "" otherwise, with an empty socket_dir, or for a malformed address.
std::string LocalSocketPath(const std::string& address, const std::string& socket_dir);

// "1.2.3.4:5678" or "[::1]:5678" for a connected TCP socket, "unix:<path>"
// for a Unix socket connected to a named one, "local peer" for another
// Unix socket, "unknown peer" when getpeername fails. For messages.
std::string PeerName(int fd);

// ---------------------------------------------------------------- connecting

// Connects to the replicad at "host:port" (a name is resolved; every
// address it has is tried in turn) within `connect_timeout` per address,
// with TCP_NODELAY. kInvalidArgument for a malformed address; kUnavailable
// when the name does not resolve (EHOSTUNREACH), the connect is refused or
// times out (ETIMEDOUT). The socket is not authenticated yet.
Result<UniqueFd> ConnectTcp(const std::string& address, std::chrono::milliseconds connect_timeout,
                            std::chrono::milliseconds io_timeout);

// Connects to the Unix stream socket `path` (a replicad on this host). A
// local connect does not wait for a far peer: there is no connect timeout.
// ENOENT when there is no such socket (the caller may then use TCP).
Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds io_timeout);

// Sets both the send and the receive timeout of `fd` (zero: none).
void SetIoTimeouts(int fd, std::chrono::milliseconds timeout);

// Removes the receive timeout (for a socket served by a reader thread,
// which waits for replies as long as the connection lives).
void ClearReceiveTimeout(int fd);

// ---------------------------------------------------------------- one request

// Sends `request` with `payload` on `fd` and reads frames until the reply
// to request.request_id arrives; other frames (late replies to earlier
// requests) are skipped, at most 64 of them (then kProtocol). Returns the
// reply frame whatever its status (see ReplyError). Errors, each "<OP> to
// <peer>: <reason>": the send fails or the stream ends (kUnavailable, with
// the errno: ECONNRESET for a closed connection), no frame within the
// receive timeout (kUnavailable, ETIMEDOUT, "no reply in time"), a
// malformed frame or too many skipped ones (kProtocol). After an error the
// stream's position is unknown: do not use `fd` again.
Result<Frame> Exchange(int fd, std::string_view peer, const wire::Header& request,
                       std::span<const uint8_t> payload);

// The Status of an error reply (reply.status != 0): the errno's kind, the
// errno, and the peer's message ("<OP> failed" when it sent none).
Status ReplyError(const wire::Header& reply, std::span<const uint8_t> payload);

// A control reply's payload as a JSON object ("" is the empty object);
// kProtocol (EPROTO) "<OP> to <peer>: the reply is not a JSON object".
Result<boost::json::object> ParseJsonReply(wire::Op op, std::string_view peer,
                                           std::span<const uint8_t> payload);

// One control request on a connection with nothing else outstanding: sends
// `op` with `body` at `epoch` and waits for its reply (Exchange). An error
// reply becomes ReplyError's Status; a success its JSON object. The peer is
// named by PeerName(fd) in messages. Request ids come from one counter of
// the process, so a reply is never taken for that of an earlier call.
Result<boost::json::object> ControlCall(int fd, wire::Op op, const boost::json::object& body,
                                        uint64_t epoch);

}  // namespace shorthorn
