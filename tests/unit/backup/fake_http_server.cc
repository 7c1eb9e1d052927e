#include "tests/unit/backup/fake_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace shorthorn::backup::testing {
namespace {

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

FakeHttpServer::FakeHttpServer(std::function<HttpReply(const HttpRequest&)> handler)
    : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    throw std::runtime_error("fake HTTP server: cannot listen");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeHttpServer::~FakeHttpServer() {
  stopping_ = true;
  (void)!::write(stop_pipe_[1], "x", 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

std::vector<HttpRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void FakeHttpServer::Serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    ::close(fd);
  }
}

void FakeHttpServer::HandleConnection(int fd) {
  // Read the head, then Content-Length bytes of body.
  std::string data;
  char buf[65536];
  size_t head_end;
  auto read_more = [&]() {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, 5000) <= 0 || fds[1].revents != 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    return true;
  };
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (!read_more()) return;
  }
  HttpRequest req;
  std::string head = data.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  std::string request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.rfind(' ');
  req.method = request_line.substr(0, sp1);
  req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t content_length = 0;
  bool expect_continue = false;
  for (size_t pos = line_end; pos != std::string::npos && pos < head.size();) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = Lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "content-length") content_length = std::strtoul(value.c_str(), nullptr, 10);
      if (name == "expect") expect_continue = true;
      req.headers.emplace_back(name, value);
    }
    pos = next;
  }
  if (expect_continue && !WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return;
  req.body = data.substr(head_end + 4);
  while (req.body.size() < content_length) {
    data.clear();
    if (!read_more()) return;
    req.body += data;
  }
  HttpReply reply = handler_(req);
  {
    std::lock_guard lock(mu_);
    requests_.push_back(req);
  }
  if (reply.hang) {
    pollfd p = {stop_pipe_[0], POLLIN, 0};
    ::poll(&p, 1, -1);
    return;
  }
  std::string out =
      "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) +
      "\r\nContent-Type: " + reply.content_type +
      "\r\nConnection: close\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
  if (req.method == "HEAD") {
    WriteAll(fd, out);
    return;
  }
  if (reply.truncate_body_at >= 0) {
    out += reply.body.substr(0, static_cast<size_t>(reply.truncate_body_at));
  } else {
    out += reply.body;
  }
  WriteAll(fd, out);
}

std::string S3ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>1</RequestId></Error>";
}

}  // namespace shorthorn::backup::testing
