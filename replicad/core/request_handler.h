// RequestHandler: the protocol's meaning, without sockets. Given one decoded,
// checksum-verified request frame and the state of the connection it came
// on, it performs the op against the ReplicaStore and produces exactly one
// reply through `reply`, now or later from an engine thread. doc/protocol.md
// describes the ops and their errors.
//
// A frame that breaks the protocol (the reply flag on a request, a control
// payload that is not a JSON object) is not answered: Handle returns a
// kProtocol Status and the caller closes the connection.
//
// Threads: Handle is called by one thread per connection, in frame order, so
// a HELLO takes effect before the next frame of that connection is handled.
// Control ops complete before Handle returns; data ops may complete later.
// The handler itself is stateless apart from the store and its identity
// (fixed at construction, for REPLICAD_INFO) and thread-safe.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/frame_io.h"
#include "common/status.h"
#include "common/wire.h"
#include "replicad/core/replica.h"
#include "replicad/core/replica_store.h"

namespace shorthorn::replicad {

// Per-connection state, owned by the connection's reader.
struct ConnectionState {
  std::shared_ptr<Replica> replica;  // bound by HELLO
  // The request being handled is the last one received so far: the
  // connection's thread has nothing else to do while it waits on the disk.
  bool nothing_queued = false;
};

// Sends the reply to `request`: status 0 or an errno; payload is READ data,
// a JSON object (control ops) or an error message.
using ReplyFn =
    std::function<void(const wire::Header& request, int32_t status, std::vector<uint8_t> payload)>;

// Most extents one LAYER_EXTENTS reply carries (~45 bytes of JSON each at
// worst, so a page stays near 180 KiB, far below kMaxControlPayload).
inline constexpr uint64_t kMaxExtentsPerPage = 4096;

// What REPLICAD_INFO says about this replicad besides its data directory
// (replicad.conf host-id, resolved at start, and tags; gethostname).
struct ReplicadIdentity {
  std::string host_id;  // never "" in the daemon (config::ResolveHostId)
  std::string hostname;
  std::vector<std::string> tags;
};

class RequestHandler {
 public:
  explicit RequestHandler(ReplicaStore* store, ReplicadIdentity identity = {})
      : store_(store), identity_(std::move(identity)) {}

  [[nodiscard]] Status Handle(ConnectionState* state, Frame frame, ReplyFn reply);

 private:
  Status HandleControl(ConnectionState* state, const Frame& frame, const ReplyFn& reply);
  void HandleData(ConnectionState* state, Frame frame, ReplyFn reply);
  // READ_SNAPSHOT: a JSON request answered with data, synchronously.
  Status HandleReadSnapshot(ConnectionState* state, const Frame& frame, const ReplyFn& reply);
  // SNAPSHOT ... LAYER_EXTENTS: need a HELLO-bound connection and its epoch.
  void HandleLayerOp(ConnectionState* state, const wire::Header& h, const boost::json::object& o,
                     const ReplyFn& reply);

  ReplicaStore* const store_;
  const ReplicadIdentity identity_;
};

// The reply payload for an error Status: its message, cut to the limit.
std::vector<uint8_t> ErrorPayload(const Status& status);

}  // namespace shorthorn::replicad
