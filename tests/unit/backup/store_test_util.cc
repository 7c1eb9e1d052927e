#include "tests/unit/backup/store_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace shorthorn::backup::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "shorthorn-backup-test-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {
std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}
}  // namespace

std::optional<S3TestServer> S3TestServerFromEnv() {
  std::string endpoint = Env("SHORTHORN_TEST_S3_ENDPOINT", "");
  if (endpoint.empty()) return std::nullopt;
  S3TestServer s;
  s.settings.endpoint = endpoint;
  s.settings.https = Env("SHORTHORN_TEST_S3_PROTOCOL", "http") == "https";
  s.settings.path_style = true;
  s.settings.access_key = Env("SHORTHORN_TEST_S3_ACCESS_KEY", "S3RVER");
  s.settings.secret_key = Env("SHORTHORN_TEST_S3_SECRET_KEY", "S3RVER");
  s.bucket = Env("SHORTHORN_TEST_S3_BUCKET", "shorthorn-test");
  return s;
}

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%d-%d-%08x", static_cast<int>(::getpid()), ++counter,
                static_cast<unsigned>(rd()));
  return stem + buf;
}

std::vector<uint8_t> Pattern(size_t size, uint32_t seed) {
  std::vector<uint8_t> out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<uint8_t>(x);
  }
  return out;
}

int ClosedLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace shorthorn::backup::testing
