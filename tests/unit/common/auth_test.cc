// The cluster key file and the handshake's proofs (common/auth.h); the
// handshake against a real server is in tests/unit/replicad/server_test.cc.
#include "common/auth.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/frame_io.h"
#include "common/wire.h"

namespace shorthorn::auth {
namespace {

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "auth-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text, mode_t mode) {
    std::string path = dir_ + "/cluster.key";
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(KeyFileTest, LoadsHexWithTrailingNewline) {
  const std::string hex(64, 'a');
  auto key = ClusterKey::Load(Write(hex + "\n", 0600));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->Hex(), hex);
  EXPECT_TRUE(ClusterKey::Load(Write(std::string(64, 'B'), 0640)).ok());
}

TEST_F(KeyFileTest, RefusesBadKeysNamingTheFileAndTheReason) {
  auto short_key = ClusterKey::Load(Write("abcd", 0600));
  EXPECT_EQ(short_key.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(short_key.status().message().find(dir_ + "/cluster.key: 4 characters, expected 64"),
            std::string::npos)
      << short_key.status().message();
  auto not_hex = ClusterKey::Load(Write(std::string(63, 'a') + "g", 0600));
  EXPECT_NE(not_hex.status().message().find("not hex digits"), std::string::npos);
  auto open_to_all = ClusterKey::Load(Write(std::string(64, 'a'), 0644));
  EXPECT_EQ(open_to_all.status().kind(), ErrorKind::kNotAuthorized);
  EXPECT_NE(open_to_all.status().message().find("mode 0644 lets other users read it"),
            std::string::npos)
      << open_to_all.status().message();
  auto missing = ClusterKey::Load(dir_ + "/none");
  EXPECT_EQ(missing.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/none"), std::string::npos);
}

TEST_F(KeyFileTest, ACredentialFromSystemdWinsOverTheConfiguredFile) {
  const std::string configured = Write(std::string(64, '1'), 0600);
  std::filesystem::create_directory(dir_ + "/creds");
  std::ofstream(dir_ + "/creds/cluster.key") << std::string(64, '2');
  ::chmod((dir_ + "/creds/cluster.key").c_str(), 0400);
  ::setenv("CREDENTIALS_DIRECTORY", (dir_ + "/creds").c_str(), 1);
  auto key = LoadDaemonKey(configured);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->Hex(), std::string(64, '2'));
  EXPECT_EQ(LoadDaemonKey(configured)->Hex(), std::string(64, '1'));
}

TEST(ProofTest, DependsOnKeyDirectionAndBothNonces) {
  ClusterKey a = ClusterKey::Generate(), b = ClusterKey::Generate();
  EXPECT_NE(a.Hex(), b.Hex());
  Nonce c = RandomNonce(), s = RandomNonce(), s2 = RandomNonce();
  Proof server = ServerProof(a, c, s);
  EXPECT_TRUE(ProofMatches(server, ServerProof(a, c, s)));
  EXPECT_FALSE(ProofMatches(server, ServerProof(b, c, s)));   // another key
  EXPECT_FALSE(ProofMatches(server, ClientProof(a, c, s)));   // the other direction
  EXPECT_FALSE(ProofMatches(server, ServerProof(a, c, s2)));  // another connection
  EXPECT_FALSE(ProofMatches(server, ServerProof(a, s, c)));   // nonces swapped
  EXPECT_FALSE(ProofMatches(std::span<const uint8_t>(server.data(), 31), server));
}

// A server that echoes the client's own nonce and a made-up proof (a
// process that took over a replicad's port): the client hangs up without
// sending AUTH_PROOF.
TEST(ClientHandshakeTest, StopsBeforeItsProofWhenTheServerCannotProveItself) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  std::string after;
  std::thread impostor([&] {
    auto challenge = ReadFrame(sv[1]);
    ASSERT_TRUE(challenge.ok());
    std::vector<uint8_t> answer(challenge->payload);
    answer.resize(kNonceSize + kProofSize, 0x42);
    ASSERT_TRUE(WriteFrame(sv[1], wire::MakeReply(challenge->header, 0, answer), answer).ok());
    char buf[256];
    for (ssize_t n; (n = ::read(sv[1], buf, sizeof(buf))) > 0;) after.append(buf, n);
  });
  Status s = ClientHandshake(sv[0], ClusterKey::Generate(), "impostor");
  ::close(sv[0]);
  impostor.join();
  ::close(sv[1]);
  EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized);
  EXPECT_NE(s.message().find("authenticate with replicad at impostor"), std::string::npos)
      << s.message();
  EXPECT_EQ(after, "");  // nothing more was sent
}

}  // namespace
}  // namespace shorthorn::auth
