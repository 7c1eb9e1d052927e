// Pure parts of the D-Bus adapter: object path escaping, error names, option
// conversion, the authorization decision, /proc parsing, change detection
// (volumes and jobs) and the event queue. No bus.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <thread>

#include "fused/dbus/dbus_auth.h"
#include "fused/dbus/dbus_names.h"
#include "fused/dbus/dbus_options.h"
#include "fused/dbus/event_queue.h"
#include "fused/dbus/job_object.h"
#include "fused/dbus/keyed_executor.h"
#include "fused/dbus/volume_object.h"
#include "tests/unit/fused/fake_volume_manager.h"

namespace shorthorn::fused::dbus {
namespace {

TEST(PathEscapeTest, EscapesLikeSystemd) {
  EXPECT_EQ(EscapePathElement("vol1"), "vol1");
  EXPECT_EQ(EscapePathElement("db-1.a_b"), "db_2d1_2ea_5fb");
  EXPECT_EQ(EscapePathElement(""), "_");
  EXPECT_EQ(EscapePathElement("/"), "_2f");
  EXPECT_EQ(VolumeObjectPath("db-1"), "/org/shorthorn/Storage1/volumes/db_2d1");
  // A leading digit is escaped (an element may start with one, but systemd's
  // rule, which doc/dbus-api.md and the shell helpers follow, escapes it).
  EXPECT_EQ(EscapePathElement("1db"), "_31db");
  EXPECT_EQ(EscapePathElement("a1"), "a1");
  EXPECT_EQ(VolumeObjectPath("9"), "/org/shorthorn/Storage1/volumes/_39");
}

TEST(PathEscapeTest, RoundTripsEveryValidCharacter) {
  std::string all = "AZaz09._-";
  for (std::string name :
       {std::string("a"), all, std::string("x_5f"), std::string("_2d"), std::string("...---___"),
        std::string("1db"), std::string("0"), std::string("09az")}) {
    auto back = UnescapePathElement(EscapePathElement(name));
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, name);
    auto from_path = VolumeNameFromPath(VolumeObjectPath(name));
    ASSERT_TRUE(from_path.has_value()) << name;
    EXPECT_EQ(*from_path, name);
  }
}

TEST(PathEscapeTest, RejectsWhatEscapingCannotProduce) {
  EXPECT_FALSE(UnescapePathElement("").has_value());
  EXPECT_FALSE(UnescapePathElement("a_2").has_value());   // truncated
  EXPECT_FALSE(UnescapePathElement("a_zz").has_value());  // not hex
  EXPECT_FALSE(UnescapePathElement("_2D").has_value());   // uppercase hex
  EXPECT_FALSE(UnescapePathElement("_61").has_value());   // 'a' never escaped
  EXPECT_FALSE(UnescapePathElement("1db").has_value());   // a leading digit is escaped
  EXPECT_FALSE(UnescapePathElement("a_31").has_value());  // and only a leading one
  EXPECT_FALSE(UnescapePathElement("a-b").has_value());   // not a path element
  EXPECT_FALSE(VolumeNameFromPath("/org/shorthorn/Storage1/Manager").has_value());
  EXPECT_FALSE(VolumeNameFromPath("/org/shorthorn/Storage1/volumes/").has_value());
  EXPECT_FALSE(VolumeNameFromPath("/org/shorthorn/Storage1/volumes/a/b").has_value());
  EXPECT_FALSE(VolumeNameFromPath("/org/shorthorn/Storage1/volumesx").has_value());
}

TEST(ErrorNameTest, KindBecomesErrorName) {
  EXPECT_EQ(ErrorName(ErrorKind::kNotFound), "org.shorthorn.Storage1.Error.NotFound");
  EXPECT_EQ(ErrorName(ErrorKind::kIoError), "org.shorthorn.Storage1.Error.IOError");
  EXPECT_EQ(ErrorName(ErrorKind::kOk), "org.shorthorn.Storage1.Error.Failed");
  sdbus::Error e = ToDbusError(Status(ErrorKind::kBusy, "delete volume v: attached"));
  EXPECT_EQ(e.getName(), "org.shorthorn.Storage1.Error.Busy");
  EXPECT_EQ(e.getMessage(), "delete volume v: attached");
}

TEST(GuardHandlerTest, OnlySdbusErrorsLeave) {
  try {
    GuardHandler("Attach", [] { throw std::runtime_error("boom"); });
    FAIL() << "no exception";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.shorthorn.Storage1.Error.Failed");
    EXPECT_EQ(e.getMessage(), "Attach: boom");
  }
  try {
    GuardHandler("Attach", [] { throw 42; });
    FAIL() << "no exception";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.shorthorn.Storage1.Error.Failed");
  }
  try {
    GuardHandler("Attach", [] { throw ToDbusError(Status(ErrorKind::kNotFound, "x")); });
    FAIL() << "no exception";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), "org.shorthorn.Storage1.Error.NotFound");
  }
}

