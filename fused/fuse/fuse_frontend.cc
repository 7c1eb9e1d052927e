// Design notes
//
// FUSE_USE_VERSION is 312 so that fuse_session_loop_mt takes the new
// fuse_loop_config (with a lower version libfuse 3.14 reads the old struct
// and the thread pool misbehaves). init() asks for 1 MiB requests
// (max_write, which libfuse turns into max_pages), asynchronous direct I/O,
// and a max_background far above the kernel's 12, which would otherwise cap
// the loop device at 12 requests in flight.
//
// fsync is FLUSH on every replica and is never answered with ENOSYS (the
// kernel would stop sending flushes and ext4's journal would lose its
// barriers). flush (on close) has nothing to write back with direct I/O.
//
// Takeover. libfuse answers every request with EIO until it has processed an
// INIT, and a connection gets only one INIT from the kernel. So the session
// uses its own I/O functions (fuse_session_custom_io): the read function
// records the kernel's INIT request in the state file, and at a takeover
// that request is fed to the new session (fuse_session_process_buf) with a
// unique the kernel never uses; the write function drops the reply to it.
// The same init() then agrees to the same settings as before (max_write is
// never below the old one: the kernel would send larger requests than the
// new buffers hold). The descriptor must be the very one the old process
// used (not a clone): the requests it had read wait on that descriptor's
// processing list, and FUSE_NOTIFY_RESEND (a 16-byte header with unique 0
// and code 7; libfuse 3.14 has no helper) puts them back in the queue with
// bit 63 of their unique set. Those requests are replayed like new ones:
// reads, writes, flushes and discards of a block device are idempotent.
#define FUSE_USE_VERSION 312
#include "fused/fuse/fuse_frontend.h"

#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/uio.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/log.h"

