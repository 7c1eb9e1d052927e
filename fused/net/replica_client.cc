// Design notes
//
// A request is registered in pending_ before its frame is sent, so a reply
// can never arrive for an id we do not know. Sends on one connection are
// serialized by that connection's send_mutex (one writev per frame, or the
// frames a SendBatch held, sent when it closes: first what each socket takes
// without blocking, then the rest, so a stuck replica does not hold back
// the others' frames while their watchdog clocks run); replies
// are read (buffered) by the connection's reader thread and completed there, so
// callbacks run on reader threads and must not block.
//
// Failure is one-way: Fail() flips failed_, takes every pending request out
// of the map under the lock and completes them outside it, and shuts the
// sockets down so the readers leave their read(). The watchdog looks at the
// oldest pending request once per second (or per timeout/4 when shorter).
//
//   Open: connect xN ──► OPEN_REPLICA(epoch) on conn 0 ──► HELLO on each ──►
//         readers + watchdog start ──► serving ──(error|timeout)──► failed
#include "fused/net/replica_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <utility>

#include "common/log.h"
#include "common/net.h"
#include "common/send_batch.h"

namespace shorthorn::fused {
namespace {

// Frames with a payload up to this size wait in an open SendBatch (a copy
// each); larger ones are written at once, after what the batch holds.
constexpr size_t kCorkedPayloadMax = 64 << 10;
constexpr size_t kCorkedKeepMax = 1 << 20;  // buffer capacity kept between batches

// A replicad on this host through its Unix socket when it has one there
// (cheaper than loopback TCP per byte and per request), else TCP. No socket
// file (a replicad elsewhere, or a proxy in between, listens on another
// port) or a refused connect (a file left by a killed replicad) means TCP.
// Either way the connection is authenticated before it is returned.
Result<UniqueFd> ConnectReplicad(const std::string& address, const ClientOptions& options) {
  if (options.key == nullptr) {
    return Status(ErrorKind::kNotAuthorized,
                  "connect to replicad at " + address + ": no cluster key", EACCES);
  }
  auto connect = [&]() -> Result<UniqueFd> {
    std::string path = LocalSocketPath(address, options.local_socket_dir);
    if (!path.empty()) {
      auto fd = ConnectUnix(path, options.request);
      if (fd.ok()) return fd;
      if (fd.status().sys_errno() != ENOENT) {
        LogDebug(fd.status().message() + "; using TCP to " + address);
      }
    }
    return ConnectTcp(address, options.connect, options.request);
  };
  auto fd = connect();
  if (!fd.ok()) return fd;
  SH_RETURN_IF_ERROR(auth::ClientHandshake(fd->get(), *options.key, address));
  return fd;
}

msg::OpenReplicaRequest OpenRequest(const ReplicaTarget& t, uint64_t epoch,
                                    const ClientOptions& options) {
  return {t.volume, t.replica, epoch, options.owner, /*take_over=*/false};
}

msg::HelloRequest Hello(const ReplicaTarget& t, uint64_t epoch) {
  return {t.volume, t.replica, epoch};
}

}  // namespace

ReplicaClient::ReplicaClient(ReplicaTarget target, uint64_t epoch, uint64_t size,
                             ClientOptions options)
    : target_(std::move(target)), epoch_(epoch), size_(size), options_(options) {}

std::string ReplicaClient::Describe() const {
  return "replica " + target_.replica + " of volume " + target_.volume + " on " + target_.address;
}

Status ReplicaClient::CreateReplica(const ReplicaTarget& target, uint64_t size,
                                    const ClientOptions& options, bool rebuilding) {
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status();
  msg::CreateReplicaRequest request{target.volume, target.replica, size, rebuilding, options.owner};
  auto reply = ControlCall(fd->get(), wire::Op::kCreateReplica, msg::ToObject(request), 0);
  if (!reply.ok()) {
    return reply.status().WithContext("create replica " + target.replica + " on " + target.address);
  }
  return Status::Ok();
}

Result<std::vector<ListedReplica>> ReplicaClient::ListReplicas(const std::string& address,
                                                               const std::string& volume,
                                                               const ClientOptions& options) {
  const std::string what = "list the replicas of volume " + volume + " on " + address;
  auto fd = ConnectReplicad(address, options);
  if (!fd.ok()) return fd.status().WithContext(what);
  auto reply = ControlCall(fd->get(), wire::Op::kListReplicas,
                           msg::ToObject(msg::ListReplicasRequest{volume}), 0);
  if (!reply.ok()) return reply.status().WithContext(what);
  auto list = msg::Decode<msg::ListReplicasReply>(*reply, what + ": bad reply");
  if (!list.ok()) return list.status();
  std::vector<ListedReplica> out;
  for (auto& r : list->replicas) {
    if (r.volume != volume) {
      return Status(ErrorKind::kProtocol,
                    what + ": bad reply: replica " + r.replica + " is of volume " + r.volume,
                    EPROTO);
    }
    out.push_back({address, std::move(r.replica), std::move(r.volume), r.size, r.epoch,
                   r.generation, r.rebuilding, r.open, std::move(r.owner), std::move(r.snapshots)});
  }
  return out;
}

Result<ReplicadFacts> ParseReplicadInfo(const boost::json::object& reply,
                                        const std::string& address) {
  auto info = msg::Decode<msg::ReplicadInfoReply>(
      reply, "replicad at " + address + ": bad REPLICAD_INFO reply");
  if (!info.ok()) return info.status();
  return ReplicadFacts{address,
                       std::move(info->host_id),
                       std::move(info->hostname),
                       std::move(info->tags),
                       info->total_bytes,
                       info->free_bytes,
                       info->provisioned_bytes,
                       static_cast<uint32_t>(info->replicas)};  // <= UINT32_MAX (Decode)
}

Result<ReplicadFacts> ReplicaClient::Info(const std::string& address,
                                          const ClientOptions& options) {
  const std::string what = "ask replicad at " + address + " for its host and space";
  auto fd = ConnectReplicad(address, options);
  if (!fd.ok()) return fd.status().WithContext(what);
  auto reply = ControlCall(fd->get(), wire::Op::kReplicadInfo, boost::json::object(), 0);
  if (!reply.ok()) {
    Status s = reply.status().WithContext(what);
    // A replicad without REPLICAD_INFO closes the connection on its opcode.
    if (s.sys_errno() == ECONNRESET) {
      s = Status(s.kind(),
                 s.message() + " (a replicad older than this fused does that: install the same " +
                     "Shorthorn version on every host)",
                 ECONNRESET);
    }
    return s;
  }
  return ParseReplicadInfo(*reply, address);
}

Status ReplicaClient::ClaimReplica(const ReplicaTarget& target, uint64_t epoch,
                                   const ClientOptions& options) {
  const std::string what = "claim replica " + target.replica + " on " + target.address;
  if (options.owner.empty()) {
    return Status(ErrorKind::kInvalidArgument, what + ": this fused has no id", EINVAL);
  }
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status().WithContext(what);
  msg::OpenReplicaRequest open = OpenRequest(target, epoch, options);
  open.take_over = true;
  auto opened = ControlCall(fd->get(), wire::Op::kOpenReplica, msg::ToObject(open), epoch);
  if (!opened.ok()) return opened.status().WithContext(what);
  msg::CloseReplicaRequest close{target.volume, target.replica, epoch};
  auto closed = ControlCall(fd->get(), wire::Op::kCloseReplica, msg::ToObject(close), epoch);
  if (!closed.ok()) return closed.status().WithContext(what);
  return Status::Ok();
}

Status ReplicaClient::DeleteReplica(const ReplicaTarget& target, uint64_t epoch,
                                    const ClientOptions& options) {
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status();
  msg::DeleteReplicaRequest request{target.volume, target.replica, epoch, options.owner};
  auto reply = ControlCall(fd->get(), wire::Op::kDeleteReplica, msg::ToObject(request), epoch);
  if (!reply.ok()) {
    return reply.status().WithContext("delete replica " + target.replica + " on " + target.address);
  }
  return Status::Ok();
}

Result<UniqueFd> ReplicaClient::ConnectBound(const ReplicaTarget& target, uint64_t epoch,
                                             const ClientOptions& options) {
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status();
  auto opened = ControlCall(fd->get(), wire::Op::kOpenReplica,
                            msg::ToObject(OpenRequest(target, epoch, options)), epoch);
  if (!opened.ok()) return opened.status();
  auto hello = ControlCall(fd->get(), wire::Op::kHello, msg::ToObject(Hello(target, epoch)), epoch);
  if (!hello.ok()) return hello.status();
  return fd;
}

Result<boost::json::object> ReplicaClient::Call(const ReplicaTarget& target, uint64_t epoch,
                                                wire::Op op, const boost::json::object& body,
                                                const ClientOptions& options) {
  std::string what = std::string(wire::OpName(static_cast<uint16_t>(op))) + " on replica " +
                     target.replica + " (" + target.address + ")";
  auto fd = ConnectBound(target, epoch, options);
  if (!fd.ok()) return fd.status().WithContext(what);
  auto reply = ControlCall(fd->get(), op, body, epoch);
  if (!reply.ok()) return reply.status().WithContext(what);
  return reply;
}

Result<msg::LayerList> ReplicaClient::ListLayers(const ReplicaTarget& target, uint64_t epoch,
                                                 const ClientOptions& options) {
  auto reply = Call(target, epoch, wire::Op::kListLayers, {}, options);
  if (!reply.ok()) return reply.status();
  return msg::Decode<msg::LayerList>(
      *reply, "LIST_LAYERS on replica " + target.replica + " (" + target.address + "): bad reply");
}

Status ReplicaClient::Snapshot(const ReplicaTarget& target, uint64_t epoch,
                               const msg::SnapshotRequest& request, const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kSnapshot, msg::ToObject(request), options).status();
}

