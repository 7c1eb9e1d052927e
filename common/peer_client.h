// PeerClient: a small blocking client of the replica protocol: a replicad
// that talks to another replicad (the rebuild puller on a target reads a
// source's layers), fused reading a snapshot for a backup, and replica_tool.
// One request at a time per client: Call is common/net.h's Exchange (send a
// frame, read frames until the reply with the same request id arrives) with
// request ids of its own.
//
// Errors: a reply with status != 0 becomes a Status with that errno and the
// peer's message (ReplyError); a broken stream or a timeout is kUnavailable
// and leaves the client unusable (make a new one). Messages name the
// address: "<OP> to <address>: <reason>".
//
// Threads: Call from one thread at a time; Shutdown from any thread (it
// makes a blocked Call return kUnavailable at once, for cancellation).
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/auth.h"
#include "common/file_util.h"
#include "common/net.h"  // SplitHostPort and the rest, for PeerClient's users
#include "common/status.h"
#include "common/wire.h"

namespace shorthorn {

class PeerClient {
 public:
  // Connects to "host:port" or "[v6-address]:port" (common/net.h's
  // ConnectTcp) and authenticates with `key` (common/auth.h; required).
  // `timeout_ms` bounds the connect and every later send and receive
  // (0: no limit).
  static Result<std::unique_ptr<PeerClient>> Connect(const std::string& address, int timeout_ms,
                                                     const auth::ClusterKey* key);
  // Takes a connected, authenticated stream socket (TCP or Unix) whose send
  // and receive timeouts are already set; `address` names the peer in
  // messages.
  static std::unique_ptr<PeerClient> Adopt(UniqueFd fd, std::string address);

  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  // One request; returns the reply payload.
  Result<std::vector<uint8_t>> Call(wire::Op op, uint64_t epoch, uint64_t offset, uint64_t length,
                                    std::span<const uint8_t> payload);
  // A control op with a JSON object request and reply (an empty reply is
  // the empty object).
  Result<boost::json::object> CallJson(wire::Op op, uint64_t epoch,
                                       const boost::json::object& request);
  void Shutdown();
  const std::string& address() const { return address_; }

 private:
  PeerClient(UniqueFd fd, std::string address) : fd_(std::move(fd)), address_(std::move(address)) {}

  UniqueFd fd_;
  const std::string address_;
  uint64_t next_id_ = 1;
  std::atomic<bool> broken_{false};
};

}  // namespace shorthorn