namespace shorthorn::fused {
namespace {

constexpr double kAttrTimeout = 1.0;
// The unique of the INIT request replayed at a takeover: odd, so never one
// the kernel hands out (it counts in steps of two).
constexpr uint64_t kReplayedInitUnique = 0x5348'0000'0000'0001ULL;
constexpr int32_t kFuseNotifyResend = 7;  // FUSE_NOTIFY_RESEND, protocol 7.40

FuseFrontend* Self(fuse_req_t req) { return static_cast<FuseFrontend*>(fuse_req_userdata(req)); }

void FillAttr(const FuseFrontend::Volume* v, uint64_t size, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  if (v == nullptr) {
    st->st_ino = FUSE_ROOT_ID;
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return;
  }
  st->st_ino = v->ino;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(size);
  st->st_blksize = 4096;
  st->st_blocks = st->st_size / 512;
}

void OnInit(void* userdata, fuse_conn_info* conn) {
  auto* self = static_cast<FuseFrontend*>(userdata);
  const FuseSettings& s = self->settings();
  conn->max_write = s.max_request;
  conn->max_read = s.max_request;
  conn->max_background = s.max_background;
  conn->congestion_threshold = s.max_background * 3 / 4;
  conn->max_readahead = 0;
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  self->Initialized();
}

ssize_t ReadRequestIo(int fd, void* buf, size_t len, void* userdata) {
  return static_cast<FuseFrontend*>(userdata)->ReadRequest(fd, buf, len);
}

ssize_t WriteReplyIo(int fd, struct iovec* iov, int count, void* userdata) {
  return static_cast<FuseFrontend*>(userdata)->WriteReply(fd, iov, count);
}

// Runs fn(Backend*, stats) for a request on inode `ino`: at once, or once
// the file is attached again (fn gets nullptr if it is removed instead).
// `hold` turns fn into the held form (a write must copy its data, which
// lives in libfuse's buffer only until the handler returns).
template <class Fn, class MakeHeld>
void Serve(fuse_req_t req, fuse_ino_t ino, Fn fn, MakeHeld hold) {
  FuseFrontend* self = Self(req);
  std::shared_ptr<FuseFrontend::Volume> v;
  std::shared_ptr<Backend> backend;
  switch (self->Admit(ino, &v, &backend)) {
    case FuseFrontend::Admission::kUnknown:
      fuse_reply_err(req, ENOENT);
      return;
    case FuseFrontend::Admission::kRun:
      fn(backend.get(), v->stats);
      self->Done();
      return;
    case FuseFrontend::Admission::kWait:
      self->Hold(v, hold(std::move(fn)));
      return;
    case FuseFrontend::Admission::kDrop:
      fuse_reply_none(req);  // the next fused gets it again
      return;
  }
}

template <class Fn>
void Serve(fuse_req_t req, fuse_ino_t ino, Fn fn) {
  Serve(req, ino, std::move(fn), [](Fn f) { return FuseFrontend::Work(std::move(f)); });
}

using Clock = std::chrono::steady_clock;

// Records one answered request in `stats`.
void Count(const std::shared_ptr<IoStats>& stats, IoOp op, uint64_t bytes, Clock::time_point t0,
           bool ok) {
  if (stats) stats->Record(op, bytes, Clock::now() - t0, ok);
}

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& field) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(field[i + 1]) && octal(field[i + 2]) &&
        octal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// `path` with its parent directory resolved (symlinks, "..") and no
// trailing slash, as mountinfo shows it; unchanged if the parent is missing.
std::string CanonicalMountPoint(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  char resolved[PATH_MAX];
  if (::realpath(parent.c_str(), resolved) == nullptr) return path;
  std::string out = resolved;
  if (out != "/") out += "/";
  return out + path.substr(slash + 1);
}

// "0:53": the device of the FUSE mount at `mount_point`; empty if none.
std::string MountDevice(const std::string& mount_point) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (Unescape(point) != mount_point) continue;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string type;
    tail >> type;
    found = type == "fuse.shorthorn" || type == "fuse" ? device : "";  // the last one is on top
  }
  return found;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto v = parent == FUSE_ROOT_ID ? Self(req)->FindByName(name) : nullptr;
  if (!v) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = v->ino;
  e.attr_timeout = kAttrTimeout;
  e.entry_timeout = kAttrTimeout;
  FillAttr(v.get(), Self(req)->SizeOf(*v), &e.attr);
  fuse_reply_entry(req, &e);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (ino == FUSE_ROOT_ID) {
    FillAttr(nullptr, 0, &st);
  } else {
    auto v = Self(req)->FindByIno(ino);
    if (!v) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    FillAttr(v.get(), Self(req)->SizeOf(*v), &st);
  }
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  // Sizes change only through Expand; ownership and mode are fixed. Time
  // updates are accepted and ignored so tools that touch the file work.
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
  std::vector<std::pair<std::string, uint64_t>> entries = {{".", FUSE_ROOT_ID},
                                                           {"..", FUSE_ROOT_ID}};
  for (const auto& [name, v] : Self(req)->Snapshot()) entries.emplace_back(name, v->ino);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < entries.size(); ++i) {
    struct stat st {};
    st.st_ino = entries[i].second;
    st.st_mode = entries[i].second == FUSE_ROOT_ID ? S_IFDIR : S_IFREG;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first.c_str(),
                                    &st, static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == FUSE_ROOT_ID) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (!Self(req)->FindByIno(ino)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fi->noflush = 1;
  fuse_reply_open(req, fi);
}

void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  const auto t0 = Clock::now();
  Serve(req, ino, [req, size, off, t0](Backend* b, const std::shared_ptr<IoStats>& stats) {
    if (b == nullptr) {
      Count(stats, IoOp::kRead, 0, t0, false);
      fuse_reply_err(req, EIO);
      return;
    }
    uint64_t end = b->Size();
    if (off < 0 || static_cast<uint64_t>(off) >= end || size == 0) {
      fuse_reply_buf(req, nullptr, 0);
      return;
    }
    uint64_t n = std::min<uint64_t>(size, end - static_cast<uint64_t>(off));
    b->Read(static_cast<uint64_t>(off), static_cast<uint32_t>(n),
            [req, t0, stats](Status s, std::vector<uint8_t> data) {
              Count(stats, IoOp::kRead, data.size(), t0, s.ok());
              if (!s.ok()) {
                fuse_reply_err(req, s.sys_errno());
              } else {
                fuse_reply_buf(req, reinterpret_cast<const char*>(data.data()), data.size());
              }
            });
  });
}

