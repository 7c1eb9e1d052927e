// fuse_floor: the "FUSE floor" and the "FUSE ceiling" of bench/run.sh. It
// serves ONE regular file through shorthorn-fused's own FUSE frontend
// (fused/fuse: FuseFrontend and the request handlers of fuse_ops.cc, with
// fused's settings: DESIGN §4), over a Backend of its own instead of the
// replicated engine:
//
//   --backend file  (default; the fuse-floor row) a trivial io_uring backend
//                   on a file on a local disk: the best a loop device on
//                   Shorthorn's FUSE file can do on this machine, so what
//                   Shorthorn adds above it is the engine's and the
//                   replicas' cost;
//   --backend null  (the fuse-null row) answers every request at once
//                   without I/O (reads return zeros): what the frontend, the
//                   kernel's FUSE and the loop device cost on their own.
//
// Because the frontend is fused's, every change to it moves fused, the
// floor and the ceiling together.
//
//   fuse_floor --mount DIR [--backend file|null] [--backing FILE]
//              [--size BYTES] [--name NAME] [--threads N]
//              [--max-background N] [--max-request BYTES] [--buffered]
//              [--ring-entries N] [--coop-taskrun] [--tmp-dir DIR]
//
// The file appears as DIR/NAME (default "floor") once the mount is ready; its
// size is the backing file's (or --size with the null backend), fixed.
// SIGTERM/SIGINT or an unmount ends it: the file is removed, what is in
// flight is answered, DIR is unmounted, and it prints the frontend's request
// counts (and the most requests the file backend had in flight) as its last
// line. While something (a loop device) still holds the file, the unmount is
// lazy and the exit waits until it lets go, as fused's does.
//
// Design notes
//
// The frontend keeps the /dev/fuse descriptor in a holder process (started
// from this binary: `fuse_floor --fuse-fd-holder SOCKET`, as fused does
// with its own binary) and its session state in a state directory, so that
// a restarted fused can take the connection over. The floor never takes
// over: it makes a fresh state directory under --tmp-dir for each run,
// never looks at systemd's descriptor store (NOTIFY_SOCKET and LISTEN_FDS
// are dropped), and at exit FuseFrontend::Stop releases the holder (which
// then exits) and removes the state file; the floor removes the directory.
//
// Threads, and what each calls:
//   * main: options, backend, frontend, then waits for a signal (checking
//     once a second that DIR is still mounted); at the end RemoveVolume,
//     Backend::Close (answers what is in flight), FuseFrontend::Stop.
//   * the frontend's FUSE workers (fused's pool) call FileBackend::Read/
//     Write/Unmap/Flush: they copy write data into a pooled 4 KiB-aligned
//     buffer (the frontend's buffer is reused once the call returns), queue
//     one SQE under mutex_ and io_uring_submit; they never wait for the
//     disk. NullBackend answers on the worker itself.
//   * the file backend's completion thread: the only reader of the CQ ring;
//     it runs the Backend callbacks (the frontend's fuse_reply_*).
// An Op is allocated per I/O and travels as the SQE's user_data; user_data 0
// is the stop marker queued by Close.
//
// The backing file is opened with O_DIRECT (like fio's direct=1 on the raw
// file), so the floor measures the same disk path as "raw"; --buffered drops
// O_DIRECT. Flush becomes IORING_OP_FSYNC with DATASYNC, Unmap (the
// frontend's answer to PUNCH_HOLE and ZERO_RANGE) IORING_OP_FALLOCATE with
// PUNCH_HOLE. A read is read into an aligned buffer and copied into the
// std::vector the Backend interface returns (O_DIRECT cannot read into a
// vector's memory): the same allocation and copy per read that fused's
// replica client makes.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/log.h"
#include "fused/core/io_stats.h"
#include "fused/engine/backend.h"
#include "fused/fuse/fd_keeper.h"
#include "fused/fuse/fuse_frontend.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace {

