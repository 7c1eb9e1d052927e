// Design notes
//
// The holder's socket and the FUSE descriptor are created by fused and passed
// to the holder as descriptors 3 and 4 (posix_spawn, new session, signals
// unblocked), so the socket listens before fused goes on and no name can be
// taken over in between. A request is one byte: 'G' asks for the descriptor
// (answered with one byte and SCM_RIGHTS), 'Q' makes the holder exit. The
// holder accepts only uid 0 (SO_PEERCRED); the socket file is 0600 in the
// 0700 state directory.
//
// Nothing may wait on the FUSE descriptor: the kernel wakes every poll and
// epoll waiter of /dev/fuse on each request it queues, whatever events the
// waiter asked for (the mask is checked after the wake-up), which cost a
// context switch per request. So:
// * The holder sleeps on its socket only and checks the connection once a
//   second with a poll that does not wait (/dev/fuse reports POLLERR once
//   the connection is aborted or unmounted).
// * systemd watches every stored descriptor for POLLERR/POLLHUP with an
//   epoll that would wake PID 1 the same way. So the store gets a datagram
//   socket whose receive queue holds the FUSE descriptor in flight
//   (SCM_RIGHTS), not the descriptor itself. A datagram socket, because the
//   other end is closed at once and a stream socket would then report
//   POLLHUP and be dropped from the store. The next fused receives it with
//   MSG_PEEK, which duplicates the descriptor and leaves the message (and the
//   store) as it was. Since systemd no longer sees a dead connection, Take
//   checks it and drops a dead one.
#include "fused/fuse/fd_keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"

extern char** environ;

namespace shorthorn::fused {
namespace {

constexpr const char* kFdName = "fuse";
constexpr int kHolderFuseFd = 3;
constexpr int kHolderListenFd = 4;
// How often the holder checks whether the connection ended.
constexpr int kHolderCheckMs = 1000;

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status(ErrorKind::kInvalidArgument, "FUSE holder socket path " + path + " is too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Connects to the holder; NotFound when none listens.
Result<UniqueFd> ConnectHolder(const std::string& path) {
  auto addr = SocketAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return ErrnoStatus(errno, "create a Unix socket");
  timeval tv{5, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      if (errno == ECONNREFUSED) ::unlink(path.c_str());  // a holder that died
      return Status(ErrorKind::kNotFound, "no FUSE holder listens on " + path);
    }
    return ErrnoStatus(errno, "connect to the FUSE holder at " + path);
  }
  return s;
}

Status SendByte(int sock, char c, int fd_to_pass) {
  iovec iov{&c, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_pass >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd_to_pass, sizeof(int));
  }
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) return ErrnoStatus(errno, "send to FUSE holder");
  return Status::Ok();
}

// recvmsg of one byte with `flags`; the first descriptor passed along goes
// to *fd (when given and still empty), any other is closed. Returns the
// byte count.
Result<ssize_t> ReceiveWithFd(int sock, int flags, char* c, UniqueFd* fd) {
  iovec iov{c, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return ErrnoStatus(errno, "receive a FUSE descriptor");
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      if (fd != nullptr && !fd->valid()) {
        fd->Reset(received);
      } else {
        ::close(received);
      }
    }
  }
  return n;
}

// Receives one byte and at most one descriptor (closed unless returned).
Status ReceiveByte(int sock, char* c, UniqueFd* fd) {
  auto n = ReceiveWithFd(sock, 0, c, fd);
  if (!n.ok()) return n.status().WithContext("the FUSE holder");
  if (*n != 1) return Status(ErrorKind::kFailed, "the FUSE holder closed the connection");
  return Status::Ok();
}

// True when `fd` is a descriptor of /dev/fuse.
bool IsFuseDevice(int fd) {
  struct stat st {};
  struct stat dev {};
  return ::fstat(fd, &st) == 0 && ::stat("/dev/fuse", &dev) == 0 && S_ISCHR(st.st_mode) &&
         st.st_rdev == dev.st_rdev;
}