TEST(OptionsTest, WidensIntegersAndKeepsBoolAndString) {
  DbusOptions in;
  in["b"] = sdbus::Variant(true);
  in["s"] = sdbus::Variant(std::string("file"));
  in["y"] = sdbus::Variant(uint8_t{200});
  in["n"] = sdbus::Variant(int16_t{-2});
  in["q"] = sdbus::Variant(uint16_t{65535});
  in["i"] = sdbus::Variant(int32_t{-70000});
  in["u"] = sdbus::Variant(uint32_t{4000000000u});
  in["x"] = sdbus::Variant(int64_t{-5000000000});
  in["t"] = sdbus::Variant(uint64_t{1} << 40);
  auto out = ConvertOptions("CreateVolume", in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(std::get<bool>(out->at("b")), true);
  EXPECT_EQ(std::get<std::string>(out->at("s")), "file");
  EXPECT_EQ(std::get<uint64_t>(out->at("y")), 200u);
  EXPECT_EQ(std::get<int64_t>(out->at("n")), -2);
  EXPECT_EQ(std::get<uint64_t>(out->at("q")), 65535u);
  EXPECT_EQ(std::get<int64_t>(out->at("i")), -70000);
  EXPECT_EQ(std::get<uint64_t>(out->at("u")), 4000000000u);
  EXPECT_EQ(std::get<int64_t>(out->at("x")), -5000000000);
  EXPECT_EQ(std::get<uint64_t>(out->at("t")), uint64_t{1} << 40);
}

TEST(OptionsTest, RejectsOtherTypesNamingTheKey) {
  for (sdbus::Variant bad : {sdbus::Variant(1.5), sdbus::Variant(std::vector<std::string>{"a"}),
                             sdbus::Variant(sdbus::ObjectPath("/x"))}) {
    DbusOptions in;
    in["ok"] = sdbus::Variant(true);
    in["speed"] = bad;
    auto out = ConvertOptions("Attach", in);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(out.status().message().find("Attach: option \"speed\""), std::string::npos)
        << out.status().message();
  }
}

TEST(OptionsTest, EmptyIsEmpty) {
  auto out = ConvertOptions("Detach", {});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

TEST(AuthTest, RootExtraUidsAndGroupMembersMayChange) {
  AdminPolicy policy;
  policy.extra_uids = {1234};
  CallerCredentials root{0, 0, {}};
  EXPECT_TRUE(CheckCredentials("CreateVolume", root, policy, std::nullopt).ok());
  CallerCredentials extra{1234, 1234, {}};
  EXPECT_TRUE(CheckCredentials("CreateVolume", extra, policy, std::nullopt).ok());
  CallerCredentials primary{1000, 977, {}};
  EXPECT_TRUE(CheckCredentials("CreateVolume", primary, policy, 977).ok());
  CallerCredentials supplementary{1000, 1000, {4, 977, 27}};
  EXPECT_TRUE(CheckCredentials("CreateVolume", supplementary, policy, 977).ok());
}

TEST(AuthTest, OthersAreRefusedWithAReadableMessage) {
  AdminPolicy policy;
  CallerCredentials nobody{65534, 65534, {65534}};
  Status s = CheckCredentials("CreateVolume", nobody, policy, 977);
  EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized);
  EXPECT_EQ(s.message(), "CreateVolume: caller uid 65534 is neither root nor in group shorthorn");
  s = CheckCredentials("Detach", nobody, policy, std::nullopt);
  EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized);
  EXPECT_NE(s.message().find("Detach: caller uid 65534 is neither root nor in group shorthorn"),
            std::string::npos);
  // A gid that happens to equal nothing real must not match a missing group.
  CallerCredentials odd{1000, static_cast<gid_t>(-1), {}};
  EXPECT_FALSE(CheckCredentials("Attach", odd, policy, std::nullopt).ok());
}

