// ReplicaClient: the engine's side of the replica protocol (doc/protocol.md)
// for one replica on one replicad. It owns several TCP connections; requests
// are pipelined (many in flight per connection, matched by request id) and a
// reader thread per connection completes them. A watchdog fails the client
// when a request stays unanswered past the replica timeout. A request made
// while a SendBatch is open on the thread (common/send_batch.h) is copied
// and held until the batch closes, unless its payload is over 64 KiB: then
// it is written at once, after what the batch holds for its connection.
//
// Once failed (connection lost, timeout, protocol error, fenced), every
// pending and later request completes with the failure; a client is never
// revived (the engine makes a new one). Thread-safe.
//
// The static control calls (CreateReplica, DeleteReplica) use a short-lived
// connection of their own and block the caller for at most the connect
// timeout plus the replica timeout.
#pragma once

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/auth.h"
#include "common/control_messages.h"
#include "common/file_util.h"
#include "common/frame_io.h"
#include "common/peer_client.h"
#include "common/status.h"
#include "common/wire.h"
#include "fused/engine/backend.h"

namespace shorthorn::fused {

struct ReplicaTarget {
  std::string address;  // "host:port"
  std::string volume;
  std::string replica;  // replica name on that replicad
};

struct ClientOptions {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds request{8000};
  // Where replicads on this host put their Unix sockets (<dir>/<port>.sock,
  // the replicad's socket-dir). A replica whose address is a loopback
  // address is reached through <dir>/<port>.sock when that socket accepts
  // the connection, else over TCP. Empty: TCP only.
  std::string local_socket_dir;
  // Every connection authenticates with it (common/auth.h); required.
  std::shared_ptr<const auth::ClusterKey> key;
  // This fused's id (<state-dir>/fused-id), sent with OPEN, CREATE and
  // DELETE: a replica another fused imported refuses them (kMoved). Empty:
  // not checked.
  std::string owner;
};

// One replica as LIST_REPLICAS reports it (its replica.json).
struct ListedReplica {
  std::string address;  // the replicad asked
  std::string name;
  std::string volume;
  uint64_t size = 0;
  uint64_t epoch = 0;
  uint64_t generation = 0;
  bool rebuilding = false;
  bool open = false;  // its last session did not end with a close
  std::string owner;
  std::vector<std::string> snapshots;
};

// A replicad as REPLICAD_INFO reports it (doc/protocol.md): where it runs
// and how much room its data directory has, for placement (replica_rules.h).
struct ReplicadFacts {
  std::string address;             // the replicad asked
  std::string host_id;             // its host-id (names.h ValidateHostId)
  std::string hostname;            // for messages; may be ""
  std::vector<std::string> tags;   // its tags ("ssd", "zone=a"; names.h ValidateTag)
  uint64_t total_bytes = 0;        // size of the data directory's file system
  uint64_t free_bytes = 0;         // available to the replicad there (statvfs f_bavail)
  uint64_t provisioned_bytes = 0;  // sum of the sizes of the replicas it holds
  uint32_t replicas = 0;           // replicas in its data directory (every volume)
};

// Parses a REPLICAD_INFO reply from `address`: kProtocol naming the field
// when one is missing, of the wrong type, or invalid (a bad host id or tag,
// free above total, more than 32 tags).
// Also refused: a duplicate tag or two zone=... tags, a number that is not
// an unsigned 64-bit integer (negative, fractional), replicas above
// UINT32_MAX, and a hostname (optional) longer than 255 characters or
// holding a control character. Pure.
Result<ReplicadFacts> ParseReplicadInfo(const boost::json::object& reply,
                                        const std::string& address);

// One of ReplicaClient's layer ops with its request bound: what a fan-out
// to every replica of a volume sends (VolumeService::CallAllLocked). Called
// with each replica and the volume's epoch.
using ReplicaCall = std::function<Status(const ReplicaTarget& target, uint64_t epoch,
                                         const ClientOptions& options)>;
ReplicaCall SnapshotCall(msg::SnapshotRequest request);
ReplicaCall DeleteSnapshotCall(std::string snapshot);
ReplicaCall RevertCall(std::string snapshot);
ReplicaCall ExpandCall(uint64_t size);
ReplicaCall VerifyCall();

// READ_SNAPSHOT_VIEW (doc/protocol.md) of one snapshot, on a connection of
// its own bound to the replica at `epoch` (ReplicaClient::ConnectBound):
// blocking, one read at a time; for one backup worker. Errors are not
// given a context (the caller names what it reads).
class SnapshotViewReader {
 public:
  static Result<std::unique_ptr<SnapshotViewReader>> Open(const ReplicaTarget& target,
                                                          uint64_t epoch,
                                                          const std::string& snapshot,
                                                          const ClientOptions& options);
  // Exactly buf.size() (<= wire::kMaxIoLength) bytes of the snapshot from
  // `offset`; a reply of another length is kProtocol.
  Status Read(uint64_t offset, std::span<uint8_t> buf);

