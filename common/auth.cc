// Design notes: libsodium gives the MAC (crypto_auth_hmacsha256), the nonces
// (randombytes_buf), the constant-time comparison (sodium_memcmp) and the
// wiping of key copies (sodium_memzero). The handshake reads frames itself,
// header first, so nothing larger than 64 + 32 bytes is ever allocated for
// a peer that has not authenticated.
#include "common/auth.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/file_util.h"
#include "common/frame_io.h"
#include "common/wire.h"

namespace shorthorn::auth {
namespace {

constexpr std::string_view kServerLabel = "shorthorn-auth-v2 server";
constexpr std::string_view kClientLabel = "shorthorn-auth-v2 client";

void InitSodium() {
  // Idempotent and thread-safe; fails only without a random source.
  static const bool ok = sodium_init() >= 0;
  if (!ok) std::abort();
}

Proof Mac(const ClusterKey& key, std::string_view label, const Nonce& client_nonce,
          const Nonce& server_nonce) {
  InitSodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.bytes().data(), key.bytes().size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                                label.size());
  crypto_auth_hmacsha256_update(&st, client_nonce.data(), client_nonce.size());
  crypto_auth_hmacsha256_update(&st, server_nonce.data(), server_nonce.size());
  Proof out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
  return out;
}

Status Denied(const std::string& message) {
  return Status(ErrorKind::kNotAuthorized, message, EACCES);
}

// Reads and drops the payload a refused request announced when it is a
// small one (a control op's JSON), through a small buffer, so that closing
// the connection right after the error reply does not reset it (TCP sends
// RST when unread bytes are left) before the client has read the reply.
void Drain(int fd, uint64_t length) {
  uint8_t buf[4096];
  if (length > (64u << 10)) return;
  while (length > 0) {
    ssize_t n = ::read(fd, buf, std::min<uint64_t>(length, sizeof(buf)));
    if (n <= 0) return;
    length -= static_cast<uint64_t>(n);
  }
}

// The error reply a server sends before closing: status errno, message.
void SendError(int fd, const wire::Header& request, int err, const std::string& message) {
  wire::Header reply = wire::MakeReply(request, err, wire::AsBytes(message));
  (void)WriteFrame(fd, reply, wire::AsBytes(message));
}

}  // namespace

ClusterKey::~ClusterKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

Result<ClusterKey> ClusterKey::FromHex(std::string_view text, const std::string& what) {
  InitSodium();
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  auto bad = [&](const std::string& reason) {
    return Status(ErrorKind::kInvalidArgument,
                  "cluster key " + what + ": " + reason +
                      " (a key is 64 hex digits; make one with: od -An -tx1 -N32 /dev/urandom "
                      "| tr -d ' \\n')",
                  EINVAL);
  };
  if (text.size() != 2 * kKeySize) {
    return bad(std::to_string(text.size()) + " characters, expected " +
               std::to_string(2 * kKeySize));
  }
  ClusterKey key;
  size_t len = 0;
  if (sodium_hex2bin(key.bytes_.data(), key.bytes_.size(), text.data(), text.size(), nullptr, &len,
                     nullptr) != 0 ||
      len != kKeySize) {
    return bad("not hex digits");
  }
  return key;
}

Result<ClusterKey> ClusterKey::Load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    std::string hint = err == ENOENT ? " (every host of the cluster needs the same key file; "
                                       "doc/protocol.md, \"Authentication\")"
                                     : "";
    return ErrnoStatus(err, "cluster key " + path + hint);
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(ErrorKind::kInvalidArgument, "cluster key " + path + ": not a regular file",
                  EINVAL);
  }
  if ((st.st_mode & 0007) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status(ErrorKind::kNotAuthorized,
                  "cluster key " + path + ": mode " + mode +
                      " lets other users read it; chmod 0600 (or 0640) " + path,
                  EACCES);
  }
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status().WithContext("cluster key " + path);
  auto key = FromHex(*text, path);
  sodium_memzero(text->data(), text->size());
  return key;
}