void WriteTo(Backend* b, const std::shared_ptr<IoStats>& stats, fuse_req_t req, const uint8_t* data,
             size_t size, off_t off, Clock::time_point t0) {
  if (b == nullptr) {
    Count(stats, IoOp::kWrite, 0, t0, false);
    fuse_reply_err(req, EIO);
    return;
  }
  uint64_t end = b->Size();
  if (off < 0 || static_cast<uint64_t>(off) + size > end) {
    fuse_reply_err(req, static_cast<uint64_t>(off) >= end ? ENOSPC : EFBIG);
    return;
  }
  b->Write(static_cast<uint64_t>(off), {data, size}, [req, size, t0, stats](Status s) {
    Count(stats, IoOp::kWrite, size, t0, s.ok());
    if (!s.ok()) {
      fuse_reply_err(req, s.sys_errno());
    } else {
      fuse_reply_write(req, size);
    }
  });
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info*) {
  const auto t0 = Clock::now();
  const auto* data = reinterpret_cast<const uint8_t*>(buf);
  Serve(
      req, ino,
      [req, data, size, off, t0](Backend* b, const std::shared_ptr<IoStats>& stats) {
        WriteTo(b, stats, req, data, size, off, t0);
      },
      [req, data, size, off, t0](auto) {
        auto copy = std::make_shared<std::vector<uint8_t>>(data, data + size);
        return FuseFrontend::Work(
            [req, copy, off, t0](Backend* b, const std::shared_ptr<IoStats>& stats) {
              WriteTo(b, stats, req, copy->data(), copy->size(), off, t0);
            });
      });
}

void OnFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  const auto t0 = Clock::now();
  Serve(req, ino, [req, t0](Backend* b, const std::shared_ptr<IoStats>& stats) {
    if (b == nullptr) {
      Count(stats, IoOp::kFlush, 0, t0, false);
      fuse_reply_err(req, EIO);
      return;
    }
    b->Flush([req, t0, stats](Status s) {
      Count(stats, IoOp::kFlush, 0, t0, s.ok());
      fuse_reply_err(req, s.ok() ? 0 : s.sys_errno());
    });
  });
}

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                 fuse_file_info*) {
  if (off < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  const auto t0 = Clock::now();
  Serve(req, ino, [req, mode, off, length, t0](Backend* b, const std::shared_ptr<IoStats>& stats) {
    if (b == nullptr) {
      Count(stats, IoOp::kDiscard, 0, t0, false);
      fuse_reply_err(req, EIO);
      return;
    }
    uint64_t end = b->Size();
    uint64_t start = static_cast<uint64_t>(off);
    uint64_t stop = start + static_cast<uint64_t>(length);
    if (!(mode & FALLOC_FL_KEEP_SIZE) && stop > end) {
      fuse_reply_err(req, EFBIG);  // the size changes only through Expand
      return;
    }
    if (start >= end) {
      fuse_reply_err(req, 0);
      return;
    }
    stop = std::min(stop, end);
    int op = mode & ~FALLOC_FL_KEEP_SIZE;
    if (op == 0) {
      // Thin provisioning: reserving space is not promised, but not an error.
      fuse_reply_err(req, 0);
      return;
    }
    if (op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) {
      // Never ENOSYS: the kernel would stop sending fallocate, and trim with it.
      fuse_reply_err(req, EOPNOTSUPP);
      return;
    }
    // Holes read as zeros, so the loop device's WRITE_ZEROES (ZERO_RANGE) and
    // discard (PUNCH_HOLE) both become UNMAP.
    b->Unmap(start, stop - start, [req, t0, stats, n = stop - start](Status s) {
      Count(stats, IoOp::kDiscard, n, t0, s.ok());
      fuse_reply_err(req, s.ok() ? 0 : s.sys_errno());
    });
  });
}

void Refuse(fuse_req_t req) { fuse_reply_err(req, EPERM); }
void OnMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { Refuse(req); }
void OnMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { Refuse(req); }
void OnUnlink(fuse_req_t req, fuse_ino_t, const char*) { Refuse(req); }
void OnRename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  Refuse(req);
}
void OnCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { Refuse(req); }
void OnSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { Refuse(req); }
void OnLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { Refuse(req); }