 private:
  SnapshotViewReader(std::unique_ptr<PeerClient> client, uint64_t epoch, std::string request)
      : client_(std::move(client)), epoch_(epoch), request_(std::move(request)) {}

  const std::unique_ptr<PeerClient> client_;
  const uint64_t epoch_;
  const std::string request_;  // msg::ReadSnapshotRequest, serialized once
};

class ReplicaClient : public Backend {
 public:
  // Connects `connections` sockets, opens the replica at `epoch` (fencing
  // older engines) and binds every connection with HELLO.
  static Result<std::unique_ptr<ReplicaClient>> Open(const ReplicaTarget& target, uint64_t epoch,
                                                     int connections, const ClientOptions& options);

  // `rebuilding`: the replica is created as a rebuild target (its head has
  // no lower layers yet: UNMAP zero-fills, unaligned writes are refused).
  static Status CreateReplica(const ReplicaTarget& target, uint64_t size,
                              const ClientOptions& options, bool rebuilding = false);
  // The replicas of `volume` on the replicad at `address` (LIST_REPLICAS).
  // A reply that is not as doc/protocol.md says is a kProtocol error.
  static Result<std::vector<ListedReplica>> ListReplicas(const std::string& address,
                                                         const std::string& volume,
                                                         const ClientOptions& options);
  // REPLICAD_INFO on a short-lived connection (no replica, no HELLO).
  static Result<ReplicadFacts> Info(const std::string& address, const ClientOptions& options);
  // Makes options.owner the replica's owner and its epoch `epoch` (OPEN
  // with take_over, then CLOSE): the fused that owned it is fenced.
  static Status ClaimReplica(const ReplicaTarget& target, uint64_t epoch,
                             const ClientOptions& options);
  // `epoch`: the volume's newest epoch; replicad refuses (ESTALE) to delete
  // a replica a newer engine has opened.
  static Status DeleteReplica(const ReplicaTarget& target, uint64_t epoch,
                              const ClientOptions& options);
  // A connection bound to the replica at `epoch` (OPEN_REPLICA, which is a
  // no-op when already open at that epoch, then HELLO), blocking, with the
  // request timeout on sends and receives: for a PeerClient
  // (SnapshotViewReader reads snapshots for backups through one).
  static Result<UniqueFd> ConnectBound(const ReplicaTarget& target, uint64_t epoch,
                                       const ClientOptions& options);

  // Layer ops (doc/protocol.md), each one request on a short-lived
  // connection of its own bound to the replica at `epoch` (ConnectBound):
  // fenced like data, but never waiting behind it. Errors name the op, the
  // replica and its address ("LIST_LAYERS on replica r1 (10.0.0.1:7400):
  // ..."); a reply that is not as the protocol says is kProtocol.
  static Result<msg::LayerList> ListLayers(const ReplicaTarget& target, uint64_t epoch,
                                           const ClientOptions& options);
  static Status Snapshot(const ReplicaTarget& target, uint64_t epoch,
                         const msg::SnapshotRequest& request, const ClientOptions& options);
  static Status DeleteSnapshot(const ReplicaTarget& target, uint64_t epoch,
                               const std::string& snapshot, const ClientOptions& options);
  static Status Revert(const ReplicaTarget& target, uint64_t epoch, const std::string& snapshot,
                       const ClientOptions& options);
  static Status Expand(const ReplicaTarget& target, uint64_t epoch, uint64_t size,
                       const ClientOptions& options);
  static Status Verify(const ReplicaTarget& target, uint64_t epoch, const ClientOptions& options);
  static Status SetGeneration(const ReplicaTarget& target, uint64_t epoch, uint64_t generation,
                              const ClientOptions& options);
  // REBUILD, sent to the target replica.
  static Status Rebuild(const ReplicaTarget& target, uint64_t epoch,
                        const msg::RebuildRequest& request, const ClientOptions& options);
  // One page of LAYER_EXTENTS (asked of a source).
  static Result<msg::LayerExtentsReply> LayerExtents(const ReplicaTarget& target, uint64_t epoch,
                                                     const msg::LayerExtentsRequest& request,
                                                     const ClientOptions& options);
  // CHECKSUM through Call: the XXH3-64 of each `chunk` of [offset,
  // offset+length) of the replica's live data (the last may be short), one
  // per chunk in order. The replicad checks the limits (doc/protocol.md);
  // a reply with the wrong count of hashes or a hash that is not 16
  // lowercase hex digits is a kProtocol error.
  static Result<std::vector<uint64_t>> Checksum(const ReplicaTarget& target, uint64_t epoch,
                                                uint64_t offset, uint64_t length, uint64_t chunk,
                                                const ClientOptions& options);

