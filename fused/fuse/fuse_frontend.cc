// Design notes
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
//
// FUSE_USE_VERSION must match fuse_ops.cc (see its notes).
#define FUSE_USE_VERSION 312
#include "fused/fuse/fuse_frontend.h"

#include <fuse_lowlevel.h>
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
#include "fused/fuse/fuse_ops.h"

namespace shorthorn::fused {
namespace {

// The unique of the INIT request replayed at a takeover: odd, so never one
// the kernel hands out (it counts in steps of two).
constexpr uint64_t kReplayedInitUnique = 0x5348'0000'0000'0001ULL;
constexpr int32_t kFuseNotifyResend = 7;  // FUSE_NOTIFY_RESEND, protocol 7.40

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
  if (settings_.uring && settings_.enable_kernel_uring) {
    // The kernel offers the ring in the INIT of mounts made after this.
    if (Status s = EnableFuseUring(); !s.ok()) {
      LogWarning("FUSE over io_uring: " + s.message() + "; FUSE requests use /dev/fuse");
    }
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
  session_ = fuse_session_new(&args, &FuseOps(), sizeof(fuse_lowlevel_ops), this);
  if (session_ == nullptr) {
    return Status(ErrorKind::kFailed, "create FUSE session for " + mp);
  }
  if (fuse_session_mount(session_, mp.c_str()) != 0) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return Status(ErrorKind::kFailed, "mount FUSE at " + mp + " (is /dev/fuse available?)");
  }
  mounted_ = true;
  int fd = fuse_session_fd(session_);
  if (fuse_session_custom_io(session_, &FuseIo(), fd) != 0) {
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
  if (settings_.uring) {
    LogInfo("FUSE over io_uring: not for the connection taken over at " + mp +
            " (it stays on /dev/fuse until fused mounts anew)");
  }
  // Requests as large as the old process agreed to must still fit.
  settings_.max_request = std::max(settings_.max_request, state.max_write);
  // libfuse checks init()'s max_read against the session's option.
  std::vector<std::string> argv_s = {"shorthorn-fused", "-o",
                                     "max_read=" + std::to_string(settings_.max_request)};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  session_ = fuse_session_new(&args, &FuseOps(), sizeof(fuse_lowlevel_ops), this);
  if (session_ == nullptr) return Status(ErrorKind::kFailed, "create FUSE session for " + mp);
  int raw = fd.Release();
  if (fuse_session_custom_io(session_, &FuseIo(), raw) != 0) {
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
        init_unique_ = header->unique;
      }
    }
  }
  return n;
}

ssize_t FuseFrontend::WriteReply(int fd, const ::iovec* iov, int count) {
  if (count > 0 && iov[0].iov_len >= sizeof(fuse_out_header)) {
    const uint64_t unique = static_cast<const fuse_out_header*>(iov[0].iov_base)->unique;
    // What a writev of it would return, for a reply that does not go to the fd.
    auto all = [&] {
      size_t total = 0;
      for (int i = 0; i < count; ++i) total += iov[i].iov_len;
      return static_cast<ssize_t>(total);
    };
    if (unique == kReplayedInitUnique)
      return all();  // the kernel had its answer from the old process
    FuseRing* ring = ring_ptr_.load(std::memory_order_acquire);
    if (ring != nullptr && ring->Reply(iov, count)) return all();
    // The reply to the first INIT (never a notification: unique 0).
    if (settings_.uring && ring == nullptr && unique != 0 && unique == init_unique_.load()) {
      init_unique_ = 0;
      return WriteInitReply(fd, iov, count);
    }
  }
  return ::writev(fd, iov, count);
}

ssize_t FuseFrontend::WriteInitReply(int fd, const ::iovec* iov, int count) {
  uint32_t offered;
  {
    std::lock_guard lock(mutex_);
    offered = state_.init.flags2;
  }
  fuse_init_out init{};
  const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
  if (out->error != 0 || count != 2 || iov[1].iov_len < offsetof(fuse_init_out, flags2) + 4) {
    return ::writev(fd, iov, count);
  }
  if ((offered & kFuseInitFlags2OverIoUring) == 0 || !FuseUringEnabled()) {
    LogInfo(
        "FUSE over io_uring: the kernel does not offer it (as root: echo Y > "
        "/sys/module/fuse/parameters/enable_uring before the mount); using /dev/fuse");
    return ::writev(fd, iov, count);
  }
  const size_t init_len = std::min(sizeof(init), iov[1].iov_len);
  std::memcpy(&init, iov[1].iov_base, init_len);
  // What the kernel requires of every payload buffer: max(8 KiB, max_write,
  // max_pages pages), max_pages being 32 unless the reply sets FUSE_MAX_PAGES.
  const size_t pages = (init.flags & FUSE_MAX_PAGES) != 0 ? init.max_pages : 32;
  const size_t payload =
      std::max<size_t>({8192, init.max_write, pages * static_cast<size_t>(sysconf(_SC_PAGESIZE))});
  // From here on the session is not handed over (HandOver reads this).
  ring_used_ = true;
  auto ring = FuseRing::Create(session_, fd, {settings_.uring_depth, payload});
  if (!ring.ok()) {
    ring_used_ = false;
    LogWarning(ring.status().message() + "; FUSE requests use /dev/fuse");
    return ::writev(fd, iov, count);
  }
  init.flags |= FUSE_INIT_EXT;
  init.flags2 |= kFuseInitFlags2OverIoUring;
  ::iovec patched[2] = {iov[0], {&init, init_len}};
  ssize_t n = ::writev(fd, patched, 2);
  if (n < 0) return n;  // the ring's destructor stops its threads
  ring_ = std::move(*ring);
  ring_ptr_.store(ring_.get(), std::memory_order_release);
  ring_->Start();
  // A new fused could not take this connection over: the requests the ring
  // holds die with this process, and the kernel sends new ones to the ring
  // only. Let the connection end with the process instead.
  keeper_.Release();
  {
    std::lock_guard lock(mutex_);
    ::unlink(state_path().c_str());
  }
  LogInfo("FUSE over io_uring: " + std::to_string(ring_->queues()) + " queue(s) of " +
          std::to_string(settings_.uring_depth) + " entries, " + std::to_string(payload) +
          "-byte payloads; a restart of fused ends this FUSE connection");
  return n;
}

uint64_t FuseFrontend::RingRequests() const {
  FuseRing* ring = ring_ptr_.load(std::memory_order_acquire);
  return ring == nullptr ? 0 : ring->requests();
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
  if (!init_recorded_ || ring_used_.load()) return;  // a ring session is never taken over
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
  // Requests that came through the ring cannot be resent to another process.
  if (ring_used_.load()) return false;
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
  if (ring_) {
    ring_->Stop();  // freed with the frontend: a late reply may still look it up
    LogInfo(std::to_string(ring_->requests()) + " FUSE requests came through io_uring");
  }
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