Status ReplicaClient::DeleteSnapshot(const ReplicaTarget& target, uint64_t epoch,
                                     const std::string& snapshot, const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kDeleteSnapshot,
              msg::ToObject(msg::DeleteSnapshotRequest{snapshot}), options)
      .status();
}

Status ReplicaClient::Revert(const ReplicaTarget& target, uint64_t epoch,
                             const std::string& snapshot, const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kRevert, msg::ToObject(msg::RevertRequest{snapshot}),
              options)
      .status();
}

Status ReplicaClient::Expand(const ReplicaTarget& target, uint64_t epoch, uint64_t size,
                             const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kExpand, msg::ToObject(msg::ExpandRequest{size}), options)
      .status();
}

Status ReplicaClient::Verify(const ReplicaTarget& target, uint64_t epoch,
                             const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kVerify, {}, options).status();
}

Status ReplicaClient::SetGeneration(const ReplicaTarget& target, uint64_t epoch,
                                    uint64_t generation, const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kSetGeneration,
              msg::ToObject(msg::SetGenerationRequest{generation}), options)
      .status();
}

Status ReplicaClient::Rebuild(const ReplicaTarget& target, uint64_t epoch,
                              const msg::RebuildRequest& request, const ClientOptions& options) {
  return Call(target, epoch, wire::Op::kRebuild, msg::ToObject(request), options).status();
}

