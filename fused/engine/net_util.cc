#include "fused/engine/net_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/frame_io.h"
#include "config/daemon_config.h"

namespace shorthorn::fused {
namespace {

void SetTimeout(int fd, int which, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = t.count() / 1000;
  tv.tv_usec = (t.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, which, &tv, sizeof(tv));
}

Status ConnectOne(int fd, const addrinfo* ai, std::chrono::milliseconds timeout,
                  const std::string& address) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return ErrnoStatus(errno, "connect to replicad " + address);
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n == 0) return ErrnoStatus(ETIMEDOUT, "connect to replicad " + address);
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return ErrnoStatus(err, "connect to replicad " + address);
  }
  fcntl(fd, F_SETFL, flags);
  return Status::Ok();
}

}  // namespace

Result<UniqueFd> ConnectTcp(const std::string& address, std::chrono::milliseconds timeout,
                            std::chrono::milliseconds io_timeout) {
  std::string host;
  uint16_t port;
  SH_RETURN_IF_ERROR(config::ParseAddress(address, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return Status(ErrorKind::kUnavailable, "resolve replicad " + address + ": " + gai_strerror(rc),
                  EHOSTUNREACH);
  }
  Status last(ErrorKind::kUnavailable, "connect to replicad " + address + ": no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, "socket for " + address);
      continue;
    }
    last = ConnectOne(fd.get(), ai, timeout, address);
    if (!last.ok()) continue;
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SetTimeout(fd.get(), SO_RCVTIMEO, io_timeout);
    SetTimeout(fd.get(), SO_SNDTIMEO, io_timeout);
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

std::string LocalSocketPath(const std::string& address, const std::string& socket_dir) {
  if (socket_dir.empty()) return "";
  std::string host;
  uint16_t port;
  if (!config::ParseAddress(address, &host, &port).ok()) return "";
  in_addr v4{};
  bool loopback = host == "localhost" || host == "::1" ||
                  (::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
  return loopback ? socket_dir + "/" + std::to_string(port) + ".sock" : "";
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
  // A local connect does not wait for a peer far away: no timeout needed.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return ErrnoStatus(errno, "connect to replicad at " + path);
  }
  SetTimeout(fd.get(), SO_RCVTIMEO, io_timeout);
  SetTimeout(fd.get(), SO_SNDTIMEO, io_timeout);
  return fd;
}

void ClearReceiveTimeout(int fd) { SetTimeout(fd, SO_RCVTIMEO, std::chrono::milliseconds(0)); }

Status ReplyError(const wire::Header& reply, std::span<const uint8_t> payload) {
  std::string message(payload.begin(), payload.end());
  if (message.empty())
    message = std::string(wire::OpName(static_cast<uint16_t>(reply.op))) + " failed";
  return Status(KindForErrno(reply.status), message, reply.status);
}

Result<boost::json::object> ControlCall(int fd, wire::Op op, const boost::json::object& body,
                                        uint64_t epoch) {
  static std::atomic<uint64_t> next_id{1};  // ids only need to differ per connection
  std::string text = boost::json::serialize(body);
  uint64_t id = next_id++;
  auto payload = wire::AsBytes(text);
  SH_RETURN_IF_ERROR(WriteFrame(fd, wire::MakeRequest(op, id, epoch, 0, 0, payload), payload));
  auto reply = ReadFrame(fd);
  if (!reply.ok()) {
    if (reply.status().sys_errno() == EAGAIN) {
      return Status(ErrorKind::kUnavailable,
                    std::string(wire::OpName(static_cast<uint16_t>(op))) + ": no reply in time",
                    ETIMEDOUT);
    }
    return reply.status();
  }
  if (!reply->header.is_reply() || reply->header.request_id != id || reply->header.op != op) {
    return Status(ErrorKind::kProtocol, "replicad answered a different request", EPROTO);
  }
  if (reply->header.status != 0) return ReplyError(reply->header, reply->payload);
  if (reply->payload.empty()) return boost::json::object();
  boost::system::error_code ec;
  auto value = boost::json::parse(
      std::string_view(reinterpret_cast<const char*>(reply->payload.data()), reply->payload.size()),
      ec);
  if (ec || !value.is_object()) {
    return Status(ErrorKind::kProtocol, "replicad sent a reply that is not a JSON object", EPROTO);
  }
  return value.as_object();
}

bool IsLocalAddress(const std::string& address) {
  std::string host;
  uint16_t port;
  if (!config::ParseAddress(address, &host, &port).ok()) return false;
  if (host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1") return true;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool local = false;
  for (ifaddrs* i = list; i != nullptr && !local; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char buf[NI_MAXHOST];
    socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (getnameinfo(i->ifa_addr, len, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) == 0) {
      std::string a = buf;
      a = a.substr(0, a.find('%'));
      local = a == host;
    }
  }
  freeifaddrs(list);
  return local;
}

}  // namespace shorthorn::fused