fuse_lowlevel_ops MakeOps() {
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
  ops.mknod = OnMknod;
  ops.mkdir = OnMkdir;
  ops.unlink = OnUnlink;
  ops.rmdir = OnUnlink;
  ops.rename = OnRename;
  ops.create = OnCreate;
  ops.symlink = OnSymlink;
  ops.link = OnLink;
  return ops;
}

}  // namespace

FuseFrontend::FuseFrontend(FuseSettings settings)
    : settings_(std::move(settings)), keeper_(settings_.state_dir + "/fuse-holder.sock") {}

FuseFrontend::~FuseFrontend() {
  // Kept for the next fused: the workers block in read() until the process
  // ends.
  if (Stop() && loop_.joinable()) loop_.detach();
}

std::string FuseFrontend::state_path() const { return settings_.state_dir + "/fuse-session.json"; }

Status FuseFrontend::Start() {
  settings_.mount_point = CanonicalMountPoint(settings_.mount_point);
  const std::string& mp = settings_.mount_point;
  auto held = keeper_.Take();
  if (held.ok()) {
    auto state = LoadSessionState(state_path());
    std::string device = MountDevice(mp);
    Status why;
    if (!state.ok()) {
      why = state.status();
    } else if (!state->kernel_can_resend()) {
      // The requests the old fused read would never be answered: the
      // processes that made them (the loop device, the file system's
      // journal) would hang for good. An I/O error is better.
      why = Status(ErrorKind::kFailed,
                   "this kernel cannot resend the requests the old fused had read "
                   "(FUSE_NOTIFY_RESEND, Linux 6.9)");
    } else if (device.empty() || device != state->mount_device) {
      why = Status(ErrorKind::kFailed, "the kept connection is not the one mounted at " + mp);
    } else {
      Status s = TakeOver(std::move(*held), *state);
      if (s.ok()) return s;
      why = s;
    }
    // Without its state the connection cannot be served: end it (files on
    // it see I/O errors, as after a crash without a kept connection).
    LogError("cannot take over the FUSE connection at " + mp + ": " + why.message() +
             "; mounting again");
    keeper_.Release();
    held->Reset();
  } else if (held.status().kind() != ErrorKind::kNotFound) {
    LogWarning(held.status().message());
  }
  return Mount();
}

Status FuseFrontend::Mount() {
  const std::string& mp = settings_.mount_point;
  // A daemon killed with -9 whose connection was not kept leaves a dead mount
  // ("transport endpoint is not connected"); detach it so we can mount again.
  while (::umount2(mp.c_str(), MNT_DETACH) == 0) {
    LogWarning("detached a stale mount at " + mp);
  }
  ::unlink(state_path().c_str());
  if (::mkdir(mp.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "create mount point " + mp);
  }
  std::string max_read = "max_read=" + std::to_string(settings_.max_request);
  std::vector<std::string> argv_s = {"shorthorn-fused",
                                     "-o",
                                     "fsname=shorthorn,subtype=shorthorn",
                                     "-o",
                                     "allow_other,default_permissions",
                                     "-o",
                                     max_read};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  static const fuse_lowlevel_ops ops = MakeOps();
  session_ = fuse_session_new(&args, &ops, sizeof(ops), this);
  if (session_ == nullptr) {
    return Status(ErrorKind::kFailed, "create FUSE session for " + mp);
  }
  if (fuse_session_mount(session_, mp.c_str()) != 0) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return Status(ErrorKind::kFailed, "mount FUSE at " + mp + " (is /dev/fuse available?)");
  }
  mounted_ = true;
  const fuse_custom_io io{WriteReplyIo, ReadRequestIo, nullptr, nullptr};
  int fd = fuse_session_fd(session_);
  if (fuse_session_custom_io(session_, &io, fd) != 0) {
    Stop();
    return Status(ErrorKind::kFailed, "set up FUSE I/O for " + mp);
  }
  {
    std::lock_guard lock(mutex_);
    state_ = FuseSessionState{};
    state_.mount_device = MountDevice(mp);
    state_.max_write = settings_.max_request;
    init_recorded_ = false;  // a failed takeover may have set these
    by_name_.clear();
    by_ino_.clear();
  }
  Status kept = keeper_.Keep(fd);
  if (!kept.ok()) {
    LogWarning(kept.message() + ": a restart of fused will end the FUSE connection");
  }
  SH_RETURN_IF_ERROR(StartLoop());
  LogInfo("FUSE mounted at " + mp);
  return Status::Ok();
}