using shorthorn::ErrnoStatus;
using shorthorn::ErrorKind;
using shorthorn::Status;
using shorthorn::fused::Backend;
using shorthorn::fused::DoneCallback;
using shorthorn::fused::ReadCallback;

constexpr size_t kAlignment = shorthorn::kDirectIoAlignment;

struct Options {
  std::string mount_point;
  std::string backend = "file";
  std::string backing_file;
  uint64_t size = 0;  // null backend without --backing
  std::string name = "floor";
  std::string tmp_dir;             // parent of the state dir; default $TMPDIR or /tmp
  unsigned threads = 8;            // fused's fuse-threads default
  unsigned max_background = 256;   // fused's max-background default
  unsigned max_request = 1 << 20;  // fused's max-request-kib default
  unsigned ring_entries = 512;
  bool buffered = false;
  bool coop_taskrun = false;  // IORING_SETUP_COOP_TASKRUN: no IPI per completion
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: fuse_floor --mount DIR [--backend file|null] [--backing FILE]\n"
               "                  [--size BYTES] [--name NAME] [--threads N]\n"
               "                  [--max-background N] [--max-request BYTES] [--buffered]\n"
               "                  [--ring-entries N] [--coop-taskrun] [--tmp-dir DIR]\n"
               "Serves one file as DIR/NAME (default name 'floor') through shorthorn-fused's\n"
               "FUSE frontend. --backend file (default): FILE through io_uring, O_DIRECT\n"
               "unless --buffered; --backend null: no I/O, reads return zeros, size from\n"
               "--size or FILE. Defaults (fused's): 8 threads (pool to 32), max-background\n"
               "256, max-request 1048576; ring 512; state dir made under --tmp-dir.\n");
}

bool ParseU64(const char* text, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > max) return false;
  *out = v;
  return true;
}

bool ParseUnsigned(const char* text, unsigned max, unsigned* out) {
  uint64_t v;
  if (!ParseU64(text, max, &v)) return false;
  *out = static_cast<unsigned>(v);
  return true;
}

