// Design notes: a reply completed on an engine thread (the I/O completion
// callback) is written from there only as far as the socket takes it without
// blocking; the rest goes through the writer thread, so a client that stops
// reading stalls only its own connection, never the engine's completion
// thread that all replicas share. The writer blocks SIGPIPE in itself, so a
// peer that vanished yields EPIPE rather than killing the daemon.
//
// Before authentication the connection has one thread (the reader, in the
// handshake) and no frame buffer; the writer starts only after it.
//
// Wind-down: the reader stops (EOF, error, malformed frame, Shutdown), waits
// until every request it admitted has been answered (or dropped, when the
// socket is broken), then tells the writer to finish; the Server joins both.
//
//   reading --EOF/bad frame--> draining --in_flight_==0--> writer exits --> finished
#include "replicad/net/connection.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>

#include "common/frame_io.h"
#include "common/log.h"
#include "common/net.h"
#include "common/send_batch.h"
#include "replicad/io/submit_batch.h"

namespace shorthorn::replicad {

Connection::Connection(UniqueFd fd, std::string peer, RequestHandler* handler,
                       const ConnectionOptions* options)
    : fd_(std::move(fd)), peer_(std::move(peer)), handler_(handler), options_(options) {}

Connection::~Connection() { Join(); }

void Connection::Start() {
  threads_running_ = 1;
  try {
    reader_ = std::thread([this] { ReadLoop(); });
  } catch (...) {
    threads_running_ = 0;
    throw;
  }
}

bool Connection::StartWriter() {
  {
    std::lock_guard lock(mu_);
    ++threads_running_;
  }
  try {
    writer_ = std::thread([this] { WriteLoop(); });
    return true;
  } catch (const std::system_error& e) {
    LogError("closing connection from " + peer_ + ": cannot start its writer thread: " + e.what());
    std::lock_guard lock(mu_);
    --threads_running_;
    return false;
  }
}

bool Connection::Authenticate() {
  SetIoTimeouts(fd_.get(), options_->auth_timeout);
  Status s = auth::ServerHandshake(fd_.get(), *options_->key);
  if (!s.ok()) {
    if (s.kind() == ErrorKind::kUnavailable && s.message() == "connection closed") {
      LogDebug("connection from " + peer_ + " closed before it authenticated");
    } else if (s.sys_errno() == EAGAIN || s.sys_errno() == EWOULDBLOCK) {
      LogWarning("closing connection from " + peer_ + ": it did not authenticate within " +
                 std::to_string(options_->auth_timeout.count()) + " ms");
    } else {
      LogWarning("refused connection from " + peer_ + ": " + s.message());
    }
    return false;
  }
  SetIoTimeouts(fd_.get(), options_->send_timeout);
  ClearReceiveTimeout(fd_.get());
  authenticated_ = true;
  LogDebug("connection from " + peer_ + " authenticated");
  return true;
}

uint64_t Connection::Cost(const wire::Header& request) {
  switch (request.op) {
    case wire::Op::kRead:
    case wire::Op::kReadSnapshot:
    case wire::Op::kReadSnapshotView:
      return request.length;
    case wire::Op::kWrite:
      return request.payload_length;
    default:
      return 0;
  }
}

uint64_t Connection::Cost(const std::vector<Reply>& batch) {
  uint64_t sum = 0;
  for (const auto& r : batch) sum += Cost(r.request);
  return sum;
}

void Connection::Shutdown() { ::shutdown(fd_.get(), SHUT_RDWR); }

void Connection::Join() {
  if (reader_.joinable()) reader_.join();
  if (writer_.joinable()) writer_.join();
}

bool Connection::finished() const {
  std::lock_guard lock(mu_);
  return threads_running_ == 0;
}

void Connection::Enqueue(const wire::Header& request, int32_t status,
                         std::vector<uint8_t> payload) {
  // On the reader thread the reader sends it itself before it next blocks;
  // on an engine thread inside a SendBatch (the completions it reaped
  // together) it goes out when that batch closes; elsewhere at once, unless
  // someone is sending.
  bool from_reader = std::this_thread::get_id() == reader_id_;
  bool later = !from_reader && shorthorn::SendBatch::Active();
  std::vector<Reply> batch;
  {
    std::lock_guard lock(mu_);
    replies_.push_back({request, status, std::move(payload)});
    if (from_reader || sending_) return;
    if (later) {
      if (flush_registered_) return;
      flush_registered_ = true;
    } else {
      sending_ = true;
      batch.swap(replies_);
    }
  }
  if (later) {
    shorthorn::SendBatch::AtClose([self = shared_from_this()] { self->SendHeld(); });
    return;
  }
  SendBatchNow(batch);
}

void Connection::SendHeld() {
  std::vector<Reply> batch;
  {
    std::lock_guard lock(mu_);
    flush_registered_ = false;
    // A sender takes them after its own (FinishSend); the reader before it
    // next blocks.
    if (sending_ || replies_.empty()) return;
    sending_ = true;
    batch.swap(replies_);
  }
  SendBatchNow(batch);
}

void Connection::SendBatch(std::vector<Reply>& batch) {
  bool broken;
  {
    std::lock_guard lock(mu_);
    broken = broken_;
  }
  if (!broken) {
    std::vector<OutFrame> frames;
    frames.reserve(batch.size());
    for (const auto& r : batch) {
      frames.push_back({wire::MakeReply(r.request, r.status, r.payload), r.payload});
    }
    Status s = WriteFrames(fd_.get(), frames);
    if (!s.ok()) {
      broken = true;
      LogInfo("connection from " + peer_ + ": " + s.message() + "; dropping its replies");
      ::shutdown(fd_.get(), SHUT_RDWR);  // wakes the reader
    }
  }
  FinishSend(broken, static_cast<uint32_t>(batch.size()), Cost(batch));
  batch.clear();
}

void Connection::SendBatchNow(std::vector<Reply>& batch) {
  bool broken;
  {
    std::lock_guard lock(mu_);
    broken = broken_;
  }
  std::vector<uint8_t> rest;
  if (!broken) {
    std::vector<OutFrame> frames;
    frames.reserve(batch.size());
    for (const auto& r : batch) {
      frames.push_back({wire::MakeReply(r.request, r.status, r.payload), r.payload});
    }
    Status s = WriteFramesNow(fd_.get(), frames, &rest);
    if (!s.ok()) {
      broken = true;
      rest.clear();
      LogInfo("connection from " + peer_ + ": " + s.message() + "; dropping its replies");
      ::shutdown(fd_.get(), SHUT_RDWR);  // wakes the reader
    }
  }
  auto answered = static_cast<uint32_t>(batch.size());
  uint64_t cost = Cost(batch);
  batch.clear();
  if (rest.empty()) return FinishSend(broken, answered, cost);
  {
    std::lock_guard lock(mu_);  // the writer takes over, sender role and all
    rest_ = std::move(rest);
    rest_replies_ = answered;
    rest_cost_ = cost;
  }
  writer_cv_.notify_one();
}

void Connection::FinishSend(bool broken, uint32_t answered, uint64_t bytes) {
  bool more;
  {
    std::lock_guard lock(mu_);
    broken_ = broken_ || broken;
    sending_ = false;
    in_flight_ -= answered;
    in_flight_bytes_ -= bytes;
    more = !replies_.empty();
  }
  reader_cv_.notify_all();
  if (more) writer_cv_.notify_one();
}

void Connection::SendQueuedFromReader() {
  std::vector<Reply> batch;
  {
    std::lock_guard lock(mu_);
    if (replies_.empty() || sending_) return;  // a sending writer takes them after
    sending_ = true;
    batch.swap(replies_);
  }
  SendBatch(batch);
}

void Connection::ReadLoop() {
  reader_id_ = std::this_thread::get_id();
  bool served = Authenticate() && StartWriter();
  if (served) Serve();
  // Without a writer nobody else ends the stream: the peer sees EOF now.
  ::shutdown(fd_.get(), served ? SHUT_RD : SHUT_RDWR);
  std::unique_lock lock(mu_);
  reader_cv_.wait(lock, [this] { return in_flight_ == 0; });
  reader_done_ = true;
  --threads_running_;
  writer_cv_.notify_all();
}

void Connection::Serve() {
  FrameReader reader(fd_.get(), 256 << 10, /*aligned_writes=*/true);
  auto full = [this] {
    return in_flight_ >= kMaxInFlight || in_flight_bytes_ >= kMaxInFlightBytes;
  };
  // Open while frames are buffered: the disk requests they make reach the
  // kernel together when it closes, before the reader next blocks.
  std::optional<SubmitBatch> held;
  for (;;) {
    if (!reader.HasBufferedFrame()) {
      held.reset();
      SendQueuedFromReader();
    }
    {
      std::unique_lock lock(mu_);
      if (full()) {
        lock.unlock();
        SubmitBatch::Kick();
        SendQueuedFromReader();
        lock.lock();
        reader_cv_.wait(lock, [&] { return !full(); });
      }
    }
    auto frame = reader.Next();
    if (!frame.ok()) {
      const Status& s = frame.status();
      if (s.kind() == ErrorKind::kUnavailable && s.message() == "connection closed") {
        LogDebug("connection from " + peer_ + " closed");
      } else {
        LogWarning("closing connection from " + peer_ + ": " + s.message());
      }
      break;
    }
    const uint64_t cost = Cost(frame->header);
    {
      std::lock_guard lock(mu_);
      ++in_flight_;
      in_flight_bytes_ += cost;
    }
    if (!held) held.emplace();
    // The last frame of a read may be served inline (no engine hop), unless
    // earlier ones wait in the batch: then it joins them.
    state_.nothing_queued = !reader.HasBufferedFrame() && !SubmitBatch::Holding();
    Status s =
        handler_->Handle(&state_, std::move(*frame),
                         [self = shared_from_this()](const wire::Header& request, int32_t status,
                                                     std::vector<uint8_t> payload) {
                           self->Enqueue(request, status, std::move(payload));
                         });
    if (!s.ok()) {
      {
        std::lock_guard lock(mu_);
        --in_flight_;
        in_flight_bytes_ -= cost;
      }
      LogWarning("closing connection from " + peer_ + ": " + s.message());
      break;
    }
  }
  held.reset();
  SendQueuedFromReader();
}

void Connection::WriteLoop() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  std::vector<Reply> batch;
  std::vector<uint8_t> rest;
  for (;;) {
    uint32_t rest_replies = 0;
    uint64_t rest_cost = 0;
    {
      std::unique_lock lock(mu_);
      writer_cv_.wait(lock, [this] {
        return !rest_.empty() || (!replies_.empty() && !sending_) ||
               (reader_done_ && replies_.empty());
      });
      if (!rest_.empty()) {  // an engine thread left us the end of its batch
        rest.swap(rest_);
        rest_replies = rest_replies_;
        rest_cost = rest_cost_;
      } else if (replies_.empty()) {
        break;  // reader done and nothing left
      } else {
        sending_ = true;
        batch.swap(replies_);
      }
    }
    if (!rest.empty()) {
      Status s = WriteBytes(fd_.get(), rest);
      if (!s.ok()) {
        LogInfo("connection from " + peer_ + ": " + s.message() + "; dropping its replies");
        ::shutdown(fd_.get(), SHUT_RDWR);  // wakes the reader
      }
      rest.clear();
      FinishSend(!s.ok(), rest_replies, rest_cost);
      continue;
    }
    SendBatch(batch);
  }
  // The peer sees end of stream now; the fd itself closes when the Server
  // reaps this connection.
  ::shutdown(fd_.get(), SHUT_RDWR);
  std::lock_guard lock(mu_);
  --threads_running_;
}

}  // namespace shorthorn::replicad