Status FuseFrontend::TakeOver(UniqueFd fd, const FuseSessionState& state) {
  const std::string& mp = settings_.mount_point;
  // Requests as large as the old process agreed to must still fit.
  settings_.max_request = std::max(settings_.max_request, state.max_write);
  // libfuse checks init()'s max_read against the session's option.
  std::vector<std::string> argv_s = {"shorthorn-fused", "-o",
                                     "max_read=" + std::to_string(settings_.max_request)};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  static const fuse_lowlevel_ops ops = MakeOps();
  session_ = fuse_session_new(&args, &ops, sizeof(ops), this);
  if (session_ == nullptr) return Status(ErrorKind::kFailed, "create FUSE session for " + mp);
  const fuse_custom_io io{WriteReplyIo, ReadRequestIo, nullptr, nullptr};
  int raw = fd.Release();
  if (fuse_session_custom_io(session_, &io, raw) != 0) {
    ::close(raw);
    fuse_session_destroy(session_);
    session_ = nullptr;
    return Status(ErrorKind::kFailed, "set up FUSE I/O for " + mp);
  }
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    init_recorded_ = true;
    for (const auto& [name, f] : state.volumes) {
      auto v = std::make_shared<Volume>(Volume{name, f.ino, f.size, nullptr, {}});
      by_name_[name] = v;
      by_ino_[f.ino] = v;
    }
  }
  // The INIT the old process answered, so that libfuse serves requests.
  struct {
    fuse_in_header header;
    fuse_init_in init;
  } request{};
  request.header.len = sizeof(request);
  request.header.opcode = FUSE_INIT;
  request.header.unique = kReplayedInitUnique;
  request.init.major = state.init.major;
  request.init.minor = state.init.minor;
  request.init.max_readahead = state.init.max_readahead;
  request.init.flags = state.init.flags;
  request.init.flags2 = state.init.flags2;
  fuse_buf buf{};
  buf.size = sizeof(request);
  buf.mem = &request;
  fuse_session_process_buf(session_, &buf);
  if (fuse_session_exited(session_)) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return Status(ErrorKind::kFailed, "libfuse refused the recorded INIT request");
  }
  mounted_ = true;
  Status kept = keeper_.Keep(fuse_session_fd(session_));
  if (!kept.ok()) LogWarning(kept.message());
  // Start() takes over only when the kernel can resend.
  fuse_out_header resend{sizeof(fuse_out_header), kFuseNotifyResend, 0};
  if (::write(fuse_session_fd(session_), &resend, sizeof(resend)) !=
      static_cast<ssize_t>(sizeof(resend))) {
    LogWarning("FUSE_NOTIFY_RESEND failed: " + std::string(std::strerror(errno)) +
               "; requests the old fused read but did not answer stay unanswered");
  }
  SH_RETURN_IF_ERROR(StartLoop());
  LogInfo("FUSE connection at " + mp + " taken over; " + std::to_string(state.volumes.size()) +
          " file(s) wait to be attached again");
  return Status::Ok();
}

