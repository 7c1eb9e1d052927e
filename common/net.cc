// Design notes: a TCP connect is non-blocking and waited for with poll, so
// its timeout is its own and not the socket's send timeout; the socket is
// blocking again on return and every later send and receive is bounded by
// SO_SNDTIMEO / SO_RCVTIMEO, so no caller needs a poll loop. A receive
// timeout shows as EAGAIN from read(2), which Exchange reports as
// ETIMEDOUT. getaddrinfo's list is freed by a unique_ptr on every path.
#include "common/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>

namespace shorthorn {
namespace {

void SetTimeout(int fd, int which, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, which, &tv, sizeof(tv));
}

std::string OpText(wire::Op op) { return std::string(wire::OpName(static_cast<uint16_t>(op))); }

// Connects `fd` to `ai` within `timeout` (zero: no limit of ours).
Status ConnectOne(int fd, const addrinfo* ai, std::chrono::milliseconds timeout,
                  const std::string& what) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return ErrnoStatus(errno, what);
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return ErrnoStatus(ETIMEDOUT, what);
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return ErrnoStatus(err, what);
  }
  ::fcntl(fd, F_SETFL, flags);
  return Status::Ok();
}

}  // namespace

Result<HostPort> ParseHostPort(const std::string& address) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument, "address " + address + ": " + reason, EINVAL);
  };
  const std::string expected = "expected host:port or [address]:port";
  HostPort out;
  size_t colon;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return bad(expected);
    }
    out.host = address.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == std::string::npos) return bad(expected);
    out.host = address.substr(0, colon);
  }
  std::string port = address.substr(colon + 1);
  if (out.host.empty() || port.empty()) return bad(expected);
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || value > 65535) return bad("bad port '" + port + "' (1-65535)");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return bad("bad port '" + port + "' (1-65535)");
  out.port = static_cast<uint16_t>(value);
  return out;
}

Status SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  auto parsed = ParseHostPort(address);
  if (!parsed.ok()) return parsed.status();
  *host = parsed->host;
  *port = std::to_string(parsed->port);
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool IsLocalAddress(const std::string& address) {
  auto parsed = ParseHostPort(address);
  if (!parsed.ok()) return false;
  if (IsLoopbackHost(parsed->host)) return true;
  ifaddrs* found = nullptr;
  if (::getifaddrs(&found) != 0) return false;
  std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> list(found, &::freeifaddrs);
  for (ifaddrs* i = list.get(); i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char buf[NI_MAXHOST];
    socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (::getnameinfo(i->ifa_addr, len, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) == 0) {
      std::string a = buf;
      if (a.substr(0, a.find('%')) == parsed->host) return true;  // without a scope id
    }
  }
  return false;
}

std::string ReplicadSocketPath(const std::string& socket_dir, uint16_t port) {
  return socket_dir + "/" + std::to_string(port) + ".sock";
}

std::string LocalSocketPath(const std::string& address, const std::string& socket_dir) {
  if (socket_dir.empty()) return "";
  auto parsed = ParseHostPort(address);
  if (!parsed.ok() || !IsLoopbackHost(parsed->host)) return "";
  return ReplicadSocketPath(socket_dir, parsed->port);
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  if (ss.ss_family == AF_UNIX && len > offsetof(sockaddr_un, sun_path)) {
    auto* a = reinterpret_cast<sockaddr_un*>(&ss);
    std::string path(a->sun_path, ::strnlen(a->sun_path, len - offsetof(sockaddr_un, sun_path)));
    if (!path.empty()) return "unix:" + path;
  }
  return "local peer";
}

Result<UniqueFd> ConnectTcp(const std::string& address, std::chrono::milliseconds connect_timeout,
                            std::chrono::milliseconds io_timeout) {
  auto parsed = ParseHostPort(address);
  if (!parsed.ok()) return parsed.status();
  const std::string what = "connect to replicad " + address;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc =
      ::getaddrinfo(parsed->host.c_str(), std::to_string(parsed->port).c_str(), &hints, &found);
  if (rc != 0) {
    return Status(ErrorKind::kUnavailable,
                  what + ": resolve " + parsed->host + ": " + ::gai_strerror(rc), EHOSTUNREACH);
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  Status last(ErrorKind::kUnavailable, what + ": no address", EHOSTUNREACH);
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, what + ": socket");
      continue;
    }
    last = ConnectOne(fd.get(), ai, connect_timeout, what);
    if (!last.ok()) continue;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SetIoTimeouts(fd.get(), io_timeout);
    return fd;
  }
  return last;
}

Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds io_timeout) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    return Status(ErrorKind::kInvalidArgument, "socket path " + path + " is too long", EINVAL);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket for " + path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return ErrnoStatus(errno, "connect to replicad at " + path);
  }
  SetIoTimeouts(fd.get(), io_timeout);
  return fd;
}

