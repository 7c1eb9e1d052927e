// max-volume-size in fused: CreateVolume and Expand refuse a larger size with
// InvalidArgument before any replicad is asked. The service runs on a temp
// state directory with an unstarted FUSE frontend; the replica addresses
// point at a closed port (and no cluster key is set), so a call that got
// past the check would fail differently, never with InvalidArgument.
#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "fused/core/registry.h"
#include "fused/fuse/fuse_frontend.h"
#include "fused/service/volume_service.h"

namespace shorthorn::fused {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kHuge = uint64_t{1} << 62;
constexpr char kNowhere[] = "127.0.0.1:1";  // nothing listens on port 1

TEST(CheckVolumeSizeTest, LimitIsInclusiveAndNamesBothNumbers) {
  EXPECT_TRUE(CheckVolumeSize("create volume v1", kGiB, 1).ok());
  Status s = CheckVolumeSize("create volume v1", kGiB + 4096, 1);
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(s.message(), "create volume v1: size 1073745920 bytes exceeds max-volume-size 1 GiB");
  // A limit past 2^64 bytes must not wrap around to a small one.
  EXPECT_TRUE(CheckVolumeSize("x", UINT64_MAX, uint64_t{1} << 40).ok());
}

class VolumeLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fused-limits-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // A service whose registry holds `volume` (when not empty) of 1 MiB.
  void StartService(uint64_t limit_gib, const std::string& volume = "") {
    std::string state = dir_ + "/state";
    std::filesystem::create_directories(state);
    if (!volume.empty()) {
      Registry registry(state + "/volumes.json");
      VolumeRecord record;
      record.name = volume;
      record.size = 1 << 20;
      record.replica_count = 1;
      record.replicas.push_back({kNowhere, volume + "-r1"});
      registry.Put(record);
      ASSERT_TRUE(registry.Save().ok());
    }
    ServiceSettings settings;
    settings.state_dir = state;
    settings.dev_dir = dir_ + "/dev";
    settings.default_replicads = {kNowhere};
    settings.client.local_socket_dir = "";
    settings.backup_target = "file://" + dir_ + "/backups";
    settings.max_volume_size_gib = limit_gib;
    service_ = std::make_unique<VolumeService>(settings, fuse_);
    Status s = service_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string dir_;
  FuseFrontend fuse_{
      FuseSettings{.mount_point = "/nonexistent/mount", .state_dir = "/nonexistent"}};
  std::unique_ptr<VolumeService> service_;
};

TEST_F(VolumeLimitsTest, CreateVolumeAboveTheLimitIsRefused) {
  StartService(65536);
  Status s = service_->CreateVolume("v1", kHuge, {}, {});
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(),
            "create volume v1: size 4611686018427387904 bytes exceeds max-volume-size 65536 GiB");
  EXPECT_TRUE(service_->ListVolumes().empty());
}

TEST_F(VolumeLimitsTest, CreateVolumeHonoursTheConfiguredLimit) {
  StartService(1);
  Status s = service_->CreateVolume("v1", kGiB + 4096, {kNowhere}, {});
  EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << s.ToString();
  EXPECT_EQ(s.message(), "create volume v1: size 1073745920 bytes exceeds max-volume-size 1 GiB");
  EXPECT_TRUE(service_->ListVolumes().empty());
}

TEST_F(VolumeLimitsTest, ExpandAboveTheLimitIsRefused) {
  StartService(1, "v1");
  for (uint64_t size : {kGiB + 4096, kHuge}) {
    Status s = service_->Expand("v1", size, {});
    EXPECT_EQ(s.kind(), ErrorKind::kInvalidArgument) << s.ToString();
    EXPECT_EQ(s.message(), "expand volume v1: size " + std::to_string(size) +
                               " bytes exceeds max-volume-size 1 GiB");
  }
  auto v = service_->GetVolume("v1");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->size, uint64_t{1} << 20);
}

}  // namespace
}  // namespace shorthorn::fused