Status FuseFrontend::StartLoop() {
  loop_ = std::thread([this] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    // libfuse starts a worker when all are busy, up to max_threads, and
    // ends workers beyond idle_threads as soon as they are idle. With idle
    // below max, a burst of writes that block in a socket send starts and
    // ends a thread per request (1,278 threads in 8 s of 128 KiB writes to
    // three replicas): keep every worker once started.
    uint32_t max_threads = std::max<uint32_t>(settings_.threads * 4, 16);
    fuse_loop_cfg_set_idle_threads(cfg, max_threads);
    fuse_loop_cfg_set_max_threads(cfg, max_threads);
    int rc = fuse_session_loop_mt(session_, cfg);
    fuse_loop_cfg_destroy(cfg);
    if (rc != 0) LogWarning("FUSE loop ended with " + std::to_string(rc));
  });
  return Status::Ok();
}

ssize_t FuseFrontend::ReadRequest(int fd, void* buf, size_t len) {
  ssize_t n = ::read(fd, buf, len);
  if (n >= static_cast<ssize_t>(sizeof(fuse_in_header))) {
    const auto* header = static_cast<const fuse_in_header*>(buf);
    if (header->opcode == FUSE_INIT) {
      std::lock_guard lock(mutex_);
      if (!init_recorded_) {
        fuse_init_in init{};
        std::memcpy(&init, header + 1,
                    std::min(sizeof(init), static_cast<size_t>(n) - sizeof(*header)));
        state_.init = {init.major, init.minor, init.max_readahead, init.flags, init.flags2};
      }
    }
  }
  return n;
}

ssize_t FuseFrontend::WriteReply(int fd, const ::iovec* iov, int count) {
  if (count > 0 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      static_cast<const fuse_out_header*>(iov[0].iov_base)->unique == kReplayedInitUnique) {
    size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    return static_cast<ssize_t>(total);  // the kernel had its answer from the old process
  }
  return ::writev(fd, iov, count);
}

void FuseFrontend::Initialized() {
  std::lock_guard lock(mutex_);
  if (init_recorded_) return;
  init_recorded_ = true;
  SaveStateLocked();
  if (!state_.kernel_can_resend()) {
    LogWarning(
        "this kernel cannot resend FUSE requests (FUSE_NOTIFY_RESEND, Linux 6.9): a "
        "restart of fused ends the FUSE connection, and what uses its files sees I/O errors");
  }
}

void FuseFrontend::SaveStateLocked() {
  if (!init_recorded_) return;
  state_.volumes.clear();
  for (const auto& [name, v] : by_name_) {
    state_.volumes[name] = {v->ino, v->backend ? v->backend->Size() : v->size};
  }
  Status s = SaveSessionState(state_path(), state_);
  if (!s.ok()) LogWarning(s.message() + ": a restart of fused could not take over the volumes");
}

std::vector<std::string> FuseFrontend::Waiting() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, v] : by_name_) {
    if (!v->backend) names.push_back(name);
  }
  return names;
}

bool FuseFrontend::IsWaiting(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = by_name_.find(name);
  return it != by_name_.end() && !it->second->backend;
}