Result<msg::LayerExtentsReply> ReplicaClient::LayerExtents(const ReplicaTarget& target,
                                                           uint64_t epoch,
                                                           const msg::LayerExtentsRequest& request,
                                                           const ClientOptions& options) {
  auto reply = Call(target, epoch, wire::Op::kLayerExtents, msg::ToObject(request), options);
  if (!reply.ok()) return reply.status();
  return msg::Decode<msg::LayerExtentsReply>(*reply, "LAYER_EXTENTS on replica " + target.replica +
                                                         " (" + target.address + "): bad reply");
}

Result<std::unique_ptr<SnapshotViewReader>> SnapshotViewReader::Open(const ReplicaTarget& target,
                                                                     uint64_t epoch,
                                                                     const std::string& snapshot,
                                                                     const ClientOptions& options) {
  auto fd = ReplicaClient::ConnectBound(target, epoch, options);
  if (!fd.ok()) return fd.status();
  std::string request =
      boost::json::serialize(boost::json::value_from(msg::ReadSnapshotRequest{snapshot}));
  return std::unique_ptr<SnapshotViewReader>(new SnapshotViewReader(
      PeerClient::Adopt(std::move(*fd), target.address), epoch, std::move(request)));
}

Status SnapshotViewReader::Read(uint64_t offset, std::span<uint8_t> buf) {
  auto data = client_->Call(wire::Op::kReadSnapshotView, epoch_, offset, buf.size(),
                            wire::AsBytes(request_));
  if (!data.ok()) return data.status();
  if (data->size() != buf.size()) {
    return Status(ErrorKind::kProtocol,
                  "the reply has " + std::to_string(data->size()) + " bytes, not " +
                      std::to_string(buf.size()),
                  EPROTO);
  }
  std::copy(data->begin(), data->end(), buf.begin());
  return Status::Ok();
}

