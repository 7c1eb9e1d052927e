// Design notes (the protocol: Documentation/filesystems/fuse/fuse-io-uring.rst
// and fs/fuse/dev_uring.c in Linux 6.14+; Debian 12's headers predate it, so
// the few structures it uses are defined here and checked by size).
//
// An entry is two buffers the kernel writes to and reads from: a 288-byte
// header (the request's fuse_in_header in its first 128 bytes, the op's
// fixed argument in the next 128, then fuse_uring_ent_in_out) and a payload
// (the rest of the request: names, WRITE data; on commit the reply's
// arguments, READ data). The payload buffer has a page of room in front of
// it, where Serve lays out the classic request (header, argument) so that
// libfuse sees one contiguous buffer and the data is never copied.
//
// The kernel uses a queue only when every queue (one per *possible* CPU)
// has an entry registered: all queues are created and started together.
#define FUSE_USE_VERSION 312
#include "fused/fuse/fuse_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/file_util.h"
#include "common/log.h"
#include "common/send_batch.h"

namespace shorthorn::fused {
namespace {

// The uapi of FUSE protocol 7.42 (include/uapi/linux/fuse.h of Linux 6.14).
constexpr uint32_t kCmdRegister = 1;
constexpr uint32_t kCmdCommitAndFetch = 2;
constexpr size_t kHeaderInOut = 0;       // fuse_in_header in, fuse_out_header out
constexpr size_t kHeaderOpIn = 128;      // the op's fixed argument
constexpr size_t kHeaderEntInOut = 256;  // EntInOut
constexpr size_t kHeaderBytes = 288;     // sizeof(fuse_uring_req_header)
constexpr size_t kOpInBytes = 128;
struct EntInOut {
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
static_assert(sizeof(EntInOut) == 32 && kHeaderEntInOut + sizeof(EntInOut) == kHeaderBytes);
struct CmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(CmdReq) == 24);
constexpr uint64_t kInterruptReplyBit = 1ULL << 63;  // FUSE_INT_REQ_BIT (7.31)
constexpr size_t kRoom = 4096;  // in front of the payload: the classic request's head
static_assert(sizeof(fuse_in_header) + kOpInBytes <= kRoom);

// The queue whose thread is inside its completion loop (its replies are
// submitted together after the loop), or nullptr.
thread_local const void* tl_batching = nullptr;

// A CQE's user_data: an Entry*, a Task* with this bit set, or 0 (the
// queue's doorbell: replies from other threads, or Stop).
constexpr uintptr_t kTaskTag = 1;

// Possible CPUs as the kernel counts them (cpu_possible_mask): "0-1,4".
size_t PossibleCpus() {
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string text;
  size_t count = 0;
  if (in >> text) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t comma = text.find(',', pos);
      std::string part =
          text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t dash = part.find('-');
      try {
        unsigned long a = std::stoul(part.substr(0, dash));
        unsigned long b = dash == std::string::npos ? a : std::stoul(part.substr(dash + 1));
        if (b >= a) count += b - a + 1;
      } catch (const std::exception&) {
        return static_cast<size_t>(get_nprocs_conf());
      }
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return count > 0 ? count : static_cast<size_t>(get_nprocs_conf());
}

}  // namespace

struct FuseRing::Entry {
  Queue* queue = nullptr;
  uint8_t* header = nullptr;  // kHeaderBytes, in its own page
  uint8_t* region = nullptr;  // kRoom + payload, mmap'ed
  size_t region_bytes = 0;
  ::iovec iov[2]{};
  uint64_t commit_id = 0;
  uint32_t last_cmd = 0;
  uint8_t* payload() const { return region + kRoom; }
  EntInOut* ent() const { return reinterpret_cast<EntInOut*>(header + kHeaderEntInOut); }
};

struct FuseRing::Queue {
  uint16_t qid = 0;
  io_uring ring{};  // its SQ: the queue's thread only (Stop after joining it)
  bool ring_ready = false;
  int event_fd = -1;             // the doorbell
  uint64_t event_value = 0;      // the doorbell read's target
  uint32_t tasks = 0;            // SubmitHere I/O in flight; the queue's thread only
  std::mutex mu;                 // guards `answered` and `closed`
  std::vector<Entry*> answered;  // replied to from other threads, to commit
  bool closed = false;
  std::vector<Entry> entries;
  std::thread thread;
};

namespace {
constexpr const char* kEnableUringParam = "/sys/module/fuse/parameters/enable_uring";
}  // namespace

bool FuseUringEnabled() {
  std::ifstream in(kEnableUringParam);
  char c = 0;
  return (in >> c) && (c == 'Y' || c == '1');
}

Status EnableFuseUring() {
  if (FuseUringEnabled()) return Status::Ok();
  if (::access(kEnableUringParam, F_OK) != 0) {
    return Status(
        ErrorKind::kUnavailable,
        std::string("this kernel has no FUSE over io_uring (no ") + kEnableUringParam + ")",
        ENOENT);
  }
  UniqueFd fd(::open(kEnableUringParam, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, std::string("open ") + kEnableUringParam);
  if (::write(fd.get(), "Y", 1) != 1) {
    return ErrnoStatus(errno, std::string("write Y to ") + kEnableUringParam);
  }
  if (!FuseUringEnabled()) {
    return Status(ErrorKind::kUnavailable,
                  std::string(kEnableUringParam) + " does not read Y after writing it", EIO);
  }
  LogInfo(std::string("FUSE over io_uring: set ") + kEnableUringParam + " to Y (fuse-uring = yes)");
  return Status::Ok();
}

FuseRing::FuseRing(fuse_session* session, int fuse_fd, FuseRingSettings settings)
    : session_(session), fuse_fd_(fuse_fd), settings_(settings) {}

Result<std::unique_ptr<FuseRing>> FuseRing::Create(fuse_session* session, int fuse_fd,
                                                   FuseRingSettings settings) {
  if (settings.queue_depth == 0) {
    return Status(ErrorKind::kInvalidArgument, "fuse ring: queue depth 0");
  }
  settings.payload_bytes = std::max<size_t>(settings.payload_bytes, 8192);
  std::unique_ptr<FuseRing> ring(new FuseRing(session, fuse_fd, settings));
  Status s = ring->Prepare(PossibleCpus());
  if (!s.ok()) return s;
  return ring;
}

Status FuseRing::Prepare(size_t nr_queues) {
  for (size_t i = 0; i < nr_queues; ++i) {
    auto q = std::make_unique<Queue>();
    q->qid = static_cast<uint16_t>(i);
    const std::string what = "fuse ring queue " + std::to_string(i);
    io_uring_params p{};
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    // Per entry at most one command and one backend I/O (SubmitHere) in
    // flight, and the eventfd's read.
    const unsigned sqes = 2 * settings_.queue_depth + 1;
    p.cq_entries = 2 * sqes;
    int rc = io_uring_queue_init_params(sqes, &q->ring, &p);
    if (rc < 0) return ErrnoStatus(-rc, what + ": io_uring_queue_init");
    q->ring_ready = true;
    queues_.push_back(std::move(q));
    Queue* qp = queues_.back().get();
    rc = io_uring_register_files(&qp->ring, &fuse_fd_, 1);
    if (rc < 0) return ErrnoStatus(-rc, what + ": register /dev/fuse");
    qp->event_fd = eventfd(0, EFD_CLOEXEC);
    if (qp->event_fd < 0) return ErrnoStatus(errno, what + ": eventfd");
    qp->entries.resize(settings_.queue_depth);
    for (Entry& e : qp->entries) {
      e.queue = qp;
      e.header = static_cast<uint8_t*>(std::aligned_alloc(4096, 4096));
      if (e.header == nullptr) return ErrnoStatus(ENOMEM, what + ": entry header");
      std::memset(e.header, 0, 4096);
      e.region_bytes = kRoom + settings_.payload_bytes;
      void* m = mmap(nullptr, e.region_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED) return ErrnoStatus(errno, what + ": entry payload");
      e.region = static_cast<uint8_t*>(m);
      e.iov[0] = {e.header, kHeaderBytes};
      e.iov[1] = {e.payload(), settings_.payload_bytes};
    }
    qp->thread = std::thread([this, qp] { Run(qp); });
  }
  return Status::Ok();
}

FuseRing::~FuseRing() {
  Stop();
  for (auto& q : queues_) {
    for (Entry& e : q->entries) {
      if (e.region != nullptr) munmap(e.region, e.region_bytes);
      std::free(e.header);
    }
    if (q->event_fd >= 0) ::close(q->event_fd);
  }
}

void FuseRing::Raise(std::atomic<bool>* flag) {
  {
    std::lock_guard lock(start_mu_);
    *flag = true;
  }
  start_cv_.notify_all();
}

void FuseRing::Start() { Raise(&started_); }

void FuseRing::Stop() {
  Raise(&stopping_);
  for (auto& q : queues_) {
    Ring(q.get());
    if (q->thread.joinable()) q->thread.join();
    // A late Reply finds the queue closed; the buffers stay until the
    // destructor, so its copy into them is harmless.
    std::lock_guard lock(q->mu);
    q->closed = true;
    if (q->ring_ready) io_uring_queue_exit(&q->ring);
    q->ring_ready = false;
  }
}

void FuseRing::Ring(Queue* q) {
  uint64_t one = 1;
  if (q->event_fd >= 0) (void)!::write(q->event_fd, &one, sizeof(one));
}

io_uring_sqe* FuseRing::NextSqe(Queue* q) {
  io_uring_sqe* sqe;
  // Sized for every entry's command and I/O at once: a full SQ only waits
  // for this thread's own submit.
  while ((sqe = io_uring_get_sqe(&q->ring)) == nullptr) SubmitAll(q);
  return sqe;
}

void FuseRing::SubmitAll(Queue* q) {
  int rc;
  while ((rc = io_uring_submit(&q->ring)) == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
  }
  if (rc < 0) {
    // Requests on this CPU could never be answered, nor go to /dev/fuse:
    // better the connection ends (I/O errors) than hangs.
    LogError("fuse ring queue " + std::to_string(q->qid) + ": submit: " + std::strerror(-rc));
    std::abort();
  }
}

void FuseRing::QueueCommand(Queue* q, Entry* e, uint32_t cmd) {
  io_uring_sqe* sqe = NextSqe(q);
  std::memset(sqe, 0, 128);  // SQE128: io_uring_get_sqe does not clear it
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->flags = IOSQE_FIXED_FILE;
  sqe->fd = 0;
  sqe->cmd_op = cmd;
  sqe->user_data = reinterpret_cast<uintptr_t>(e);
  if (cmd == kCmdRegister) {
    sqe->addr = reinterpret_cast<uintptr_t>(e->iov);
    sqe->len = 2;
  }
  auto* req = reinterpret_cast<CmdReq*>(sqe->cmd);
  req->qid = q->qid;
  req->commit_id = e->commit_id;
  e->last_cmd = cmd;
}

void FuseRing::ArmDoorbell(Queue* q) {
  io_uring_sqe* sqe = NextSqe(q);
  io_uring_prep_read(sqe, q->event_fd, &q->event_value, sizeof(q->event_value), 0);
  sqe->user_data = 0;
}

void FuseRing::Run(Queue* q) {
  // The kernel picks the queue by the CPU a request is made on (qid = CPU
  // number): the thread of queue N runs on CPU N where it may.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(q->qid, &cpus);
  (void)sched_setaffinity(0, sizeof(cpus), &cpus);  // locality only; may fail
  {
    std::unique_lock lock(start_mu_);
    start_cv_.wait(lock, [this] { return started_.load() || stopping_.load(); });
  }
  if (stopping_) return;
  tl_batching = q;
  ArmDoorbell(q);
  for (Entry& e : q->entries) QueueCommand(q, &e, kCmdRegister);
  SubmitAll(q);
  bool stop = false, warned = false;
  std::vector<Entry*> answered;
  while (!stop || q->tasks > 0) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&q->ring, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      LogError("fuse ring queue " + std::to_string(q->qid) + ": wait: " + std::strerror(-rc));
      std::abort();  // as in SubmitAll
    }
    // The replica requests of this wake-up's requests are written when it
    // ends (after the commits are submitted): one write per connection.
    SendBatch batch;
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&q->ring, head, cqe) {
      ++seen;
      const auto data = static_cast<uintptr_t>(cqe->user_data);
      auto* e = reinterpret_cast<Entry*>(data);
      const int res = cqe->res;
      if ((data & kTaskTag) != 0) {
        q->tasks--;
        reinterpret_cast<Task*>(data & ~kTaskTag)->Complete(res);
      } else if (e == nullptr) {
        // The doorbell: replies from other threads, or Stop.
        {
          std::lock_guard lock(q->mu);
          answered.swap(q->answered);
        }
        for (Entry* a : answered) QueueCommand(q, a, kCmdCommitAndFetch);
        answered.clear();
        if (stopping_) {
          stop = true;
        } else {
          ArmDoorbell(q);
        }
      } else if (res == 0) {
        Serve(q, e);
      } else if (res == -EAGAIN || res == -EINTR) {
        // REGISTER before the kernel finished INIT, or interrupted: again.
        QueueCommand(q, e, e->last_cmd);
      } else if (!stopping_ && !warned) {
        // -ENOTCONN: the connection ended (an unmount); else the entry is
        // gone and the kernel uses the others (or /dev/fuse if none is left).
        warned = true;
        if (res != -ENOTCONN) {
          LogWarning("fuse ring queue " + std::to_string(q->qid) + ": " +
                     (e->last_cmd == kCmdRegister ? "register" : "commit") +
                     " failed: " + std::strerror(-res));
        }
      }
    }
    io_uring_cq_advance(&q->ring, seen);
    SubmitAll(q);
  }
  tl_batching = nullptr;
}