// True when the FUSE connection of `fd` was aborted or unmounted. Does not
// wait, so it never joins the device's wait queue.
bool ConnectionEnded(int fd) {
  pollfd p{fd, 0, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

// The FUSE descriptor in flight in a socket from the descriptor store,
// received with MSG_PEEK so that it stays there.
Result<UniqueFd> PeekStored(int sock) {
  char c = 0;
  UniqueFd fd;
  auto n = ReceiveWithFd(sock, MSG_PEEK | MSG_DONTWAIT, &c, &fd);
  if (!n.ok()) return n.status().WithContext("the stored FUSE socket");
  if (*n != 1 || c != 'F' || !fd.valid() || !IsFuseDevice(fd.get())) {
    return Status(ErrorKind::kFailed, "the stored FUSE socket holds no /dev/fuse descriptor");
  }
  return fd;
}

// A datagram socket with `fuse_fd` queued in it (see the notes above).
Result<UniqueFd> WrapInSocket(int fuse_fd) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus(errno, "create a socket pair for the FUSE descriptor");
  }
  UniqueFd sender(pair[0]);
  UniqueFd kept(pair[1]);
  SH_RETURN_IF_ERROR(SendByte(sender.get(), 'F', fuse_fd));
  return kept;
}

Status SpawnHolder(const std::string& path, int fuse_fd) {
  auto addr = SocketAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return ErrnoStatus(errno, "create a Unix socket");
  ::unlink(path.c_str());
  mode_t old_mask = ::umask(0077);
  int bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return ErrnoStatus(bind_errno, "bind the FUSE holder socket " + path);
  if (::listen(listener.get(), 4) != 0) return ErrnoStatus(errno, "listen on " + path);
  // Out of the way of 3 and 4 before they are set.
  UniqueFd fuse_copy(::fcntl(fuse_fd, F_DUPFD_CLOEXEC, 10));
  UniqueFd listen_copy(::fcntl(listener.get(), F_DUPFD_CLOEXEC, 10));
  if (!fuse_copy.valid() || !listen_copy.valid())
    return ErrnoStatus(errno, "duplicate descriptors");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fuse_copy.get(), kHolderFuseFd);
  posix_spawn_file_actions_adddup2(&actions, listen_copy.get(), kHolderListenFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = "shorthorn-fuse-holder";
  std::string flag = kFuseFdHolderFlag;
  std::string sock = path;
  char* argv[] = {arg0.data(), flag.data(), sock.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, "start the FUSE holder");
  LogInfo("FUSE holder pid " + std::to_string(pid) + " keeps the connection across restarts (" +
          path + ")");
  return Status::Ok();
}

void HolderServe(int client, const std::string& socket_path) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
    return;  // only root may take the connection
  }
  pollfd p{client, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return;
  char c = 0;
  if (::read(client, &c, 1) != 1) return;
  if (c == 'G') {
    Status sent = SendByte(client, 'F', kHolderFuseFd);
    if (!sent.ok()) LogWarning("FUSE holder: " + sent.message());
  } else if (c == 'Q') {
    ::unlink(socket_path.c_str());
    (void)SendByte(client, 'Q', -1);
    LogInfo("FUSE holder: released; exiting");
    std::exit(0);
  }
}

}  // namespace

bool FuseFdKeeper::under_systemd() const {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s != nullptr && *s != '\0';
}

Result<UniqueFd> FuseFdKeeper::Take() {
  auto fd = TakeKept();
  if (fd.ok() && ConnectionEnded(fd->get())) {
    LogWarning("the kept FUSE connection has ended (aborted or unmounted); dropping it");
    Release();
    return Status(ErrorKind::kNotFound, "the kept FUSE connection has ended");
  }
  return fd;
}