ReplicaCall SnapshotCall(msg::SnapshotRequest request) {
  return [request = std::move(request)](const ReplicaTarget& t, uint64_t epoch,
                                        const ClientOptions& o) {
    return ReplicaClient::Snapshot(t, epoch, request, o);
  };
}

ReplicaCall DeleteSnapshotCall(std::string snapshot) {
  return [snapshot = std::move(snapshot)](const ReplicaTarget& t, uint64_t epoch,
                                          const ClientOptions& o) {
    return ReplicaClient::DeleteSnapshot(t, epoch, snapshot, o);
  };
}

ReplicaCall RevertCall(std::string snapshot) {
  return [snapshot = std::move(snapshot)](const ReplicaTarget& t, uint64_t epoch,
                                          const ClientOptions& o) {
    return ReplicaClient::Revert(t, epoch, snapshot, o);
  };
}

ReplicaCall ExpandCall(uint64_t size) {
  return [size](const ReplicaTarget& t, uint64_t epoch, const ClientOptions& o) {
    return ReplicaClient::Expand(t, epoch, size, o);
  };
}

ReplicaCall VerifyCall() {
  return [](const ReplicaTarget& t, uint64_t epoch, const ClientOptions& o) {
    return ReplicaClient::Verify(t, epoch, o);
  };
}

Result<std::vector<uint64_t>> ReplicaClient::Checksum(const ReplicaTarget& target, uint64_t epoch,
                                                      uint64_t offset, uint64_t length,
                                                      uint64_t chunk,
                                                      const ClientOptions& options) {
  std::string what = "CHECKSUM on replica " + target.replica + " (" + target.address + ")";
  if (chunk == 0 || length == 0) {
    return Status(ErrorKind::kInvalidArgument,
                  what + ": length " + std::to_string(length) + " and chunk " +
                      std::to_string(chunk) + " must be positive",
                  EINVAL);
  }
  auto reply = Call(target, epoch, wire::Op::kChecksum,
                    msg::ToObject(msg::ChecksumRequest{offset, length, chunk}), options);
  if (!reply.ok()) return reply.status();
  // The count is checked before the hashes themselves: a reply for another
  // range is named as such.
  const uint64_t expected = length / chunk + (length % chunk != 0 ? 1 : 0);
  if (const auto* h = reply->if_contains("hashes");
      h != nullptr && h->is_array() && h->as_array().size() != expected) {
    return Status(ErrorKind::kProtocol,
                  what + ": bad reply: " + std::to_string(h->as_array().size()) +
                      " hashes, expected " + std::to_string(expected),
                  EPROTO);
  }
  auto sums = msg::Decode<msg::ChecksumReply>(*reply, what + ": bad reply");
  if (!sums.ok()) return sums.status();
  return std::move(sums->hashes);
}

