// fuse_floor: the "FUSE floor" of bench/run.sh. A minimal pass-through FUSE
// file system that serves ONE regular file, backed by a file on a local
// disk, with the FUSE settings shorthorn-fused uses (DESIGN §4): low-level
// API with FUSE_USE_VERSION 312, 1 MiB max_write/max_read, a large
// max_background, asynchronous direct I/O, direct_io on open, and
// fuse_session_loop_mt. A loop device on this file is the best a loop device
// on a FUSE file can do on this machine: everything Shorthorn adds above it
// is Shorthorn's own cost.
//
//   fuse_floor --mount DIR --backing FILE [--name NAME] [--threads N]
//              [--max-threads N] [--max-background N] [--max-request BYTES]
//              [--buffered] [--clone-fd] [--ring-entries N] [--coop-taskrun]
//
// The file appears as DIR/NAME (default "floor") once the mount is ready; its
// size is the backing file's size (fixed). SIGTERM/SIGINT or an unmount ends
// it; it prints request counts and the most requests it had in flight.
//
// Design notes
//
// Threads, and what each calls:
//   * main: parses options, mounts, runs fuse_session_loop_mt, then lets
//     the completion thread answer what is in flight, stops it, unmounts.
//   * FUSE workers (libfuse's pool: grows to --max-threads and, like fused,
//     keeps every worker it started):
//     read/write/fsync/fallocate copy what they need (write data goes into a
//     pooled 4 KiB-aligned buffer, because libfuse reuses its receive buffer
//     as soon as the handler returns), queue one SQE under submit_mutex_,
//     io_uring_submit, and return to /dev/fuse. They never wait for the disk.
//   * completion: the only reader of the CQ ring. Answers each request with
//     fuse_reply_* (callable from any thread) and returns its buffer.
// An Op is allocated per I/O and travels as the SQE's user_data; user_data 0
// is the stop marker sent by main.
//
// The backing file is opened with O_DIRECT (like fio's direct=1 on the raw
// file), so the floor measures the same disk path as "raw"; --buffered drops
// O_DIRECT (the replicas of shorthorn-replicad use the page cache). fsync
// becomes IORING_OP_FSYNC with DATASYNC (never ENOSYS: the kernel would stop
// sending flushes), fallocate (PUNCH_HOLE, ZERO_RANGE) becomes
// IORING_OP_FALLOCATE.
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <liburing.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr fuse_ino_t kFileIno = 2;
constexpr double kAttrTimeout = 1.0;
constexpr size_t kAlignment = 4096;

struct Options {
  std::string mount_point;
  std::string backing_file;
  std::string name = "floor";
  unsigned threads = 8;      // idle FUSE workers (fused's fuse-threads default)
  unsigned max_threads = 0;  // 0: max(4 * threads, 16), as fused does
  unsigned max_background = 256;
  unsigned max_request = 1 << 20;
  unsigned ring_entries = 512;
  bool buffered = false;
  bool clone_fd = false;
  bool coop_taskrun = false;  // IORING_SETUP_COOP_TASKRUN: no IPI per completion
};

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: fuse_floor --mount DIR --backing FILE [--name NAME] [--threads N]\n"
               "                  [--max-threads N] [--max-background N] [--max-request BYTES]\n"
               "                  [--buffered] [--clone-fd] [--ring-entries N] [--coop-taskrun]\n"
               "Serves FILE as DIR/NAME (default name 'floor') through FUSE, doing the I/O\n"
               "with io_uring. Defaults: 8 idle threads, max(4*threads,16) threads at most,\n"
               "max-background 256, max-request 1048576, O_DIRECT on FILE, ring 512.\n");
}

bool ParseUnsigned(const char* text, unsigned* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > (1u << 30)) return false;
  *out = static_cast<unsigned>(v);
  return true;
}

