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
#define FUSE_USE_VERSION 312
#include "fused/fuse/fuse_ops.h"

#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "fused/fuse/fuse_frontend.h"

namespace shorthorn::fused {
namespace {

constexpr double kAttrTimeout = 1.0;

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

const fuse_lowlevel_ops& FuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

const fuse_custom_io& FuseIo() {
  static const fuse_custom_io io{WriteReplyIo, ReadRequestIo, nullptr, nullptr};
  return io;
}

}  // namespace shorthorn::fused