Result<ClusterKey> LoadDaemonKey(const std::string& configured_path) {
  std::string path = configured_path;
  if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY"); creds != nullptr) {
    std::string credential = std::string(creds) + "/cluster.key";
    if (::access(credential.c_str(), F_OK) == 0) path = credential;
  }
  return ClusterKey::Load(path);
}

ClusterKey ClusterKey::Generate() {
  InitSodium();
  ClusterKey key;
  randombytes_buf(key.bytes_.data(), key.bytes_.size());
  return key;
}

std::string ClusterKey::Hex() const {
  char hex[2 * kKeySize + 1];
  sodium_bin2hex(hex, sizeof(hex), bytes_.data(), bytes_.size());
  return hex;
}

Proof ServerProof(const ClusterKey& key, const Nonce& client_nonce, const Nonce& server_nonce) {
  return Mac(key, kServerLabel, client_nonce, server_nonce);
}

Proof ClientProof(const ClusterKey& key, const Nonce& client_nonce, const Nonce& server_nonce) {
  return Mac(key, kClientLabel, client_nonce, server_nonce);
}

bool ProofMatches(std::span<const uint8_t> received, const Proof& expected) {
  return received.size() == expected.size() &&
         sodium_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

Nonce RandomNonce() {
  InitSodium();
  Nonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

Status ClientHandshake(int fd, const ClusterKey& key, const std::string& peer) {
  const std::string what = "authenticate with replicad at " + peer;
  // A reply to `request`: the frame, or why there is none.
  auto exchange = [&](wire::Op op, std::span<const uint8_t> payload) -> Result<Frame> {
    wire::Header h = wire::MakeRequest(op, static_cast<uint64_t>(op), 0, 0, 0, payload);
    SH_RETURN_IF_ERROR(WriteFrame(fd, h, payload));
    auto reply = ReadFrame(fd);
    if (!reply.ok()) {
      if (reply.status().kind() == ErrorKind::kUnavailable) {
        return Status(
            ErrorKind::kUnavailable,
            what + ": " + reply.status().message() + " (a replicad older than protocol version " +
                std::to_string(wire::kVersion) + " closes the connection here without a word)",
            reply.status().sys_errno());
      }
      return reply.status().WithContext(what);
    }
    const wire::Header& r = reply->header;
    if (!r.is_reply() || r.op != op || r.request_id != h.request_id) {
      return Status(ErrorKind::kProtocol,
                    what + ": unexpected " +
                        std::string(wire::OpName(static_cast<uint16_t>(r.op))) +
                        " frame during the handshake",
                    EPROTO);
    }
    if (r.status != 0) {
      std::string message(reply->payload.begin(), reply->payload.end());
      return Status(r.status == EACCES ? ErrorKind::kNotAuthorized : ErrorKind::kProtocol,
                    what + ": " + message, r.status);
    }
    return reply;
  };

  const Nonce client_nonce = RandomNonce();
  auto challenge = exchange(wire::Op::kAuthChallenge, client_nonce);
  if (!challenge.ok()) return challenge.status();
  if (challenge->payload.size() != kNonceSize + kProofSize) {
    return Status(ErrorKind::kProtocol,
                  what + ": AUTH_CHALLENGE reply of " + std::to_string(challenge->payload.size()) +
                      " bytes, expected " + std::to_string(kNonceSize + kProofSize),
                  EPROTO);
  }
  Nonce server_nonce;
  std::memcpy(server_nonce.data(), challenge->payload.data(), kNonceSize);
  std::span<const uint8_t> server_proof(challenge->payload.data() + kNonceSize, kProofSize);
  if (!ProofMatches(server_proof, ServerProof(key, client_nonce, server_nonce))) {
    return Denied(what +
                  ": the server did not prove it holds the cluster key (a different "
                  "cluster.key there, or not a replicad on that port)");
  }
  const Proof proof = ClientProof(key, client_nonce, server_nonce);
  auto accepted = exchange(wire::Op::kAuthProof, proof);
  return accepted.ok() ? Status::Ok() : accepted.status();
}

Status ServerHandshake(int fd, const ClusterKey& key) {
  // Reads one frame of at most kProofSize payload bytes; answers frames of
  // another version or op with an error reply first.
  auto read_small = [&](wire::Op expected) -> Result<Frame> {
    uint8_t raw[wire::kHeaderSize];
    SH_RETURN_IF_ERROR(ReadFull(fd, raw));
    auto header = wire::DecodeHeader(raw);
    if (!header.ok()) {
      // A header of another version: answer in that version's framing (the
      // layout of the fields a reply needs is the same in versions 1 and 2).
      uint32_t magic = raw[0] | raw[1] << 8 | raw[2] << 16 | static_cast<uint32_t>(raw[3]) << 24;
      uint16_t version = static_cast<uint16_t>(raw[4] | raw[5] << 8);
      if (magic == wire::kMagic && version != wire::kVersion && version > 0) {
        wire::Header old;
        old.version = version;
        old.op = static_cast<wire::Op>(static_cast<uint16_t>(raw[6] | raw[7] << 8));
        for (int i = 7; i >= 0; --i) old.request_id = (old.request_id << 8) | raw[16 + i];
        Drain(fd, raw[48] | raw[49] << 8 | raw[50] << 16 | static_cast<uint64_t>(raw[51]) << 24);
        const std::string message = "this replicad speaks replica protocol version " +
                                    std::to_string(wire::kVersion) + ", the client version " +
                                    std::to_string(version) +
                                    ": install the same Shorthorn version on every host";
        SendError(fd, old, EPROTONOSUPPORT, message);
        return Status(ErrorKind::kProtocol,
                      "client speaks protocol version " + std::to_string(version) + ", we speak " +
                          std::to_string(wire::kVersion),
                      EPROTONOSUPPORT);
      }
      return header.status();
    }
    if (header->is_reply() || header->op != expected) {
      const std::string message = std::string(wire::OpName(static_cast<uint16_t>(header->op))) +
                                  ": this connection has not authenticated (expected " +
                                  std::string(wire::OpName(static_cast<uint16_t>(expected))) + ")";
      Drain(fd, header->payload_length);
      if (!header->is_reply()) SendError(fd, *header, EACCES, message);
      return Denied(message);
    }
    Frame frame;
    frame.header = *header;
    // DecodeHeader allows exactly kNonceSize / kProofSize for these ops.
    frame.payload.resize(header->payload_length);
    SH_RETURN_IF_ERROR(ReadFull(fd, frame.payload));
    SH_RETURN_IF_ERROR(wire::VerifyPayload(frame.header, frame.payload));
    return frame;
  };

  auto challenge = read_small(wire::Op::kAuthChallenge);
  if (!challenge.ok()) return challenge.status();
  Nonce client_nonce;
  std::memcpy(client_nonce.data(), challenge->payload.data(), kNonceSize);
  const Nonce server_nonce = RandomNonce();
  const Proof server_proof = ServerProof(key, client_nonce, server_nonce);
  uint8_t answer[kNonceSize + kProofSize];
  std::memcpy(answer, server_nonce.data(), kNonceSize);
  std::memcpy(answer + kNonceSize, server_proof.data(), kProofSize);
  wire::Header reply = wire::MakeReply(challenge->header, 0, answer);
  SH_RETURN_IF_ERROR(WriteFrame(fd, reply, answer));

  auto proof = read_small(wire::Op::kAuthProof);
  if (!proof.ok()) return proof.status();
  if (!ProofMatches(proof->payload, ClientProof(key, client_nonce, server_nonce))) {
    const std::string message =
        "authentication failed: the client does not hold this replicad's cluster key";
    SendError(fd, proof->header, EACCES, message);
    return Denied(message);
  }
  reply = wire::MakeReply(proof->header, 0, {});
  return WriteFrame(fd, reply, {});
}

}  // namespace shorthorn::auth
