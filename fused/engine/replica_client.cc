// Design notes
//
// A request is registered in pending_ before its frame is sent, so a reply
// can never arrive for an id we do not know. Sends on one connection are
// serialized by that connection's send_mutex (one writev per frame); replies
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
#include "fused/engine/replica_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <future>
#include <limits>
#include <utility>

#include "common/log.h"
#include "common/names.h"
#include "fused/engine/net_util.h"

namespace shorthorn::fused {
namespace {

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

boost::json::object Identity(const ReplicaTarget& t) {
  return {{"volume", t.volume}, {"replica", t.replica}};
}

// Identity with this fused's id, for the ops a replica checks it on.
boost::json::object Owned(const ReplicaTarget& t, const ClientOptions& options) {
  auto body = Identity(t);
  if (!options.owner.empty()) body["owner"] = options.owner;
  return body;
}

bool IsBool(const boost::json::object& o, const char* key, bool* out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_bool()) return false;
  *out = v->as_bool();
  return true;
}

bool IsUint(const boost::json::object& o, const char* key, uint64_t* out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return false;
  if (v->is_uint64()) {
    *out = v->as_uint64();
    return true;
  }
  if (v->is_int64() && v->as_int64() >= 0) {
    *out = static_cast<uint64_t>(v->as_int64());
    return true;
  }
  return false;
}

// REPLICAD_INFO's hostname: a DNS name is at most 253 characters.
constexpr size_t kMaxReplicadHostname = 255;

bool IsString(const boost::json::object& o, const char* key, std::string* out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return false;
  *out = std::string(v->as_string());
  return true;
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
  auto body = Owned(target, options);
  body["size"] = size;
  if (rebuilding) body["rebuilding"] = true;
  auto reply = ControlCall(fd->get(), wire::Op::kCreateReplica, body, 0);
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
  auto reply = ControlCall(fd->get(), wire::Op::kListReplicas, {{"volume", volume}}, 0);
  if (!reply.ok()) return reply.status().WithContext(what);
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kProtocol, what + ": bad reply: " + reason, EPROTO);
  };
  const auto* list = reply->if_contains("replicas");
  if (list == nullptr || !list->is_array()) return bad("no 'replicas' array");
  std::vector<ListedReplica> out;
  for (const auto& item : list->as_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) return bad("a replica is not an object");
    ListedReplica r;
    r.address = address;
    if (!IsString(*o, "replica", &r.name) || !IsString(*o, "volume", &r.volume) ||
        !IsUint(*o, "size", &r.size) || !IsUint(*o, "epoch", &r.epoch) ||
        !IsUint(*o, "generation", &r.generation) || !IsBool(*o, "rebuilding", &r.rebuilding) ||
        !IsBool(*o, "open", &r.open)) {
      return bad("a replica lacks replica, volume, size, epoch, generation, rebuilding or open");
    }
    if (r.volume != volume) return bad("replica " + r.name + " is of volume " + r.volume);
    (void)IsString(*o, "owner", &r.owner);
    if (const auto* snaps = o->if_contains("snapshots"); snaps != nullptr && snaps->is_array()) {
      for (const auto& n : snaps->as_array()) {
        if (!n.is_string()) return bad("a snapshot name is not a string");
        r.snapshots.emplace_back(n.as_string());
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<ReplicadFacts> ParseReplicadInfo(const boost::json::object& reply,
                                        const std::string& address) {
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kProtocol,
                  "replicad at " + address + ": bad REPLICAD_INFO reply: " + reason, EPROTO);
  };
  ReplicadFacts f;
  f.address = address;

  const auto* host_id = reply.if_contains("host_id");
  if (host_id == nullptr || !host_id->is_string()) {
    return bad("field 'host_id' is missing or not a string");
  }
  if (Status s = ValidateHostId(host_id->as_string()); !s.ok()) {
    return bad("field 'host_id': " + s.message());
  }
  f.host_id = host_id->as_string();

  // Only for messages, but it ends up in logs and D-Bus replies.
  if (const auto* hostname = reply.if_contains("hostname"); hostname != nullptr) {
    if (!hostname->is_string()) return bad("field 'hostname' is not a string");
    const boost::json::string& name = hostname->as_string();
    if (name.size() > kMaxReplicadHostname) {
      return bad("field 'hostname' is longer than " + std::to_string(kMaxReplicadHostname) +
                 " characters");
    }
    for (char c : name) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return bad("field 'hostname' holds a control character");
      }
    }
    f.hostname = name;
  }

  const auto* tags = reply.if_contains("tags");
  if (tags == nullptr || !tags->is_array()) return bad("field 'tags' is missing or not an array");
  if (tags->as_array().size() > kMaxTags) {
    return bad("field 'tags' holds " + std::to_string(tags->as_array().size()) +
               " tags, more than " + std::to_string(kMaxTags));
  }
  std::string zone;
  for (const auto& t : tags->as_array()) {
    if (!t.is_string()) return bad("field 'tags': a tag is not a string");
    std::string tag(t.as_string());
    if (Status s = ValidateTag(tag); !s.ok()) return bad("field 'tags': " + s.message());
    if (std::find(f.tags.begin(), f.tags.end(), tag) != f.tags.end()) {
      return bad("field 'tags': tag '" + tag + "' is given twice");
    }
    if (tag.rfind("zone=", 0) == 0) {
      if (!zone.empty()) return bad("field 'tags': two zones, '" + zone + "' and '" + tag + "'");
      zone = tag;
    }
    f.tags.push_back(std::move(tag));
  }

  for (auto [key, out] : {std::pair<const char*, uint64_t*>{"total_bytes", &f.total_bytes},
                          {"free_bytes", &f.free_bytes},
                          {"provisioned_bytes", &f.provisioned_bytes}}) {
    if (!IsUint(reply, key, out)) {
      return bad("field '" + std::string(key) + "' is missing or not an unsigned integer");
    }
  }
  if (f.free_bytes > f.total_bytes) {
    return bad("field 'free_bytes' (" + std::to_string(f.free_bytes) +
               ") is above 'total_bytes' (" + std::to_string(f.total_bytes) + ")");
  }
  uint64_t replicas = 0;
  if (!IsUint(reply, "replicas", &replicas)) {
    return bad("field 'replicas' is missing or not an unsigned integer");
  }
  if (replicas > std::numeric_limits<uint32_t>::max()) {
    return bad("field 'replicas' (" + std::to_string(replicas) + ") is above " +
               std::to_string(std::numeric_limits<uint32_t>::max()));
  }
  f.replicas = static_cast<uint32_t>(replicas);
  return f;
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
  auto body = Owned(target, options);
  body["epoch"] = epoch;
  body["take_over"] = true;
  auto opened = ControlCall(fd->get(), wire::Op::kOpenReplica, body, epoch);
  if (!opened.ok()) return opened.status().WithContext(what);
  auto close = Identity(target);
  close["epoch"] = epoch;
  auto closed = ControlCall(fd->get(), wire::Op::kCloseReplica, close, epoch);
  if (!closed.ok()) return closed.status().WithContext(what);
  return Status::Ok();
}