void FuseRing::Serve(Queue* q, Entry* e) {
  fuse_in_header in;
  std::memcpy(&in, e->header + kHeaderInOut, sizeof(in));
  const EntInOut ent = *e->ent();
  const size_t payload = ent.payload_sz;
  e->commit_id = ent.commit_id;
  if (payload > settings_.payload_bytes || in.len < sizeof(in) + payload ||
      in.len - sizeof(in) - payload > kOpInBytes || ent.commit_id != in.unique) {
    // Not a request this code understands: answer EIO, keep the entry.
    LogWarning("fuse ring queue " + std::to_string(q->qid) + ": request " +
               std::to_string(in.unique) + " (opcode " + std::to_string(in.opcode) +
               ") does not fit its entry; answered EIO");
    fuse_out_header out{sizeof(fuse_out_header), -EIO, in.unique};
    std::memcpy(e->header + kHeaderInOut, &out, sizeof(out));
    e->ent()->payload_sz = 0;
    QueueCommand(q, e, kCmdCommitAndFetch);
    return;
  }
  const size_t op_in = in.len - sizeof(in) - payload;
  uint8_t* start = e->payload() - sizeof(in) - op_in;
  std::memcpy(start, &in, sizeof(in));
  std::memcpy(start + sizeof(in), e->header + kHeaderOpIn, op_in);
  {
    Shard& s = shards_[in.unique % kShards];
    std::lock_guard lock(s.mu);
    s.pending[in.unique] = e;
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  fuse_buf buf{};
  buf.mem = start;
  buf.size = in.len;
  fuse_session_process_buf(session_, &buf);
}

bool FuseRing::SubmitHereImpl(Task* task, void (*prep)(io_uring_sqe*, void*), void* arg) {
  auto* q = static_cast<Queue*>(const_cast<void*>(tl_batching));
  if (q == nullptr) return false;
  io_uring_sqe* sqe = NextSqe(q);
  prep(sqe, arg);
  sqe->user_data = reinterpret_cast<uintptr_t>(task) | kTaskTag;
  q->tasks++;
  return true;
}

FuseRing::Entry* FuseRing::TakePending(uint64_t unique) {
  Shard& s = shards_[unique % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.pending.find(unique);
  if (it == s.pending.end()) return nullptr;
  Entry* e = it->second;
  s.pending.erase(it);
  return e;
}

bool FuseRing::Reply(const ::iovec* iov, int count) {
  if (count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof(out));
  // Notifications (unique 0) and interrupt replies never use the ring.
  if (out.unique == 0 || (out.unique & kInterruptReplyBit) != 0) return false;
  Entry* e = TakePending(out.unique);
  if (e == nullptr) return false;
  // The reply's arguments: what follows the header in iov[0], then the rest.
  size_t n = 0;
  bool fits = true;
  auto copy = [&](const void* from, size_t len) {
    if (!fits || len == 0) return;
    if (n + len > settings_.payload_bytes) {
      fits = false;
      return;
    }
    std::memcpy(e->payload() + n, from, len);
    n += len;
  };
  copy(static_cast<const uint8_t*>(iov[0].iov_base) + sizeof(out), iov[0].iov_len - sizeof(out));
  for (int i = 1; i < count; ++i) copy(iov[i].iov_base, iov[i].iov_len);
  if (!fits) {
    out.error = -EIO;
    n = 0;
  }
  out.len = static_cast<uint32_t>(sizeof(out) + n);
  std::memcpy(e->header + kHeaderInOut, &out, sizeof(out));
  e->ent()->payload_sz = static_cast<uint32_t>(n);
  Queue* q = e->queue;
  if (tl_batching == q) {
    QueueCommand(q, e, kCmdCommitAndFetch);  // submitted after this wake-up's completions
    return true;
  }
  // Another thread: the queue's own thread commits it, so that every
  // command of the queue is its thread's (io_uring runs a command's work in
  // the task that submitted it, and cancels it when that task exits).
  bool ring;
  {
    std::lock_guard lock(q->mu);
    if (q->closed) return true;  // Stop: the connection is going away
    ring = q->answered.empty();
    q->answered.push_back(e);
  }
  if (ring) Ring(q);
  return true;
}

}  // namespace shorthorn::fused