// Returns false (after printing why) when the command line is not usable.
bool ParseOptions(int argc, char** argv, Options* o) {
  enum {
    kMount = 1,
    kBacking,
    kName,
    kThreads,
    kMaxThreads,
    kMaxBg,
    kMaxReq,
    kBuffered,
    kCloneFd,
    kRing,
    kCoop,
    kHelp
  };
  static const option kLong[] = {{"mount", required_argument, nullptr, kMount},
                                 {"backing", required_argument, nullptr, kBacking},
                                 {"name", required_argument, nullptr, kName},
                                 {"threads", required_argument, nullptr, kThreads},
                                 {"max-threads", required_argument, nullptr, kMaxThreads},
                                 {"max-background", required_argument, nullptr, kMaxBg},
                                 {"max-request", required_argument, nullptr, kMaxReq},
                                 {"buffered", no_argument, nullptr, kBuffered},
                                 {"clone-fd", no_argument, nullptr, kCloneFd},
                                 {"ring-entries", required_argument, nullptr, kRing},
                                 {"coop-taskrun", no_argument, nullptr, kCoop},
                                 {"help", no_argument, nullptr, kHelp},
                                 {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    bool ok = true;
    switch (c) {
      case kMount:
        o->mount_point = optarg;
        break;
      case kBacking:
        o->backing_file = optarg;
        break;
      case kName:
        o->name = optarg;
        break;
      case kThreads:
        ok = ParseUnsigned(optarg, &o->threads);
        break;
      case kMaxThreads:
        ok = ParseUnsigned(optarg, &o->max_threads);
        break;
      case kMaxBg:
        ok = ParseUnsigned(optarg, &o->max_background) && o->max_background < 65536;
        break;
      case kMaxReq:
        ok = ParseUnsigned(optarg, &o->max_request) && o->max_request % kAlignment == 0;
        break;
      case kBuffered:
        o->buffered = true;
        break;
      case kCloneFd:
        o->clone_fd = true;
        break;
      case kRing:
        ok = ParseUnsigned(optarg, &o->ring_entries) && o->ring_entries <= 32768;
        break;
      case kCoop:
        o->coop_taskrun = true;
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
  if (optind != argc || o->mount_point.empty() || o->backing_file.empty() || o->name.empty() ||
      o->name.find('/') != std::string::npos) {
    Usage(stderr);
    return false;
  }
  if (o->max_threads == 0) o->max_threads = std::max(o->threads * 4, 16u);
  o->max_threads = std::max(o->max_threads, o->threads);
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

  void* Get() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        void* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return std::aligned_alloc(kAlignment, size_);
  }
  void Put(void* b) {
    std::lock_guard lock(mutex_);
    free_.push_back(b);
  }

 private:
  const size_t size_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

enum class OpKind { kRead, kWrite, kFsync, kFallocate };

struct Op {
  fuse_req_t req;
  OpKind kind;
  void* buf;  // read/write only
};

class FloorFs {
 public:
  explicit FloorFs(const Options& o) : opts_(o), pool_(o.max_request) {}
  ~FloorFs() {
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (fd_ >= 0) ::close(fd_);
  }
  FloorFs(const FloorFs&) = delete;
  FloorFs& operator=(const FloorFs&) = delete;

  // Opens the backing file and the ring, starts the completion thread.
  bool Start() {
    int flags = O_RDWR | O_CLOEXEC | (opts_.buffered ? 0 : O_DIRECT);
    fd_ = ::open(opts_.backing_file.c_str(), flags);
    if (fd_ < 0) {
      std::fprintf(stderr, "fuse_floor: open %s: %s\n", opts_.backing_file.c_str(),
                   std::strerror(errno));
      return false;
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size % kAlignment != 0) {
      std::fprintf(stderr, "fuse_floor: %s: not a regular file whose size is a multiple of %zu\n",
                   opts_.backing_file.c_str(), kAlignment);
      return false;
    }
    size_ = static_cast<uint64_t>(st.st_size);
    int rc = io_uring_queue_init(opts_.ring_entries, &ring_,
                                 opts_.coop_taskrun ? IORING_SETUP_COOP_TASKRUN : 0);
    if (rc < 0) {
      std::fprintf(stderr, "fuse_floor: io_uring_queue_init: %s\n", std::strerror(-rc));
      return false;
    }
    ring_ready_ = true;
    completion_ = std::thread([this] { CompletionLoop(); });
    return true;
  }

  // Ends the completion thread once every request queued so far is answered
  // (the stop marker is queued last and the CQ is drained in order of
  // completion, so late CQEs are still answered before it sees in_flight 0).
  void Stop() {
    if (!completion_.joinable()) return;
    Submit(nullptr, [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
    completion_.join();
  }

  const Options& opts() const { return opts_; }
  uint64_t size() const { return size_; }

  void Read(fuse_req_t req, size_t size, off_t off) {
    if (size > opts_.max_request) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    auto* op = new Op{req, OpKind::kRead, pool_.Get()};
    Count(&reads_);
    Submit(op, [&](io_uring_sqe* sqe) {
      io_uring_prep_read(sqe, fd_, op->buf, static_cast<unsigned>(size),
                         static_cast<uint64_t>(off));
    });
  }

  void Write(fuse_req_t req, const char* data, size_t size, off_t off) {
    if (size > opts_.max_request) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    auto* op = new Op{req, OpKind::kWrite, pool_.Get()};
    std::memcpy(op->buf, data, size);
    Count(&writes_);
    Submit(op, [&](io_uring_sqe* sqe) {
      io_uring_prep_write(sqe, fd_, op->buf, static_cast<unsigned>(size),
                          static_cast<uint64_t>(off));
    });
  }

  void Fsync(fuse_req_t req) {
    auto* op = new Op{req, OpKind::kFsync, nullptr};
    Count(&fsyncs_);
    Submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC); });
  }

  void Fallocate(fuse_req_t req, int mode, off_t off, off_t length) {
    auto* op = new Op{req, OpKind::kFallocate, nullptr};
    Count(&fallocates_);
    Submit(op, [&](io_uring_sqe* sqe) {
      io_uring_prep_fallocate(sqe, fd_, mode, static_cast<uint64_t>(off),
                              static_cast<uint64_t>(length));
    });
  }

  void PrintStats() const {
    std::fprintf(stderr,
                 "fuse_floor: %llu reads, %llu writes, %llu fsyncs, %llu fallocates, "
                 "at most %llu in flight\n",
                 static_cast<unsigned long long>(reads_.load()),
                 static_cast<unsigned long long>(writes_.load()),
                 static_cast<unsigned long long>(fsyncs_.load()),
                 static_cast<unsigned long long>(fallocates_.load()),
                 static_cast<unsigned long long>(peak_in_flight_.load()));
  }

 private:
  void Count(std::atomic<uint64_t>* counter) {
    counter->fetch_add(1, std::memory_order_relaxed);
    uint64_t now = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t peak = peak_in_flight_.load(std::memory_order_relaxed);
    while (now > peak && !peak_in_flight_.compare_exchange_weak(peak, now)) {
    }
  }

  // Queues one SQE prepared by `prep`, tagged with `op`, and submits it.
  template <typename Prep>
  void Submit(Op* op, Prep prep) {
    std::lock_guard lock(submit_mutex_);
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&ring_)) == nullptr) io_uring_submit(&ring_);
    prep(sqe);
    io_uring_sqe_set_data(sqe, op);
    int rc;
    while ((rc = io_uring_submit(&ring_)) == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
    }
    if (rc < 0) std::fprintf(stderr, "fuse_floor: io_uring_submit: %s\n", std::strerror(-rc));
  }

  void CompletionLoop() {
    bool stopping = false;
    while (!stopping || in_flight_.load() != 0) {
      io_uring_cqe* cqe;
      int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {
        std::fprintf(stderr, "fuse_floor: io_uring_wait_cqe: %s\n", std::strerror(-rc));
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
        Complete(op, cqe->res);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

  void Complete(Op* op, int res) {
    if (res < 0) {
      fuse_reply_err(op->req, -res);
    } else if (op->kind == OpKind::kRead) {
      fuse_reply_buf(op->req, static_cast<const char*>(op->buf), static_cast<size_t>(res));
    } else if (op->kind == OpKind::kWrite) {
      fuse_reply_write(op->req, static_cast<size_t>(res));
    } else {
      fuse_reply_err(op->req, 0);
    }
    if (op->buf != nullptr) pool_.Put(op->buf);
    delete op;
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }

  const Options opts_;
  BufferPool pool_;
  int fd_ = -1;
  uint64_t size_ = 0;
  io_uring ring_{};
  bool ring_ready_ = false;
  std::mutex submit_mutex_;  // guards the SQ ring
  std::thread completion_;
  std::atomic<uint64_t> in_flight_{0}, peak_in_flight_{0};
  std::atomic<uint64_t> reads_{0}, writes_{0}, fsyncs_{0}, fallocates_{0};
};

// ---------------------------------------------------------------- FUSE handlers

FloorFs* Fs(fuse_req_t req) { return static_cast<FloorFs*>(fuse_req_userdata(req)); }

void FillAttr(const FloorFs* fs, fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return;
  }
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(fs->size());
  st->st_blksize = kAlignment;
  st->st_blocks = st->st_size / 512;
}

void OnInit(void* userdata, fuse_conn_info* conn) {
  const Options& o = static_cast<FloorFs*>(userdata)->opts();
  conn->max_write = o.max_request;
  conn->max_read = o.max_request;
  conn->max_background = o.max_background;
  conn->congestion_threshold = o.max_background * 3 / 4;
  conn->max_readahead = 0;
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != FUSE_ROOT_ID || Fs(req)->opts().name != name) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = kFileIno;
  e.attr_timeout = kAttrTimeout;
  e.entry_timeout = kAttrTimeout;
  FillAttr(Fs(req), kFileIno, &e.attr);
  fuse_reply_entry(req, &e);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID && ino != kFileIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat st;
  FillAttr(Fs(req), ino, &st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat*, int to_set, fuse_file_info* fi) {
  // The size is the backing file's; times are accepted and ignored (as fused).
  if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  OnGetattr(req, ino, fi);
}

void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  const std::pair<const char*, fuse_ino_t> entries[] = {
      {".", FUSE_ROOT_ID}, {"..", FUSE_ROOT_ID}, {Fs(req)->opts().name.c_str(), kFileIno}};
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < std::size(entries); ++i) {
    struct stat st {};
    st.st_ino = entries[i].second;
    st.st_mode = entries[i].second == FUSE_ROOT_ID ? S_IFDIR : S_IFREG;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first, &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kFileIno) {
    fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
    return;
  }
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fi->noflush = 1;
  fuse_reply_open(req, fi);
}

