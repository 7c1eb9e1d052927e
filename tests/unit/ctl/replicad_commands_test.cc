// RunCtl end to end over FakeStorageClient for replica placement: replicad
// list (table, --quiet, JSON), drain with and without --wait and undrain,
// replica list's HOST and FREE joined from ListReplicads (and "-" when that
// fails), volume rebuild, attach --maintenance / --salvage, the
// replica-tags option of the commands that place replicas, and volume
// show's robustness reason and replica tags.
#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>

#include "dbus/ctl/exit_codes.h"
#include "tests/unit/ctl/run_ctl_fixture.h"

namespace shorthorn::ctl {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

// Volume vol1 with replicas on h1 and h2, and three replicads: h1 and h2
// up, h3 unreachable.
class PlacementTest : public testing::RunCtlTest {
 protected:
  void SetUp() override {
    (void)fake_.CreateVolume("vol1", kGiB, {"h1:9500", "h2:9500"}, {});
    fake_.volumes["vol1"].replica_count = 2;
    fake_.volumes["vol1"].robustness = "unknown";
    fake_.replicads = {
        {"h1:9500", "up", "host-a", {"ssd", "zone=a"}, 100 * kGiB, 60 * kGiB, 30 * kGiB, 3, 0, ""},
        {"h2:9500", "up", "host-b", {}, 200 * kGiB, 150 * kGiB, 10 * kGiB, 1, 1, ""},
        {"h3:9500", "unreachable", "", {}, 0, 0, 0, 0, 0, "connect: connection refused"},
    };
    fake_.calls.clear();
  }
  bool Called(const std::string& call) const {
    return std::find(fake_.calls.begin(), fake_.calls.end(), call) != fake_.calls.end();
  }
};

TEST_F(PlacementTest, ReplicadListShowsEveryReplicad) {
  ASSERT_EQ(Run({"replicad", "list"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "ADDRESS  STATE        HOST    TAGS        FREE     TOTAL    PROVISIONED  REPLICAS  "
            "REBUILDS  MESSAGE\n"
            "h1:9500  up           host-a  ssd,zone=a  60 GiB   100 GiB  30 GiB       3         "
            "0         -\n"
            "h2:9500  up           host-b  -           150 GiB  200 GiB  10 GiB       1         "
            "1         -\n"
            "h3:9500  unreachable  -       -           -        -        -            -         "
            "0         connect: connection refused\n");
  EXPECT_EQ(err_.str(), "");

  ASSERT_EQ(Run({"replicad", "list", "-q"}), 0);
  EXPECT_EQ(out_.str(), "h1:9500\nh2:9500\nh3:9500\n");

  ASSERT_EQ(Run({"--json", "replicad", "list"}), 0);
  boost::json::array list = boost::json::parse(out_.str()).as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].at("address").as_string(), "h1:9500");
  EXPECT_EQ(list[0].at("host_id").as_string(), "host-a");
  EXPECT_EQ(list[0].at("tags").as_array().at(1).as_string(), "zone=a");
  EXPECT_EQ(list[0].at("free_bytes").to_number<uint64_t>(), 60 * kGiB);
  EXPECT_EQ(list[1].at("rebuilds").to_number<int>(), 1);
  EXPECT_EQ(list[2].at("state").as_string(), "unreachable");
  EXPECT_EQ(list[2].at("message").as_string(), "connect: connection refused");
}

TEST_F(PlacementTest, ReplicadListFailsWithTheDaemonsKind) {
  fake_.replicads_error = Status(ErrorKind::kNotAuthorized,
                                 "list replicads: uid 1000 is neither root nor in group shorthorn");
  EXPECT_EQ(Run({"replicad", "list"}), 7);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "shorthornctl: list replicads: uid 1000 is neither root nor in group shorthorn\n");
  EXPECT_EQ(Run({"replicad", "list", "extra"}), kExitUsage);
}