// Returns false (after printing why) when the command line is not usable.
bool ParseOptions(int argc, char** argv, Options* o) {
  enum {
    kMount = 1,
    kBackend,
    kBacking,
    kSize,
    kName,
    kThreads,
    kMaxBg,
    kMaxReq,
    kBuffered,
    kRing,
    kCoop,
    kTmpDir,
    kHelp
  };
  static const option kLong[] = {{"mount", required_argument, nullptr, kMount},
                                 {"backend", required_argument, nullptr, kBackend},
                                 {"backing", required_argument, nullptr, kBacking},
                                 {"size", required_argument, nullptr, kSize},
                                 {"name", required_argument, nullptr, kName},
                                 {"threads", required_argument, nullptr, kThreads},
                                 {"max-background", required_argument, nullptr, kMaxBg},
                                 {"max-request", required_argument, nullptr, kMaxReq},
                                 {"buffered", no_argument, nullptr, kBuffered},
                                 {"ring-entries", required_argument, nullptr, kRing},
                                 {"coop-taskrun", no_argument, nullptr, kCoop},
                                 {"tmp-dir", required_argument, nullptr, kTmpDir},
                                 {"help", no_argument, nullptr, kHelp},
                                 {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    bool ok = true;
    switch (c) {
      case kMount:
        o->mount_point = optarg;
        break;
      case kBackend:
        o->backend = optarg;
        ok = o->backend == "file" || o->backend == "null";
        break;
      case kBacking:
        o->backing_file = optarg;
        break;
      case kSize:
        ok = ParseU64(optarg, uint64_t{1} << 50, &o->size) && o->size % kAlignment == 0;
        break;
      case kName:
        o->name = optarg;
        break;
      case kThreads:
        ok = ParseUnsigned(optarg, 1024, &o->threads);
        break;
      case kMaxBg:
        ok = ParseUnsigned(optarg, 65535, &o->max_background);
        break;
      case kMaxReq:
        ok = ParseUnsigned(optarg, 1u << 30, &o->max_request) && o->max_request % kAlignment == 0;
        break;
      case kBuffered:
        o->buffered = true;
        break;
      case kRing:
        ok = ParseUnsigned(optarg, 32768, &o->ring_entries);
        break;
      case kCoop:
        o->coop_taskrun = true;
        break;
      case kTmpDir:
        o->tmp_dir = optarg;
        break;
      case kHelp:
        Usage(stdout);
        std::exit(0);
      default:
        Usage(stderr);
        return false;
    }
    if (!ok) {
      std::fprintf(stderr, "fuse_floor: bad value '%s' for --%s\n", optarg, kLong[c - 1].name);
      return false;
    }
  }
  bool sized = !o->backing_file.empty() || (o->backend == "null" && o->size > 0);
  if (optind != argc || o->mount_point.empty() || !sized || o->name.empty() ||
      o->name.find('/') != std::string::npos) {
    Usage(stderr);
    return false;
  }
  if (o->tmp_dir.empty()) {
    const char* env = std::getenv("TMPDIR");
    o->tmp_dir = env != nullptr && *env != '\0' ? env : "/tmp";
  }
  return true;
}

// Aligned I/O buffers of max_request bytes, recycled (a fresh 1 MiB
// allocation per request would be an mmap/munmap pair and page faults).
class BufferPool {
 public:
  explicit BufferPool(size_t size) : size_(size) {}
  ~BufferPool() {
    for (void* b : free_) std::free(b);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint8_t* Get() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        void* b = free_.back();
        free_.pop_back();
        return static_cast<uint8_t*>(b);
      }
    }
    return static_cast<uint8_t*>(std::aligned_alloc(kAlignment, size_));
  }
  void Put(uint8_t* b) {
    if (b == nullptr) return;
    std::lock_guard lock(mutex_);
    free_.push_back(b);
  }

 private:
  const size_t size_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

// The file backend: each operation is one io_uring request on the backing
// file. Read/Write/Unmap/Flush from any thread (the FUSE workers); callbacks
// on the completion thread; Close from the owner once the file is removed
// from the frontend.
class FileBackend final : public Backend {
 public:
  explicit FileBackend(const Options& o) : opts_(o), pool_(o.max_request) {}
  ~FileBackend() override {
    (void)Close();
    if (fd_ >= 0) ::close(fd_);
  }

