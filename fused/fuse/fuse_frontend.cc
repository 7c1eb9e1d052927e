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
#include "fused/fuse/fuse_frontend.h"

#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/log.h"

namespace shorthorn::fused {
namespace {

constexpr double kAttrTimeout = 1.0;

FuseFrontend* Self(fuse_req_t req) { return static_cast<FuseFrontend*>(fuse_req_userdata(req)); }

void FillAttr(const FuseFrontend::Volume* v, struct stat* st) {
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
  st->st_size = static_cast<off_t>(v->backend->Size());
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
  FillAttr(v.get(), &e.attr);
  fuse_reply_entry(req, &e);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (ino == FUSE_ROOT_ID) {
    FillAttr(nullptr, &st);
  } else {
    auto v = Self(req)->FindByIno(ino);
    if (!v) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    FillAttr(v.get(), &st);
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
  auto v = Self(req)->FindByIno(ino);
  if (!v) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  uint64_t end = v->backend->Size();
  if (off < 0 || static_cast<uint64_t>(off) >= end || size == 0) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  size = std::min<uint64_t>(size, end - static_cast<uint64_t>(off));
  v->backend->Read(static_cast<uint64_t>(off), static_cast<uint32_t>(size),
                   [req](Status s, std::vector<uint8_t> data) {
                     if (!s.ok()) {
                       fuse_reply_err(req, s.sys_errno());
                     } else {
                       fuse_reply_buf(req, reinterpret_cast<const char*>(data.data()), data.size());
                     }
                   });
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info*) {
  auto v = Self(req)->FindByIno(ino);
  if (!v) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  uint64_t end = v->backend->Size();
  if (off < 0 || static_cast<uint64_t>(off) + size > end) {
    fuse_reply_err(req, static_cast<uint64_t>(off) >= end ? ENOSPC : EFBIG);
    return;
  }
  v->backend->Write(static_cast<uint64_t>(off), {reinterpret_cast<const uint8_t*>(buf), size},
                    [req, size](Status s) {
                      if (!s.ok()) {
                        fuse_reply_err(req, s.sys_errno());
                      } else {
                        fuse_reply_write(req, size);
                      }
                    });
}

void OnFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  auto v = Self(req)->FindByIno(ino);
  if (!v) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  v->backend->Flush([req](Status s) { fuse_reply_err(req, s.ok() ? 0 : s.sys_errno()); });
}

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OnFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                 fuse_file_info*) {
  auto v = Self(req)->FindByIno(ino);
  if (!v) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  uint64_t end = v->backend->Size();
  if (off < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
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
  v->backend->Unmap(start, stop - start,
                    [req](Status s) { fuse_reply_err(req, s.ok() ? 0 : s.sys_errno()); });
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

FuseFrontend::FuseFrontend(FuseSettings settings) : settings_(std::move(settings)) {}

FuseFrontend::~FuseFrontend() { Stop(); }

Status FuseFrontend::Start() {
  const std::string& mp = settings_.mount_point;
  // A daemon killed with -9 leaves a dead mount ("transport endpoint is not
  // connected"); detach it so we can mount again.
  if (::umount2(mp.c_str(), MNT_DETACH) == 0) {
    LogWarning("detached a stale mount at " + mp);
  }
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
  LogInfo("FUSE mounted at " + mp);
  return Status::Ok();
}

void FuseFrontend::Stop() {
  if (session_ == nullptr) return;
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
}

Result<std::string> FuseFrontend::AddVolume(const std::string& name,
                                            std::shared_ptr<Backend> backend) {
  std::lock_guard lock(mutex_);
  if (by_name_.count(name) != 0) {
    return Status(ErrorKind::kAlreadyExists, "volume " + name + " already has a FUSE file");
  }
  auto v = std::make_shared<Volume>(Volume{name, next_ino_++, std::move(backend)});
  by_ino_[v->ino] = v;
  by_name_[name] = v;
  return settings_.mount_point + "/" + name;
}

void FuseFrontend::RemoveVolume(const std::string& name) {
  uint64_t ino = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return;
    ino = it->second->ino;
    by_ino_.erase(ino);
    by_name_.erase(it);
  }
  if (session_ != nullptr) {
    fuse_lowlevel_notify_inval_entry(session_, FUSE_ROOT_ID, name.c_str(), name.size());
  }
}

void FuseFrontend::SizeChanged(const std::string& name) {
  auto v = FindByName(name);
  if (v && session_ != nullptr) fuse_lowlevel_notify_inval_inode(session_, v->ino, 0, 0);
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
