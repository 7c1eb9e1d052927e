// Design notes: timeouts are socket options (SO_SNDTIMEO also bounds
// connect() on Linux), so the client needs no poll loop. A timeout or a
// shutdown mid-frame leaves the stream at an unknown position: the client
// marks itself broken rather than risk reading the wrong reply.
#include "common/peer_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/json.hpp>

#include <cerrno>

#include "common/frame_io.h"

namespace shorthorn {
namespace {

namespace json = boost::json;

Status Unavailable(const std::string& what) {
  return Status(ErrorKind::kUnavailable, what, ECONNRESET);
}

}  // namespace

Status SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  auto bad = [&] {
    return Status(ErrorKind::kInvalidArgument,
                  "address " + address + ": expected host:port or [address]:port", EINVAL);
  };
  size_t colon;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return bad();
    }
    *host = address.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == std::string::npos) return bad();
    *host = address.substr(0, colon);
  }
  *port = address.substr(colon + 1);
  if (host->empty() || port->empty() ||
      port->find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  return Status::Ok();
}

Result<std::unique_ptr<PeerClient>> PeerClient::Connect(const std::string& address, int timeout_ms,
                                                        const auth::ClusterKey* key) {
  if (key == nullptr) {
    return Status(ErrorKind::kNotAuthorized, "connect to " + address + ": no cluster key", EACCES);
  }
  std::string host, port;
  SH_RETURN_IF_ERROR(SplitHostPort(address, &host, &port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status(ErrorKind::kUnavailable,
                  "connect to " + address + ": resolve " + host + ": " + ::gai_strerror(rc),
                  EHOSTUNREACH);
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  Status last = Unavailable("connect to " + address + ": no address");
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, "connect to " + address + ": socket");
      continue;
    }
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus(errno == EINPROGRESS ? ETIMEDOUT : errno, "connect to " + address);
      continue;
    }
    if (Status s = auth::ClientHandshake(fd.get(), *key, address); !s.ok()) return s;
    return std::unique_ptr<PeerClient>(new PeerClient(std::move(fd), address));
  }
  return last;
}

std::unique_ptr<PeerClient> PeerClient::Adopt(UniqueFd fd, std::string address) {
  return std::unique_ptr<PeerClient>(new PeerClient(std::move(fd), std::move(address)));
}

Result<std::vector<uint8_t>> PeerClient::Call(wire::Op op, uint64_t epoch, uint64_t offset,
                                              uint64_t length, std::span<const uint8_t> payload) {
  std::string what = std::string(wire::OpName(static_cast<uint16_t>(op))) + " to " + address_;
  if (broken_.load()) return Unavailable(what + ": the connection is closed");
  uint64_t id = next_id_++;
  wire::Header h = wire::MakeRequest(op, id, epoch, offset, length, payload);
  if (Status s = WriteFrame(fd_.get(), h, payload); !s.ok()) {
    broken_ = true;
    return Unavailable(what + ": " + s.message());
  }
  for (;;) {
    auto frame = ReadFrame(fd_.get());
    if (!frame.ok()) {
      broken_ = true;
      const Status& s = frame.status();
      if (s.sys_errno() == EAGAIN) return Unavailable(what + ": no reply (timeout)");
      return Status(s.kind() == ErrorKind::kProtocol ? s.kind() : ErrorKind::kUnavailable,
                    what + ": " + s.message(), s.sys_errno());
    }
    if (!frame->header.is_reply() || frame->header.request_id != id) continue;
    if (frame->header.status != 0) {
      std::string message(frame->payload.begin(), frame->payload.end());
      return Status(KindForErrno(frame->header.status), message, frame->header.status);
    }
    return std::move(frame->payload);
  }
}

Result<boost::json::object> PeerClient::CallJson(wire::Op op, uint64_t epoch,
                                                 const boost::json::object& request) {
  std::string text = json::serialize(request);
  auto reply = Call(op, epoch, 0, 0, wire::AsBytes(text));
  if (!reply.ok()) return reply.status();
  json::error_code ec;
  json::value v = json::parse(
      std::string_view(reinterpret_cast<const char*>(reply->data()), reply->size()), ec);
  if (ec || !v.is_object()) {
    return Status(ErrorKind::kProtocol,
                  std::string(wire::OpName(static_cast<uint16_t>(op))) + " to " + address_ +
                      ": the reply is not a JSON object",
                  EPROTO);
  }
  return std::move(v.as_object());
}

void PeerClient::Shutdown() {
  broken_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace shorthorn