TEST(AuthTest, RootMayNameAnyReplicad) {
  const std::vector<std::string> configured = {"127.0.0.1:9500"};
  EXPECT_TRUE(CheckReplicaAddresses("CreateVolume", 0, {"10.9.9.9:1234"}, configured).ok());
  EXPECT_TRUE(CheckReplicaAddresses("CreateVolume", 0, {"10.9.9.9:1234"}, {}).ok());
  EXPECT_TRUE(
      CheckReplicaAddresses("RestoreVolume", 0, {"127.0.0.1:9500", "h:1"}, configured).ok());
}

TEST(AuthTest, OthersMayNameOnlyConfiguredReplicads) {
  const std::vector<std::string> configured = {"127.0.0.1:9500", "10.0.0.2:9500"};
  for (uid_t uid : {uid_t{1000}, uid_t{65534}, static_cast<uid_t>(-1)}) {
    EXPECT_TRUE(CheckReplicaAddresses("CreateVolume", uid, {}, configured).ok());
    EXPECT_TRUE(
        CheckReplicaAddresses("CreateVolume", uid, {"10.0.0.2:9500", "127.0.0.1:9500"}, configured)
            .ok());
    Status s =
        CheckReplicaAddresses("CreateVolume", uid, {"127.0.0.1:9500", "10.9.9.9:1234"}, configured);
    EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized);
    EXPECT_EQ(s.message(),
              "CreateVolume: replicad 10.9.9.9:1234 is not in fused.conf's replicads; only root "
              "may name other replicads");
  }
  // Exact strings: another spelling of a listed replicad is another replicad.
  for (std::string other : {"localhost:9500", "127.0.0.1:09500", " 127.0.0.1:9500", ""}) {
    Status s = CheckReplicaAddresses("RestoreVolume", 1000, {other}, configured);
    EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized) << other;
    EXPECT_EQ(s.message().rfind("RestoreVolume: replicad " + other + " is not in", 0), 0u)
        << s.message();
  }
  // Nothing configured: only an empty list (which then fails in the service).
  EXPECT_TRUE(CheckReplicaAddresses("CreateVolume", 1000, {}, {}).ok());
  EXPECT_FALSE(CheckReplicaAddresses("CreateVolume", 1000, {"127.0.0.1:9500"}, {}).ok());
}

TEST(AuthTest, OnlyRootMayNameAnotherBackupTarget) {
  const std::string configured = "file:///var/lib/shorthorn/backups";
  EXPECT_TRUE(CheckBackupTargetUrl("Backup", 0, "file:///etc", configured).ok());
  for (uid_t uid : {uid_t{1000}, uid_t{65534}, static_cast<uid_t>(-1)}) {
    EXPECT_TRUE(CheckBackupTargetUrl("Backup", uid, "", configured).ok());
    EXPECT_TRUE(CheckBackupTargetUrl("Backup", uid, configured, configured).ok());
    EXPECT_TRUE(CheckBackupTargetUrl("Backup", uid, configured + "/", configured).ok());
    Status s = CheckBackupTargetUrl("ListBackups", uid, "file:///etc", configured);
    EXPECT_EQ(s.kind(), ErrorKind::kNotAuthorized);
    EXPECT_EQ(s.message(),
              "ListBackups: backup target file:///etc is not fused.conf's backup-target "
              "(file:///var/lib/shorthorn/backups); only root may name another");
  }
  // Another spelling of the same directory is another target.
  for (std::string other :
       {"file:///var/lib/shorthorn/backups/../backups", "file:///var/lib/shorthorn//backups",
        "s3://bucket/backups", "file:///var/lib/shorthorn/backups2"}) {
    EXPECT_FALSE(CheckBackupTargetUrl("Backup", 1000, other, configured).ok()) << other;
  }
  EXPECT_EQ(BackupUrlTarget("file:///b?volume=v&backup=x"), "file:///b");
  EXPECT_EQ(BackupUrlTarget("s3://bucket/p?volume=v&backup=x"), "s3://bucket/p");
  EXPECT_EQ(BackupUrlTarget("file:///no-query"), "");
}

TEST(AuthTest, ParsesProcStatus) {
  std::string status =
      "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t101\t102\t103\n"
      "Groups:\t4 24 977 \nNStgid:\t1\n";
  auto gid = ParseProcStatusNumbers(status, "Gid:");
  ASSERT_TRUE(gid.has_value());
  EXPECT_EQ(*gid, (std::vector<unsigned long>{100, 101, 102, 103}));
  auto groups = ParseProcStatusNumbers(status, "Groups:");
  ASSERT_TRUE(groups.has_value());
  EXPECT_EQ(*groups, (std::vector<unsigned long>{4, 24, 977}));
  auto none = ParseProcStatusNumbers("Groups:\t\n", "Groups:");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(ParseProcStatusNumbers("Name:\tx\n", "Groups:").has_value());
  EXPECT_FALSE(ParseProcStatusNumbers("Groups:\t4 x\n", "Groups:").has_value());
}

