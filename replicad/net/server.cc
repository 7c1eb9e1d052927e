// Design notes: the accept thread polls the listening socket and an eventfd,
// so Stop wakes it without relying on shutdown(2) of a listening socket.
// Connection threads are joined on the accepting thread (reaping) or by Stop,
// never by themselves.
#include "replicad/net/server.h"

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "common/file_util.h"
#include "common/log.h"
#include "common/net.h"

namespace shorthorn::replicad {

void Server::ListenUnix(const std::string& host, const std::string& socket_dir) {
  // A wildcard listener answers on loopback too.
  bool local = host.empty() || host == "0.0.0.0" || host == "::" || IsLoopbackHost(host);
  if (socket_dir.empty() || !local) return;
  std::string path = ReplicadSocketPath(socket_dir, port_);
  const std::string what = "listen on Unix socket " + path;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    LogWarning(what + ": path too long; TCP only");
    return;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (Status s = MakeDirs(socket_dir); !s.ok()) {
    LogWarning(what + ": " + s.message() + "; TCP only");
    return;
  }
  // We hold the TCP port, so a socket file for it is one a killed replicad
  // left behind.
  ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(fd.get(), 128) != 0) {
    LogWarning(what + ": " + std::strerror(errno) + "; TCP only");
    return;
  }
  // Owner and group "shorthorn" (fused's unit runs as root with that
  // supplementary group and without CAP_DAC_OVERRIDE, so it needs the
  // permission bits); the peer is checked again at accept (SO_PEERCRED)
  // and must then authenticate like any TCP client.
  if (const group* g = ::getgrnam("shorthorn"); g != nullptr) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      LogWarning(what + ": chgrp shorthorn: " + std::strerror(errno) +
                 "; only replicad's own group may connect");
    }
  }
  if (::chmod(path.c_str(), 0660) != 0) {
    LogWarning(what + ": chmod: " + std::strerror(errno));
  }
  unix_fd_ = std::move(fd);
  socket_path_ = path;
}

Status Server::Start(const std::string& listen, uint16_t port, const std::string& socket_dir) {
  std::string host = listen;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string what = "listen on " + listen + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return Status(ErrorKind::kInvalidArgument, what + ": " + ::gai_strerror(rc), EINVAL);
  }
  Status last(ErrorKind::kFailed, what + ": no address");
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoStatus(errno, what);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      last = ErrnoStatus(errno, what);
      continue;
    }
    listen_fd_ = std::move(fd);
    break;
  }
  ::freeaddrinfo(result);
  if (!listen_fd_.valid()) return last;

  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!wake_fd_.valid()) return ErrnoStatus(errno, what + ": eventfd");
  ListenUnix(host, socket_dir);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void Server::AcceptLoop() {
  for (;;) {
    // A negative fd (no Unix socket) is ignored by poll.
    pollfd fds[3] = {{wake_fd_.get(), POLLIN, 0},
                     {listen_fd_.get(), POLLIN, 0},
                     {unix_fd_.valid() ? unix_fd_.get() : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      LogError(std::string("poll listening sockets: ") + std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    for (int i = 1; i < 3; ++i) {
      if (fds[i].revents == 0) continue;
      UniqueFd fd(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (!fd.valid()) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
          LogWarning(std::string("accept: ") + std::strerror(errno));
          if (errno == EMFILE || errno == ENFILE) ::usleep(100 * 1000);
        }
        continue;
      }
      std::string peer;
      if (i == 1) {
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        // A peer that vanished (host down, cable cut) is noticed after
        // about a minute of silence: 30 s idle, then 3 probes 10 s apart.
        int idle = 30, interval = 10, count = 3;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
        peer = PeerName(fd.get());
      } else {
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
          LogWarning(std::string("refused a connection on ") + socket_path_ +
                     ": SO_PEERCRED: " + std::strerror(errno));
          continue;
        }
        if (cred.uid != 0 && cred.uid != ::geteuid()) {
          LogWarning("refused a connection on " + socket_path_ + " from uid " +
                     std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) +
                     "): only root and uid " + std::to_string(::geteuid()) + " may connect");
          continue;
        }
        peer = "unix:" + socket_path_ + " (pid " + std::to_string(cred.pid) + ")";
      }
      LogDebug("connection from " + peer);
      Adopt(std::move(fd), std::move(peer));
    }
  }
}

void Server::ReapFinished() {
  std::list<std::shared_ptr<Connection>> done;
  {
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->finished()) {
        done.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : done) c->Join();
}

bool Server::Adopt(UniqueFd fd, std::string peer) {
  ReapFinished();
  std::lock_guard lock(mu_);
  if (stopped_) return false;  // the fd closes here
  std::string refusal;
  size_t waiting = 0;
  for (const auto& c : connections_) waiting += c->authenticated() ? 0 : 1;
  if (connections_.size() >= options_.max_connections) {
    refusal = std::to_string(connections_.size()) + " connections are open (max-connections " +
              std::to_string(options_.max_connections) + ")";
  } else if (waiting >= options_.max_unauthenticated) {
    refusal = std::to_string(waiting) + " connections have not authenticated yet (at most " +
              std::to_string(options_.max_unauthenticated) + ")";
  }
  if (!refusal.empty()) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ >= std::chrono::minutes(1)) {
      last_refusal_log_ = now;
      LogWarning("refusing connections (the first from " + peer + "): " + refusal +
                 "; logged at most once a minute");
    }
    return false;
  }
  auto conn =
      std::make_shared<Connection>(std::move(fd), std::move(peer), handler_, &options_.connection);
  try {
    conn->Start();
  } catch (const std::system_error& e) {
    LogError("refusing connection from " + conn->peer() + ": cannot start its thread: " + e.what());
    return false;
  }
  connections_.push_back(std::move(conn));
  return true;
}

size_t Server::connections() {
  ReapFinished();
  std::lock_guard lock(mu_);
  return connections_.size();
}

size_t Server::unauthenticated() {
  ReapFinished();
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& c : connections_) n += c->authenticated() ? 0 : 1;
  return n;
}

void Server::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (acceptor_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_.get(), &one, sizeof(one));
    (void)ignored;
    acceptor_.join();
  }
  listen_fd_.Reset();
  if (unix_fd_.valid()) {
    unix_fd_.Reset();
    ::unlink(socket_path_.c_str());
  }
  std::list<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(connections_);
  }
  for (auto& c : all) c->Shutdown();
  for (auto& c : all) c->Join();
}

}  // namespace shorthorn::replicad