  // Opens the backing file and the ring, starts the completion thread.
  Status Open() {
    const std::string& path = opts_.backing_file;
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (opts_.buffered ? 0 : O_DIRECT));
    if (fd_ < 0) return ErrnoStatus(errno, "open " + path);
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat " + path);
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size % kAlignment != 0) {
      return Status(ErrorKind::kInvalidArgument,
                    "open " + path + ": not a regular file whose size is a multiple of 4096");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    int rc = io_uring_queue_init(opts_.ring_entries, &ring_,
                                 opts_.coop_taskrun ? IORING_SETUP_COOP_TASKRUN : 0);
    if (rc < 0) return ErrnoStatus(-rc, "set up io_uring");
    ring_ready_ = true;
    completion_ = std::thread([this] { CompletionLoop(); });
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }
  size_t Outstanding() const override { return in_flight_.load(std::memory_order_relaxed); }
  bool OnOwnThread() const override { return std::this_thread::get_id() == completion_id_; }
  uint64_t PeakInFlight() const { return peak_in_flight_.load(); }

  void Read(uint64_t offset, uint32_t length, ReadCallback done) override {
    auto* op = new Op{Op::kRead, length, pool_.Get(), std::move(done), nullptr};
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd_, op->buf, length, offset); });
  }

  void Write(uint64_t offset, std::span<const uint8_t> data, DoneCallback done) override {
    auto length = static_cast<uint32_t>(data.size());
    auto* op = new Op{Op::kWrite, length, pool_.Get(), nullptr, std::move(done)};
    std::memcpy(op->buf, data.data(), data.size());
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_write(sqe, fd_, op->buf, length, offset); });
  }

  void Unmap(uint64_t offset, uint64_t length, DoneCallback done) override {
    auto* op = new Op{Op::kUnmap, 0, nullptr, nullptr, std::move(done)};
    Submit(op, [&](io_uring_sqe* sqe) {
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    });
  }

  void Flush(DoneCallback done) override {
    auto* op = new Op{Op::kFlush, 0, nullptr, nullptr, std::move(done)};
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC); });
  }

  // Ends the completion thread once every request queued so far is answered
  // (the stop marker is queued last; CQEs that complete after it are still
  // answered before the thread sees nothing in flight). Later I/O fails.
  Status Close() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return Status::Ok();
      closed_ = true;
      if (ring_ready_) QueueLocked(nullptr, [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
    }
    if (completion_.joinable()) completion_.join();
    if (ring_ready_) io_uring_queue_exit(&ring_);
    ring_ready_ = false;
    return Status::Ok();
  }

 private:
  struct Op {
    enum Kind { kRead, kWrite, kUnmap, kFlush } kind;
    uint32_t length;  // read/write
    uint8_t* buf;     // read/write: from pool_
    ReadCallback read_done;
    DoneCallback done;
  };

  // Queues `op` (prepared by `prep`) and submits it; fails it at once after
  // Close.
  template <typename Prep>
  void Submit(Op* op, Prep prep) {
    {
      std::lock_guard lock(mutex_);
      if (!closed_) {
        uint64_t now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (now > peak_in_flight_.load(std::memory_order_relaxed)) peak_in_flight_.store(now);
        QueueLocked(op, prep);
        return;
      }
    }
    Finish(op, -EIO);
  }

  template <typename Prep>
  void QueueLocked(Op* op, Prep prep) {
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) io_uring_submit(&ring_);
    prep(sqe);
    io_uring_sqe_set_data(sqe, op);
    int rc;
    while ((rc = io_uring_submit(&ring_)) == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
    }
    if (rc < 0) shorthorn::LogError("io_uring_submit: " + std::string(std::strerror(-rc)));
  }

  void CompletionLoop() {
    completion_id_ = std::this_thread::get_id();
    bool stopping = false;
    while (!stopping || in_flight_.load() != 0) {
      io_uring_cqe* cqe;
      int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {
        shorthorn::LogError("io_uring_wait_cqe: " + std::string(std::strerror(-rc)));
        std::abort();  // requests could never be answered: the mount would hang
      }
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        auto* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
        if (op == nullptr) {
          stopping = true;
          continue;
        }
        Finish(op, cqe->res);
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

  // Runs op's callback with the result `res` (bytes, or -errno) and frees it.
  void Finish(Op* op, int res) {
    std::unique_ptr<Op> owned(op);
    // A short read or write is an error: the callback has no byte count.
    if (res >= 0 && (op->kind == Op::kRead || op->kind == Op::kWrite) &&
        static_cast<uint32_t>(res) != op->length) {
      res = -EIO;
    }
    Status status = res < 0 ? ErrnoStatus(-res, "I/O on " + opts_.backing_file) : Status::Ok();
    if (op->kind == Op::kRead) {
      std::vector<uint8_t> data;
      if (res > 0) data.assign(op->buf, op->buf + res);
      pool_.Put(op->buf);
      op->read_done(std::move(status), std::move(data));
    } else {
      pool_.Put(op->buf);
      op->done(std::move(status));
    }
  }

  const Options opts_;
  BufferPool pool_;
  int fd_ = -1;
  uint64_t size_ = 0;
  io_uring ring_{};
  std::mutex mutex_;         // guards the SQ ring and closed_
  bool ring_ready_ = false;  // set before the completion thread starts
  bool closed_ = false;
  std::thread completion_;
  std::thread::id completion_id_;
  std::atomic<uint64_t> in_flight_{0}, peak_in_flight_{0};
};

// The null backend: every request is answered on the caller's thread, with
// no I/O; reads return zeros. Thread-safe (no state but the size).
class NullBackend final : public Backend {
 public:
  explicit NullBackend(uint64_t size) : size_(size) {}
  uint64_t Size() const override { return size_; }
  void Read(uint64_t, uint32_t length, ReadCallback done) override {
    done(Status::Ok(), std::vector<uint8_t>(length));
  }
  void Write(uint64_t, std::span<const uint8_t>, DoneCallback done) override { done(Status::Ok()); }
  void Unmap(uint64_t, uint64_t, DoneCallback done) override { done(Status::Ok()); }
  void Flush(DoneCallback done) override { done(Status::Ok()); }
  Status Close() override { return Status::Ok(); }

 private:
  const uint64_t size_;
};

// True while `path` (canonical, as the frontend resolved it) is a mount
// point in this namespace. Reads mountinfo, so it never sends a FUSE request.
bool IsMounted(const std::string& path) {
  std::string escaped;
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char octal[8];
      std::snprintf(octal, sizeof(octal), "\\%03o", static_cast<unsigned char>(c));
      escaped += octal;
    } else {
      escaped += c;
    }
  }
  std::ifstream in("/proc/self/mountinfo");
  std::string id, parent, device, root, point, rest;
  while (in >> id >> parent >> device >> root >> point) {
    if (point == escaped) return true;
    std::getline(in, rest);
  }
  return false;
}