TEST_F(PlacementTest, DrainPrintsTheJobOrWaitsForIt) {
  ASSERT_EQ(Run({"replicad", "drain", "h2:9500"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "/org/shorthorn/Storage1/jobs/1\n");
  EXPECT_EQ(fake_.replicads[1].state, "draining");
  EXPECT_EQ(fake_.watches, 0);
  ASSERT_EQ(Run({"--json", "replicad", "drain", "h2:9500"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("address").as_string(), "h2:9500");
  EXPECT_EQ(v.at("job").as_string(), "/org/shorthorn/Storage1/jobs/2");

  ASSERT_EQ(Run({"replicad", "drain", "h2:9500", "--wait"}), 0);
  EXPECT_EQ(out_.str(),
            "Drained replicad h2:9500: no replica of shorthorn-fused's volumes is left on it. It "
            "stays draining until shorthornctl replicad undrain h2:9500.\n");
  EXPECT_EQ(fake_.watches, 2);
  ASSERT_EQ(Run({"--json", "replicad", "drain", "h2:9500", "--wait"}), 0);
  v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("job").at("operation").as_string(), "drain");
  EXPECT_EQ(v.at("job").at("target").as_string(), "h2:9500");
  EXPECT_EQ(v.at("job").at("state").as_string(), "completed");
  // The job's Message, when it has one, says what moved.
  fake_.next_job_message = "replicad h2:9500 holds no replica of this fused's volumes (1 moved)";
  ASSERT_EQ(Run({"replicad", "drain", "h2:9500", "--wait"}), 0);
  EXPECT_EQ(out_.str(),
            "Drained replicad h2:9500: replicad h2:9500 holds no replica of this fused's volumes "
            "(1 moved). It stays draining until shorthornctl replicad undrain h2:9500.\n");
  // A drain belongs to no volume.
  ASSERT_EQ(Run({"job", "list"}), 0);
  EXPECT_NE(out_.str().find("1   drain      -       h2:9500  running"), std::string::npos)
      << out_.str();
  ASSERT_EQ(Run({"job", "show", "1"}), 0);
  EXPECT_NE(out_.str().find("Volume:        -\n"), std::string::npos) << out_.str();

  EXPECT_EQ(Run({"replicad", "drain", "h9:9500"}), 5);
  EXPECT_EQ(err_.str(), "shorthornctl: drain replicad h9:9500: this fused does not know it\n");
  EXPECT_EQ(Run({"replicad", "drain"}), kExitUsage);
}

TEST_F(PlacementTest, DrainWaitOnATerminalNamesTheReplicad) {
  err_is_terminal_ = true;
  ASSERT_EQ(Run({"replicad", "drain", "h1:9500", "--wait"}), 0);
  const std::string label = "\rjob 1 drain h1:9500 ";
  EXPECT_EQ(err_.str(), label + "[....................]   0%  0 B / 8 MiB\033[K" + label +
                            "[##########..........]  50%  4 MiB / 8 MiB  8 MiB/s\033[K" + label +
                            "[####################] 100%  8 MiB / 8 MiB  8 MiB/s\033[K\n");
}

TEST_F(PlacementTest, AFailedDrainIsExitOneWithItsMessage) {
  fake_.next_job_state = "failed";
  fake_.next_job_message =
      "drain replicad h2:9500: volume vol1: no replicad can take a new replica: h3:9500: "
      "unreachable";
  EXPECT_EQ(Run({"replicad", "drain", "h2:9500", "--wait"}), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "shorthornctl: " + fake_.next_job_message + "\n");
  // Without --wait the start is what counts.
  EXPECT_EQ(Run({"replicad", "drain", "h2:9500"}), 0);
}

TEST_F(PlacementTest, Undrain) {
  EXPECT_EQ(Run({"replicad", "undrain", "h1:9500"}), 3);
  EXPECT_EQ(err_.str(), "shorthornctl: undrain replicad h1:9500: it is not draining\n");
  fake_.replicads[0].state = "draining";
  ASSERT_EQ(Run({"replicad", "undrain", "h1:9500"}), 0);
  EXPECT_EQ(fake_.calls.back(), "UndrainReplicad h1:9500");
  EXPECT_EQ(out_.str(), "Replicad h1:9500 takes new replicas again.\n");
  EXPECT_EQ(fake_.replicads[0].state, "up");
  fake_.replicads[0].state = "draining";
  ASSERT_EQ(Run({"--json", "replicad", "undrain", "h1:9500"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("address").as_string(), "h1:9500");
  EXPECT_FALSE(v.at("draining").as_bool());
}

TEST_F(PlacementTest, ReplicaListJoinsHostAndFreeByAddress) {
  fake_.volumes["vol1"].replicas.push_back({"h3:9500", "r3", "ERR"});
  fake_.volumes["vol1"].replicas.push_back({"h4:9500", "r4", "WO"});  // not listed
  ASSERT_EQ(Run({"replica", "list", "vol1"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "Replica count: 2\n"
            "Robustness:    unknown\n"
            "ADDRESS  HOST    FREE     REPLICA  MODE\n"
            "h1:9500  host-a  60 GiB   r-vol1   -\n"
            "h2:9500  host-b  150 GiB  r-vol1   -\n"
            "h3:9500  -       -        r3       ERR\n"
            "h4:9500  -       -        r4       WO\n")
      << out_.str();
  ASSERT_EQ(Run({"--json", "replica", "list", "vol1"}), 0);
  boost::json::array replicas = boost::json::parse(out_.str()).at("replicas").as_array();
  ASSERT_EQ(replicas.size(), 4u);
  EXPECT_EQ(replicas[0].at("host_id").as_string(), "host-a");
  EXPECT_EQ(replicas[0].at("free_bytes").to_number<uint64_t>(), 60 * kGiB);
  EXPECT_TRUE(replicas[2].at("host_id").is_null());
  EXPECT_TRUE(replicas[2].at("free_bytes").is_null());
  EXPECT_TRUE(replicas[3].at("host_id").is_null());
}

TEST_F(PlacementTest, ReplicaListSucceedsWhenReplicadsCannotBeListed) {
  for (const Status& error :
       {Status(ErrorKind::kNotAuthorized, "list replicads: not root nor in group shorthorn"),
        Status(ErrorKind::kFailed,
               "list replicads: Unknown method ListReplicads "
               "(org.freedesktop.DBus.Error.UnknownMethod)")}) {
    fake_.replicads_error = error;
    ASSERT_EQ(Run({"replica", "list", "vol1"}), 0) << error.message();
    EXPECT_EQ(out_.str(),
              "Replica count: 2\n"
              "Robustness:    unknown\n"
              "ADDRESS  HOST  FREE  REPLICA  MODE\n"
              "h1:9500  -     -     r-vol1   -\n"
              "h2:9500  -     -     r-vol1   -\n");
    EXPECT_EQ(err_.str(), "");
    ASSERT_EQ(Run({"--json", "replica", "list", "vol1"}), 0);
    boost::json::value v = boost::json::parse(out_.str());
    EXPECT_TRUE(v.at("replicas").at(0).at("free_bytes").is_null());
    EXPECT_EQ(v.at("replicas").at(0).at("address").as_string(), "h1:9500");
  }
  // A volume without replicas does not ask.
  (void)fake_.CreateVolume("empty", kGiB, {}, {});
  fake_.calls.clear();
  ASSERT_EQ(Run({"replica", "list", "empty"}), 0);
  EXPECT_FALSE(Called("ListReplicads"));
}

TEST_F(PlacementTest, RebuildStartsOnlyOnAnAttachedVolume) {
  EXPECT_EQ(Run({"volume", "rebuild", "vol1"}), 6);
  EXPECT_EQ(err_.str(), "shorthornctl: rebuild volume vol1: it is detached\n");
  fake_.volumes["vol1"].state = "attached";
  ASSERT_EQ(Run({"volume", "rebuild", "vol1"}), 0);
  EXPECT_EQ(fake_.calls.back(), "Rebuild vol1");
  EXPECT_EQ(out_.str(),
            "Started replacing the failed replicas of volume vol1; the rebuilds run as jobs "
            "(shorthornctl job list).\n");
  ASSERT_EQ(Run({"--json", "volume", "rebuild", "vol1"}), 0);
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("name").as_string(), "vol1");
  EXPECT_TRUE(v.at("rebuild_started").as_bool());
  fake_.fail_next =
      Status(ErrorKind::kInvalidArgument, "rebuild volume vol1: no replica is missing");
  EXPECT_EQ(Run({"volume", "rebuild", "vol1"}), 5);
  EXPECT_EQ(Run({"volume", "rebuild", "nope"}), 3);
  EXPECT_EQ(Run({"volume", "rebuild", "vol1", "--wait"}), kExitUsage);
}

TEST_F(PlacementTest, AttachInMaintenanceModeOrSalvaging) {
  ASSERT_EQ(Run({"volume", "attach", "vol1", "--maintenance"}), 0) << err_.str();
  EXPECT_EQ(fake_.calls.back(), "Attach vol1 block maintenance");
  EXPECT_EQ(out_.str(),
            "Attached volume vol1 in maintenance mode: its engine runs without a file or device "
            "(for snapshot revert); detach it when done.\n");
  EXPECT_EQ(fake_.volumes["vol1"].state, "maintenance");
  ASSERT_EQ(Run({"volume", "detach", "vol1"}), 0);

  ASSERT_EQ(Run({"--json", "volume", "attach", "vol1", "--maintenance", "--salvage"}), 0);
  EXPECT_EQ(fake_.calls.back(), "Attach vol1 block maintenance salvage");
  boost::json::value v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("frontend").as_string(), "none");
  EXPECT_EQ(v.at("device").as_string(), "");
  EXPECT_TRUE(v.at("maintenance").as_bool());
  EXPECT_TRUE(v.at("salvage").as_bool());
  ASSERT_EQ(Run({"volume", "detach", "vol1"}), 0);

  ASSERT_EQ(Run({"volume", "attach", "vol1", "--salvage", "--file"}), 0);
  EXPECT_EQ(fake_.calls.back(), "Attach vol1 file salvage");
  EXPECT_EQ(out_.str(), "/run/shorthorn/volumes/vol1\n");
  ASSERT_EQ(Run({"volume", "detach", "vol1"}), 0);
  ASSERT_EQ(Run({"--json", "volume", "attach", "vol1"}), 0);
  v = boost::json::parse(out_.str());
  EXPECT_EQ(v.at("frontend").as_string(), "block");
  EXPECT_FALSE(v.at("maintenance").as_bool());
  EXPECT_FALSE(v.at("salvage").as_bool());

  const int connects = connects_;
  EXPECT_EQ(Run({"volume", "attach", "vol1", "--maintenance", "--file"}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "shorthornctl: volume attach: options --maintenance and --file exclude each other\n");
  EXPECT_EQ(connects_, connects);
}

TEST_F(PlacementTest, ReplicaTagsArePassedOnAsGiven) {
  ASSERT_EQ(Run({"volume", "create", "db", "-s", "1G", "--replica-count", "2", "--replica-tags",
                 "zone=a,ssd"}),
            0)
      << err_.str();
  EXPECT_EQ(fake_.calls.back(), "CreateVolume db 1073741824 - count=2 tags=zone=a,ssd");
  ASSERT_EQ(Run({"volume", "create", "db2", "-s", "1G", "--replica-tags=ssd"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateVolume db2 1073741824 - tags=ssd");
  ASSERT_EQ(Run({"volume", "create", "db3", "-s", "1G"}), 0);
  EXPECT_EQ(fake_.calls.back(), "CreateVolume db3 1073741824 -");

  const std::string url = "file:///b?volume=vol1&backup=b1";
  (void)Run({"volume", "restore", "db4", url, "--replica-tags", "ssd"});
  EXPECT_TRUE(Called("RestoreVolume db4 " + url + " - - tags=ssd"));
  const std::string source = "file:///b?volume=vol1";
  (void)Run({"volume", "create-standby", "db5", source, "--replica-tags", "hdd,zone=b"});
  EXPECT_TRUE(Called("CreateStandbyVolume db5 " + source + " - - - tags=hdd,zone=b"));

  // Empty is refused before the daemon is asked; it judges the rest.
  const int connects = connects_;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"volume", "create", "x", "-s", "1G", "--replica-tags", ""},
           {"volume", "create", "x", "-s", "1G", "--replica-tags="},
           {"volume", "restore", "x", url, "--replica-tags", ""},
           {"volume", "create-standby", "x", source, "--replica-tags="}}) {
    EXPECT_EQ(Run(args), kExitUsage) << args[1];
    EXPECT_NE(err_.str().find("option --replica-tags: no tags given"), std::string::npos)
        << err_.str();
  }
  EXPECT_EQ(connects_, connects);
}

TEST_F(PlacementTest, ShowHasTheRobustnessReasonAndTheReplicaTags) {
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_EQ(out_.str().find("Robustness reason:"), std::string::npos) << out_.str();
  EXPECT_EQ(out_.str().find("Replica tags:"), std::string::npos) << out_.str();

  VolumeInfo& v = fake_.volumes["vol1"];
  v.state = "attached";
  v.robustness = "degraded";
  v.robustness_reason =
      "replica r-vol1 on h2:9500 failed 12 s ago: connection reset; it is replaced in 588 s "
      "unless it returns";
  v.replica_count = 2;
  v.replica_tags = {"ssd", "zone=a"};
  ASSERT_EQ(Run({"volume", "show", "vol1"}), 0);
  EXPECT_NE(out_.str().find("Robustness:    degraded\n"
                            "Robustness reason: " +
                            v.robustness_reason +
                            "\n"
                            "Replica count: 2\n"
                            "Replica tags:  ssd,zone=a\n"),
            std::string::npos)
      << out_.str();
  ASSERT_EQ(Run({"--json", "volume", "show", "vol1"}), 0);
  boost::json::value json = boost::json::parse(out_.str());
  EXPECT_EQ(json.at("robustness_reason").as_string(), v.robustness_reason);
  EXPECT_EQ(json.at("replica_tags").as_array().size(), 2u);
  EXPECT_EQ(json.at("replica_tags").at(1).as_string(), "zone=a");
}

}  // namespace
}  // namespace shorthorn::ctl
