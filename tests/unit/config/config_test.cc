#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/names.h"
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

TEST_F(ConfigFileTest, FuseUringIsOffByDefaultAndChecked) {
  const char* fused_argv[] = {"fused"};
  auto f = LoadFusedConfig(1, fused_argv, "/nonexistent/fused.conf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE(f->config.fuse_uring);
  EXPECT_EQ(f->config.fuse_uring_depth, 32u);
  Write("fuse-uring = yes\nfuse-uring-depth = 64\n");
  f = LoadFusedConfig(1, fused_argv, path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->config.fuse_uring);
  EXPECT_EQ(f->config.fuse_uring_depth, 64u);
  for (const char* bad :
       {"fuse-uring = on\n", "fuse-uring-depth = 0\n", "fuse-uring-depth = 257\n"}) {
    Write(bad);
    f = LoadFusedConfig(1, fused_argv, path_);
    ASSERT_FALSE(f.ok()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(f.status().message().find("'" + key + "'"), std::string::npos)
        << f.status().message();
  }
}

TEST_F(ConfigFileTest, HostIdAndTags) {
  const char* argv[] = {"replicad"};
  auto c = LoadReplicadConfig(1, argv, "/nonexistent/replicad.conf");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.host_id, "");  // resolved at start (ResolveHostId)
  EXPECT_TRUE(c->config.tags.empty());

  Write("host-id = rack1-host7\ntags =  zone=rack1   ssd nvme.2 \n");
  c = LoadReplicadConfig(1, argv, path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.host_id, "rack1-host7");
  EXPECT_EQ(c->config.tags, (std::vector<std::string>{"zone=rack1", "ssd", "nvme.2"}));

  const char* cli[] = {"replicad", "--host-id", "test-host-r2", "--tags", "hdd"};
  c = LoadReplicadConfig(5, cli, path_);  // the command line wins
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.host_id, "test-host-r2");
  EXPECT_EQ(c->config.tags, std::vector<std::string>{"hdd"});
}

TEST_F(ConfigFileTest, BadHostIdNamesTheKey) {
  const char* argv[] = {"replicad"};
  for (const std::string& bad :
       std::vector<std::string>{"a b", "host/1", std::string(65, 'h'), "h:1"}) {
    Write("host-id = " + bad + "\n");
    auto c = LoadReplicadConfig(1, argv, path_);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(c.status().message().find("key 'host-id': host id '"), std::string::npos)
        << c.status().message();
  }
}

TEST_F(ConfigFileTest, BadTagsNameTheKeyAndTheRule) {
  const char* argv[] = {"replicad"};
  auto error = [&](const std::string& tags) {
    Write("tags = " + tags + "\n");
    auto c = LoadReplicadConfig(1, argv, path_);
    EXPECT_FALSE(c.ok()) << tags;
    if (c.ok()) return std::string();
    EXPECT_NE(c.status().message().find("key 'tags': "), std::string::npos) << c.status().message();
    return c.status().message();
  };
  EXPECT_NE(error("ssd a=b=c").find("tag 'a=b=c': more than one '='"), std::string::npos);
  EXPECT_NE(error("zone=").find("both a key and a value"), std::string::npos);
  EXPECT_NE(error("ssd,zone=a").find("separated by spaces"), std::string::npos);
  EXPECT_NE(error("fast!").find("only letters"), std::string::npos);
  EXPECT_NE(error(std::string(65, 't')).find("longer than 64"), std::string::npos);
  EXPECT_NE(error("ssd hdd ssd").find("tag 'ssd' is given twice"), std::string::npos);
  EXPECT_NE(error("zone=a ssd zone=b").find("two zones, 'zone=a' and 'zone=b'"), std::string::npos);

  std::string many;
  for (size_t i = 0; i < kMaxTags; ++i) many += "t" + std::to_string(i) + " ";
  Write("tags = " + many + "\n");
  auto c = LoadReplicadConfig(1, argv, path_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.tags.size(), kMaxTags);
  EXPECT_NE(error(many + "one-more").find("more than 32 tags"), std::string::npos);
}

// The default host id: the machine-id, else the hostname made valid, else
// an error that says to set host-id.
TEST_F(ConfigFileTest, ResolveHostId) {
  const std::string machine_id = "3d1219c7c4c5404aaa1f6d2a48adfda4";
  Write(machine_id + "\n");
  auto id = ResolveHostId("", path_, "Host-1");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, machine_id);
  EXPECT_EQ(id->source, path_);

  // The configured one wins, and the file is not needed.
  id = ResolveHostId("my-host", "/nonexistent/machine-id", "Host-1");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, "my-host");
  EXPECT_EQ(id->source, "host-id");
  EXPECT_FALSE(ResolveHostId("bad host", path_, "h").ok());

  // The first line only, trailing white space dropped.
  Write(machine_id + " \r\nsecond line\n");
  id = ResolveHostId("", path_, "h");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, machine_id);

  // No usable machine-id: the hostname, lowercased, invalid characters dropped.
  for (const std::string& unusable : std::vector<std::string>{"/nonexistent/machine-id", path_}) {
    for (const char* content : {"", "\n", "uninitialized\n", "not a machine id\n"}) {
      Write(content);
      id = ResolveHostId("", unusable, "Storage-Node_7.Example.COM");
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      EXPECT_EQ(id->id, "storage-node_7.example.com") << content;
      EXPECT_EQ(id->source, "the hostname");
    }
  }
  Write(std::string(65, 'a') + "\n");  // too long for a host id
  id = ResolveHostId("", path_,
                     "n\xc3\xb6"
                     "de 1+");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, "nde1");
  id = ResolveHostId("", path_, std::string(100, 'H'));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->id, std::string(64, 'h'));

  // Nothing usable: refuse, telling what to set.
  id = ResolveHostId("", "/nonexistent/machine-id", "!!!");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(id.status().message().find("set host-id in replicad.conf"), std::string::npos)
      << id.status().message();
  EXPECT_NE(id.status().message().find("/nonexistent/machine-id"), std::string::npos);
  EXPECT_FALSE(ResolveHostId("", "/nonexistent/machine-id", "").ok());
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