TEST(VolumePropertiesTest, ListsOnlyWhatChanged) {
  VolumeInfo a;
  a.name = "v";
  a.size = 10;
  a.state = VolumeState::kDetached;
  a.replicas = {{"h:1", "r1", ""}};
  VolumeInfo b = a;
  EXPECT_TRUE(ChangedVolumeProperties(a, b).empty());
  b.state = VolumeState::kAttached;
  b.replicas[0].mode = "RW";
  b.loop_device = "/dev/loop3";
  EXPECT_EQ(ChangedVolumeProperties(a, b),
            (std::vector<std::string>{"State", "Replicas", "LoopDevice"}));
  VolumeInfo c = a;
  c.size = 20;
  c.frontend_path = "/run/x";
  c.replicas.push_back({"h:2", "r2", ""});
  EXPECT_EQ(ChangedVolumeProperties(a, c),
            (std::vector<std::string>{"Size", "Replicas", "FrontendPath"}));
}

TEST(VolumePropertiesTest, ListsActualSizeAndSnapshots) {
  VolumeInfo a;
  a.name = "v";
  a.snapshots = {{"s1", "", "2024-05-01T12:00:00Z", true, 4096, false}};
  VolumeInfo b = a;
  b.actual_size = 4096;
  b.snapshots[0].removed = true;
  EXPECT_EQ(ChangedVolumeProperties(a, b), (std::vector<std::string>{"ActualSize", "Snapshots"}));
  VolumeInfo c = a;
  c.snapshots.push_back({"s2", "s1", "2024-05-01T12:00:01Z", false, 0, false});
  EXPECT_EQ(ChangedVolumeProperties(a, c), (std::vector<std::string>{"Snapshots"}));
}

TEST(VolumePropertiesTest, ListsEveryChangingPropertyButNotNameOrRevision) {
  VolumeInfo a;
  a.name = "v";
  VolumeInfo b = a;
  b.name = "w";    // constant: never in PropertiesChanged
  b.revision = 7;  // not a property
  EXPECT_TRUE(ChangedVolumeProperties(a, b).empty());
  b.size = 1;
  b.actual_size = 1;
  b.state = VolumeState::kAttached;
  b.replicas = {{"h:1", "r1", "RW"}};
  b.frontend_path = "/f";
  b.loop_device = "/dev/loop1";
  b.snapshots = {{"s1", "", "t", true, 0, false}};
  b.replica_count = 1;
  b.robustness = "healthy";
  b.state_reason = "why";
  EXPECT_EQ(ChangedVolumeProperties(a, b),
            (std::vector<std::string>{"Size", "ActualSize", "State", "Replicas", "FrontendPath",
                                      "LoopDevice", "Snapshots", "ReplicaCount", "Robustness",
                                      "StateReason"}));
}

TEST(JobPropertiesTest, ListsOnlyWhatChangedAndKnowsTheEnd) {
  EXPECT_EQ(JobObjectPath(42), "/org/shorthorn/Storage1/jobs/42");
  JobInfo a;
  a.id = 1;
  a.operation = "delete-snapshot";
  a.state = JobState::kRunning;
  a.cancellable = true;
  JobInfo b = a;
  EXPECT_TRUE(ChangedJobProperties(a, b).empty());
  b.target = "ignored, constant";
  b.progress = 0.25;
  b.bytes = 10;
  b.rate = 5;
  EXPECT_EQ(ChangedJobProperties(a, b), (std::vector<std::string>{"Progress", "Bytes", "Rate"}));
  JobInfo c = a;
  c.total_bytes = 100;
  c.state = JobState::kFailed;
  c.message = "boom";
  c.cancellable = false;
  EXPECT_EQ(ChangedJobProperties(a, c),
            (std::vector<std::string>{"TotalBytes", "State", "Message", "Cancellable"}));
  EXPECT_FALSE(JobFinished(a));
  for (JobState state : {JobState::kCompleted, JobState::kFailed, JobState::kCancelled}) {
    c.state = state;
    EXPECT_TRUE(JobFinished(c)) << JobStateName(state);
  }
}

