// Authentication of replica protocol connections (doc/protocol.md,
// "Authentication"). Every host of a cluster holds the same 32-byte secret,
// the cluster key. A new connection starts with a challenge-response in both
// directions before any other frame:
//
//   client                                       server
//   AUTH_CHALLENGE(client nonce, 32 bytes)  -->
//                                          <--  server nonce (32) + server proof (32)
//   (checks the server proof; on a mismatch it closes and sends nothing more)
//   AUTH_PROOF(client proof, 32 bytes)      -->
//                                          <--  OK, or EACCES and close
//
// server proof = HMAC-SHA256(key, "shorthorn-auth-v2 server" | client nonce | server nonce)
// client proof = HMAC-SHA256(key, "shorthorn-auth-v2 client" | client nonce | server nonce)
//
// The labels keep a proof from being replayed in the other direction; the
// fresh nonces of both sides keep it from being replayed on another
// connection. The client checks the server first, so a process that took
// over a replicad's port learns nothing it could use.
//
// Threads: pure functions and blocking handshakes on one socket; callable
// from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shorthorn::auth {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kProofSize = 32;
inline constexpr const char* kDefaultKeyFile = "/etc/shorthorn/cluster.key";

using Nonce = std::array<uint8_t, kNonceSize>;
using Proof = std::array<uint8_t, kProofSize>;

class ClusterKey {
 public:
  // Reads a key file: 64 hex digits, optionally followed by white space. The
  // file must not be readable or writable by others (mode 0600 or 0640).
  // Errors name the file and the reason.
  static Result<ClusterKey> Load(const std::string& path);
  // Parses 64 hex digits (white space around them is ignored); `what`
  // names the source in errors.
  static Result<ClusterKey> FromHex(std::string_view text, const std::string& what);
  // A new random key.
  static ClusterKey Generate();

  ClusterKey(const ClusterKey&) = default;
  ClusterKey& operator=(const ClusterKey&) = default;
  ~ClusterKey();

  std::string Hex() const;
  const std::array<uint8_t, kKeySize>& bytes() const { return bytes_; }

 private:
  ClusterKey() = default;
  std::array<uint8_t, kKeySize> bytes_{};
};

// A daemon's key: $CREDENTIALS_DIRECTORY/cluster.key when systemd passed
// one (LoadCredential= in the unit: a copy only that service can read),
// else the configured file.
Result<ClusterKey> LoadDaemonKey(const std::string& configured_path);

// The two proofs (see the top of this file).
Proof ServerProof(const ClusterKey& key, const Nonce& client_nonce, const Nonce& server_nonce);
Proof ClientProof(const ClusterKey& key, const Nonce& client_nonce, const Nonce& server_nonce);
// Constant-time comparison of a received proof with the expected one.
bool ProofMatches(std::span<const uint8_t> received, const Proof& expected);
Nonce RandomNonce();

// The client's side of the handshake on a connected blocking socket whose
// send and receive timeouts are set. `peer` names the server in errors.
// kPermissionDenied when the server does not prove it holds the key or
// refuses ours; kUnavailable when the connection ends or times out (an
// older replicad closes the connection: the message says so).
Status ClientHandshake(int fd, const ClusterKey& key, const std::string& peer);

// The server's side: reads at most two small frames (64-byte header and a
// 32-byte payload each, nothing larger is read before authentication) and
// answers them. A client of another protocol version gets an error reply in
// its own version's framing naming both versions; a first frame that is
// not AUTH_CHALLENGE gets EACCES. Returns OK when the client proved it holds
// the key; otherwise the reason, for the log (the connection is then closed
// by the caller).
Status ServerHandshake(int fd, const ClusterKey& key);

}  // namespace shorthorn::auth
