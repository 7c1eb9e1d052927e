// Server: the TCP listener of the replica protocol. Binds the configured
// address (IPv4 or IPv6, a name is resolved) and port (0 picks a free one),
// accepts connections on its own thread and gives each a Connection. When
// the address is a loopback or wildcard one (so 127.0.0.1:<port> reaches
// this replicad) and a socket directory is given, it also listens on the
// Unix socket <dir>/<port>.sock, which fused prefers for replicas on its
// own host: the same protocol, a cheaper transport. That socket is best
// effort (a warning when it cannot be made) and removed by Stop.
// Connections that have ended are reaped on the next accept.
//
// Threads: Start, Adopt and Stop may be called from any thread; Stop (or the
// destructor) stops accepting, shuts every connection down, and returns once
// all their threads have ended and their requests have been answered.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/file_util.h"
#include "common/status.h"
#include "replicad/connection.h"
#include "replicad/request_handler.h"

namespace shorthorn::replicad {

class Server {
 public:
  explicit Server(RequestHandler* handler) : handler_(handler) {}
  ~Server() { Stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start(const std::string& listen, uint16_t port, const std::string& socket_dir = "");
  // The Unix socket's path, "" when there is none.
  const std::string& socket_path() const { return socket_path_; }
  // The bound port (after Start).
  uint16_t port() const { return port_; }
  // Serves an already connected stream socket (tests use socketpairs).
  void Adopt(UniqueFd fd, std::string peer);
  void Stop();

 private:
  void AcceptLoop();
  void ReapFinished();

  RequestHandler* const handler_;
  // Makes socket_path_ and unix_fd_ (best effort).
  void ListenUnix(const std::string& listen, const std::string& socket_dir);

  UniqueFd listen_fd_;
  UniqueFd unix_fd_;
  std::string socket_path_;
  UniqueFd wake_fd_;  // eventfd that ends AcceptLoop
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::shared_ptr<Connection>> connections_;  // guarded by mu_
  bool stopped_ = false;                                // guarded by mu_
};

// "1.2.3.4:5678" or "[::1]:5678" for a connected socket.
std::string PeerName(int fd);

}  // namespace shorthorn::replicad