void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  FloorFs* fs = Fs(req);
  if (ino != kFileIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (off < 0 || static_cast<uint64_t>(off) >= fs->size() || size == 0) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  fs->Read(req, std::min<uint64_t>(size, fs->size() - static_cast<uint64_t>(off)), off);
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info*) {
  FloorFs* fs = Fs(req);
  if (ino != kFileIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (off < 0 || static_cast<uint64_t>(off) + size > fs->size()) {
    fuse_reply_err(req, static_cast<uint64_t>(off) >= fs->size() ? ENOSPC : EFBIG);
    return;
  }
  fs->Write(req, buf, size, off);
}

void OnFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { Fs(req)->Fsync(req); }

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                 fuse_file_info*) {
  if (ino != kFileIno || off < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  // The loop device sends PUNCH_HOLE (discard) and ZERO_RANGE (write
  // zeroes), both with KEEP_SIZE; the backing file handles either.
  Fs(req)->Fallocate(req, mode | FALLOC_FL_KEEP_SIZE, off, length);
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!ParseOptions(argc, argv, &opts)) return 2;

  FloorFs fs(opts);
  if (!fs.Start()) return 1;

  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.getattr = OnGetattr;
  ops.setattr = OnSetattr;
  ops.readdir = OnReaddir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.write = OnWrite;
  ops.fsync = OnFsync;
  ops.flush = OnFlush;
  ops.fallocate = OnFallocate;

  std::string max_read = "max_read=" + std::to_string(opts.max_request);
  std::vector<std::string> argv_s = {argv[0],
                                     "-o",
                                     "fsname=fuse_floor,subtype=fuse_floor",
                                     "-o",
                                     "allow_other,default_permissions",
                                     "-o",
                                     max_read};
  std::vector<char*> fargv;
  for (auto& a : argv_s) fargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), fargv.data());
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
  if (se == nullptr) {
    std::fprintf(stderr, "fuse_floor: cannot create the FUSE session\n");
    fs.Stop();
    return 1;
  }
  int rc = 1;
  if (fuse_set_signal_handlers(se) != 0) {
    std::fprintf(stderr, "fuse_floor: cannot install signal handlers\n");
  } else if (fuse_session_mount(se, opts.mount_point.c_str()) != 0) {
    std::fprintf(stderr, "fuse_floor: cannot mount FUSE at %s\n", opts.mount_point.c_str());
    fuse_remove_signal_handlers(se);
  } else {
    std::fprintf(stderr,
                 "fuse_floor: serving %s as %s/%s (%llu bytes), %u..%u threads, "
                 "max_background %u, max_request %u, %s%s%s\n",
                 opts.backing_file.c_str(), opts.mount_point.c_str(), opts.name.c_str(),
                 static_cast<unsigned long long>(fs.size()), opts.threads, opts.max_threads,
                 opts.max_background, opts.max_request, opts.buffered ? "buffered" : "O_DIRECT",
                 opts.clone_fd ? ", clone_fd" : "", opts.coop_taskrun ? ", coop_taskrun" : "");
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_idle_threads(cfg, opts.max_threads);
    fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
    fuse_loop_cfg_set_clone_fd(cfg, opts.clone_fd ? 1 : 0);
    // The loop returns the number of the signal that ended it (libfuse's
    // handlers), which is the normal way to stop.
    int loop_rc = fuse_session_loop_mt(se, cfg);
    rc = (loop_rc == 0 || loop_rc == SIGTERM || loop_rc == SIGINT || loop_rc == SIGHUP) ? 0 : 1;
    if (rc != 0) std::fprintf(stderr, "fuse_floor: FUSE loop ended with %d\n", loop_rc);
    fuse_loop_cfg_destroy(cfg);
    // Answer what is still in flight while the connection is open, then
    // unmount.
    fs.Stop();
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
  }
  fs.Stop();
  fuse_session_destroy(se);
  fs.PrintStats();
  return rc;
}