Status ReplicaClient::DeleteReplica(const ReplicaTarget& target, uint64_t epoch,
                                    const ClientOptions& options) {
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status();
  auto body = Owned(target, options);
  body["epoch"] = epoch;
  auto reply = ControlCall(fd->get(), wire::Op::kDeleteReplica, body, epoch);
  if (!reply.ok()) {
    return reply.status().WithContext("delete replica " + target.replica + " on " + target.address);
  }
  return Status::Ok();
}

Result<UniqueFd> ReplicaClient::ConnectBound(const ReplicaTarget& target, uint64_t epoch,
                                             const ClientOptions& options) {
  auto fd = ConnectReplicad(target.address, options);
  if (!fd.ok()) return fd.status();
  auto identity = Identity(target);
  identity["epoch"] = epoch;
  auto open = Owned(target, options);
  open["epoch"] = epoch;
  auto opened = ControlCall(fd->get(), wire::Op::kOpenReplica, open, epoch);
  if (!opened.ok()) return opened.status();
  auto hello = ControlCall(fd->get(), wire::Op::kHello, identity, epoch);
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
                    {{"offset", offset}, {"length", length}, {"chunk", chunk}}, options);
  if (!reply.ok()) return reply.status();
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kProtocol, what + ": bad reply: " + reason, EPROTO);
  };
  const uint64_t expected = length / chunk + (length % chunk != 0 ? 1 : 0);
  const boost::json::value* hashes = reply->if_contains("hashes");
  if (hashes == nullptr || !hashes->is_array()) return bad("no 'hashes' array");
  if (hashes->as_array().size() != expected) {
    return bad(std::to_string(hashes->as_array().size()) + " hashes, expected " +
               std::to_string(expected));
  }
  std::vector<uint64_t> out;
  out.reserve(expected);
  for (const auto& v : hashes->as_array()) {
    const boost::json::string* hex = v.if_string();
    bool ok = hex != nullptr && hex->size() == 16 &&
              std::all_of(hex->begin(), hex->end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    uint64_t x = 0;
    if (ok) {
      ok = std::from_chars(hex->data(), hex->data() + hex->size(), x, 16).ec == std::errc();
    }
    if (!ok) {
      return bad("hash " + std::to_string(out.size()) + " is not 16 lowercase hex digits");
    }
    out.push_back(x);
  }
  return out;
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
  auto body = Identity(target);
  body["epoch"] = epoch;
  auto open = Owned(target, options);
  open["epoch"] = epoch;
  auto opened = ControlCall(fds[0].get(), wire::Op::kOpenReplica, open, epoch);
  if (!opened.ok()) {
    return opened.status().WithContext("open replica " + target.replica + " on " + target.address);
  }
  uint64_t size = 0;
  if (auto* s = opened->if_contains("size"); s != nullptr && s->is_number()) {
    size = s->to_number<uint64_t>();
  }
  for (auto& fd : fds) {
    auto hello = ControlCall(fd.get(), wire::Op::kHello, body, epoch);
    if (!hello.ok()) {
      return hello.status().WithContext("hello to replica " + target.replica + " on " +
                                        target.address);
    }
    ClearReceiveTimeout(fd.get());
  }
  std::unique_ptr<ReplicaClient> client(new ReplicaClient(target, epoch, size, options));
  if (auto* g = opened->if_contains("generation"); g != nullptr && g->is_number()) {
    client->generation_ = g->to_number<uint64_t>();
  }
  if (auto* r = opened->if_contains("rebuilding"); r != nullptr && r->is_bool()) {
    client->rebuilding_ = r->as_bool();
  }
  if (auto* c = opened->if_contains("clean"); c != nullptr && c->is_bool()) {
    client->clean_ = c->as_bool();
  }
  for (auto& fd : fds) {
    auto conn = std::make_unique<Connection>();
    conn->fd = std::move(fd);
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
  for (auto& conn : connections_) ::shutdown(conn->fd.get(), SHUT_RDWR);
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
  Connection* conn = connections_[next_conn_++ % connections_.size()].get();
  Status sent;
  {
    std::lock_guard lock(conn->send_mutex);
    wire::Header h = checksum
                         ? wire::MakeRequest(op, id, epoch_, offset, length, payload, *checksum)
                         : wire::MakeRequest(op, id, epoch_, offset, length, payload);
    sent = WriteFrame(conn->fd.get(), h, payload);
  }
  if (!sent.ok()) Fail(sent.WithContext(Describe()));
}

void ReplicaClient::ReaderLoop(Connection* conn) {
  FrameReader reader(conn->fd.get());  // one read() for every reply that arrived
  for (;;) {
    auto frame = reader.Next();
    if (!frame.ok()) {
      Fail(frame.status().WithContext(Describe()));
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
  auto body = Identity(target_);
  body["epoch"] = epoch_;
  std::string text = boost::json::serialize(body);
  std::promise<Status> closed;
  Submit(wire::Op::kCloseReplica, 0, 0, wire::AsBytes(text), std::nullopt,
         [&closed](Status s, std::vector<uint8_t>) { closed.set_value(std::move(s)); });
  Status s = closed.get_future().get();
  return s.ok() ? s : s.WithContext("close " + Describe());
}

}  // namespace shorthorn::fused
