// Design notes: a reply completed on an engine thread (the I/O completion
// callback) is written from there only as far as the socket takes it without
// blocking; the rest goes through the writer thread, so a client that stops
// reading stalls only its own connection, never the engine's completion
// thread that all replicas share. The writer blocks SIGPIPE in itself, so a
// peer that vanished yields EPIPE rather than killing the daemon.
//
// Wind-down: the reader stops (EOF, error, malformed frame, Shutdown), waits
// until every request it admitted has been answered (or dropped, when the
// socket is broken), then tells the writer to finish; the Server joins both.
//
//   reading --EOF/bad frame--> draining --in_flight_==0--> writer exits --> finished
#include "replicad/connection.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <utility>

#include "common/frame_io.h"
#include "common/log.h"

namespace shorthorn::replicad {

Connection::Connection(UniqueFd fd, std::string peer, RequestHandler* handler)
    : fd_(std::move(fd)), peer_(std::move(peer)), handler_(handler) {}

Connection::~Connection() { Join(); }

void Connection::Start() {
  threads_running_ = 2;
  reader_ = std::thread([this] { ReadLoop(); });
  writer_ = std::thread([this] { WriteLoop(); });
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
  // on an engine thread it goes out at once unless someone is sending.
  bool from_reader = std::this_thread::get_id() == reader_id_;
  std::vector<Reply> batch;
  {
    std::lock_guard lock(mu_);
    replies_.push_back({request, status, std::move(payload)});
    if (from_reader || sending_) return;
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
  FinishSend(broken, static_cast<uint32_t>(batch.size()));
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
  batch.clear();
  if (rest.empty()) return FinishSend(broken, answered);
  {
    std::lock_guard lock(mu_);  // the writer takes over, sender role and all
    rest_ = std::move(rest);
    rest_replies_ = answered;
  }
  writer_cv_.notify_one();
}

void Connection::FinishSend(bool broken, uint32_t answered) {
  bool more;
  {
    std::lock_guard lock(mu_);
    broken_ = broken_ || broken;
    sending_ = false;
    in_flight_ -= answered;
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
  FrameReader reader(fd_.get(), 256 << 10, /*aligned_writes=*/true);
  for (;;) {
    if (!reader.HasBufferedFrame()) SendQueuedFromReader();
    {
      std::unique_lock lock(mu_);
      if (in_flight_ >= kMaxInFlight) {
        lock.unlock();
        SendQueuedFromReader();
        lock.lock();
        reader_cv_.wait(lock, [this] { return in_flight_ < kMaxInFlight; });
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
    {
      std::lock_guard lock(mu_);
      ++in_flight_;
    }
    state_.nothing_queued = !reader.HasBufferedFrame();
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
      }
      LogWarning("closing connection from " + peer_ + ": " + s.message());
      break;
    }
  }
  SendQueuedFromReader();
  ::shutdown(fd_.get(), SHUT_RD);
  std::unique_lock lock(mu_);
  reader_cv_.wait(lock, [this] { return in_flight_ == 0; });
  reader_done_ = true;
  --threads_running_;
  writer_cv_.notify_all();
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
    {
      std::unique_lock lock(mu_);
      writer_cv_.wait(lock, [this] {
        return !rest_.empty() || (!replies_.empty() && !sending_) ||
               (reader_done_ && replies_.empty());
      });
      if (!rest_.empty()) {  // an engine thread left us the end of its batch
        rest.swap(rest_);
        rest_replies = rest_replies_;
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
      FinishSend(!s.ok(), rest_replies);
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