TEST(EventQueueTest, CarriesJobEventsAndRefreshRequests) {
  auto queue = VolumeEventQueue::Create();
  ASSERT_TRUE(queue.ok());
  VolumeEventQueue& q = **queue;
  JobInfo job;
  job.id = 7;
  job.state = JobState::kRunning;
  q.JobAdded(job);
  job.state = JobState::kCompleted;
  q.JobChanged(job);
  q.JobRemoved(7);
  q.RequestJobRefresh(8);
  FakeVolumeManager manager;
  ASSERT_TRUE(manager.CreateVolume("v", 1 << 20, {}, {}).ok());
  q.RefreshVolume(manager, "v");
  q.RefreshVolume(manager, "gone");  // nothing: the manager reports removals
  auto events = q.Take();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].kind, VolumeEvent::Kind::kJobAdded);
  EXPECT_EQ(events[0].job.state, JobState::kRunning);
  EXPECT_EQ(events[1].kind, VolumeEvent::Kind::kJobChanged);
  EXPECT_EQ(events[1].job.state, JobState::kCompleted);
  EXPECT_EQ(events[2].kind, VolumeEvent::Kind::kJobRemoved);
  EXPECT_EQ(events[2].job.id, 7u);
  EXPECT_EQ(events[3].kind, VolumeEvent::Kind::kJobRefresh);
  EXPECT_EQ(events[3].job.id, 8u);
  EXPECT_EQ(events[4].kind, VolumeEvent::Kind::kChanged);
  EXPECT_EQ(events[4].info.name, "v");
  EXPECT_EQ(events[4].info.size, 1u << 20);
}

TEST(EventQueueTest, KeepsOrderAndWakesThePoller) {
  auto queue = VolumeEventQueue::Create();
  ASSERT_TRUE(queue.ok());
  VolumeEventQueue& q = **queue;
  pollfd pfd{q.fd(), POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  VolumeInfo info;
  info.name = "v";
  std::thread producer([&] {
    q.VolumeAdded(info);
    q.VolumeChanged(info);
    q.VolumeRemoved("v");
  });
  producer.join();
  EXPECT_EQ(poll(&pfd, 1, 1000), 1);
  auto events = q.Take();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, VolumeEvent::Kind::kAdded);
  EXPECT_EQ(events[1].kind, VolumeEvent::Kind::kChanged);
  EXPECT_EQ(events[2].kind, VolumeEvent::Kind::kRemoved);
  EXPECT_EQ(events[2].info.name, "v");
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  EXPECT_TRUE(q.Take().empty());
}

}  // namespace
}  // namespace shorthorn::fused::dbus

namespace shorthorn::fused::dbus {
namespace {

// Waits up to 5 s for `done`.
template <typename Pred>
bool WaitUntil(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(KeyedExecutorTest, OneKeyRunsInOrderOneAtATime) {
  KeyedExecutor executor(4);
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> running{0}, most{0};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(executor.Submit("v", [&, i] {
      int now = ++running;
      most = std::max(most.load(), now);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      --running;
    }));
  }
  ASSERT_TRUE(WaitUntil([&] { return executor.pending() == 0; }));
  std::vector<int> expected(20);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(order, expected);
  EXPECT_EQ(most.load(), 1);
}

TEST(KeyedExecutorTest, KeysRunAtOnceUpToTheThreadCap) {
  KeyedExecutor executor(3);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> running{0};
  for (int i = 0; i < 5; ++i) {
    executor.Submit("v" + std::to_string(i), [&] {
      ++running;
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
    });
  }
  // Three keys run at once (a blocked key does not block the others); the
  // other two wait for a thread.
  ASSERT_TRUE(WaitUntil([&] { return running.load() == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(running.load(), 3);
  EXPECT_EQ(executor.pending(), 5u);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(WaitUntil([&] { return executor.pending() == 0; }));
  EXPECT_EQ(running.load(), 5);
}

TEST(KeyedExecutorTest, StopWaitsForRunningWorkAndDropsTheRest) {
  KeyedExecutor executor(2);
  std::atomic<bool> started{false}, finished{false};
  std::atomic<int> later{0};
  executor.Submit("v", [&] {
    started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    finished = true;
  });
  for (int i = 0; i < 3; ++i) executor.Submit("v", [&] { ++later; });
  ASSERT_TRUE(WaitUntil([&] { return started.load(); }));
  executor.Stop();
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(later.load(), 0);
  EXPECT_EQ(executor.pending(), 0u);
  EXPECT_FALSE(executor.Submit("v", [&] { ++later; }));
  executor.Stop();  // idempotent
}

}  // namespace
}  // namespace shorthorn::fused::dbus