void SetIoTimeouts(int fd, std::chrono::milliseconds timeout) {
  SetTimeout(fd, SO_RCVTIMEO, timeout);
  SetTimeout(fd, SO_SNDTIMEO, timeout);
}

void ClearReceiveTimeout(int fd) { SetTimeout(fd, SO_RCVTIMEO, std::chrono::milliseconds(0)); }

Result<Frame> Exchange(int fd, std::string_view peer, const wire::Header& request,
                       std::span<const uint8_t> payload) {
  const std::string what = OpText(request.op) + " to " + std::string(peer);
  if (Status s = WriteFrame(fd, request, payload); !s.ok()) {
    if (s.sys_errno() == EAGAIN) {
      return Status(ErrorKind::kUnavailable, what + ": no room to send in time", ETIMEDOUT);
    }
    return Status(ErrorKind::kUnavailable, what + ": " + s.message(), s.sys_errno());
  }
  // Late replies to earlier requests are few (a call has at most the
  // requests of its connection before it); a peer that keeps sending
  // frames answering nothing would otherwise hold the call past every
  // timeout.
  constexpr int kMaxSkippedFrames = 64;
  for (int skipped = 0;; ++skipped) {
    if (skipped > kMaxSkippedFrames) {
      return Status(ErrorKind::kProtocol,
                    what + ": more than " + std::to_string(kMaxSkippedFrames) +
                        " frames that answer no request of this call",
                    EPROTO);
    }
    auto frame = ReadFrame(fd);
    if (!frame.ok()) {
      const Status& s = frame.status();
      if (s.sys_errno() == EAGAIN) {
        return Status(ErrorKind::kUnavailable, what + ": no reply in time", ETIMEDOUT);
      }
      return Status(s.kind() == ErrorKind::kProtocol ? s.kind() : ErrorKind::kUnavailable,
                    what + ": " + s.message(), s.sys_errno());
    }
    if (!frame->header.is_reply() || frame->header.request_id != request.request_id) continue;
    if (frame->header.op != request.op) {
      return Status(ErrorKind::kProtocol,
                    what + ": the reply is one to " + OpText(frame->header.op), EPROTO);
    }
    return std::move(*frame);
  }
}

Status ReplyError(const wire::Header& reply, std::span<const uint8_t> payload) {
  std::string message(payload.begin(), payload.end());
  if (message.empty()) message = OpText(reply.op) + " failed";
  return Status(KindForErrno(reply.status), message, reply.status);
}

Result<boost::json::object> ParseJsonReply(wire::Op op, std::string_view peer,
                                           std::span<const uint8_t> payload) {
  if (payload.empty()) return boost::json::object();
  boost::system::error_code ec;
  auto value = boost::json::parse(
      std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), ec);
  if (ec || !value.is_object()) {
    return Status(ErrorKind::kProtocol,
                  OpText(op) + " to " + std::string(peer) + ": the reply is not a JSON object",
                  EPROTO);
  }
  return std::move(value.as_object());
}

Result<boost::json::object> ControlCall(int fd, wire::Op op, const boost::json::object& body,
                                        uint64_t epoch) {
  // Ids only need to differ on one connection; one counter for every
  // connection keeps this a plain function.
  static std::atomic<uint64_t> next_id{1};
  const std::string peer = PeerName(fd);
  std::string text = boost::json::serialize(body);
  auto payload = wire::AsBytes(text);
  auto reply = Exchange(fd, peer, wire::MakeRequest(op, next_id++, epoch, 0, 0, payload), payload);
  if (!reply.ok()) return reply.status();
  if (reply->header.status != 0) return ReplyError(reply->header, reply->payload);
  return ParseJsonReply(op, peer, reply->payload);
}

}  // namespace shorthorn
