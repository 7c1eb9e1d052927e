// Connection: one client TCP (or socketpair) stream. The reader thread first
// runs the server side of the authentication handshake (common/auth.h)
// within the auth timeout, reading nothing larger than a 96-byte frame;
// only an authenticated connection gets its writer thread and its frame
// buffer. Then the reader reads
// frames in order (through a buffer: one read() for all the frames that
// arrived) and hands them to the RequestHandler without waiting for earlier
// ones; replies go out in completion order, many per writev. Replies that
// complete on the reader thread itself (a read served from the page cache)
// are sent by the reader when it has no whole frame left to handle; replies
// that complete on the engine's completion thread go out when it has run
// every completion it reaped together (common/send_batch.h), as far as the
// socket takes them at once, and the writer thread sends the rest. While the
// reader has frames buffered, their disk requests wait in a SubmitBatch
// (replicad/io/submit_batch.h) and reach the kernel together. One sender at a
// time (`sending_`), so frames never interleave. At most kMaxInFlight
// requests are unanswered at a time, and at most kMaxInFlightBytes of READ
// and WRITE data: the reader stops reading until replies are sent, which
// bounds memory per connection. A client that leaves replies unread past the
// send timeout is dropped.
//
// A malformed frame or a protocol violation closes this connection (logged
// at warning with the peer's address and the reason) after the requests in
// flight are answered; other connections are unaffected.
//
// Threads: Start, Shutdown and Join are called by the Server. Completion
// callbacks hold a shared_ptr, so the object outlives its last callback; the
// Server must Join before dropping its reference.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/auth.h"
#include "common/file_util.h"
#include "common/wire.h"
#include "replicad/core/request_handler.h"

namespace shorthorn::replicad {

inline constexpr uint32_t kMaxInFlight = 128;
// READ and WRITE bytes unanswered on one connection before its reader
// waits (one more request may cross it: at most 4 MiB more).
inline constexpr uint64_t kMaxInFlightBytes = 64ull << 20;

// What the Server gives every connection (it outlives them).
struct ConnectionOptions {
  std::shared_ptr<const auth::ClusterKey> key;  // required
  std::chrono::milliseconds auth_timeout{10000};
  std::chrono::milliseconds send_timeout{30000};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(UniqueFd fd, std::string peer, RequestHandler* handler,
             const ConnectionOptions* options);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Starts the reader thread; throws std::system_error when it cannot.
  void Start();
  // Makes the reader see end of stream; the connection then winds down.
  void Shutdown();
  void Join();
  // Both threads have ended.
  bool finished() const;
  // The handshake succeeded.
  bool authenticated() const { return authenticated_.load(); }
  const std::string& peer() const { return peer_; }

 private:
  struct Reply {
    wire::Header request;
    int32_t status;
    std::vector<uint8_t> payload;
  };

  void ReadLoop();
  // The server side of the handshake, with the auth timeout on the socket.
  bool Authenticate();
  // Starts the writer thread (false, logged, when the system has none to give).
  bool StartWriter();
  // Reads and handles frames until the stream ends or breaks.
  void Serve();
  void WriteLoop();
  void Enqueue(const wire::Header& request, int32_t status, std::vector<uint8_t> payload);
  // Sends what is queued, unless the writer is sending (it then takes the
  // rest). Called by the reader before it may block.
  void SendQueuedFromReader();
  // The flush an engine thread's SendBatch runs: sends what is queued
  // without blocking, unless someone is sending.
  void SendHeld();
  // Sends `batch` (the caller holds the sender role), then gives the role
  // back and accounts the replies as answered.
  void SendBatch(std::vector<Reply>& batch);
  // The same on an engine thread, which must never block: what the socket
  // does not take at once goes to the writer (rest_) with the sender role.
  void SendBatchNow(std::vector<Reply>& batch);
  // Gives the sender role back after `answered` replies went out (or were
  // dropped: `broken`).
  void FinishSend(bool broken, uint32_t answered, uint64_t bytes);
  // READ/WRITE bytes a request holds until answered.
  static uint64_t Cost(const wire::Header& request);
  static uint64_t Cost(const std::vector<Reply>& batch);

  const UniqueFd fd_;
  const std::string peer_;
  RequestHandler* const handler_;
  const ConnectionOptions* const options_;
  std::atomic<bool> authenticated_{false};
  ConnectionState state_;  // reader thread only

  std::thread::id reader_id_;  // set before the reader handles a frame

  mutable std::mutex mu_;
  std::condition_variable reader_cv_;  // in_flight_ dropped
  std::condition_variable writer_cv_;  // replies to send, or the reader ended
  std::vector<Reply> replies_;         // guarded by mu_
  std::vector<uint8_t> rest_;          // unsent bytes the writer owes; guarded by mu_
  uint32_t rest_replies_ = 0;          // replies those bytes end; guarded by mu_
  uint64_t rest_cost_ = 0;             // their Cost; guarded by mu_
  bool sending_ = false;               // a thread is writing replies; guarded by mu_
  bool flush_registered_ = false;      // a SendBatch will run SendHeld; guarded by mu_
  bool broken_ = false;                // a write failed: replies are dropped; guarded by mu_
  uint32_t in_flight_ = 0;             // requests not yet answered on the wire; guarded by mu_
  uint64_t in_flight_bytes_ = 0;       // their Cost; guarded by mu_
  bool reader_done_ = false;           // guarded by mu_
  int threads_running_ = 0;            // guarded by mu_
  std::thread reader_;
  std::thread writer_;
};

}  // namespace shorthorn::replicad
