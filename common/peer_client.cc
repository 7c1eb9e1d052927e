// Design notes: the connect, the framing and the wait for a reply are
// common/net.h's; what is PeerClient's own is the request id counter and
// "broken": a timeout or a shutdown mid-frame leaves the stream at an
// unknown position, so the client refuses later calls rather than risk
// reading the wrong reply.
#include "common/peer_client.h"

#include <sys/socket.h>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>

namespace shorthorn {

Result<std::unique_ptr<PeerClient>> PeerClient::Connect(const std::string& address, int timeout_ms,
                                                        const auth::ClusterKey* key) {
  if (key == nullptr) {
    return Status(ErrorKind::kNotAuthorized, "connect to " + address + ": no cluster key", EACCES);
  }
  std::chrono::milliseconds timeout(timeout_ms);
  auto fd = ConnectTcp(address, timeout, timeout);
  if (!fd.ok()) return fd.status();
  SH_RETURN_IF_ERROR(auth::ClientHandshake(fd->get(), *key, address));
  return std::unique_ptr<PeerClient>(new PeerClient(std::move(*fd), address));
}

std::unique_ptr<PeerClient> PeerClient::Adopt(UniqueFd fd, std::string address) {
  return std::unique_ptr<PeerClient>(new PeerClient(std::move(fd), std::move(address)));
}

Result<std::vector<uint8_t>> PeerClient::Call(wire::Op op, uint64_t epoch, uint64_t offset,
                                              uint64_t length, std::span<const uint8_t> payload) {
  if (broken_.load()) {
    return Status(ErrorKind::kUnavailable,
                  std::string(wire::OpName(static_cast<uint16_t>(op))) + " to " + address_ +
                      ": the connection is closed",
                  ECONNRESET);
  }
  auto reply = Exchange(fd_.get(), address_,
                        wire::MakeRequest(op, next_id_++, epoch, offset, length, payload), payload);
  if (!reply.ok()) {
    broken_ = true;
    return reply.status();
  }
  if (reply->header.status != 0) return ReplyError(reply->header, reply->payload);
  return std::move(reply->payload);
}

Result<boost::json::object> PeerClient::CallJson(wire::Op op, uint64_t epoch,
                                                 const boost::json::object& request) {
  std::string text = boost::json::serialize(request);
  auto reply = Call(op, epoch, 0, 0, wire::AsBytes(text));
  if (!reply.ok()) return reply.status();
  return ParseJsonReply(op, address_, *reply);
}

void PeerClient::Shutdown() {
  broken_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);
}

}  // namespace shorthorn