// One line with the frontend's figures of the file (and the backend's peak).
void PrintStats(const Options& o, const shorthorn::fused::IoStats* stats, uint64_t peak) {
  using shorthorn::fused::IoOp;
  auto get = [&](IoOp op) { return stats ? stats->Get(op) : shorthorn::fused::IoFigures{}; };
  auto r = get(IoOp::kRead), w = get(IoOp::kWrite), f = get(IoOp::kFlush), d = get(IoOp::kDiscard);
  auto mean_us = [](const shorthorn::fused::IoFigures& x) {
    return x.requests ? static_cast<double>(x.latency_ns) / x.requests / 1000.0 : 0.0;
  };
  std::fprintf(
      stderr,
      "fuse_floor: %llu reads, %llu writes, %llu fsyncs, %llu discards, %llu errors; "
      "mean in-daemon latency read %.1f us, write %.1f us; %s backend, at most %llu "
      "in flight\n",
      static_cast<unsigned long long>(r.requests), static_cast<unsigned long long>(w.requests),
      static_cast<unsigned long long>(f.requests), static_cast<unsigned long long>(d.requests),
      static_cast<unsigned long long>(r.errors + w.errors + f.errors + d.errors), mean_us(r),
      mean_us(w), o.backend.c_str(), static_cast<unsigned long long>(peak));
}

// Waits for SIGTERM/SIGINT (blocked in every thread), or for the mount to
// go away; SIGHUP is ignored.
void WaitForStop(const sigset_t& signals, const std::string& mount_point) {
  timespec second{1, 0};
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &second);
    if (sig == SIGTERM || sig == SIGINT) return;
    if (sig < 0 && errno == EAGAIN && !IsMounted(mount_point)) {
      std::fprintf(stderr, "fuse_floor: %s was unmounted\n", mount_point.c_str());
      return;
    }
  }
}

