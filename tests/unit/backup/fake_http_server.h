// A tiny HTTP/1.1 server on 127.0.0.1 for the S3 error tests: each
// connection carries one request, the handler chooses the reply (status,
// body, or a misbehaviour: a body cut short, no reply at all). It runs one
// thread and serves connections one at a time. Test-only.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shorthorn::backup::testing {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/xml";
  // Send only this many body bytes (after a Content-Length of the whole
  // body) and close; -1 sends all.
  long truncate_body_at = -1;
  // Accept the request and never answer (until the server stops).
  bool hang = false;
};

class FakeHttpServer {
 public:
  explicit FakeHttpServer(std::function<HttpReply(const HttpRequest&)> handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<HttpRequest> requests() const;

 private:
  void Serve();
  void HandleConnection(int fd);

  std::function<HttpReply(const HttpRequest&)> handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::thread thread_;
};

// An S3 error document.
std::string S3ErrorXml(const std::string& code, const std::string& message);

}  // namespace shorthorn::backup::testing