  ~ReplicaClient() override;
  bool OnOwnThread() const override;

  uint64_t Size() const override { return size_; }
  void Read(uint64_t offset, uint32_t length, ReadCallback done) override;
  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override;
  void WriteSummed(uint64_t offset, std::span<const uint8_t> data, uint64_t checksum,
                   DoneCallback done) override;
  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override;
  void Flush(DoneCallback done) override;

  // Flushes and closes the replica on the replicad. A failed client has
  // nothing to close.
  Status Close() override;

  const ReplicaTarget& target() const { return target_; }
  // What OPEN_REPLICA reported: the replica's durable generation, and
  // whether it is (half) rebuilt, which makes it unfit as a source.
  uint64_t generation() const { return generation_; }
  bool rebuilding() const { return rebuilding_; }
  // Whether the replica's previous session ended with a CLOSE_REPLICA
  // (false when the replicad did not say: an older one).
  bool clean() const { return clean_; }
  bool failed() const { return failed_.load(); }
  // Requests sent and not yet answered.
  size_t Outstanding() const override { return outstanding_.load(); }
  void SetFailureHandler(std::function<void(const Status&)> handler) override;

 private:
  // One JSON control request through ConnectBound; the typed calls above
  // and Checksum are made of it.
  static Result<boost::json::object> Call(const ReplicaTarget& target, uint64_t epoch, wire::Op op,
                                          const boost::json::object& body,
                                          const ClientOptions& options);

  struct Pending {
    std::function<void(Status, std::vector<uint8_t>)> done;
    std::chrono::steady_clock::time_point sent;
    wire::Op op;
  };
  struct Connection {
    UniqueFd fd;
    std::mutex send_mutex;
    // Frames a SendBatch holds back (guarded by send_mutex): written when
    // the batch closes, or before the next frame written at once.
    std::vector<uint8_t> corked;
    std::string what;                 // Describe(), for the batch's flush
    Status send_error;                // a failed flush's, for the reader (send_mutex)
    std::atomic<bool> closed{false};  // shut down after a failure: held bytes are dropped
    std::thread reader;
  };
  // The batch's flush: sends what `conn` holds back; the first round only
  // what the socket takes without blocking (the rest goes in a later round,
  // after the other connections'). On an error the connection is shut down
  // and its reader fails the client with that error.
  static void FlushCorked(const std::shared_ptr<Connection>& conn, bool may_block);

  ReplicaClient(ReplicaTarget target, uint64_t epoch, uint64_t size, ClientOptions options);

  // `checksum`: the payload's, when the caller has it already.
  void Submit(wire::Op op, uint64_t offset, uint64_t length, std::span<const uint8_t> payload,
              std::optional<uint64_t> checksum,
              std::function<void(Status, std::vector<uint8_t>)> done);
  void ReaderLoop(Connection* conn);
  void WatchdogLoop();
  // Marks the client failed and completes every pending request with `why`.
  void Fail(const Status& why);
  std::string Describe() const;

  const ReplicaTarget target_;
  const uint64_t epoch_;
  const uint64_t size_;
  const ClientOptions options_;
  uint64_t generation_ = 0;
  bool rebuilding_ = false;
  bool clean_ = false;

  // Shared with the flushes of open SendBatches.
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<size_t> next_conn_{0};
  std::atomic<size_t> outstanding_{0};
  std::atomic<bool> failed_{false};

  std::mutex mutex_;  // guards pending_, failure_, stopping_
  std::map<uint64_t, Pending> pending_;
  Status failure_;
  bool stopping_ = false;
  std::function<void(const Status&)> on_failure_;  // guarded by mutex_
  std::chrono::steady_clock::time_point last_ping_ = std::chrono::steady_clock::now();
  std::condition_variable stop_cv_;
  std::thread watchdog_;
};

}  // namespace shorthorn::fused