Result<std::unique_ptr<ReplicaClient>> ReplicaClient::Open(const ReplicaTarget& target,
                                                           uint64_t epoch, int connections,
                                                           const ClientOptions& options) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < connections; ++i) {
    auto fd = ConnectReplicad(target.address, options);
    if (!fd.ok()) return fd.status();
    fds.push_back(std::move(*fd));
  }
  const std::string what = "open replica " + target.replica + " on " + target.address;
  auto opened = ControlCall(fds[0].get(), wire::Op::kOpenReplica,
                            msg::ToObject(OpenRequest(target, epoch, options)), epoch);
  if (!opened.ok()) return opened.status().WithContext(what);
  auto open = msg::Decode<msg::OpenReplicaReply>(*opened, what + ": bad reply");
  if (!open.ok()) return open.status();
  const boost::json::object hello_body = msg::ToObject(Hello(target, epoch));
  for (auto& fd : fds) {
    auto hello = ControlCall(fd.get(), wire::Op::kHello, hello_body, epoch);
    if (!hello.ok()) {
      return hello.status().WithContext("hello to replica " + target.replica + " on " +
                                        target.address);
    }
    ClearReceiveTimeout(fd.get());
  }
  std::unique_ptr<ReplicaClient> client(new ReplicaClient(target, epoch, open->size, options));
  client->generation_ = open->generation;
  client->rebuilding_ = open->rebuilding;
  client->clean_ = open->clean;
  for (auto& fd : fds) {
    auto conn = std::make_shared<Connection>();
    conn->fd = std::move(fd);
    conn->what = client->Describe();
    client->connections_.push_back(std::move(conn));
  }
  for (auto& conn : client->connections_) {
    conn->reader = std::thread([c = client.get(), p = conn.get()] { c->ReaderLoop(p); });
  }
  client->watchdog_ = std::thread([c = client.get()] { c->WatchdogLoop(); });
  return client;
}

ReplicaClient::~ReplicaClient() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  Fail(Status(ErrorKind::kUnavailable, Describe() + ": closed", ESHUTDOWN));
  for (auto& conn : connections_) {
    if (conn->reader.joinable()) conn->reader.join();
  }
  if (watchdog_.joinable()) watchdog_.join();
}

bool ReplicaClient::OnOwnThread() const {
  const auto self = std::this_thread::get_id();
  if (watchdog_.get_id() == self) return true;
  for (const auto& conn : connections_) {
    if (conn->reader.get_id() == self) return true;
  }
  return false;
}

void ReplicaClient::SetFailureHandler(std::function<void(const Status&)> handler) {
  Status already;
  {
    std::lock_guard lock(mutex_);
    on_failure_ = std::move(handler);
    if (!failed_ || !on_failure_) return;
    already = failure_;
    handler = on_failure_;
  }
  handler(already);
}

void ReplicaClient::Fail(const Status& why) {
  std::map<uint64_t, Pending> orphans;
  std::function<void(const Status&)> notify;
  Status failure;
  {
    std::lock_guard lock(mutex_);
    if (!failed_.exchange(true)) {
      failure_ = why;
      if (!stopping_) {
        LogError(Describe() + " failed: " + why.message());
        notify = on_failure_;
      }
    }
    failure = failure_;
    orphans.swap(pending_);
  }
  if (notify) notify(failure);
  for (auto& conn : connections_) {
    // Not under send_mutex: a sender may hold it, blocked in a write that
    // only the shutdown ends.
    conn->closed = true;  // what a batch still holds is dropped, not written
    ::shutdown(conn->fd.get(), SHUT_RDWR);
  }
  for (auto& [id, p] : orphans) {
    outstanding_--;
    p.done(failure_, {});
  }
}