bool FuseFrontend::HandOver() {
  {
    std::lock_guard lock(mutex_);
    if (session_ == nullptr || !init_recorded_ || !state_.kernel_can_resend()) return false;
  }
  dropping_ = true;
  while (dispatching_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  LogInfo("FUSE requests are left for the next fused from now on");
  return true;
}

bool FuseFrontend::Stop() {
  if (session_ == nullptr) return false;
  {
    std::lock_guard lock(mutex_);
    if (dropping_ && !by_name_.empty()) {
      SaveStateLocked();
      LogInfo("FUSE connection at " + settings_.mount_point + " kept for the next fused (" +
              std::to_string(by_name_.size()) + " file(s))");
      return true;
    }
  }
  fuse_session_exit(session_);
  // Unmounting makes the workers' read of /dev/fuse return, ending the loop.
  if (mounted_.exchange(false)) {
    if (::umount2(settings_.mount_point.c_str(), 0) != 0) {
      ::umount2(settings_.mount_point.c_str(), MNT_DETACH);
    }
  }
  if (loop_.joinable()) loop_.join();
  fuse_session_unmount(session_);
  fuse_session_destroy(session_);
  session_ = nullptr;
  keeper_.Release();
  ::unlink(state_path().c_str());
  return false;
}

Result<std::string> FuseFrontend::AddVolume(const std::string& name,
                                            std::shared_ptr<Backend> backend) {
  std::vector<Work> held;
  std::shared_ptr<IoStats> stats;
  {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    if (it != by_name_.end() && it->second->backend) {
      return Status(ErrorKind::kAlreadyExists, "volume " + name + " already has a FUSE file");
    }
    if (it != by_name_.end()) {
      it->second->backend = backend;
      held.swap(it->second->held);
      stats = it->second->stats;
    } else {
      auto v =
          std::make_shared<Volume>(Volume{name, state_.next_ino++, backend->Size(), backend, {}});
      by_ino_[v->ino] = v;
      by_name_[name] = v;
    }
    SaveStateLocked();
  }
  if (!held.empty()) {
    LogInfo("volume " + name + ": serving " + std::to_string(held.size()) +
            " request(s) held since the takeover");
  }
  for (auto& work : held) work(backend.get(), stats);
  return settings_.mount_point + "/" + name;
}

void FuseFrontend::RemoveVolume(const std::string& name) {
  std::vector<Work> held;
  std::shared_ptr<IoStats> stats;
  {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return;
    held.swap(it->second->held);
    stats = it->second->stats;
    by_ino_.erase(it->second->ino);
    by_name_.erase(it);
    SaveStateLocked();
  }
  for (auto& work : held) work(nullptr, stats);
  if (session_ != nullptr) {
    fuse_lowlevel_notify_inval_entry(session_, FUSE_ROOT_ID, name.c_str(), name.size());
  }
}

void FuseFrontend::SizeChanged(const std::string& name) {
  auto v = FindByName(name);
  if (!v) return;
  {
    std::lock_guard lock(mutex_);
    SaveStateLocked();
  }
  if (session_ != nullptr) fuse_lowlevel_notify_inval_inode(session_, v->ino, 0, 0);
}

FuseFrontend::Admission FuseFrontend::Admit(uint64_t ino, std::shared_ptr<Volume>* v,
                                            std::shared_ptr<Backend>* backend) {
  dispatching_.fetch_add(1);
  if (dropping_.load()) {
    dispatching_.fetch_sub(1);
    return Admission::kDrop;
  }
  std::lock_guard lock(mutex_);
  auto it = by_ino_.find(ino);
  if (it == by_ino_.end()) {
    dispatching_.fetch_sub(1);
    return Admission::kUnknown;
  }
  *v = it->second;
  if (!it->second->backend) {
    dispatching_.fetch_sub(1);
    return Admission::kWait;
  }
  *backend = it->second->backend;
  return Admission::kRun;
}

void FuseFrontend::Hold(const std::shared_ptr<Volume>& v, Work work) {
  std::shared_ptr<Backend> backend;
  {
    std::lock_guard lock(mutex_);
    if (!v->backend) {
      // Still waiting, or removed meanwhile (then by_ino_ no longer has it).
      auto it = by_ino_.find(v->ino);
      if (it != by_ino_.end() && it->second == v) {
        v->held.push_back(std::move(work));
        return;
      }
    }
    backend = v->backend;
  }
  work(backend.get(), v->stats);
}

std::shared_ptr<const IoStats> FuseFrontend::Stats(const std::string& name) {
  auto v = FindByName(name);
  return v ? v->stats : nullptr;
}

uint64_t FuseFrontend::SizeOf(const Volume& v) {
  std::shared_ptr<Backend> backend;
  {
    std::lock_guard lock(mutex_);
    if (!v.backend) return v.size;
    backend = v.backend;
  }
  return backend->Size();
}

std::shared_ptr<FuseFrontend::Volume> FuseFrontend::FindByIno(uint64_t ino) {
  std::lock_guard lock(mutex_);
  auto it = by_ino_.find(ino);
  return it == by_ino_.end() ? nullptr : it->second;
}

std::shared_ptr<FuseFrontend::Volume> FuseFrontend::FindByName(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::map<std::string, std::shared_ptr<FuseFrontend::Volume>> FuseFrontend::Snapshot() {
  std::lock_guard lock(mutex_);
  return by_name_;
}

}  // namespace shorthorn::fused
