// Fuzz target: the server side of the authentication handshake
// (common/auth.h ServerHandshake), the first code that reads a new
// connection's bytes. The input is everything the client sends; the
// property: no input ever authenticates (a valid proof needs the server's
// fresh random nonce and the key), and nothing crashes or blocks.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "common/auth.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shorthorn;
  static const auth::ClusterKey key = *auth::ClusterKey::FromHex(std::string(64, '7'), "fuzz");
  if (size > (64u << 10)) return 0;  // more than a socket buffer holds without a reader
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  int buf = 1 << 20;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(sv[0], data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::shutdown(sv[0], SHUT_WR);  // the server reads the input, then EOF
  Status s = auth::ServerHandshake(sv[1], key);
  fuzz::Check(!s.ok(), "a client without the key authenticated");
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