void ReplicaClient::Submit(wire::Op op, uint64_t offset, uint64_t length,
                           std::span<const uint8_t> payload, std::optional<uint64_t> checksum,
                           std::function<void(Status, std::vector<uint8_t>)> done) {
  uint64_t id = next_id_++;
  Status refused;
  {
    std::lock_guard lock(mutex_);
    if (failed_) {
      refused = failure_;
    } else {
      pending_.emplace(id, Pending{std::move(done), std::chrono::steady_clock::now(), op});
      outstanding_++;
    }
  }
  if (!refused.ok()) {
    done(refused, {});  // outside the lock: callbacks may submit again
    return;
  }
  const std::shared_ptr<Connection>& conn = connections_[next_conn_++ % connections_.size()];
  Status sent;
  bool flush_later = false;
  {
    std::lock_guard lock(conn->send_mutex);
    wire::Header h = checksum
                         ? wire::MakeRequest(op, id, epoch_, offset, length, payload, *checksum)
                         : wire::MakeRequest(op, id, epoch_, offset, length, payload);
    if (SendBatch::Active() && payload.size() <= kCorkedPayloadMax) {
      // Copied: the caller's payload need not outlive this call.
      flush_later = conn->corked.empty();
      const size_t at = conn->corked.size();
      conn->corked.resize(at + wire::kHeaderSize + payload.size());
      wire::EncodeHeader(h, conn->corked.data() + at);
      if (!payload.empty()) {
        std::memcpy(conn->corked.data() + at + wire::kHeaderSize, payload.data(), payload.size());
      }
    } else if (!conn->corked.empty()) {
      // What a batch holds back goes first.
      sent = WriteBytes(conn->fd.get(), conn->corked);
      conn->corked.clear();
      if (sent.ok()) sent = WriteFrame(conn->fd.get(), h, payload);
    } else {
      sent = WriteFrame(conn->fd.get(), h, payload);
    }
  }
  if (flush_later) SendBatch::AtClose([conn] { FlushCorked(conn, false); });
  if (!sent.ok()) Fail(sent.WithContext(Describe()));
}

void ReplicaClient::FlushCorked(const std::shared_ptr<Connection>& conn, bool may_block) {
  Status sent;
  bool later = false;
  {
    std::lock_guard lock(conn->send_mutex);
    if (conn->closed) conn->corked.clear();  // failed: nobody waits for these
    if (conn->corked.empty()) return;        // written with a later frame
    if (may_block) {
      sent = WriteBytes(conn->fd.get(), conn->corked);
      conn->corked.clear();
    } else {
      auto n = SendNow(conn->fd.get(), conn->corked);
      if (n.ok()) {
        conn->corked.erase(conn->corked.begin(), conn->corked.begin() + static_cast<ptrdiff_t>(*n));
      } else {
        sent = n.status();
        conn->corked.clear();
      }
      later = !conn->corked.empty();
    }
    // A burst of large frames does not keep its buffer.
    if (conn->corked.empty() && conn->corked.capacity() > kCorkedKeepMax) {
      std::vector<uint8_t>().swap(conn->corked);
    }
    if (!sent.ok()) {
      conn->send_error = sent.WithContext(conn->what);
      conn->closed = true;
    }
  }
  if (later) SendBatch::AtClose([conn] { FlushCorked(conn, true); });
  // The reader (if the client is still there) ends on the shut-down socket
  // and fails the client with send_error.
  if (!sent.ok()) ::shutdown(conn->fd.get(), SHUT_RDWR);
}

void ReplicaClient::ReaderLoop(Connection* conn) {
  FrameReader reader(conn->fd.get());  // one read() for every reply that arrived
  for (;;) {
    auto frame = reader.Next();
    if (!frame.ok()) {
      Status why = frame.status().WithContext(Describe());
      {
        std::lock_guard lock(conn->send_mutex);
        if (!conn->send_error.ok()) why = conn->send_error;  // a batch's write failed first
      }
      Fail(why);
      return;
    }
    const wire::Header& h = frame->header;
    Pending p;
    bool known = false;
    {
      std::lock_guard lock(mutex_);
      auto it = pending_.find(h.request_id);
      if (h.is_reply() && it != pending_.end()) {
        p = std::move(it->second);
        pending_.erase(it);
        known = true;
      }
    }
    if (!known) {
      // Not ours (or already failed): the stream can no longer be trusted.
      Fail(Status(ErrorKind::kProtocol,
                  Describe() + ": reply to unknown request " + std::to_string(h.request_id),
                  EPROTO));
      return;
    }
    outstanding_--;
    if (h.status != 0) {
      Status err = ReplyError(h, frame->payload);
      if (err.kind() == ErrorKind::kStale) {
        // A newer engine owns the replica: everything from us is refused.
        Fail(err.WithContext(Describe()));
      }
      p.done(err, {});
    } else {
      p.done(Status::Ok(), std::move(frame->payload));
    }
  }
}

