#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "config/daemon_config.h"

namespace shorthorn::config {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shorthorn-config-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string path_;
};

TEST_F(ConfigFileTest, DefaultsWhenFileIsAbsent) {
  const char* argv[] = {"replicad"};
  auto c = LoadReplicadConfig(1, argv, "/nonexistent/replicad.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.port, 9500);
  EXPECT_EQ(c->config.data_dir, "/var/lib/shorthorn/replicas");
  EXPECT_TRUE(c->config.direct_io);
}

TEST_F(ConfigFileTest, DirectIoTakesABoolean) {
  Write("direct-io = false\n");
  const char* argv[] = {"replicad"};
  auto c = LoadReplicadConfig(1, argv, path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->config.direct_io);
  Write("direct-io = sometimes\n");
  auto bad = LoadReplicadConfig(1, argv, path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'direct-io'"), std::string::npos)
      << bad.status().message();
}

TEST_F(ConfigFileTest, FileValuesAndCommandLineWins) {
  Write("port = 9600\ndata-dir = /srv/r\n# a comment\n");
  const char* argv[] = {"replicad", "--port", "9700"};
  auto c = LoadReplicadConfig(3, argv, path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.port, 9700);
  EXPECT_EQ(c->config.data_dir, "/srv/r");
}

TEST_F(ConfigFileTest, UnknownKeyNamesFileAndKey) {
  Write("prot = 9600\n");
  const char* argv[] = {"replicad"};
  auto c = LoadReplicadConfig(1, argv, path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(c.status().message().find(path_), std::string::npos);
  EXPECT_NE(c.status().message().find("'prot'"), std::string::npos);
  EXPECT_NE(c.status().message().find("unknown key"), std::string::npos);
}

TEST_F(ConfigFileTest, BadValueNamesFileKeyAndReason) {
  Write("port = ninety\n");
  const char* argv[] = {"replicad"};
  auto c = LoadReplicadConfig(1, argv, path_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'port'"), std::string::npos);
  EXPECT_NE(c.status().message().find("invalid value"), std::string::npos);

  Write("port = 70000\n");
  auto range = LoadReplicadConfig(1, argv, path_);
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("outside 1..65535"), std::string::npos);

  Write("io-engine = fast\n");
  auto engine = LoadReplicadConfig(1, argv, path_);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("'io-engine'"), std::string::npos);
}

TEST_F(ConfigFileTest, FusedReplicadsListIsParsedAndChecked) {
  Write("replicads = 10.0.0.1:9500 [::1]:9501\nreplica-timeout = 3\n");
  const char* argv[] = {"fused"};
  auto c = LoadFusedConfig(1, argv, path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->config.replicads.size(), 2u);
  EXPECT_EQ(c->config.replica_timeout_s, 3u);
  Write("replicads = nohost\n");
  auto bad = LoadFusedConfig(1, argv, path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'replicads'"), std::string::npos);
  Write("state-dir = relative/path\n");
  auto rel = LoadFusedConfig(1, argv, path_);
  EXPECT_NE(rel.status().message().find("absolute"), std::string::npos);
}

TEST_F(ConfigFileTest, MaxVolumeSizeIsGibWithinRange) {
  const char* replicad_argv[] = {"replicad"};
  const char* fused_argv[] = {"fused"};
  auto r = LoadReplicadConfig(1, replicad_argv, "/nonexistent/replicad.conf");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.max_volume_size_gib, 65536u);
  auto f = LoadFusedConfig(1, fused_argv, "/nonexistent/fused.conf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->config.max_volume_size_gib, 65536u);

  Write("max-volume-size = 16777216\n");  // the largest: 16 PiB
  r = LoadReplicadConfig(1, replicad_argv, path_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.max_volume_size_gib, 16777216u);
  Write("max-volume-size = 1\n");
  f = LoadFusedConfig(1, fused_argv, path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->config.max_volume_size_gib, 1u);

  for (const char* bad : {"0", "16777217", "-1"}) {
    Write(std::string("max-volume-size = ") + bad + "\n");
    auto rb = LoadReplicadConfig(1, replicad_argv, path_);
    ASSERT_FALSE(rb.ok()) << bad;
    EXPECT_NE(rb.status().message().find("'max-volume-size'"), std::string::npos)
        << rb.status().message();
    EXPECT_NE(rb.status().message().find("outside 1..16777216"), std::string::npos)
        << rb.status().message();
    auto fb = LoadFusedConfig(1, fused_argv, path_);
    ASSERT_FALSE(fb.ok()) << bad;
    EXPECT_NE(fb.status().message().find("'max-volume-size'"), std::string::npos)
        << fb.status().message();
  }
  const char* cli[] = {"fused", "--max-volume-size", "4096"};
  f = LoadFusedConfig(3, cli, "/nonexistent/fused.conf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->config.max_volume_size_gib, 4096u);
}

TEST_F(ConfigFileTest, AutoAttachIsYesOrNo) {
  const char* fused_argv[] = {"fused"};
  auto f = LoadFusedConfig(1, fused_argv, "/nonexistent/fused.conf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->config.auto_attach);
  Write("auto-attach = no\n");
  f = LoadFusedConfig(1, fused_argv, path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE(f->config.auto_attach);
  const char* cli[] = {"fused", "--auto-attach", "yes"};
  f = LoadFusedConfig(3, cli, path_);  // the command line wins
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->config.auto_attach);
  for (const char* bad : {"true", "1", "", "YES"}) {
    Write(std::string("auto-attach = ") + bad + "\n");
    f = LoadFusedConfig(1, fused_argv, path_);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(f.status().message().find("'auto-attach'"), std::string::npos)
        << f.status().message();
    EXPECT_NE(f.status().message().find("is not yes or no"), std::string::npos)
        << f.status().message();
  }
}

TEST_F(ConfigFileTest, MissingExplicitFileIsAnError) {
  const char* argv[] = {"fused", "--config", "/nonexistent/fused.conf"};
  auto c = LoadFusedConfig(3, argv);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/fused.conf"), std::string::npos);
}

TEST_F(ConfigFileTest, HelpAsksToExit) {
  const char* argv[] = {"fused", "--help"};
  auto c = LoadFusedConfig(2, argv, "/nonexistent");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->exit_now);
  EXPECT_NE(c->output.find("--mount-point"), std::string::npos);
}

}  // namespace
}  // namespace shorthorn::config