int Serve(const Options& opts, const sigset_t& signals, const std::string& state_dir) {
  std::shared_ptr<Backend> backend;
  FileBackend* file = nullptr;
  if (opts.backend == "file") {
    auto f = std::make_shared<FileBackend>(opts);
    Status s = f->Open();
    if (!s.ok()) {
      std::fprintf(stderr, "fuse_floor: %s\n", s.message().c_str());
      return 1;
    }
    file = f.get();
    backend = std::move(f);
  } else {
    uint64_t size = opts.size;
    struct stat st;
    if (size == 0) {
      if (::stat(opts.backing_file.c_str(), &st) != 0 || st.st_size <= 0) {
        std::fprintf(stderr, "fuse_floor: cannot size the null file from %s\n",
                     opts.backing_file.c_str());
        return 1;
      }
      size = static_cast<uint64_t>(st.st_size) / kAlignment * kAlignment;
    }
    backend = std::make_shared<NullBackend>(size);
  }

  shorthorn::fused::FuseFrontend fuse(
      {opts.mount_point, opts.threads, opts.max_background, opts.max_request, state_dir});
  Status s = fuse.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "fuse_floor: %s\n", s.message().c_str());
    (void)backend->Close();
    return 1;
  }
  auto path = fuse.AddVolume(opts.name, backend);
  if (!path.ok()) {
    std::fprintf(stderr, "fuse_floor: %s\n", path.status().message().c_str());
    (void)backend->Close();
    fuse.Stop();
    return 1;
  }
  auto stats = fuse.Stats(opts.name);
  std::fprintf(stderr,
               "fuse_floor: serving %s as %s (%llu bytes) on shorthorn-fused's FUSE frontend, "
               "%s backend%s, %u threads (pool to %u), max_background %u, max_request %u\n",
               opts.backend == "file" ? opts.backing_file.c_str() : "nothing", path->c_str(),
               static_cast<unsigned long long>(backend->Size()), opts.backend.c_str(),
               opts.backend == "null" ? ""
               : opts.buffered        ? " (buffered, io_uring)"
                                      : " (O_DIRECT, io_uring)",
               opts.threads, std::max(opts.threads * 4, 16u), opts.max_background,
               opts.max_request);

  WaitForStop(signals, fuse.mount_point());

  // The file first (new requests get ENOENT), then what is in flight is
  // answered while the session is still there, then the unmount.
  fuse.RemoveVolume(opts.name);
  (void)backend->Close();
  fuse.Stop();
  PrintStats(opts, stats.get(), file != nullptr ? file->PeakInFlight() : 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  shorthorn::TuneAllocator();
  // The frontend's holder process is this binary (/proc/self/exe).
  if (argc >= 2 && std::strcmp(argv[1], shorthorn::fused::kFuseFdHolderFlag) == 0) {
    shorthorn::SetLogComponent("fuse-holder");
    shorthorn::SetLogLevel(shorthorn::LogLevel::kWarning);
    return shorthorn::fused::RunFuseFdHolder(argc, argv);
  }
  Options opts;
  if (!ParseOptions(argc, argv, &opts)) return 2;
  shorthorn::SetLogComponent("fuse_floor");
  shorthorn::SetLogLevel(shorthorn::LogLevel::kWarning);
  // Never a service: the connection is the floor's alone and ends with it.
  for (const char* name : {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}) {
    ::unsetenv(name);
  }

  // Signals are taken by sigtimedwait; no other thread may receive them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // As fused: memory reclaim must not wait on the daemon under a loop device.
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
    std::fprintf(stderr, "fuse_floor: PR_SET_IO_FLUSHER refused\n");
  }

  std::string state_dir = opts.tmp_dir + "/fuse_floor.XXXXXX";
  if (::mkdtemp(state_dir.data()) == nullptr) {
    std::fprintf(stderr, "fuse_floor: create a state directory under %s: %s\n",
                 opts.tmp_dir.c_str(), std::strerror(errno));
    return 1;
  }
  int rc = Serve(opts, signals, state_dir);
  if (::rmdir(state_dir.c_str()) != 0) {
    std::fprintf(stderr, "fuse_floor: remove %s: %s\n", state_dir.c_str(), std::strerror(errno));
    rc = rc == 0 ? 1 : rc;
  }
  return rc;
}
