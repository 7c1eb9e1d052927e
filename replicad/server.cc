// Design notes: the accept thread polls the listening socket and an eventfd,
// so Stop wakes it without relying on shutdown(2) of a listening socket.
// Connection threads are joined on the accepting thread (reaping) or by Stop,
// never by themselves.
#include "replicad/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace shorthorn::replicad {

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "local peer";
}

Status Server::Start(const std::string& listen, uint16_t port) {
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
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void Server::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LogError(std::string("poll listening socket: ") + std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        LogWarning(std::string("accept: ") + std::strerror(errno));
        if (errno == EMFILE || errno == ENFILE) ::usleep(100 * 1000);
      }
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string peer = PeerName(fd.get());
    LogDebug("connection from " + peer);
    Adopt(std::move(fd), std::move(peer));
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

void Server::Adopt(UniqueFd fd, std::string peer) {
  ReapFinished();
  auto conn = std::make_shared<Connection>(std::move(fd), std::move(peer), handler_);
  std::lock_guard lock(mu_);
  if (stopped_) return;  // the fd closes with conn
  conn->Start();
  connections_.push_back(std::move(conn));
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
  std::list<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mu_);
    all.swap(connections_);
  }
  for (auto& c : all) c->Shutdown();
  for (auto& c : all) c->Join();
}

}  // namespace shorthorn::replicad