void ReplicaClient::WatchdogLoop() {
  auto tick =
      std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000), options_.request / 4);
  std::unique_lock lock(mutex_);
  while (!stopping_ && !failed_) {
    stop_cv_.wait_for(lock, tick);
    if (stopping_ || failed_) break;
    auto now = std::chrono::steady_clock::now();
    // An idle replica is pinged, so a dead or cut-off one is noticed (and
    // rebuilt) without waiting for the next write.
    if (pending_.empty() && now - last_ping_ > options_.request / 2) {
      last_ping_ = now;
      lock.unlock();
      Submit(wire::Op::kPing, 0, 0, {}, std::nullopt, [](Status, std::vector<uint8_t>) {});
      lock.lock();
      continue;
    }
    for (const auto& [id, p] : pending_) {
      if (now - p.sent > options_.request) {
        std::string op(wire::OpName(static_cast<uint16_t>(p.op)));
        lock.unlock();
        Fail(Status(ErrorKind::kUnavailable,
                    Describe() + ": " + op + " unanswered for more than " +
                        std::to_string(options_.request.count() / 1000) + " s",
                    ETIMEDOUT));
        return;
      }
    }
  }
}

void ReplicaClient::Read(uint64_t offset, uint32_t length, ReadCallback done) {
  Submit(wire::Op::kRead, offset, length, {}, std::nullopt,
         [done = std::move(done), length](Status s, std::vector<uint8_t> data) {
           if (s.ok() && data.size() != length) {
             s = Status(ErrorKind::kProtocol, "short read reply", EPROTO);
           }
           done(std::move(s), std::move(data));
         });
}

void ReplicaClient::Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) {
  Submit(wire::Op::kWrite, offset, data.size(), data, std::nullopt,
         [done = std::move(done)](Status s, std::vector<uint8_t>) { done(std::move(s)); });
}

void ReplicaClient::WriteSummed(uint64_t offset, std::span<const uint8_t> data, uint64_t checksum,
                                DoneCallback done) {
  Submit(wire::Op::kWrite, offset, data.size(), data, checksum,
         [done = std::move(done)](Status s, std::vector<uint8_t>) { done(std::move(s)); });
}

void ReplicaClient::Unmap(uint64_t offset, uint64_t length, DoneCallback done) {
  Submit(wire::Op::kUnmap, offset, length, {}, std::nullopt,
         [done = std::move(done)](Status s, std::vector<uint8_t>) { done(std::move(s)); });
}

void ReplicaClient::Flush(DoneCallback done) {
  Submit(wire::Op::kFlush, 0, 0, {}, std::nullopt,
         [done = std::move(done)](Status s, std::vector<uint8_t>) { done(std::move(s)); });
}

Status ReplicaClient::Close() {
  if (failed_) return Status::Ok();
  std::string text = boost::json::serialize(
      boost::json::value_from(msg::CloseReplicaRequest{target_.volume, target_.replica, epoch_}));
  std::promise<Status> closed;
  Submit(wire::Op::kCloseReplica, 0, 0, wire::AsBytes(text), std::nullopt,
         [&closed](Status s, std::vector<uint8_t>) { closed.set_value(std::move(s)); });
  Status s = closed.get_future().get();
  return s.ok() ? s : s.WithContext("close " + Describe());
}

}  // namespace shorthorn::fused
