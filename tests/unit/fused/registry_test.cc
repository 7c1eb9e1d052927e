#include "fused/core/registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace shorthorn::fused {
namespace {

TEST(RegistryTest, SavesAndLoadsEveryField) {
  char dir[] = "/tmp/shorthorn-registry-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/volumes.json";
  Registry a(path);
  ASSERT_TRUE(a.Load().ok());  // missing file: empty
  EXPECT_TRUE(a.volumes().empty());
  VolumeRecord rec{"db", 1ull << 30, 7, {{"127.0.0.1:9500", "db-1"}, {"[::1]:9501", "db-2"}}, 0, {},
                   0,    {},         ""};
  rec.actual_size = 12345;
  rec.snapshots.push_back({"s1", "", "2026-11-22T02:00:00Z", true, 4096, false});
  rec.snapshots.push_back({"s2", "s1", "2026-11-22T03:00:00Z", false, 0, true});
  rec.attach_frontend = "file";
  a.Put(rec);
  VolumeRecord plain{"plain", 1ull << 20, 1, {{"127.0.0.1:9500", "plain-1"}}, 1, {}, 0, {}, ""};
  a.Put(plain);
  ASSERT_TRUE(a.Save().ok());
  Registry b(path);
  ASSERT_TRUE(b.Load().ok());
  const VolumeRecord* v = b.Find("db");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->size, 1ull << 30);
  EXPECT_EQ(v->epoch, 7u);
  ASSERT_EQ(v->replicas.size(), 2u);
  EXPECT_EQ(v->replicas[1].address, "[::1]:9501");
  EXPECT_EQ(v->replicas[1].name, "db-2");
  EXPECT_EQ(v->actual_size, 12345u);
  ASSERT_EQ(v->snapshots.size(), 2u);
  EXPECT_EQ(v->snapshots[1].parent, "s1");
  EXPECT_FALSE(v->snapshots[1].user_created);
  EXPECT_TRUE(v->snapshots[1].removed);
  EXPECT_EQ(v->snapshots[0].size_held, 4096u);
  EXPECT_EQ(v->attach_frontend, "file");
  ASSERT_NE(b.Find("plain"), nullptr);
  EXPECT_EQ(b.Find("plain")->attach_frontend, "");  // not written, read back as ""
  unlink(path.c_str());
  rmdir(dir);
}

TEST(RegistryTest, CorruptFileIsAnErrorNamingIt) {
  Registry r("/some/volumes.json");
  Status s = r.Decode("{\"format\": 1, \"volumes\": [{\"name\": 5}]}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/some/volumes.json"), std::string::npos);
  EXPECT_FALSE(r.Decode("not json").ok());
  EXPECT_FALSE(r.Decode("{\"format\": 2, \"volumes\": []}").ok());
  Status attach = r.Decode(
      "{\"format\": 1, \"volumes\": [{\"name\": \"v\", \"size\": 4096, \"epoch\": 1, "
      "\"replicas\": [], \"attach\": \"loop\"}]}");
  EXPECT_FALSE(attach.ok());
  EXPECT_NE(attach.message().find("volume v: attach \"loop\" is not block or file"),
            std::string::npos)
      << attach.message();
}

TEST(RegistryTest, ValidatesNewVolumes) {
  EXPECT_TRUE(ValidateNewVolume("v1", 1ull << 30).ok());
  EXPECT_NE(ValidateNewVolume("v1", 0).message().find("size is 0"), std::string::npos);
  EXPECT_NE(ValidateNewVolume("v1", 4097).message().find("multiple of 4096"), std::string::npos);
  EXPECT_EQ(ValidateNewVolume("", 4096).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ValidateNewVolume("a/b", 4096).kind(), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace shorthorn::fused