Result<UniqueFd> FuseFdKeeper::TakeKept() {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(1, &names);
  UniqueFd found;
  for (int i = 0; i < n; ++i) {
    UniqueFd fd(SD_LISTEN_FDS_START + i);
    ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
    if (found.valid() || names == nullptr || std::strcmp(names[i], kFdName) != 0) continue;
    if (IsFuseDevice(fd.get())) {
      found = std::move(fd);  // stored as it is by an older fused
      from_store_ = false;
      continue;
    }
    auto peeked = PeekStored(fd.get());
    if (peeked.ok()) {
      found = std::move(*peeked);
      from_store_ = true;
    } else {
      LogWarning(peeked.status().message());
    }
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  if (found.valid()) {
    LogInfo("took the FUSE connection from systemd's descriptor store");
    return found;
  }
  auto sock = ConnectHolder(socket_);
  if (!sock.ok()) return sock.status();
  SH_RETURN_IF_ERROR(SendByte(sock->get(), 'G', -1));
  char c = 0;
  UniqueFd fd;
  SH_RETURN_IF_ERROR(ReceiveByte(sock->get(), &c, &fd));
  if (c != 'F' || !fd.valid() || !IsFuseDevice(fd.get())) {
    return Status(ErrorKind::kFailed,
                  "the FUSE holder at " + socket_ + " answered without a /dev/fuse descriptor");
  }
  LogInfo("took the FUSE connection from the holder at " + socket_);
  from_holder_ = true;
  return fd;
}

Status FuseFdKeeper::Keep(int fd) {
  if (under_systemd()) {
    // The store still has the socket this connection came from.
    if (from_store_) return Status::Ok();
    auto wrapped = WrapInSocket(fd);
    if (!wrapped.ok()) return wrapped.status();
    // Whatever an older fused stored goes first (FileDescriptorStoreMax=1).
    std::string remove = std::string("FDSTOREREMOVE=1\nFDNAME=") + kFdName;
    sd_notify(0, remove.c_str());
    std::string message = std::string("FDSTORE=1\nFDNAME=") + kFdName;
    int stored = wrapped->get();
    int rc = sd_pid_notify_with_fds(0, 0, message.c_str(), &stored, 1);
    if (rc > 0) {
      from_store_ = true;
      return Status::Ok();
    }
    return Status(ErrorKind::kFailed,
                  "store the FUSE descriptor with systemd (FileDescriptorStoreMax= and "
                  "NotifyAccess= in the unit): " +
                      std::string(std::strerror(rc < 0 ? -rc : EINVAL)));
  }
  // A holder that handed us the descriptor still has it; any other one
  // keeps an older connection and must go.
  if (from_holder_) return Status::Ok();
  Release();
  return SpawnHolder(socket_, fd);
}

void FuseFdKeeper::Release() {
  if (under_systemd()) {
    std::string message = std::string("FDSTOREREMOVE=1\nFDNAME=") + kFdName;
    sd_notify(0, message.c_str());
    from_store_ = false;
    return;
  }
  from_holder_ = false;
  auto sock = ConnectHolder(socket_);
  if (!sock.ok()) return;
  char c = 0;
  if (SendByte(sock->get(), 'Q', -1).ok()) (void)ReceiveByte(sock->get(), &c, nullptr);
}

int RunFuseFdHolder(int argc, char** argv) {
  if (argc != 3 || !IsFuseDevice(kHolderFuseFd)) {
    LogError("FUSE holder: started without a /dev/fuse descriptor");
    return 2;
  }
  ::prctl(PR_SET_NAME, "shorthorn-hold", 0, 0, 0);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);  // a closed log pipe must not end the connection
  const std::string socket_path = argv[2];
  for (;;) {
    pollfd p{kHolderListenFd, POLLIN, 0};
    int rc = ::poll(&p, 1, kHolderCheckMs);
    if (rc < 0 && errno != EINTR) {
      LogError("FUSE holder: poll: " + std::string(std::strerror(errno)));
      return 1;
    }
    if (ConnectionEnded(kHolderFuseFd)) {
      LogInfo("FUSE holder: the connection ended; exiting");
      ::unlink(socket_path.c_str());
      return 0;
    }
    if (rc == 1 && (p.revents & POLLIN)) {
      UniqueFd client(::accept4(kHolderListenFd, nullptr, nullptr, SOCK_CLOEXEC));
      if (client.valid()) HolderServe(client.get(), socket_path);
    }
  }
}

}  // namespace shorthorn::fused
