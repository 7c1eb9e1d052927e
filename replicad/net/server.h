// Server: the TCP listener of the replica protocol. Binds the configured
// address (IPv4 or IPv6, a name is resolved) and port (0 picks a free one),
// accepts connections on its own thread and gives each a Connection. When
// the address is a loopback or wildcard one (so 127.0.0.1:<port> reaches
// this replicad) and a socket directory is given, it also listens on the
// Unix socket <dir>/<port>.sock (common/net.h's ReplicadSocketPath and
// loopback rule, shared with fused), which fused prefers for replicas on its
// own host: the same protocol, a cheaper transport. That socket is best
// effort (a warning when it cannot be made) and removed by Stop.
// Connections that have ended are reaped on the next accept.
//
// Limits: at most max_connections connections at a time, of which at most
// max_unauthenticated may still be in the handshake; a connection over
// either is closed at once (logged, at most once a minute). A Unix socket
// peer must be root or replicad's own user (SO_PEERCRED), besides holding
// the key; the socket file is mode 0660, group "shorthorn" when that group
// exists. TCP connections get keepalive probes (a vanished peer is noticed
// in about a minute). A thread that cannot be started refuses that
// connection, logged, and the daemon goes on.
//
// Threads: Start, Adopt and Stop may be called from any thread; Stop (or the
// destructor) stops accepting, shuts every connection down, and returns once
// all their threads have ended and their requests have been answered.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/file_util.h"
#include "common/status.h"
#include "replicad/core/request_handler.h"
#include "replicad/net/connection.h"

namespace shorthorn::replicad {

struct ServerOptions {
  ConnectionOptions connection;  // its key is required
  uint32_t max_connections = 1024;
  uint32_t max_unauthenticated = 64;
};

class Server {
 public:
  Server(RequestHandler* handler, ServerOptions options)
      : handler_(handler), options_(std::move(options)) {}
  ~Server() { Stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start(const std::string& listen, uint16_t port, const std::string& socket_dir = "");
  // The Unix socket's path, "" when there is none.
  const std::string& socket_path() const { return socket_path_; }
  // The bound port (after Start).
  uint16_t port() const { return port_; }
  // Serves an already connected stream socket (tests use socketpairs);
  // false when a limit refused it (the socket is closed).
  bool Adopt(UniqueFd fd, std::string peer);
  // Connections being served, and of those the ones not yet authenticated.
  size_t connections();
  size_t unauthenticated();
  void Stop();

 private:
  void AcceptLoop();
  void ReapFinished();

  RequestHandler* const handler_;
  const ServerOptions options_;
  // Makes socket_path_ and unix_fd_ (best effort); `host` is the listen
  // address without brackets.
  void ListenUnix(const std::string& host, const std::string& socket_dir);

  UniqueFd listen_fd_;
  UniqueFd unix_fd_;
  std::string socket_path_;
  UniqueFd wake_fd_;  // eventfd that ends AcceptLoop
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::shared_ptr<Connection>> connections_;        // guarded by mu_
  bool stopped_ = false;                                      // guarded by mu_
  std::chrono::steady_clock::time_point last_refusal_log_{};  // guarded by mu_
};

}  // namespace shorthorn::replicad
